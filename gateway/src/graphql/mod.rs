//! The GraphQL door: an aggregated schema generated from the descriptors, resolvers that plan
//! gRPC calls, query limits, schema diffs, GraphQL over HTTP, SSE and WebSocket, the BFF's
//! operations folder and persisted operations (trusted documents, APQ).

pub mod batch;
pub mod context;
pub mod executor;
pub mod http;
pub mod limits;
pub mod operations;
pub mod persisted;
pub mod prepare;
pub mod schema;
pub mod sdl_diff;
