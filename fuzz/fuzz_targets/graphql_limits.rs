//! cargo-fuzz target: `portico::fuzz::graphql_limits` (see gateway/src/fuzz/mod.rs for its invariants).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portico::fuzz::graphql_limits(data));
