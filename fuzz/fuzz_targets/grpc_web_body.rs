//! cargo-fuzz target: `portico::fuzz::grpc_web_body` (see gateway/src/fuzz/mod.rs for its invariants).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portico::fuzz::grpc_web_body(data));
