//! Operations of the operations folder published as REST endpoints: the route table built from
//! the `endpoints` config ([`table`]), and the door ([`door`]) that binds a request to the
//! operation's variables ([`bind`]), runs it through the GraphQL engine (the same prepare step
//! and executor as the GraphQL endpoint: limits, deadline, metadata, policies, dedup and
//! batching apply) and answers with its `data` ([`status`] has the status rule).
//!
//! The ingress looks endpoint routes up before the REST door's; a template of the same shape as
//! a transcoded REST route (same method) is a load error naming both.

pub mod bind;
pub mod door;
pub mod status;
pub mod table;

pub use door::handle;
pub use table::{Endpoint, EndpointError, build};
