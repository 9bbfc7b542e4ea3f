//! Hot reload: a new snapshot is built on the side from the config file (descriptors reloaded,
//! backends re-contacted for reflection, operations re-validated) and swapped in only when it
//! is entirely valid. A bad reload keeps the running snapshot serving and says why. Requests
//! already running finish on the snapshot they started with; backends whose config did not
//! change are carried over with their breaker, health and connections.
//!
//! A [`Reloader`] runs reloads one at a time, whatever asks for them (SIGHUP, `POST
//! /admin/reload`, a watched file changing: `watch`, the reflection poll), logs each and keeps
//! their [`History`].
//!
//! Settings bound to the listening socket and the HTTP router (`listen`, `limits` of the
//! connection layer, `graphql.enabled`/`path`/`graphiql`, `shaping.etag`/`compression`,
//! `drain`) take effect at the next restart; a reload that changes them says so in the log.

mod history;
mod watch;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

pub use history::{History, Record, Trigger};

use crate::app::Gateway;
use crate::config::{self, Config, ConfigError};
use crate::request::policy::Chain;
use crate::server::ServerTls;
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
            match &mut b.split {
                // A split backend's variants all point at the demo service.
                Some(split) => {
                    for v in &mut split.variants {
                        v.endpoints = vec![endpoint.clone()];
                    }
                }
                None => b.endpoints = vec![endpoint.clone()],
            }
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
                        ready_backends: Vec::new(),
                        tls: None,
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

/// How a reload ended, when it did not fail.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A new snapshot was swapped in; these changed settings take effect at the next restart.
    Swapped(Vec<&'static str>),
    /// Nothing changed (a reflection poll found the same descriptors): nothing was swapped.
    Unchanged,
}

/// Rebuilds the snapshot from `source` and swaps it in; on any error the running snapshot is
/// left untouched. Returns the settings that changed but need a restart. (A [`Reloader`] does
/// the same, one at a time, and keeps a history.)
pub async fn reload(
    gateway: &Gateway,
    source: &ConfigSource,
) -> Result<Vec<&'static str>, LoadError> {
    let (result, _) = reload_recorded(gateway, source, &Trigger::Api, false).await;
    result.map(|o| match o {
        Outcome::Swapped(restart) => restart,
        Outcome::Unchanged => Vec::new(),
    })
}

/// One reload, counted in the metrics, with its record. With `only_if_changed`, a new
/// snapshot whose config and descriptors equal the running one's is not swapped in.
async fn reload_recorded(
    gateway: &Gateway,
    source: &ConfigSource,
    trigger: &Trigger,
    only_if_changed: bool,
) -> (Result<Outcome, LoadError>, Record) {
    let at = SystemTime::now();
    let started = Instant::now();
    let result = reload_once(gateway, source, only_if_changed).await;
    let mut record = Record::new(at, trigger, started.elapsed());
    match &result {
        Ok(Outcome::Swapped(restart)) => {
            record.needs_restart = restart.iter().map(|s| (*s).to_string()).collect();
        }
        Ok(Outcome::Unchanged) => record.result = "unchanged",
        Err(e) => {
            record.result = "error";
            record.error = Some(e.to_string());
        }
    }
    if !matches!(result, Ok(Outcome::Unchanged)) {
        gateway
            .current()
            .metrics()
            .reloads
            .get_or_create(&crate::telemetry::metrics::ReloadLabels {
                result: record.result,
            })
            .inc();
    }
    (result, record)
}

