//! The GraphQL door: an aggregated schema generated from the descriptors, resolvers that plan
//! gRPC calls, query limits, schema diffs, and GraphQL over HTTP, SSE and WebSocket.

pub mod context;
pub mod errors;
pub mod executor;
pub mod http;
pub mod limits;
pub mod prepare;
pub mod schema;
pub mod sdl_diff;
