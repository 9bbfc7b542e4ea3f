//! The command line every BFF binary shares: flags, `--check`, the subcommands, the startup
//! banner, and running the server until SIGINT/SIGTERM. The `--demo` wiring lives in `demo`
//! (`cli/demo.rs`, feature `demo`); without the feature, `--demo` is an error.

pub mod certs;
#[cfg(feature = "demo")]
pub mod demo;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use tokio::net::TcpListener;

use crate::app::{Gateway, router};
use crate::config::{ConfigError, RuntimeMode};
use crate::reload::{ConfigSource, Record, Reloader, Trigger};
use crate::server::{Cores, ServerTls};
use crate::snapshot::{LoadError, Snapshot};
#[cfg(feature = "demo")]
use demo::start as start_demo;

/// Flags of a BFF binary.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "A Portico Backend-for-Frontend: REST/JSON in, gRPC out."
)]
pub struct Args {
    /// The config file (default: the BFF's example config, `config.yaml` in its folder).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Listen address, overriding the config's `listen` (e.g. 127.0.0.1:8080; port 0 = any).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// The admin listener's address, overriding the config's `admin.listen` (and turning the
    /// admin listener on when the config has none).
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<SocketAddr>,
    /// Validate the config and the descriptors, print what would be served, and exit
    /// (non-zero on any problem).
    #[arg(long)]
    pub check: bool,
    /// Start the bundled demo backends (users, orders, catalog) in-process on free ports and
    /// point the config's backends of those names at them (needs the `demo` feature, which the
    /// BFF binaries turn on).
    #[arg(long)]
    pub demo: bool,
    /// Log format (default: the config's `log.format`, else text).
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Runtime worker threads, or with `runtime.mode: per_core` cores served (default: the
    /// config's `runtime.threads`, else one per CPU). On small machines shared with other
    /// processes, fewer workers cost less CPU per request (see the README's Performance).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print the BFF's GraphQL schema (SDL) to stdout.
    Schema {
        /// Compare with this previous SDL instead: list the changes, exit non-zero on any
        /// breaking one.
        #[arg(long, value_name = "FILE")]
        check: Option<PathBuf>,
    },
    /// Print the trusted-documents manifest of the operations folder to stdout:
    /// `{ "<sha256>": "<document>", ... }` (the ids clients send as
    /// `extensions.persistedQuery.sha256Hash` or `documentId`).
    Manifest,
    /// Print the OpenAPI 3.1 document of the BFF's REST routes (what `/openapi.json` serves)
    /// to stdout.
    Openapi,
    /// Write a development CA, a server certificate and a client certificate (PEM) for TLS
    /// and mTLS, made without openssl: `ca.pem`, `server.pem`/`server.key`,
    /// `client.pem`/`client.key`. Not for production.
    Certs {
        /// Where to write them.
        #[arg(long, value_name = "DIR", default_value = "certs")]
        out: PathBuf,
        /// Names and addresses the server certificate is valid for.
        #[arg(long = "host", value_name = "NAME", default_values_t = ["localhost".to_string(), "127.0.0.1".to_string()])]
        hosts: Vec<String>,
        /// The client certificate's subject (its identity under mTLS).
        #[arg(long, value_name = "NAME", default_value = "dev-client")]
        client: String,
    },
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// What distinguishes one BFF binary from another.
#[derive(Clone, Debug)]
pub struct Profile {
    /// Short name, e.g. `web`.
    pub name: &'static str,
    /// The config used when `--config` is not given.
    pub default_config: PathBuf,
}

/// Why a BFF could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The config or the descriptors are wrong.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// `schema` was asked but GraphQL is disabled in the config.
    #[error("GraphQL is disabled in this config (graphql.enabled: false)")]
    NoGraphql,
    /// `manifest` was asked but the config has no operations folder.
    #[error("this config has no operations folder (operations.dir)")]
    NoOperations,
    /// A file could not be read.
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// An SDL file does not parse.
    #[error("{0}")]
    Sdl(String),
    /// `schema --check` found breaking changes.
    #[error("{0} breaking change(s) in the GraphQL schema (listed above)")]
    Breaking(usize),
    /// The server failed.
    #[error("server error: {0}")]
    Serve(std::io::Error),
    /// The listener's TLS files do not load.
    #[error(transparent)]
    Tls(#[from] crate::server::TlsError),
    /// `certs` could not write its files.
    #[error(transparent)]
    Certs(#[from] certs::CertsError),
}

/// Sets up logging (RUST_LOG, default `info`), with colours only when stderr is a terminal.
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal: never escape codes in a file or a collector.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .fmt_fields(crate::telemetry::json_log::JsonMembers)
            .event_format(crate::telemetry::json_log::JsonLines)
            .try_init(),
    };
}

/// Runs a BFF: loads the config (with `endpoint_overrides` replacing the endpoints of the
/// backends they name, e.g. those of the `--demo` backends), builds the snapshot, then either
/// prints it (`--check`) or serves until a shutdown signal.
pub async fn run(
    args: Args,
    profile: Profile,
    endpoint_overrides: Option<BTreeMap<String, String>>,
) -> Result<(), CliError> {
    let path = args
        .config
        .clone()
        .unwrap_or(profile.default_config.clone());
    let source = ConfigSource {
        path: path.clone(),
        endpoint_overrides: endpoint_overrides.unwrap_or_default(),
        listen: args.listen,
        admin_listen: args.admin_listen,
        policies: Default::default(),
    };
    if let Some(Command::Certs { out, hosts, client }) = &args.command {
        let w = certs::generate(out, hosts, client)?;
        println!(
            "wrote {}, {} + {}, {} + {}\nuse them with:\n  tls: {{ cert: {}, key: {}, client_ca: {} }}",
            w.ca.display(),
            w.server.0.display(),
            w.server.1.display(),
            w.client.0.display(),
            w.client.1.display(),
            w.server.0.display(),
            w.server.1.display(),
            w.ca.display()
        );
        return Ok(());
    }
    // With one runtime per core, the backend channels need a slot per core from the start.
    let cores_wanted = |runtime: &crate::config::RuntimeConfig| {
        (runtime.mode == RuntimeMode::PerCore).then(|| args.workers.unwrap_or(runtime.threads()))
    };
    if let Some(n) = crate::config::load(&path)
        .ok()
        .and_then(|c| cores_wanted(&c.runtime))
    {
        crate::cores::reserve(n);
    }
    let (built_at, started) = (std::time::SystemTime::now(), std::time::Instant::now());
    let snapshot = source.build().await?;
    let build_took = started.elapsed();
    match &args.command {
        Some(Command::Schema { check }) => return schema_command(&snapshot, check.as_deref()),
        Some(Command::Manifest) => {
            let ops = snapshot.operations.as_ref().ok_or(CliError::NoOperations)?;
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", ops.manifest_json()).and_then(|()| out.flush());
            return Ok(());
        }
        Some(Command::Openapi) => {
            use std::io::Write;
            let doc = crate::openapi::document(&snapshot, profile.name);
            let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}").and_then(|()| out.flush());
            return Ok(());
        }
        Some(Command::Certs { .. }) | None => {}
    }
    let tls = match &snapshot.config.tls {
        Some(cfg) => Some(ServerTls::load(cfg, &snapshot.config.base_dir)?),
        None => None,
    };
    if args.check {
        println!("{}: configuration OK", path.display());
        if let Some(cfg) = &snapshot.config.tls {
            println!(
                "tls: {} (client certificates {})",
                cfg.cert.display(),
                match cfg.client_auth() {
                    crate::config::ClientAuth::None => "not asked for",
                    crate::config::ClientAuth::Optional => "optional",
                    crate::config::ClientAuth::Required => "required",
                }
            );
        }
        print!("{}", snapshot.describe());
        return Ok(());
    }
    let addr = snapshot.config.listen;
    let limits = snapshot.config.limits.clone();
    let bound = match cores_wanted(&snapshot.config.runtime) {
        None => Bound::One(
            TcpListener::bind(addr)
                .await
                .map_err(|source| CliError::Bind { addr, source })?,
        ),
        Some(n) => Bound::Cores(
            Cores::bind(addr, n)
                .await
                .map_err(|source| CliError::Bind { addr, source })?,
        ),
    };
    let local = match &bound {
        Bound::One(listener) => listener.local_addr().map_err(CliError::Serve)?,
        Bound::Cores(cores) => cores.local_addr(),
    };
    let banner = banner(profile.name, &snapshot, local);
    #[cfg(feature = "demo")]
    let banner = if args.demo {
        banner + &demo::banner_hint(local)
    } else {
        banner
    };
    // The banner must never take the server down (stdout may be a closed pipe).
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
    }
    let drain_cfg = snapshot.config.drain.clone();
    if let Some(tls) = &tls {
        tls.watch();
    }
    let admin = match &snapshot.config.admin {
        Some(a) => {
            let listener = TcpListener::bind(a.listen)
                .await
                .map_err(|source| CliError::Bind {
                    addr: a.listen,
                    source,
                })?;
            let tls = match &a.tls {
                Some(cfg) => Some(ServerTls::load(cfg, &snapshot.config.base_dir)?),
                None => None,
            };
            Some((listener, tls))
        }
        None => None,
    };
    let gateway = Gateway::new(snapshot);
    let reloader = Reloader::new(gateway.clone(), source, tls.clone());
    reloader
        .history()
        .push(Record::new(built_at, &Trigger::Startup, build_took));
    if let Some((listener, admin_tls)) = admin {
        let local = listener.local_addr().map_err(CliError::Serve)?;
        {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "admin endpoints (metrics, health, views) on {}://{local}",
                if admin_tls.is_some() { "https" } else { "http" }
            )
            .and_then(|()| out.flush());
        }
        let app = crate::admin::router(gateway.clone(), Some(reloader.clone()));
        if let Some(tls) = &admin_tls {
            tls.watch();
        }
        let limits = limits.clone();
        tokio::spawn(async move {
            let served = crate::server::serve_tls(
                listener,
                app,
                &limits,
                std::future::pending(),
                crate::server::Drain::default(),
                admin_tls,
            )
            .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "the admin listener failed");
            }
        });
    }
    reloader.start();
    let drain = crate::server::Drain {
        readiness: gateway.readiness().clone(),
        delay: drain_cfg.delay.get(),
        grace: drain_cfg.grace.get(),
    };
    match bound {
        Bound::One(listener) => {
            crate::server::serve_tls(
                listener,
                router(gateway),
                &limits,
                shutdown_signal(),
                drain,
                tls,
            )
            .await
        }
        Bound::Cores(cores) => {
            tracing::info!(cores = cores.len(), "serving with one runtime per core");
            cores
                .serve(router(gateway), &limits, shutdown_signal(), drain, tls)
                .await
        }
    }
    .map_err(CliError::Serve)?;
    tracing::info!("stopped");
    Ok(())
}

