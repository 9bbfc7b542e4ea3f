//! The `tls` section: the listener's certificate, and client certificates (mTLS).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::units::HumanDuration;

/// TLS on the listener (rustls: TLS 1.2 and 1.3, HTTP/2 and HTTP/1.1 by ALPN). Without this
/// section the listener speaks plain HTTP/1.1 and h2c.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, PEM (leaf first).
    pub cert: PathBuf,
    /// The private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates (PEM) that sign the client certificates accepted (mTLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
    /// Whether clients present a certificate: `none`, `optional` (verified when given), or
    /// `required` (a handshake without one is refused). Default: `required` when `client_ca` is
    /// set, `none` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_auth: Option<ClientAuth>,
    /// How often the certificate, key and CA files are checked for changes; new handshakes use
    /// the new files, open connections keep theirs. `0s`: only on SIGHUP.
    #[serde(default = "d_reload")]
    pub reload_interval: HumanDuration,
}

fn d_reload() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

/// Whether the listener asks clients for a certificate.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// No client certificates.
    None,
    /// A client may present one; it is verified when it does.
    Optional,
    /// A client must present one signed by `client_ca`.
    Required,
}

impl TlsConfig {
    /// The client-certificate policy in force.
    pub fn client_auth(&self) -> ClientAuth {
        match (self.client_auth, &self.client_ca) {
            (Some(a), _) => a,
            (None, Some(_)) => ClientAuth::Required,
            (None, None) => ClientAuth::None,
        }
    }

    /// Checks the section; the error is (key, message).
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.client_ca.is_none()
            && matches!(
                self.client_auth,
                Some(ClientAuth::Optional | ClientAuth::Required)
            )
        {
            return Err((
                "client_auth".into(),
                "client certificates need tls.client_ca (the CA that signs them)".into(),
            ));
        }
        Ok(())
    }
}
