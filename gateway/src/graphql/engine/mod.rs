//! The GraphQL engine: the schema generated from the descriptors and links ([`schema`]), the
//! per-operation context its resolvers plan and make calls with ([`context`]), the query limits
//! checked before anything runs ([`limits`]), and schema diffs for schema-as-code
//! ([`sdl_diff`]). It knows nothing of HTTP: calls leave through the request's policy chain.

pub mod context;
pub mod limits;
pub mod plan;
pub mod schema;
pub mod sdl_diff;
pub mod validated;
