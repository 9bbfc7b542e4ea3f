//! The GraphQL door, split by job:
//!
//! - [`engine`]: the aggregated schema generated from the descriptors and the links, the
//!   per-operation context its resolvers plan calls with, query limits, and schema diffs.
//! - [`transport`]: GraphQL over HTTP (GET, POST), Server-Sent Events, WebSocket and the
//!   GraphiQL page, for any `async_graphql::Executor`.
//! - [`bff`]: what a Backend-for-Frontend adds: the operations folder, persisted operations
//!   (trusted documents, APQ), and operations published as REST endpoints.
//! - [`run`]: running one operation on the snapshot its request pinned: the prepare step
//!   (persisted operations, limits) and the executor, shared by the GraphQL endpoint and the
//!   operation endpoints.

pub mod bff;
pub mod engine;
pub mod run;
pub mod transport;
