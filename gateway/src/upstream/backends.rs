//! Backends and their channels, and the one place a call is actually made.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use prost_reflect::DynamicMessage;
use tonic::client::Grpc;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};

use super::{Call, CallBody, DynamicCodec, Reply, StreamReply, UpstreamError};
use crate::config::BackendConfig;

/// One backend: a name and a channel balanced over its endpoints.
#[derive(Clone, Debug)]
pub struct Backend {
    name: Arc<str>,
    channel: Channel,
}

impl Backend {
    /// Builds a lazily-connecting channel over the backend's endpoints; must run inside a
    /// tokio runtime. Errors name the bad endpoint.
    pub fn new(name: &str, cfg: &BackendConfig) -> Result<Self, String> {
        let mut endpoints = Vec::with_capacity(cfg.endpoints.len());
        for ep in &cfg.endpoints {
            let e = Endpoint::from_shared(ep.clone())
                .map_err(|e| format!("backend {name:?}: invalid endpoint {ep:?}: {e}"))?
                .connect_timeout(cfg.connect_timeout.get())
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(30))
                .keep_alive_timeout(Duration::from_secs(10));
            endpoints.push(e);
        }
        let channel = match endpoints.as_slice() {
            [one] => one.connect_lazy(),
            _ => Channel::balance_list(endpoints.into_iter()),
        };
        Ok(Self {
            name: name.into(),
            channel,
        })
    }

    /// The backend's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The channel (for reflection and health checks).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }
}

/// Routes calls to backends by service, and makes them.
#[derive(Clone, Debug)]
pub struct Upstream {
    backends: HashMap<String, Backend>,
    by_service: HashMap<String, Backend>,
    max_response_bytes: usize,
}

impl Upstream {
    /// `backends` by name; `services` maps a fully-qualified service to a backend name.
    pub fn new(
        backends: HashMap<String, Backend>,
        services: &HashMap<String, String>,
        max_response_bytes: usize,
    ) -> Self {
        let by_service = services
            .iter()
            .filter_map(|(svc, b)| backends.get(b).map(|be| (svc.clone(), be.clone())))
            .collect();
        Self {
            backends,
            by_service,
            max_response_bytes,
        }
    }

    /// The backend serving a service, if any.
    pub fn backend_for(&self, service: &str) -> Option<&Backend> {
        self.by_service.get(service)
    }

    /// A backend by name.
    pub fn backend(&self, name: &str) -> Option<&Backend> {
        self.backends.get(name)
    }

    fn prepare(&self, call: &Call) -> Result<(Backend, PathAndQuery, Duration), UpstreamError> {
        let service = call.method.parent_service().full_name().to_string();
        let backend = self
            .by_service
            .get(&service)
            .cloned()
            .ok_or(UpstreamError::NoBackend { service })?;
        let path = PathAndQuery::try_from(call.path()).map_err(|_| UpstreamError::NoBackend {
            service: call.method.full_name().to_string(),
        })?;
        let remaining = call.remaining();
        if remaining.is_zero() {
            return Err(UpstreamError::DeadlineExceeded {
                backend: backend.name().to_string(),
                timeout: remaining,
            });
        }
        Ok((backend, path, remaining))
    }

    fn client(&self, backend: &Backend) -> Grpc<Channel> {
        Grpc::new(backend.channel()).max_decoding_message_size(self.max_response_bytes)
    }

    fn request<T>(
        msg: T,
        call_metadata: tonic::metadata::MetadataMap,
        timeout: Duration,
    ) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        *req.metadata_mut() = call_metadata;
        // Sends `grpc-timeout` so the backend knows the budget too.
        req.set_timeout(timeout);
        req
    }

    /// Makes a unary or client-streaming call. Past the deadline the call is dropped, which
    /// cancels the HTTP/2 stream, so the backend stops working on it.
    pub async fn unary(&self, call: Call) -> Result<Reply, UpstreamError> {
        let (backend, path, timeout) = self.prepare(&call)?;
        let codec = DynamicCodec::new(call.method.output());
        let mut grpc = self.client(&backend);
        let limit = self.max_response_bytes;
        let deadline = call.deadline;
        let fut = async move {
            grpc.ready()
                .await
                .map_err(|e| tonic::Status::from_error(Box::new(e)))?;
            match call.body {
                CallBody::Unary(msg) => {
                    grpc.unary(Self::request(msg, call.metadata, timeout), path, codec)
                        .await
                }
                CallBody::Stream(msgs) => {
                    let stream = tokio_stream::iter(msgs);
                    grpc.client_streaming(
                        Self::request(stream, call.metadata, timeout),
                        path,
                        codec,
                    )
                    .await
                }
            }
        };
        match tokio::time::timeout(timeout, fut).await {
            Err(_) => Err(UpstreamError::DeadlineExceeded {
                backend: backend.name().to_string(),
                timeout,
            }),
            Ok(Err(status)) => Err(UpstreamError::from_call_status(
                backend.name(),
                status,
                deadline,
                timeout,
                limit,
            )),
            Ok(Ok(resp)) => {
                let (metadata, message, _) = resp.into_parts();
                Ok(Reply { message, metadata })
            }
        }
    }

    /// Starts a server-streaming call and returns once the backend sent its headers. The
    /// deadline covers the whole stream (it is sent as `grpc-timeout`); the caller enforces it
    /// while reading with [`Call::remaining`]-based timeouts.
    pub async fn server_streaming(&self, call: Call) -> Result<StreamReply, UpstreamError> {
        let (backend, path, timeout) = self.prepare(&call)?;
        let codec = DynamicCodec::new(call.method.output());
        let mut grpc = self.client(&backend);
        let limit = self.max_response_bytes;
        let deadline = call.deadline;
        let msg: DynamicMessage = match call.body {
            CallBody::Unary(m) => m,
            CallBody::Stream(mut v) => v
                .pop()
                .unwrap_or_else(|| DynamicMessage::new(call.method.input())),
        };
        let fut = async move {
            grpc.ready()
                .await
                .map_err(|e| tonic::Status::from_error(Box::new(e)))?;
            grpc.server_streaming(Self::request(msg, call.metadata, timeout), path, codec)
                .await
        };
        match tokio::time::timeout(timeout, fut).await {
            Err(_) => Err(UpstreamError::DeadlineExceeded {
                backend: backend.name().to_string(),
                timeout,
            }),
            Ok(Err(status)) => Err(UpstreamError::from_call_status(
                backend.name(),
                status,
                deadline,
                timeout,
                limit,
            )),
            Ok(Ok(resp)) => {
                let (metadata, stream, _) = resp.into_parts();
                Ok(StreamReply { metadata, stream })
            }
        }
    }
}
