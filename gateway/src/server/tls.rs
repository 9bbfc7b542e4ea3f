//! TLS on the listener (rustls with the aws-lc-rs provider): TLS 1.2 and 1.3, HTTP/2 and
//! HTTP/1.1 chosen by ALPN, client certificates verified against a CA (mTLS, required or
//! optional).
//!
//! The certificate, key and CA are read from PEM files and read again when they change on disk
//! (checked every `tls.reload_interval`) or on [`ServerTls::reload`] (SIGHUP): new handshakes use
//! the new files, open connections keep theirs. Files that do not load (half-written, a key that
//! does not match its certificate) leave the running certificate in place and are logged.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::config::{ClientAuth, TlsConfig};
use crate::request::PeerCertificates;

/// Why TLS could not be set up; names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or holds no usable PEM item.
    #[error("{}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// rustls refused the configuration (a key not matching its certificate, a bad CA...).
    #[error("tls: {0}")]
    Config(String),
}

fn file_err(path: &Path, message: impl Into<String>) -> TlsError {
    TlsError::File {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// The resolved paths of the `tls` section.
#[derive(Clone, Debug)]
struct Files {
    cert: PathBuf,
    key: PathBuf,
    client_ca: Option<PathBuf>,
    client_auth: ClientAuth,
}

/// What a set of files was last seen as (modification time and length of each).
type Stamp = Vec<Option<(SystemTime, u64)>>;

/// The listener's TLS: the acceptor of the current files, swapped whole when they change.
pub struct ServerTls {
    files: Files,
    provider: Arc<CryptoProvider>,
    current: RwLock<TlsAcceptor>,
    stamp: Mutex<Stamp>,
    reload_interval: Duration,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

/// Serves one certified key (the resolver API lets the key be chosen per handshake; ours is
/// fixed per acceptor, and acceptors are swapped whole).
#[derive(Debug)]
struct OneCert(Arc<CertifiedKey>);

impl ResolvesServerCert for OneCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

impl ServerTls {
    /// Loads the `tls` section (paths relative to `base`).
    pub fn load(cfg: &TlsConfig, base: &Path) -> Result<Arc<Self>, TlsError> {
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_owned()
            } else {
                base.join(p)
            }
        };
        let files = Files {
            cert: resolve(&cfg.cert),
            key: resolve(&cfg.key),
            client_ca: cfg.client_ca.as_deref().map(resolve),
            client_auth: cfg.client_auth(),
        };
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let stamp = stamp_of(&files);
        let acceptor = build(&files, &provider)?;
        Ok(Arc::new(Self {
            files,
            provider,
            current: RwLock::new(acceptor),
            stamp: Mutex::new(stamp),
            reload_interval: cfg.reload_interval.get(),
        }))
    }

    /// Reads the files again when they changed since they were last read; returns whether
    /// the certificate in use changed. On an error the running one stays.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let stamp = stamp_of(&self.files);
        {
            let seen = self.stamp.lock().unwrap_or_else(PoisonError::into_inner);
            if *seen == stamp {
                return Ok(false);
            }
        }
        let acceptor = build(&self.files, &self.provider)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = acceptor;
        *self.stamp.lock().unwrap_or_else(PoisonError::into_inner) = stamp;
        Ok(true)
    }

    /// Checks the files every `tls.reload_interval` (not at all when it is zero) until the
    /// process ends.
    pub fn watch(self: &Arc<Self>) {
        if self.reload_interval.is_zero() {
            return;
        }
        let this = Arc::downgrade(self);
        let every = self.reload_interval;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(tls) = this.upgrade() else { return };
                tls.reload_and_log();
            }
        });
    }

    /// [`ServerTls::reload`], with the outcome logged.
    pub fn reload_and_log(&self) {
        match self.reload() {
            Ok(true) => {
                tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded")
            }
            Ok(false) => {}
            Err(e) => {
                tracing::error!(error = %e, "TLS files changed but do not load; the running certificate stays")
            }
        }
    }

    /// Runs the handshake on an accepted connection (bounded by `timeout`); returns the TLS
    /// stream and the verified client certificates, if any.
    pub async fn accept(
        &self,
        tcp: TcpStream,
        timeout: Duration,
    ) -> io::Result<(TlsStream<TcpStream>, Option<PeerCertificates>)> {
        let acceptor = self
            .current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let stream = tokio::time::timeout(timeout, acceptor.accept(tcp))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        let peer = stream
            .get_ref()
            .1
            .peer_certificates()
            .filter(|c| !c.is_empty())
            .map(|c| {
                PeerCertificates(Arc::new(c.iter().map(|c| c.clone().into_owned()).collect()))
            });
        Ok((stream, peer))
    }
}

fn stamp_of(files: &Files) -> Stamp {
    [
        Some(&files.cert),
        Some(&files.key),
        files.client_ca.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|p| {
        std::fs::metadata(p)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())))
    })
    .collect()
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_err(path, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(path, e.to_string()))?;
    if certs.is_empty() {
        return Err(file_err(path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

/// An acceptor for the files as they are now.
fn build(files: &Files, provider: &Arc<CryptoProvider>) -> Result<TlsAcceptor, TlsError> {
    let chain = certs(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| file_err(&files.key, format!("no usable private key: {e}")))?;
    let certified = CertifiedKey::from_der(chain, key, provider)
        .map_err(|e| TlsError::Config(format!("certificate and key do not go together: {e}")))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let verifier: Option<Arc<dyn ClientCertVerifier>> = match (&files.client_ca, files.client_auth)
    {
        (_, ClientAuth::None) | (None, _) => None,
        (Some(ca), auth) => {
            let mut roots = RootCertStore::empty();
            for c in certs(ca)? {
                roots
                    .add(c)
                    .map_err(|e| file_err(ca, format!("not a usable CA certificate: {e}")))?;
            }
            let b = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let b = if auth == ClientAuth::Optional {
                b.allow_unauthenticated()
            } else {
                b
            };
            Some(b.build().map_err(|e| TlsError::Config(e.to_string()))?)
        }
    };
    let mut config = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    }
    .with_cert_resolver(Arc::new(OneCert(Arc::new(certified))));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
