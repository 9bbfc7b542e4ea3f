//! The call type every door builds, and the replies the upstream stack hands back.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prost_reflect::{DynamicMessage, MessageDescriptor, MethodDescriptor};
use tokio::time::Instant;
use tonic::Streaming;
use tonic::metadata::MetadataMap;

use super::UpstreamError;
use crate::resilience::{BulkheadPermit, InFlight};

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
    /// Whether the method may be retried on UNAVAILABLE (the target's
    /// [`is_idempotent`](super::is_idempotent)).
    pub idempotent: bool,
    /// The call's span, when the request's trace is recorded (its id is the one in the
    /// call's `traceparent`).
    pub span: Option<crate::telemetry::traces::SpanIds>,
    /// How the reply's message comes back: decoded (the default), or as the backend's bytes
    /// for a door that writes them without decoding.
    pub reply_form: ReplyForm,
    /// The backend it goes to, once chosen: the variant the split stage picked for a split
    /// backend (kept through retries and past a reload); `None`: the upstream decides.
    pub backend: Option<super::Backend>,
}

/// How a unary call's reply message is handed back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReplyForm {
    /// Decoded into a `DynamicMessage` as it arrives; bytes that do not decode fail the call.
    #[default]
    Decoded,
    /// The backend's wire bytes as they arrived, checked by whoever reads them
    /// ([`Payload::into_message`] decodes them on demand).
    Wire,
}

/// A reply's message, in the [`ReplyForm`] the call asked for.
#[derive(Clone, Debug)]
pub enum Payload {
    /// Decoded (shared by every field of an operation that asked for the same call; a door
    /// that changes it gets its own copy with `Arc::make_mut`).
    Decoded(Arc<DynamicMessage>),
    /// The backend's bytes, not yet checked.
    Wire(Bytes),
}

/// The request side of a call.
#[derive(Debug)]
pub enum CallBody {
    /// One request message (unary and server-streaming methods).
    Unary(DynamicMessage),
    /// One request message, already encoded (the REST door's direct decoder writes it
    /// straight from the JSON body).
    Wire(Bytes),
    /// A sequence of request messages, encoded (client-streaming methods).
    Stream(Vec<Bytes>),
    /// Request messages, encoded, sent as they arrive (client-streaming and bidirectional
    /// methods over WebSocket, NDJSON bodies read line by line). The stream's end is the
    /// client's half-close. Such a call is made once ([`Upstream::streaming`]), never retried.
    ///
    /// [`Upstream::streaming`]: super::Upstream::streaming
    Live(RequestStream),
}

/// The request messages of a live call, pulled as the backend takes them: a bounded source
/// (a channel) keeps a slow backend from making the gateway buffer more.
pub struct RequestStream(pub Pin<Box<dyn futures::Stream<Item = Bytes> + Send>>);

impl RequestStream {
    /// The messages of `stream`.
    pub fn new(stream: impl futures::Stream<Item = Bytes> + Send + 'static) -> Self {
        Self(Box::pin(stream))
    }
}

impl std::fmt::Debug for RequestStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequestStream")
    }
}

impl futures::Stream for RequestStream {
    type Item = Bytes;
    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Bytes>> {
        self.get_mut().0.as_mut().poll_next(cx)
    }
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

/// A unary (or client-streaming) reply. Cheap to clone: the message is shared.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The response message.
    pub payload: Payload,
    /// Response headers and trailers sent by the backend.
    pub metadata: MetadataMap,
    /// The message is not the backend's answer to this call but a fallback (doors mark it:
    /// `x-portico-fallback: static` or `stale` over REST, `extensions.fallbacks` or
    /// `extensions.stale` in GraphQL).
    pub fallback: Option<Fallback>,
}

impl Payload {
    /// The message, of type `desc`, from `backend`: decoded now when the call asked for wire
    /// bytes. Bytes that do not decode are the error a decoded call fails with.
    pub fn into_message(
        self,
        desc: &MessageDescriptor,
        backend: &str,
    ) -> Result<Arc<DynamicMessage>, UpstreamError> {
        match self {
            Payload::Decoded(m) => Ok(m),
            Payload::Wire(bytes) => {
                decode_reply(desc, bytes)
                    .map(Arc::new)
                    .map_err(|status| UpstreamError::Status {
                        backend: backend.to_string(),
                        status,
                    })
            }
        }
    }
}

/// Decodes a reply message of type `desc`; the status a call fails with when it does not.
pub(crate) fn decode_reply(
    desc: &MessageDescriptor,
    bytes: Bytes,
) -> Result<DynamicMessage, tonic::Status> {
    DynamicMessage::decode(desc.clone(), bytes).map_err(|e| {
        tonic::Status::internal(format!(
            "the backend's reply is not a valid {}: {e}",
            desc.full_name()
        ))
    })
}

/// What answered instead of the backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// The method's configured static fallback.
    Static,
    /// A recent reply from the response cache (`stale_if_error`).
    Stale,
}

impl Fallback {
    /// `static` or `stale`, as the doors write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Fallback::Static => "static",
            Fallback::Stale => "stale",
        }
    }
}

/// A server-streaming reply: headers arrived, messages follow.
#[derive(Debug)]
pub struct StreamReply {
    /// Response headers sent by the backend.
    pub metadata: MetadataMap,
    /// The messages, ending with the backend's final status.
    pub stream: ReplyStream,
}

/// The messages of a server stream. It holds the call's bulkhead slot and counts as in flight
/// on its endpoint until dropped; it derefs to tonic's [`Streaming`] (`.message().await`) and
/// is a [`futures::Stream`] too.
#[derive(Debug)]
pub struct ReplyStream {
    inner: Streaming<DynamicMessage>,
    _guard: CallGuard,
}

/// What a call holds while it runs (released on drop): its bulkhead slot and its endpoint's
/// in-flight count.
#[derive(Debug, Default)]
pub(crate) struct CallGuard {
    pub(crate) _slot: Option<BulkheadPermit>,
    pub(crate) _in_flight: Option<InFlight>,
}

impl ReplyStream {
    pub(crate) fn new(inner: Streaming<DynamicMessage>, guard: CallGuard) -> Self {
        Self {
            inner,
            _guard: guard,
        }
    }

    /// The next reply message (`None` once the stream ended with OK), by `deadline`: a
    /// failure is the backend's status, or `DeadlineExceeded` when the deadline (`timeout`
    /// after the call started) passes first; `limit` is the reply size limit its errors name.
    pub async fn next_by(
        &mut self,
        backend: &str,
        deadline: tokio::time::Instant,
        timeout: std::time::Duration,
        limit: usize,
    ) -> Result<Option<DynamicMessage>, super::UpstreamError> {
        match tokio::time::timeout_at(deadline, self.inner.message()).await {
            Ok(Ok(next)) => Ok(next),
            Ok(Err(status)) => Err(super::UpstreamError::from_call_status(
                backend, status, deadline, timeout, limit,
            )),
            Err(_) => Err(super::UpstreamError::DeadlineExceeded {
                backend: backend.to_string(),
                timeout,
            }),
        }
    }
}

impl std::ops::Deref for ReplyStream {
    type Target = Streaming<DynamicMessage>;
    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl std::ops::DerefMut for ReplyStream {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.inner
    }
}

impl futures::Stream for ReplyStream {
    type Item = Result<DynamicMessage, tonic::Status>;
    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_next(cx)
    }
}
