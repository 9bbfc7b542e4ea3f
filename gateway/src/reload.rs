//! Hot reload: a new snapshot is built on the side from the config file (descriptors reloaded,
//! backends re-contacted for reflection, operations re-validated) and swapped in only when it
//! is entirely valid. A bad reload keeps the running snapshot serving and says why. Requests
//! already running finish on the snapshot they started with.
//!
//! Settings bound to the listening socket and the HTTP router (`listen`, `limits` of the
//! connection layer, `graphql.enabled`/`path`/`graphiql`, `shaping.etag`/`compression`,
//! `drain`) take effect at the next restart; a reload that changes them says so in the log.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::app::Gateway;
use crate::config::{self, Config, ConfigError};
use crate::request::policy::Chain;
use crate::snapshot::{LoadError, Snapshot};

/// Where a BFF's configuration comes from, and what the command line overrides in it.
#[derive(Clone, Debug, Default)]
pub struct ConfigSource {
    /// The config file.
    pub path: PathBuf,
    /// Endpoints replacing those of the named backends (the `--demo` backends).
    pub endpoint_overrides: BTreeMap<String, String>,
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--admin-listen`.
    pub admin_listen: Option<SocketAddr>,
    /// Policies installed in code (by a program embedding the gateway), added to the chain of
    /// every snapshot built from this source, so that they survive reloads.
    pub policies: Chain,
}

impl ConfigSource {
    /// Reads, validates and overrides the config.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let mut cfg = config::load(&self.path)?;
        for (name, endpoint) in &self.endpoint_overrides {
            let Some(b) = cfg.backends.get_mut(name) else {
                return Err(ConfigError::Invalid {
                    file: cfg.source_name.clone(),
                    key: "backends".into(),
                    message: format!(
                        "--demo needs a backend named {name:?} (the demo provides users, orders and catalog)"
                    ),
                });
            };
            b.endpoints = vec![endpoint.clone()];
        }
        if let Some(listen) = self.listen {
            cfg.listen = listen;
        }
        if let Some(listen) = self.admin_listen {
            match &mut cfg.admin {
                Some(admin) => admin.listen = listen,
                None => {
                    cfg.admin = Some(config::AdminConfig {
                        listen,
                        token_sha256: None,
                    });
                }
            }
        }
        Ok(cfg)
    }

    /// Loads the config and builds a complete snapshot from it, with this source's policies.
    pub async fn build(&self) -> Result<Snapshot, LoadError> {
        self.build_after(None).await
    }

    /// [`ConfigSource::build`] for a reload of `previous` (see [`Snapshot::build_after`]).
    pub async fn build_after(&self, previous: Option<&Snapshot>) -> Result<Snapshot, LoadError> {
        let mut snapshot = Snapshot::build_after(self.load()?, previous).await?;
        for (stage, policy) in self.policies.entries() {
            snapshot = snapshot.with_policy(stage, policy.clone());
        }
        Ok(snapshot)
    }
}

/// Rebuilds the snapshot from `source` and swaps it in; on any error the running snapshot is
/// left untouched. Returns the settings that changed but need a restart.
pub async fn reload(
    gateway: &Gateway,
    source: &ConfigSource,
) -> Result<Vec<&'static str>, LoadError> {
    let result = reload_once(gateway, source).await;
    gateway
        .current()
        .metrics()
        .reloads
        .get_or_create(&crate::telemetry::metrics::ReloadLabels {
            result: if result.is_ok() { "ok" } else { "error" },
        })
        .inc();
    result
}

async fn reload_once(
    gateway: &Gateway,
    source: &ConfigSource,
) -> Result<Vec<&'static str>, LoadError> {
    let old = gateway.snapshot();
    let new = source.build_after(Some(&old)).await?;
    let (a, b) = (&old.config, &new.config);
    let mut restart = Vec::new();
    if a.listen != b.listen {
        restart.push("listen");
    }
    if a.tls != b.tls {
        restart.push("tls (the files' contents are reloaded live; their paths and the client-auth mode at restart)");
    }
    if a.graphql.enabled != b.graphql.enabled
        || a.graphql.path != b.graphql.path
        || a.graphql.graphiql != b.graphql.graphiql
    {
        restart.push("graphql endpoint (enabled, path, graphiql)");
    }
    if serde_json::to_value(&a.limits).ok() != serde_json::to_value(&b.limits).ok() {
        restart.push("limits (connection-level ones)");
    }
    if a.shaping.etag != b.shaping.etag
        || serde_json::to_value(&a.shaping.compression).ok()
            != serde_json::to_value(&b.shaping.compression).ok()
    {
        restart.push("shaping.etag / shaping.compression");
    }
    gateway.swap(new);
    Ok(restart)
}

/// Reloads on every SIGHUP until the process ends, logging the outcome of each; the
/// listener's TLS files (`tls`) are read again too, when they changed.
pub async fn on_sighup(
    gateway: std::sync::Arc<Gateway>,
    source: ConfigSource,
    tls: Option<std::sync::Arc<crate::server::ServerTls>>,
) {
    #[cfg(unix)]
    {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("cannot listen for SIGHUP; reload by restarting");
            return;
        };
        while hup.recv().await.is_some() {
            if let Some(tls) = &tls {
                tls.reload_and_log();
            }
            match reload(&gateway, &source).await {
                Ok(restart) if restart.is_empty() => {
                    tracing::info!(config = %source.path.display(), "configuration reloaded")
                }
                Ok(restart) => tracing::warn!(
                    config = %source.path.display(),
                    needs_restart = ?restart,
                    "configuration reloaded; some changed settings take effect at restart"
                ),
                Err(e) => tracing::error!(
                    error = %e,
                    "reload failed; the previous configuration keeps serving"
                ),
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (gateway, source, tls);
    }
}
