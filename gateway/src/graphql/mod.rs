//! The GraphQL door: an aggregated schema generated from the descriptors, resolvers that plan
//! gRPC calls, query limits, schema diffs, and GraphQL over HTTP, SSE and WebSocket.

pub mod http;
pub mod limits;
pub mod sdl_diff;
