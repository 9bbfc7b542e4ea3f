//! Portico's core library: protobuf descriptors in, REST/JSON and GraphQL out, gRPC calls to
//! the backends.
//!
//! The life of a request, one way: the [`server`] accepts it; the [`ingress`] reads it once
//! (request id, the [`snapshot::Snapshot`] pinned for the whole request, header and body
//! limits, the normalised path routed to a door, the deadline budget) into a
//! [`request::RequestCtx`]; a door plans the calls: [`rest`] (a route, [`transcode`]d into a
//! message), [`graphql`] (the engine's resolvers, or an operation published as an endpoint) or
//! [`grpcweb`] (a browser's gRPC call, its message passed through) or [`websocket`] (a
//! streaming call, JSON messages both ways over one WebSocket);
//! every call is built by [`request::RequestCtx::call_to`] and leaves through the snapshot's
//! policy chain ([`request::policy`]) into the [`upstream`] stack ([`resilience`], the dynamic
//! codec); the reply goes back through the door, [`shaping`] applies per client; any error is
//! one [`error::GatewayError`], written by the door's renderer. [`app`] assembles the stack,
//! [`cli`] runs it, [`reload`] swaps snapshots. [`versions`] says which API version a
//! method is, and what its answers carry when it is deprecated or retired. [`split`] says
//! which variant of a split backend (a canary release) serves each call.

pub mod admin;
pub mod app;
pub mod auth;
pub mod cache;
pub(crate) mod calendar;
pub mod cli;
pub mod config;
pub mod cores;
pub mod cors;
pub mod descriptors;
pub mod error;
pub mod fanout;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzz;
pub mod graphql;
pub mod grpcweb;
pub mod ingress;
pub mod openapi;
pub mod portal;
pub mod ratelimit;
pub mod reload;
pub mod request;
pub mod resilience;
pub mod rest;
pub mod server;
pub mod shaping;
pub mod snapshot;
pub mod split;
pub mod telemetry;
pub mod transcode;
pub mod upstream;
pub mod versions;
pub mod websocket;
