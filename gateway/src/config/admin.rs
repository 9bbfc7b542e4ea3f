//! The `admin` section: the operators' listener (metrics, health, read-only views), apart from
//! client traffic.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// The admin listener.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Where it listens (keep it on a private address: `127.0.0.1:9901`).
    pub listen: SocketAddr,
    /// The SHA-256 (hex) of a token every request but `/healthz` and `/readyz` must send as
    /// `Authorization: Bearer <token>` (`printf %s "$TOKEN" | sha256sum`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<String>,
    /// Backends that must have at least one healthy, non-ejected endpoint for `/readyz` to
    /// answer ready (default: none; a backend outage then degrades answers without taking
    /// the gateway out of its load balancer).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ready_backends: Vec<String>,
    /// TLS on the admin listener, and client certificates (`client_ca`: only clients with a
    /// certificate it signed get in). Same keys as the top-level `tls`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<super::TlsConfig>,
}

impl AdminConfig {
    /// Checks what serde cannot; the error names the key under `admin`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if let Some(h) = &self.token_sha256
            && (h.len() != 64 || !h.chars().all(|c| c.is_ascii_hexdigit()))
        {
            return Err((
                "token_sha256".into(),
                "must be 64 hex digits (printf %s \"$TOKEN\" | sha256sum), never the token itself"
                    .into(),
            ));
        }
        if let Some(tls) = &self.tls {
            tls.validate().map_err(|(k, m)| (format!("tls.{k}"), m))?;
        }
        Ok(())
    }
}
