//! GraphQL over WebSocket on the endpoint's path: `graphql-transport-ws` and the legacy
//! `graphql-ws` (subscriptions-transport-ws) protocols, served by async-graphql-axum.
//!
//! [`Prepare`] runs for every operation of the connection (each `subscribe`/`start`
//! message), with the request parts of the upgrade request (its headers) and, in their
//! extensions, the connection's [`ConnectionInitPayload`]. A rejection is sent as that
//! operation's single result (errors with `extensions.code`), then it completes. Trusted
//! documents are named with `extensions.persistedQuery` here (the message has no
//! `documentId`).

use std::any::TypeId;
use std::sync::Arc;

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::{Data, Executor};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::{FromRequestParts, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, BoxStream, StreamExt};
use http::request::Parts;

use super::negotiate::MediaType;
use super::response::{VALIDATION_FAILED, label, rejection};
use super::signal::Witness;
use super::{ConnectionInitPayload, Prepare};
use crate::error::graphql::request_error;
use crate::error::{ErrorKind, GatewayError};
use crate::request::ShuttingDown;

/// The executor a WebSocket connection runs: `Prepare` with the upgrade request, then `E`.
struct Prepared<E, P> {
    inner: E,
    prepare: Arc<P>,
    parts: Arc<Parts>,
}

impl<E: Clone, P> Clone for Prepared<E, P> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            prepare: self.prepare.clone(),
            parts: self.parts.clone(),
        }
    }
}

impl<E: Executor, P: Prepare> Prepared<E, P> {
    /// Runs `Prepare` with the upgrade request's parts plus the `connection_init` payload.
    async fn prepare(
        &self,
        request: async_graphql::Request,
        session: Option<&Data>,
    ) -> Result<async_graphql::Request, GatewayError> {
        let payload = session
            .and_then(|data| data.get(&TypeId::of::<ConnectionInitPayload>()))
            .and_then(|any| any.as_ref().downcast_ref::<ConnectionInitPayload>());
        match payload {
            Some(payload) => {
                let mut parts = (*self.parts).clone();
                parts.extensions.insert(payload.clone());
                self.prepare.prepare(request, &parts).await
            }
            None => self.prepare.prepare(request, &self.parts).await,
        }
    }
}

/// One response holding a rejection.
fn rejected(rejection: &GatewayError) -> async_graphql::Response {
    async_graphql::Response::from_errors(vec![request_error(rejection, None)])
}

/// Labels the response's errors when it is a request error (only a first result can be).
fn labelled(mut response: async_graphql::Response, witness: &Witness) -> async_graphql::Response {
    if witness.is_request_error(&response) {
        label(&mut response.errors, VALIDATION_FAILED);
    }
    response
}

impl<E: Executor, P: Prepare> Executor for Prepared<E, P> {
    async fn execute(&self, request: async_graphql::Request) -> async_graphql::Response {
        match self.prepare(request, None).await {
            Ok(request) => {
                let (request, witness) = Witness::attach(request);
                labelled(self.inner.execute(request).await, &witness)
            }
            Err(rejection) => rejected(&rejection),
        }
    }

    fn execute_stream(
        &self,
        request: async_graphql::Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, async_graphql::Response> {
        let this = self.clone();
        let session = session_data.clone();
        stream::once(async move {
            let prepared = this.prepare(request, session.as_deref()).await;
            (this, prepared)
        })
        .flat_map(move |(this, prepared)| match prepared {
            Ok(request) => {
                let (request, witness) = Witness::attach(request);
                let mut first = Some(witness);
                this.inner
                    .execute_stream(request, session_data.clone())
                    .map(move |response| match first.take() {
                        Some(witness) => labelled(response, &witness),
                        None => response,
                    })
                    .boxed()
            }
            Err(rejection) => stream::once(async move { rejected(&rejection) }).boxed(),
        })
        .boxed()
    }
}

/// True when the request asks for a WebSocket (HTTP/1.1 `Upgrade` or HTTP/2 extended CONNECT).
pub(crate) fn is_upgrade(parts: &Parts) -> bool {
    parts.method == http::Method::CONNECT
        || parts
            .headers
            .get(http::header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Answers a WebSocket upgrade and serves the connection with `executor`.
pub(crate) async fn upgrade<E: Executor, P: Prepare>(
    executor: E,
    prepare: Arc<P>,
    mut parts: Parts,
) -> Response {
    let Ok(protocol) = GraphQLProtocol::from_request_parts(&mut parts, &()).await else {
        return rejection(
            &GatewayError::bad_request(
                None,
                "WebSocket subprotocol missing or unsupported: use graphql-transport-ws or graphql-ws",
            ),
            MediaType::Json,
        );
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(e) => {
            let text = e.body_text();
            let err = if e.status() == http::StatusCode::METHOD_NOT_ALLOWED {
                GatewayError::rejected(ErrorKind::MethodNotAllowed, text)
            } else {
                GatewayError::bad_request(None, text)
            };
            return rejection(&err, MediaType::Json);
        }
    };
    let stopping = parts.extensions.get::<ShuttingDown>().cloned();
    let executor = Prepared {
        inner: executor,
        prepare,
        parts: Arc::new(parts),
    };
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| async move {
            let serve = GraphQLWebSocket::new(socket, executor, protocol)
                .on_connection_init(|payload| async move {
                    let mut data = Data::default();
                    data.insert(ConnectionInitPayload(payload));
                    Ok(data)
                })
                .serve();
            // The gateway shutting down closes the socket (clients reconnect).
            match stopping {
                Some(stopping) => {
                    tokio::select! {
                        () = serve => {}
                        () = stopping.wait() => {}
                    }
                }
                None => serve.await,
            }
        })
        .into_response()
}
