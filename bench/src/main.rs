//! `portico-load`: the load benchmark. Starts the demo backends and a BFF as child processes,
//! drives the same closed-loop client at the same concurrency straight at the backend over
//! gRPC and through the BFF (REST, flat GraphQL, nested GraphQL, a 3-backend fan-out), and
//! prints a table with throughput, latency, the BFF's CPU per request and its memory.

mod limiter;
mod load;
mod procs;
mod report;
mod roles;
mod soak;
mod stack;
mod stats;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// Load benchmark of a Portico BFF against direct gRPC (loopback, one machine).
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Args {
    /// Measuring time of each phase (after the warm-up).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Warm-up of each phase (not measured).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Concurrency levels (closed-loop workers, one connection each).
    #[arg(long, value_delimiter = ',', default_value = "1,32")]
    pub concurrency: Vec<usize>,
    /// Open this many keep-alive HTTP/1.1 connections to measure the BFF's RSS under them.
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// Backend latency of the fan-out phase.
    #[arg(long, default_value = "20ms", value_parser = humantime::parse_duration)]
    pub fanout_latency: Duration,
    /// Run only these phases (1 direct gRPC, 2 REST, 3 flat GraphQL, 4 nested GraphQL,
    /// 5 fan-out; 1 is always run when 2-4 are, as their baseline).
    #[arg(long, value_delimiter = ',', default_value = "1,2,3,4,5")]
    pub phases: Vec<u8>,
    /// Tokio worker threads of the BFF (default: one per core, as the BFF binaries run).
    #[arg(long)]
    pub bff_workers: Option<usize>,
    /// RUST_LOG of the BFF (`info` logs one line per request).
    #[arg(long, default_value = "warn")]
    pub bff_log: String,
    /// Internal: the role of a child process.
    #[command(subcommand)]
    pub role: Option<Role>,
}

/// The child processes' roles (this binary re-executes itself).
#[derive(Debug, Subcommand)]
pub enum Role {
    /// The three demo backends on free ports.
    #[command(hide = true)]
    Backend {
        /// Delay every call by this long.
        #[arg(long, value_parser = humantime::parse_duration)]
        latency: Option<Duration>,
        /// Serve only these services (`users`, `orders`, `catalog`; default all three).
        #[arg(long, value_delimiter = ',')]
        services: Vec<String>,
        /// On these ports, one per service in order (default: free ports). A restarted
        /// backend comes back where it was.
        #[arg(long, value_delimiter = ',')]
        ports: Vec<u16>,
    },
    /// The BFF on a config file (as `bff-web --config FILE`).
    #[command(hide = true)]
    Bff {
        /// The config file.
        #[arg(long)]
        config: PathBuf,
        /// Tokio worker threads, or cores with `runtime.mode: per_core` (default: one per
        /// core), as `bff-web --workers`.
        #[arg(long)]
        workers: Option<usize>,
    },
    /// Measures the rate limiter: decisions per second of the in-process and Redis stores,
    /// and the latency a limit adds to a REST request through the BFF.
    Limiter {
        /// A Redis to use (default: a `redis-server` started on a free port).
        #[arg(long)]
        redis_url: Option<String>,
    },
    /// A long run at a fixed rate (mixed load, reloads, a backend restarted now and then),
    /// sampling the BFF's memory, file descriptors, tasks and latency: `bench/soak.sh`.
    Soak(soak::SoakArgs),
    /// Writes an ES256 JWKS to `out` and prints a token it verifies (issuer `bench`,
    /// audience `portico`, valid for a day), and TLS certificates with `--certs`: the fixture
    /// of `callgrind.sh rest-jwt` and `rest-tls-jwt`.
    #[command(hide = true)]
    JwtFixture {
        /// Where to write the JWKS document.
        #[arg(long)]
        out: PathBuf,
        /// Also write a CA and a server certificate for 127.0.0.1 into this folder.
        #[arg(long)]
        certs: Option<PathBuf>,
    },
}

/// The global allocator, the same as the BFF binaries' (this binary runs the BFF as its `bff`
/// role, so the measured BFF allocates as the shipped one does): mimalloc, built with `no_thp`
/// (the workspace's `mimalloc` dependency). The request path allocates many small short-lived
/// objects across threads, where mimalloc spends far less CPU than glibc's malloc; `no_thp`
/// keeps its arenas off transparent huge pages, which otherwise nearly double the idle RSS.
/// Numbers: the README's Performance section.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.role {
        Some(Role::Backend {
            latency,
            ref services,
            ref ports,
        }) => roles::backend(latency, services, ports),
        Some(Role::Bff { config, workers }) => roles::bff(config, workers),
        Some(Role::Soak(ref soak)) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("building the tokio runtime")?
            .block_on(soak::run(soak)),
        Some(Role::JwtFixture { out, certs }) => roles::jwt_fixture(&out, certs.as_deref()),
        Some(Role::Limiter { ref redis_url }) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("building the tokio runtime")?
            .block_on(limiter::run(&args, redis_url.clone())),
        None => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("building the tokio runtime")?
            .block_on(stack::run(&args)),
    }
}
