//! The back door: every call, whichever front door it came through, leaves here as a gRPC call.
//!
//! [`Target`] is what every call to a method needs to know (backend, timeout, idempotency),
//! resolved once per snapshot; [`Call`] is the one type every door builds (through
//! [`crate::request::RequestCtx::call_to`]); [`Upstream`] owns a channel per backend and makes
//! the call with the dynamic codec, the deadline sent as `grpc-timeout`, and the response size
//! capped. Every call goes through the [`crate::resilience`] pieces here:
//! breaker, bulkhead, balancing over endpoints, retries, fallbacks.

mod backends;
mod call;
mod codec;
mod encoded;
mod error;
mod target;

pub use backends::{Backend, Upstream};
pub use call::{
    Call, CallBody, Fallback, Payload, Reply, ReplyForm, ReplyStream, RequestStream, StreamReply,
};
pub use codec::DynamicCodec;
pub use error::{UpstreamError, whole_secs};
pub use target::{Target, Targets, is_idempotent};
