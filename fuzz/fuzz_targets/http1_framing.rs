//! cargo-fuzz target: `portico::fuzz::http1_framing` (see gateway/src/fuzz/mod.rs for its invariants).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portico::fuzz::http1_framing(data));
