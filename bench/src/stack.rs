//! One benchmark run: start backends + BFF, measure memory, run every phase at every
//! concurrency, restart with slow backends for the fan-out phase, print the report.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use tokio::time::Instant;

use crate::Args;
use crate::load::{self, HttpRequest, Target, Window};
use crate::procs::Proc;
use crate::report::{Memory, Report, Row};
use crate::stats::Summary;

/// The flat query: the fields of `GET /v1/users/1` a page would show, no link.
const FLAT: &str = "{ user(id: \"1\") { id displayName email role createdAt \
    address { street city countryCode } tags nickname loyaltyPoints verified rating } }";

/// users -> orders -> products (products batched: one BatchGetProducts per response).
const NESTED: &str = "{ user(id: \"1\") { displayName orders { id status \
    total { currencyCode units } items { quantity product { title price { units } } } } } }";

/// Three root fields on three backends, resolved concurrently.
const FANOUT: &str = "{ user(id: \"1\") { displayName } order(id: \"o-1001\") { id status } \
    product(id: \"p-1\") { title } }";

/// A running backend process and BFF process.
struct Stack {
    backend: Proc,
    bff: Proc,
    /// Backend URL by service (`users`, `orders`, `catalog`).
    endpoints: HashMap<String, String>,
    /// Where the BFF listens.
    addr: SocketAddr,
}

impl Stack {
    async fn start(
        exe: &Path,
        dir: &Path,
        latency: Option<Duration>,
        args_in: &Args,
        extra: &str,
    ) -> anyhow::Result<Stack> {
        let mut args = Vec::new();
        if let Some(l) = latency {
            args.push("--latency".into());
            args.push(format!("{}us", l.as_micros()));
        }
        let (backend, endpoints) = crate::procs::start_backends(exe, &args).await?;
        let config = dir.join(format!("bff-{}.yaml", latency.map_or(0, |l| l.as_millis())));
        std::fs::write(&config, config_text(dir, &endpoints, extra)?)
            .with_context(|| format!("writing {}", config.display()))?;
        let mut args = vec![
            "bff".to_string(),
            "--config".into(),
            config.display().to_string(),
        ];
        if let Some(n) = args_in.bff_workers {
            args.push("--workers".into());
            args.push(n.to_string());
        }
        let mut bff = Proc::start("BFF", exe, &args, &[("RUST_LOG", &args_in.bff_log)])?;
        let addr = bff
            .wait_for(Duration::from_secs(60), |line| {
                line.split_once(" on http://")
                    .and_then(|(_, a)| a.trim().parse::<SocketAddr>().ok())
            })
            .await?;
        bff.drain_stdout();
        Ok(Stack {
            backend,
            bff,
            endpoints,
            addr,
        })
    }

    async fn stop(self) {
        self.bff.stop().await;
        self.backend.stop().await;
    }

    fn get(&self, path: &str) -> Target {
        Target::Http(HttpRequest {
            addr: self.addr,
            method: http::Method::GET,
            path: path.into(),
            body: None,
            graphql: false,
        })
    }

    fn graphql(&self, query: &str) -> Target {
        let body = serde_json::json!({ "query": query }).to_string();
        Target::Http(HttpRequest {
            addr: self.addr,
            method: http::Method::POST,
            path: "/graphql".into(),
            body: Some(Bytes::from(body)),
            graphql: true,
        })
    }

    /// Runs `target` with `concurrency` workers, sampling both processes around the window.
    async fn measure(
        &self,
        name: &'static str,
        through_bff: bool,
        target: &Target,
        concurrency: usize,
        args: &Args,
    ) -> anyhow::Result<Row> {
        let now = Instant::now();
        let window = Window {
            start: now + args.warmup,
            end: now + args.warmup + args.duration,
        };
        let workers = load::start(target, concurrency, window).await?;
        load::until(window.start).await;
        self.bff.reset_peak();
        let (bff0, be0) = (self.bff.sample()?, self.backend.sample()?);
        load::until(window.end).await;
        let (bff1, be1) = (self.bff.sample()?, self.backend.sample()?);
        let summary = load::finish(workers).await?;
        let row = Row {
            name,
            through_bff,
            concurrency,
            bff_cpu: bff1.cpu.saturating_sub(bff0.cpu),
            backend_cpu: be1.cpu.saturating_sub(be0.cpu),
            bff_peak_rss: bff1.hwm,
            summary,
        };
        eprintln!("{}", row.progress_line());
        Ok(row)
    }
}

