//! cargo-fuzz target: `portico::fuzz::proto_to_json` (see gateway/src/fuzz/mod.rs for its invariants).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portico::fuzz::proto_to_json(data));