async fn reload_once(
    gateway: &Gateway,
    source: &ConfigSource,
    only_if_changed: bool,
) -> Result<Outcome, LoadError> {
    let old = gateway.snapshot();
    let new = source.build_after(Some(&old)).await?;
    if only_if_changed && new.same_inputs(&old) {
        return Ok(Outcome::Unchanged);
    }
    let (a, b) = (&old.config, &new.config);
    let mut restart = Vec::new();
    if a.listen != b.listen {
        restart.push("listen");
    }
    if a.admin.as_ref().map(|x| (x.listen, &x.tls)) != b.admin.as_ref().map(|x| (x.listen, &x.tls))
    {
        restart.push("admin.listen / admin.tls (the files' contents are reloaded live)");
    }
    if a.runtime != b.runtime {
        restart.push("runtime");
    }
    if a.log.format != b.log.format {
        restart.push("log.format");
    }
    if a.telemetry != b.telemetry {
        restart.push("telemetry");
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
    Ok(Outcome::Swapped(restart))
}

/// Runs the reloads of one gateway, one at a time, whatever triggers them; logs each outcome
/// and keeps their history (`GET /admin/reloads`).
#[derive(Debug)]
pub struct Reloader {
    gateway: Arc<Gateway>,
    source: ConfigSource,
    history: History,
    /// The error of the last reflection poll, while polls keep failing the same way (logged
    /// and recorded once, not every interval).
    poll_failing: std::sync::Mutex<Option<String>>,
    tls: Option<Arc<ServerTls>>,
    running: tokio::sync::Mutex<()>,
    /// Bumped after every reload that ran, so the file watcher and the reflection poll pick
    /// up new paths and settings.
    generation: tokio::sync::watch::Sender<u64>,
}

impl Reloader {
    /// The reloader of `gateway`, reading `source`; `tls` is the listener's TLS, whose files
    /// are read again on SIGHUP and `POST /admin/reload`.
    pub fn new(
        gateway: Arc<Gateway>,
        source: ConfigSource,
        tls: Option<Arc<ServerTls>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            gateway,
            source,
            history: History::default(),
            poll_failing: std::sync::Mutex::new(None),
            tls,
            running: tokio::sync::Mutex::new(()),
            generation: tokio::sync::watch::Sender::new(0),
        })
    }

    /// The last reloads (the first load included, when the caller recorded it).
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The gateway it reloads.
    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }

    /// Where the config comes from.
    pub fn source(&self) -> &ConfigSource {
        &self.source
    }

    /// Reloads now (after any reload already running), logs the outcome and returns its
    /// record. A reflection poll swaps only when the descriptors changed.
    pub async fn reload(&self, trigger: Trigger) -> Record {
        let _one_at_a_time = self.running.lock().await;
        if let Some(tls) = &self.tls
            && matches!(trigger, Trigger::Signal | Trigger::Admin)
        {
            tls.reload_and_log();
        }
        let poll = trigger == Trigger::ReflectionPoll;
        let (result, record) = reload_recorded(&self.gateway, &self.source, &trigger, poll).await;
        // A reflection backend that stays down fails every poll the same way: that is said
        // once (and again when it changes or heals), not every interval.
        let repeated = {
            let mut failing = self
                .poll_failing
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match (&result, poll) {
                (Err(e), true) => {
                    let message = e.to_string();
                    let same = failing.as_deref() == Some(message.as_str());
                    *failing = Some(message);
                    same
                }
                (Ok(_), true) => {
                    *failing = None;
                    false
                }
                (_, false) => false,
            }
        };
        if record.result != "unchanged" && !repeated {
            self.history.push(record.clone());
        }
        let config = self.source.path.display();
        match &result {
            Ok(Outcome::Unchanged) => {
                tracing::debug!(%trigger, "reload: nothing changed")
            }
            Ok(Outcome::Swapped(restart)) if restart.is_empty() => {
                tracing::info!(%config, %trigger, took_ms = record.took_ms, "configuration reloaded")
            }
            Ok(Outcome::Swapped(restart)) => tracing::warn!(
                %config,
                %trigger,
                needs_restart = ?restart,
                "configuration reloaded; some changed settings take effect at restart"
            ),
            Err(e) if repeated => tracing::debug!(
                %trigger,
                error = %e,
                "reflection poll still failing; the previous configuration keeps serving"
            ),
            Err(e) => tracing::error!(
                %trigger,
                error = %e,
                "reload failed; the previous configuration keeps serving"
            ),
        }
        self.generation.send_modify(|g| *g += 1);
        record
    }

    /// Starts what triggers reloads on its own: SIGHUP, the file watcher (`reload.watch`) and
    /// the reflection poll (`reload.reflection_interval`), as tasks that end with the runtime.
    pub fn start(self: &Arc<Self>) {
        tokio::spawn(on_sighup(self.clone()));
        tokio::spawn(watch::watch_files(self.clone()));
        tokio::spawn(watch::poll_reflection(self.clone()));
    }

    /// Waits until the next reload that runs after this call.
    async fn next_generation(&self, rx: &mut tokio::sync::watch::Receiver<u64>) {
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Reloads on every SIGHUP until the process ends.
async fn on_sighup(reloader: Arc<Reloader>) {
    #[cfg(unix)]
    {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("cannot listen for SIGHUP; reload by restarting");
            return;
        };
        while hup.recv().await.is_some() {
            reloader.reload(Trigger::Signal).await;
        }
    }
    #[cfg(not(unix))]
    {
        let _ = reloader;
    }
}