/// The BFF config over the running backends (descriptors written next to it). Every client
/// of a benchmark comes from 127.0.0.1, and the memory step alone opens `--connections` (1,000)
/// of them: no per-address connection limit.
pub(crate) fn config_text(
    dir: &Path,
    endpoints: &HashMap<String, String>,
    extra: &str,
) -> anyhow::Result<String> {
    let descriptors = dir.join("demo.binpb");
    std::fs::write(&descriptors, portico_demo::DESCRIPTOR_SET)
        .with_context(|| format!("writing {}", descriptors.display()))?;
    let url = |svc: &str| {
        endpoints
            .get(svc)
            .cloned()
            .with_context(|| format!("the backend process did not report {svc}"))
    };
    Ok(format!(
        "listen: 127.0.0.1:0\n\
         descriptors:\n  - file: demo.binpb\n\
         backends:\n\
         \x20 users: {{ endpoints: [{}], services: [demo.v1.UserService] }}\n\
         \x20 orders: {{ endpoints: [{}], services: [demo.v1.OrderService] }}\n\
         \x20 catalog: {{ endpoints: [{}], services: [demo.v1.CatalogService] }}\ngraphql:\n  links:{}\n\
         limits:\n  max_connections_per_ip: null\n{extra}",
        url("users")?,
        url("orders")?,
        url("catalog")?,
        portico_demo::GRAPHQL_LINKS_YAML,
    ))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// The whole run.
pub async fn run(args: &Args) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("finding this program's path")?;
    let dir: PathBuf = std::env::temp_dir().join(format!("portico-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load_before = load_average();
    eprintln!("{cores} cores, load average {load_before}; starting the backends and the BFF");

    let stack = Stack::start(&exe, &dir, None, args, "").await?;
    let users = stack
        .endpoints
        .get("users")
        .cloned()
        .context("no users backend")?;
    let direct = Target::Grpc { endpoint: users };
    let rest = stack.get("/v1/users/1");
    let flat = stack.graphql(FLAT);
    let nested = stack.graphql(NESTED);
    for t in [&direct, &rest, &flat, &nested] {
        load::probe(t).await?;
    }

    // Memory: idle after start (and one request of each kind), then under N connections.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle = stack.bff.sample()?;
    let rest_req = match &rest {
        Target::Http(r) => r.clone(),
        Target::Grpc { .. } => anyhow::bail!("internal: REST target is gRPC"),
    };
    let conns = load::open_connections(&rest_req, args.connections)
        .await
        .with_context(|| {
            format!(
                "opening {} connections to the BFF (the open-files limit, `ulimit -n`, must be \
                 above that; or pass a smaller --connections)",
                args.connections
            )
        })?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let loaded = stack.bff.sample()?;
    drop(conns);
    let memory = Memory {
        idle_rss: idle.rss,
        connections: args.connections,
        connections_rss: loaded.rss,
        connections_hwm: loaded.hwm,
    };
    eprintln!(
        "BFF RSS idle {:.1} MB, with {} connections {:.1} MB",
        mb(memory.idle_rss),
        args.connections,
        mb(memory.connections_rss)
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut rows = Vec::new();
    let phases: [(&'static str, bool, &Target); 4] = [
        ("1 gRPC direct GetUser", false, &direct),
        ("2 REST GET /v1/users/1", true, &rest),
        ("3 GraphQL flat user", true, &flat),
        ("4 GraphQL user>orders>products", true, &nested),
    ];
    let wanted = |name: &str| {
        let n = name.as_bytes().first().map_or(0, |b| b - b'0');
        args.phases.contains(&n) || (n == 1 && args.phases.iter().any(|p| (2..=4).contains(p)))
    };
    for &c in &args.concurrency {
        for (name, via, target) in phases.into_iter().filter(|p| wanted(p.0)) {
            rows.push(stack.measure(name, via, target, c, args).await?);
        }
    }
    stack.stop().await;

    if !args.phases.contains(&5) {
        let _ = std::fs::remove_dir_all(&dir);
        return finish(args, cores, load_before, rows, memory);
    }
    let slow = Stack::start(&exe, &dir, Some(args.fanout_latency), args, "").await?;
    let fanout = slow.graphql(FANOUT);
    load::probe(&fanout).await?;
    for &c in &args.concurrency {
        rows.push(
            slow.measure("5 GraphQL fan-out x3", true, &fanout, c, args)
                .await?,
        );
    }
    slow.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    finish(args, cores, load_before, rows, memory)
}

/// A BFF whose config gets `extra`: `GET /v1/users/1` at each concurrency.
pub async fn rest_with(args: &Args, extra: &str) -> anyhow::Result<Vec<(usize, Summary)>> {
    let exe = std::env::current_exe().context("finding this program's path")?;
    let dir: PathBuf = std::env::temp_dir().join(format!("portico-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let stack = Stack::start(&exe, &dir, None, args, extra).await?;
    let rest = stack.get("/v1/users/1");
    load::probe(&rest).await?;
    let mut out = Vec::new();
    for &c in &args.concurrency {
        let row = stack
            .measure("REST GET /v1/users/1", true, &rest, c, args)
            .await?;
        out.push((c, row.summary));
    }
    stack.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(out)
}

/// Two BFF processes (each with its own backends) on the same config `extra`: `total`
/// requests of `GET /v1/users/1`, 16 connections to each BFF, requests spread evenly.
/// Returns how many were answered 200 and how many 429.
pub async fn two_bffs(args: &Args, extra: &str, total: usize) -> anyhow::Result<(u64, u64)> {
    let exe = std::env::current_exe().context("finding this program's path")?;
    let dir: PathBuf = std::env::temp_dir().join(format!("portico-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for sub in ["a", "b"] {
        std::fs::create_dir_all(dir.join(sub))
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    let a = Stack::start(&exe, &dir.join("a"), None, args, extra).await?;
    let b = Stack::start(&exe, &dir.join("b"), None, args, extra).await?;
    let per_worker = total / 32;
    let mut tasks = Vec::new();
    for w in 0..32 {
        let addr = if w % 2 == 0 { a.addr } else { b.addr };
        let req = HttpRequest {
            addr,
            method: http::Method::GET,
            path: "/v1/users/1".into(),
            body: None,
            graphql: false,
        };
        tasks.push(tokio::spawn(async move {
            let mut sender = load::http_connect(req.addr).await?;
            let (mut ok, mut limited) = (0u64, 0u64);
            for _ in 0..per_worker {
                let resp = load::send(&mut sender, &req).await?;
                match resp.status().as_u16() {
                    200 => ok += 1,
                    429 => limited += 1,
                    other => anyhow::bail!("status {other}"),
                }
                http_body_util::BodyExt::collect(resp.into_body()).await?;
            }
            anyhow::Ok((ok, limited))
        }));
    }
    let (mut ok, mut limited) = (0, 0);
    for t in tasks {
        let (o, l) = t.await.context("a client task")??;
        ok += o;
        limited += l;
    }
    a.stop().await;
    b.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok((ok, limited))
}

fn finish(
    args: &Args,
    cores: usize,
    load_before: String,
    rows: Vec<Row>,
    memory: Memory,
) -> anyhow::Result<()> {
    let report = Report {
        cores,
        load_before,
        load_after: load_average(),
        duration: args.duration,
        fanout_latency: args.fanout_latency,
        rows,
        memory,
    };
    println!("{}", report.render());
    Ok(())
}

/// Bytes as MB (10^6).
pub fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}
