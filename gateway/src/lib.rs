//! Portico's core library: protobuf descriptors in, REST/JSON out, gRPC calls to the backends.
//!
//! The life of a request: HTTP comes in through [`server`] and the [`edge`] layers, the
//! [`rest`] door matches a route and [`transcode`]s JSON into a protobuf message, the result
//! is an [`upstream::Call`] that the [`upstream`] stack makes against a backend found through
//! the [`descriptors`] registry; the reply is transcoded back, and any error goes out through
//! the single responder in [`error`]. Everything a request needs is in one immutable
//! [`snapshot::Snapshot`], held by the [`app::Gateway`].

pub mod app;
pub mod cli;
pub mod config;
pub mod descriptors;
pub mod endpoints;
pub mod error;
pub mod fanout;
pub mod graphql;
pub mod ingress;
pub mod reload;
pub mod request;
pub mod resilience;
pub mod rest;
pub mod server;
pub mod shaping;
pub mod snapshot;
pub mod transcode;
pub mod upstream;
