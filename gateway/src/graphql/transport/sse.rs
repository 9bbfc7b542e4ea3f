//! GraphQL over Server-Sent Events, "distinct connections mode" of the graphql-sse protocol.
//!
//! Each result is an `event: next` whose `data` is the response JSON (compact, one line), and
//! the stream ends with `event: complete` and an empty `data`. Errors found before the stream
//! starts are ordinary HTTP responses (JSON, 400 for request errors): a query or mutation is
//! run to its result first; a subscription's stream is polled once without waiting, which is
//! where async-graphql prepares (parses, validates) it. A request error found later (an
//! executor doing I/O before validating) goes out as a `next` event with the errors and no
//! `data`, followed by `complete`. Only the first result can be a request error.

use std::convert::Infallible;

use async_graphql::Executor;
use async_graphql::parser::types::OperationType;
use axum::body::Body;
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use futures::FutureExt;
use futures::stream::{self, BoxStream, StreamExt};
use http::HeaderValue;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};

use super::negotiate::MediaType;
use super::response::{VALIDATION_FAILED, executed, label, to_bytes};
use super::signal::Witness;

/// The closing event of every stream.
pub(crate) const COMPLETE: &[u8] = b"event: complete\ndata:\n\n";

/// One `next` event holding a response (without `data` and labelled if a request error).
pub(crate) fn next_event(mut response: async_graphql::Response, request_error: bool) -> Bytes {
    if request_error {
        label(&mut response.errors, VALIDATION_FAILED);
    }
    let json = to_bytes(&response, request_error);
    let mut out = BytesMut::with_capacity(json.len() + 20);
    out.put_slice(b"event: next\ndata: ");
    out.put_slice(&json);
    out.put_slice(b"\n\n");
    out.freeze()
}

/// Runs the operation with `execute_stream` and answers with an event stream (or an HTTP
/// error when the executor rejects the request before anything streams).
pub(crate) async fn respond<E: Executor>(
    executor: &E,
    request: async_graphql::Request,
    operation: OperationType,
) -> Response {
    let (request, witness) = Witness::attach(request);
    let mut results = executor.execute_stream(request, None);
    let first = if operation == OperationType::Subscription {
        // Poll once without waiting: preparation (validation) happens on the first poll.
        results.next().now_or_never()
    } else {
        Some(results.next().await)
    };
    let head: BoxStream<'static, Bytes> = match first {
        Some(Some(response)) if witness.is_request_error(&response) => {
            return executed(response, true, MediaType::EventStream, None);
        }
        Some(Some(response)) => stream::once(async move { next_event(response, false) }).boxed(),
        Some(None) => stream::empty().boxed(),
        None => {
            // Not ready yet: the first result is classified when it comes.
            let mut results = results;
            let first = async move {
                let first = results.next().await;
                let head = first.map(|response| {
                    let request_error = witness.is_request_error(&response);
                    next_event(response, request_error)
                });
                (head, results)
            };
            let events = first
                .into_stream()
                .flat_map(|(head, rest)| {
                    stream::iter(head).chain(rest.map(|response| next_event(response, false)))
                })
                .chain(stream::once(async { Bytes::from_static(COMPLETE) }));
            return event_stream(events.boxed());
        }
    };
    let events = head
        .chain(results.map(|response| next_event(response, false)))
        .chain(stream::once(async { Bytes::from_static(COMPLETE) }));
    event_stream(events.boxed())
}

/// The streaming response with SSE headers.
fn event_stream(events: BoxStream<'static, Bytes>) -> Response {
    let mut http = Response::new(Body::from_stream(events.map(Ok::<_, Infallible>)));
    let headers = http.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(MediaType::EventStream.content_type()),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    http
}
