//! cargo-fuzz target: `portico::fuzz::json_to_proto` (see gateway/src/fuzz/mod.rs for its invariants).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portico::fuzz::json_to_proto(data));
