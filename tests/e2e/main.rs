//! End-to-end tests: real demo backends and a real gateway over real sockets.

mod access;
mod auth;
mod bffs;
mod cache;
mod compiled;
mod corpus;
mod direct;
mod errors;
mod fields;
mod front_door;
mod graphql;
mod graphql_http;
mod headers;
mod limits;
mod openapi;
mod operations;
mod persisted;
mod ratelimit;
mod registry;
mod reload;
mod resilience;
mod routes;
mod shaping;
mod streaming;
mod telemetry;
mod tls;
