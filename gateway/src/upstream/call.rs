//! The call type both front doors build, and the replies the upstream stack hands back.

use std::time::Duration;

use prost_reflect::{DynamicMessage, MethodDescriptor};
use tokio::time::Instant;
use tonic::Streaming;
use tonic::metadata::MetadataMap;

/// One gRPC call to make: which method, with what, under which deadline.
#[derive(Debug)]
pub struct Call {
    /// The method, from the descriptor pool of the snapshot that planned the call.
    pub method: MethodDescriptor,
    /// The request message(s).
    pub body: CallBody,
    /// Metadata sent to the backend (forwarded headers, request id).
    pub metadata: MetadataMap,
    /// When the client's budget for this call runs out.
    pub deadline: Instant,
}

/// The request side of a call.
#[derive(Debug)]
pub enum CallBody {
    /// One request message (unary and server-streaming methods).
    Unary(DynamicMessage),
    /// A sequence of request messages (client-streaming methods).
    Stream(Vec<DynamicMessage>),
}

impl Call {
    /// Time left before the deadline (zero when it has passed).
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// The gRPC path, `/package.Service/Method`.
    pub fn path(&self) -> String {
        format!(
            "/{}/{}",
            self.method.parent_service().full_name(),
            self.method.name()
        )
    }
}

/// A unary (or client-streaming) reply.
#[derive(Debug)]
pub struct Reply {
    /// The response message.
    pub message: DynamicMessage,
    /// Response headers and trailers sent by the backend.
    pub metadata: MetadataMap,
}

/// A server-streaming reply: headers arrived, messages follow.
#[derive(Debug)]
pub struct StreamReply {
    /// Response headers sent by the backend.
    pub metadata: MetadataMap,
    /// The messages, ending with the backend's final status.
    pub stream: Streaming<DynamicMessage>,
}
