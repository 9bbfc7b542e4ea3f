//! Fan-out helpers for requests that make many calls: identical calls inside one request are
//! made once ([`Dedup`]).

mod dedup;

pub use dedup::{CallResult, Dedup};
