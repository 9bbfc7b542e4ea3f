//! The ingress's body stage as tower layers, around the request decompression layer: the
//! `Content-Encoding` check outside it, the body reader inside it. Both cost nothing for a
//! request without a body.

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use futures::future::{BoxFuture, Either, Ready, ready};
use http::{Method, header};
use http_body::Body as _;
use tower::{Layer, Service};

use super::body::{self, BodyLimits};
use super::{Admitted, refuse, respond};
use crate::error::GatewayError;

/// Request encodings the gateway can decompress.
const ACCEPTED_ENCODINGS: &[&str] = &["gzip", "x-gzip", "br", "identity"];

/// Refuses a `Content-Encoding` the gateway cannot decompress with a 415 (outside the
/// decompression layer, which would otherwise pass the body on undecoded).
#[derive(Clone, Copy, Debug, Default)]
pub struct CheckEncodingLayer;

impl<S> Layer<S> for CheckEncodingLayer {
    type Service = CheckEncoding<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CheckEncoding { inner }
    }
}

/// The service of [`CheckEncodingLayer`].
#[derive(Clone, Debug)]
pub struct CheckEncoding<S> {
    inner: S,
}

impl<S> Service<Request> for CheckEncoding<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<S::Future, Ready<Result<Response, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if let Some(enc) = req.headers().get(header::CONTENT_ENCODING) {
            let text = enc.to_str().unwrap_or("").trim().to_ascii_lowercase();
            if !ACCEPTED_ENCODINGS.contains(&text.as_str()) {
                let err = GatewayError::UnsupportedMediaType {
                    got: format!("content-encoding: {text}"),
                    expected: "a body encoded with gzip, br or identity",
                };
                return Either::Right(ready(Ok(refuse(&req, &err))));
            }
        }
        Either::Left(self.inner.call(req))
    }
}

/// Reads the body once, under the snapshot's limits, and hands it on in memory. A request
/// without a body passes untouched; so does a WebSocket upgrade (its "body" is the
/// connection), and so does the body of a client-streaming REST route, which its door reads
/// line by line under the same limits ([`body::BodyReader`]) while the call runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadBodyLayer;

impl<S> Layer<S> for ReadBodyLayer {
    type Service = ReadBody<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ReadBody { inner }
    }
}

/// The service of [`ReadBodyLayer`].
#[derive(Clone, Debug)]
pub struct ReadBody<S> {
    inner: S,
}

impl<S> Service<Request> for ReadBody<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<S::Future, BoxFuture<'static, Result<Response, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // An `Upgrade` header alone does not pass: a WebSocket handshake is a GET without a
        // body (passed by the first test), and a POST saying `Upgrade: x` is still read under
        // the body limits before it reaches a door that would collect it.
        if req.body().is_end_stream() || req.method() == Method::CONNECT {
            return Either::Left(self.inner.call(req));
        }
        // The inner service was made ready for this call: take it, leave a clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Either::Right(Box::pin(async move {
            let Some(admitted) = req.extensions().get::<Admitted>().cloned() else {
                let err =
                    GatewayError::Internal("a request reached the body reader unadmitted".into());
                return Ok(err.respond(None));
            };
            if streamed_by_door(&admitted, req.method()) {
                return inner.call(req).await;
            }
            let limits = BodyLimits::of(&admitted.snapshot.config.limits);
            let (parts, body) = req.into_parts();
            match body::read(body, &parts.headers, limits).await {
                Ok(bytes) => {
                    inner
                        .call(Request::from_parts(parts, Body::from(bytes)))
                        .await
                }
                Err(err) => Ok(respond(
                    admitted.ctx.door,
                    &err,
                    &parts.headers,
                    Some(admitted.snapshot.registry.pool()),
                )),
            }
        }))
    }
}

/// Whether the REST door reads this request's body itself: it is for a client-streaming
/// route.
fn streamed_by_door(admitted: &Admitted, method: &Method) -> bool {
    admitted.ctx.door == crate::request::Door::Rest
        && matches!(
            admitted.snapshot.routes.lookup(method, &admitted.ctx.path),
            crate::rest::router::Lookup::Matched { value, .. }
                if value.streaming == crate::rest::routes::Streaming::Client
        )
}