/// The client port: one listener on the current runtime, or one per core.
enum Bound {
    One(TcpListener),
    Cores(Cores),
}

/// What a BFF prints once it listens on `local`: the line `bff-NAME serving ... on
/// http://ADDR` (tests and the benchmarks read the address from it), the services and their
/// backends, then where to start: one REST route of the config as an example (a GET when there
/// is one), the GraphQL endpoint when GraphQL is on, and one operation endpoint (config
/// `endpoints`) when there are any.
pub fn banner(name: &str, snapshot: &Snapshot, local: SocketAddr) -> String {
    let mut banner = format!(
        "bff-{name} serving {} services, {} REST routes on {}://{local}\n",
        snapshot.services.len(),
        snapshot.routes.len(),
        if snapshot.config.tls.is_some() {
            "https"
        } else {
            "http"
        }
    );
    for (svc, backend) in &snapshot.services {
        banner.push_str(&format!("  {} -> {backend}\n", svc.full_name()));
    }
    let example = snapshot
        .routes
        .routes()
        .find(|(m, _, _)| **m == http::Method::GET)
        .or_else(|| snapshot.routes.routes().next());
    if let Some((method, template, target)) = example {
        banner.push_str(&format!(
            "REST:      e.g. {} http://{local}{template}  ->  {} (all: --check)\n",
            method.as_str(),
            target.full_name
        ));
    }
    if snapshot.graphql.is_some() {
        banner.push_str(&format!(
            "GraphQL:   http://{local}{}\n",
            snapshot.config.graphql.path
        ));
    }
    if let Some((method, template, _)) = snapshot.endpoints.routes().next() {
        banner.push_str(&format!(
            "Endpoints: {} operations, e.g. {} http://{local}{template}\n",
            snapshot.endpoints.len(),
            method.as_str()
        ));
    }
    banner
}

