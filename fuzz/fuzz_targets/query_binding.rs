//! cargo-fuzz target: `portico::fuzz::query_binding` (see gateway/src/fuzz/mod.rs for its invariants).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portico::fuzz::query_binding(data));
