//! Running one GraphQL operation on the snapshot its request pinned, for every door that runs
//! operations (the GraphQL endpoint, the operation endpoints): [`prepare`] (persisted
//! operations, query limits, the request context attached) then [`executor`], which runs a
//! query through its compiled plan ([`compiled`]) when it has one; a root field without links
//! is projected straight from its reply's wire bytes (`wire`).

pub mod compiled;
pub mod executor;
pub mod prepare;
mod values;
mod wire;