fn schema_command(snapshot: &Snapshot, check: Option<&std::path::Path>) -> Result<(), CliError> {
    let Some(schema) = &snapshot.graphql else {
        return Err(CliError::NoGraphql);
    };
    let sdl = schema.sdl();
    match check {
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(sdl.as_bytes()).and_then(|()| out.flush());
            Ok(())
        }
        Some(previous) => {
            let old = std::fs::read_to_string(previous).map_err(|source| CliError::Read {
                path: previous.to_path_buf(),
                source,
            })?;
            let changes = crate::graphql::engine::sdl_diff::diff(&old, &sdl)
                .map_err(|e| CliError::Sdl(format!("{}: {e}", previous.display())))?;
            let breaking = changes.iter().filter(|c| c.breaking).count();
            let mut report = String::new();
            for c in &changes {
                report.push_str(&format!("{c}\n"));
            }
            report.push_str(&format!(
                "{} change(s) against {}, {breaking} breaking\n",
                changes.len(),
                previous.display()
            ));
            {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(report.as_bytes()).and_then(|()| out.flush());
            }
            if breaking > 0 {
                Err(CliError::Breaking(breaking))
            } else {
                Ok(())
            }
        }
    }
}

/// The whole life of a BFF binary: parse flags, set up logging and the async runtime, start
/// the demo backends when `--demo` is given, run, and map the outcome to an exit code (errors
/// on stderr).
pub fn main(profile: Profile) -> std::process::ExitCode {
    let args = Args::parse();
    let path = args.config.as_ref().unwrap_or(&profile.default_config);
    // Read here for what must be known before the runtime starts; a config that does not read
    // is reported by `run`, once logging is up.
    let startup = crate::config::load(path).ok();
    init_tracing(log_format(&args, startup.as_ref()));
    match runtime(&args, startup.as_ref()) {
        Ok(rt) => rt.block_on(main_async(args, profile)),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The runtime [`run`] runs on, for `args` and the config (when it reads): with
/// `runtime.mode: per_core` a current-thread one for the control plane (reloads, the admin
/// port, health checks, signals, the demo backends; the client port is served by the cores'
/// own runtimes), else a multi-threaded one with `--workers`, else `runtime.threads`, else
/// one worker per CPU.
pub fn runtime(
    args: &Args,
    config: Option<&crate::config::Config>,
) -> std::io::Result<tokio::runtime::Runtime> {
    let per_core = config.is_some_and(|c| c.runtime.mode == RuntimeMode::PerCore);
    let mut rt = if per_core {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut rt = tokio::runtime::Builder::new_multi_thread();
        if let Some(n) = args
            .workers
            .or_else(|| config.and_then(|c| c.runtime.threads))
        {
            rt.worker_threads(n.max(1));
        }
        rt
    };
    rt.enable_all().build()
}

/// The log format: `--log-format`, else the config's `log.format` (when the config reads;
/// a config that does not is reported once logging is up), else text.
fn log_format(args: &Args, config: Option<&crate::config::Config>) -> LogFormat {
    if let Some(f) = args.log_format {
        return f;
    }
    match config.and_then(|c| c.log.format) {
        Some(crate::config::LogFormat::Json) => LogFormat::Json,
        Some(crate::config::LogFormat::Text) | None => LogFormat::Text,
    }
}

async fn main_async(args: Args, profile: Profile) -> std::process::ExitCode {
    use std::process::ExitCode;
    // Kept alive for the whole run: dropping it stops the demo backends.
    let demo = if args.demo {
        match start_demo().await {
            Ok(d) => Some(d),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    let endpoints = demo.as_ref().map(|d| d.endpoints.clone());
    match run(args, profile, endpoints).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Backends started for `--demo`, with what the config needs to reach them (never built
/// without the `demo` feature).
#[cfg_attr(not(feature = "demo"), allow(dead_code))]
struct DemoBackends {
    /// Keeps them running: dropping it stops them.
    _running: Box<dyn std::any::Any>,
    /// Their endpoints by backend name, replacing the config's.
    endpoints: BTreeMap<String, String>,
}

/// Without the `demo` feature there are no demo backends to start: `--demo` fails.
#[cfg(not(feature = "demo"))]
async fn start_demo() -> Result<DemoBackends, String> {
    Err("--demo: this build has no demo backends (the gateway's `demo` feature is off)".into())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested; draining");
}

impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> Self {
        CliError::Load(LoadError::Config(e))
    }
}
