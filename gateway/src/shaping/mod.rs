//! Response shaping per client (the BFF's profile, config `shaping`), applied after execution
//! the same way on every door:
//!
//! - [`redact`]: field redaction, by type and field. GraphQL fields resolve to the redacted
//!   value (the schema applies [`Redactions`] in its resolvers), so GraphQL operations, and
//!   REST endpoints that run GraphQL operations, inherit it; the transcoded REST door redacts
//!   each reply message before writing it ([`Shaping::redact`]).
//! - [`lean`]: lean payloads (omit nulls and empty lists, flatten single-member wrappers) on
//!   GraphQL results ([`Shaping::shape_graphql`], done by the gateway's executor) and on any
//!   JSON built from them ([`Shaping::shape_json`]). Not on the transcoded REST door: the
//!   proto3 JSON mapping already leaves out unset and default fields, and its canonical shape
//!   is the backend's contract.
//! - [`etag`] and [`compress`]: HTTP layers over the whole router ([`layers`]): ETag/304 on
//!   GET, compression by `Accept-Encoding`. Every route merged into the router before
//!   [`layers`] is applied gets them, whatever produced the body.

pub mod compress;
pub mod etag;
pub mod lean;
pub mod redact;

use std::sync::Arc;

use axum::Router;
use axum::middleware;
use prost_reflect::DynamicMessage;
use tower_http::compression::CompressionLayer;

use crate::config::{Algorithm, ShapingConfig};
use compress::{CompressPolicy, Eligible};
pub use lean::{FlattenPathError, Lean};
pub use redact::{RedactError, Redactions};

/// The shaping of one snapshot: resolved redaction rules and compiled lean-payload settings.
#[derive(Clone, Debug, Default)]
pub struct Shaping {
    /// Redaction rules, by message full name (shared with the GraphQL schema).
    pub redactions: Arc<Redactions>,
    /// Lean-payload settings.
    pub lean: Lean,
}

impl Shaping {
    /// Builds the shaping of a snapshot from its config and its resolved redaction rules.
    pub fn build(
        cfg: &ShapingConfig,
        redactions: Arc<Redactions>,
    ) -> Result<Self, FlattenPathError> {
        Ok(Self {
            redactions,
            lean: Lean::new(cfg.omit_nulls, cfg.omit_empty_lists, &cfg.flatten)?,
        })
    }

    /// Applies lean payloads to a GraphQL result (its `data`), in place. Redaction already
    /// happened in the field resolvers.
    pub fn shape_graphql(&self, response: &mut async_graphql::Response) {
        self.lean.apply_graphql(response);
    }

    /// Applies lean payloads to a JSON value built from a GraphQL result, in place (flatten
    /// paths start at `value`).
    pub fn shape_json(&self, value: &mut serde_json::Value) {
        self.lean.apply_json(value);
    }

    /// Redacts a protobuf message in place, at every depth, before it is written.
    pub fn redact(&self, message: &mut DynamicMessage) {
        self.redactions.apply(message);
    }
}

/// Wraps `router` in the HTTP shaping layers `cfg` turns on: ETag/304 (inner) and compression
/// (outer, with its negotiation). The configuration is read once, here.
pub fn layers(router: Router, cfg: &ShapingConfig) -> Router {
    let policy = CompressPolicy::new(&cfg.compression).map(Arc::new);
    let mut app = router;
    if cfg.etag {
        app = app.layer(middleware::from_fn(etag::etag));
    }
    if let Some(p) = policy {
        app = app
            .layer(
                CompressionLayer::new()
                    .gzip(p.offers(Algorithm::Gzip))
                    .br(p.offers(Algorithm::Br))
                    .zstd(p.offers(Algorithm::Zstd))
                    .compress_when(Eligible(p.clone())),
            )
            .layer(middleware::from_fn_with_state(p, compress::negotiate));
    }
    app
}
