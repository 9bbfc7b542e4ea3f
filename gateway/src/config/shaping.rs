//! Configuration of response shaping per client: redaction, lean payloads, ETags, compression.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ByteSize;

/// The `shaping` section: how this BFF shapes responses for its client.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ShapingConfig {
    /// Field redaction, keyed by `Type.field` (a GraphQL type name as in `schemas/*.graphql`,
    /// or a protobuf full name such as `demo.v1.Card`, then the field's JSON or proto name).
    #[serde(default)]
    pub redact: BTreeMap<String, RedactAction>,
    /// Lean payloads: remove object members that are `null` (GraphQL results only).
    #[serde(default)]
    pub omit_nulls: bool,
    /// Lean payloads: remove object members that are empty lists (GraphQL results only).
    #[serde(default)]
    pub omit_empty_lists: bool,
    /// Response paths (dots; list indices are transparent; `*` matches any key) where an
    /// object with exactly one member is replaced by that member's value.
    #[serde(default)]
    pub flatten: Vec<String>,
    /// A (weak) `ETag` on every 200 response to `GET`/`HEAD` with a buffered body, and 304 on
    /// a matching `If-None-Match`.
    #[serde(default)]
    pub etag: bool,
    /// Response compression by `Accept-Encoding`.
    #[serde(default)]
    pub compression: CompressionConfig,
}

/// What a redaction rule does to a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RedactAction {
    /// The field is removed: `null` in GraphQL (its type becomes nullable), absent in REST.
    Drop,
    /// A string is replaced by `***` (an empty string stays empty). Strings only.
    Mask,
    /// Every character but the last four is replaced by `*` (all of them when there are four
    /// or fewer). Strings only.
    Last4,
    /// A string is replaced by the first 16 hex digits of its SHA-256: equal values stay equal,
    /// so clients can still group by it. A pseudonym, not encryption. Strings only.
    Hash,
}

impl RedactAction {
    /// The action's name as written in the config.
    pub fn name(self) -> &'static str {
        match self {
            RedactAction::Drop => "drop",
            RedactAction::Mask => "mask",
            RedactAction::Last4 => "last4",
            RedactAction::Hash => "hash",
        }
    }
}

/// A content coding the gateway can compress responses with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// Zstandard (`zstd`).
    Zstd,
    /// Brotli (`br`).
    Br,
    /// gzip (`gzip`, also accepted as `x-gzip` from clients).
    Gzip,
}

impl Algorithm {
    /// The content-coding token (`Content-Encoding` value).
    pub fn token(self) -> &'static str {
        match self {
            Algorithm::Zstd => "zstd",
            Algorithm::Br => "br",
            Algorithm::Gzip => "gzip",
        }
    }
}

/// The `shaping.compression` section.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CompressionConfig {
    /// Compress responses at all.
    #[serde(default)]
    pub enabled: bool,
    /// Responses smaller than this are sent as they are (streams always qualify).
    #[serde(default = "d_min_size")]
    pub min_size: ByteSize,
    /// The codings offered, in order of preference when the client weighs them equally.
    #[serde(default = "d_algorithms")]
    pub algorithms: Vec<Algorithm>,
}

fn d_min_size() -> ByteSize {
    ByteSize(1024)
}

fn d_algorithms() -> Vec<Algorithm> {
    vec![Algorithm::Zstd, Algorithm::Br, Algorithm::Gzip]
}

impl Default for CompressionConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            min_size: d_min_size(),
            algorithms: d_algorithms(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_shape() {
        let cfg: ShapingConfig = yaml_serde::from_str(
            r#"
redact:
  Card.cardNumber: last4
  Order.internalNotes: drop
  User.email: hash
omit_nulls: true
flatten: ["user.orders.items.product"]
etag: true
compression: { enabled: true, min_size: 512, algorithms: [gzip, br] }
"#,
        )
        .unwrap();
        assert_eq!(cfg.redact["Card.cardNumber"], RedactAction::Last4);
        assert_eq!(cfg.redact["User.email"], RedactAction::Hash);
        assert!(cfg.omit_nulls && !cfg.omit_empty_lists && cfg.etag);
        assert_eq!(cfg.compression.min_size.bytes(), 512);
        assert_eq!(
            cfg.compression.algorithms,
            vec![Algorithm::Gzip, Algorithm::Br]
        );
        let d = ShapingConfig::default();
        assert!(!d.etag && !d.compression.enabled);
        assert_eq!(d.compression.min_size.bytes(), 1024);
        assert!(yaml_serde::from_str::<ShapingConfig>("redact: { A.b: blur }").is_err());
        assert!(yaml_serde::from_str::<ShapingConfig>("compression: { level: 3 }").is_err());
    }
}
