//! Running one GraphQL operation on the snapshot its request pinned, for every door that runs
//! operations (the GraphQL endpoint, the operation endpoints): [`prepare`] (persisted
//! operations, query limits, the request context attached) then [`executor`].

pub mod executor;
pub mod prepare;
