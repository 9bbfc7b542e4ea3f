//! Fan-out helpers for requests that make many calls: identical calls inside one operation are
//! made once ([`Dedup`]), and the lookups of one round of resolution go out as one batch call
//! ([`batch`]).

pub mod batch;
mod dedup;

pub use dedup::{CallResult, Dedup};
