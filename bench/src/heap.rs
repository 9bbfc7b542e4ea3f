//! `portico-heap`: the gateway's heap per idle client connection and per request in flight,
//! counted by the allocator (live bytes), not read off the RSS.
//!
//! The gateway runs in this process, on dhat's allocator (live bytes counted, and a heap
//! profile by call site written to `dhat-heap.json`, for `dh_view.html`); everything else runs
//! in a child process (this binary again, role `peer`): the demo backends and the clients, so that only the gateway's allocations count.
//! Steps: the gateway serves the demo config; the peer opens N keep-alive HTTP/1.1
//! connections, each making one `GET /v1/users/1` (so each connection has been used: buffers
//! allocated, then idle); live bytes before and after, divided by N. Then the backends are
//! made slow (30 s per call) and the peer sends N requests at once (REST, or nested GraphQL
//! with `--graphql`) on N more connections; once the gateway counts N requests active, live
//! bytes again, divided by N (a connection's share is the idle figure, subtracted).
//!
//! ```text
//! cargo run --release -p portico-bench --bin portico-heap -- --connections 1000 --requests 200
//! ```

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// dhat's allocator: the system allocator, recording every allocation (live bytes, and a
/// profile by call site written at the end).
#[global_allocator]
static GLOBAL: dhat::Alloc = dhat::Alloc;

/// Bytes alive on the heap now.
fn live() -> i64 {
    i64::try_from(dhat::HeapStats::get().curr_bytes).unwrap_or(i64::MAX)
}

#[derive(Debug, clap::Parser)]
#[command(about = "Heap per idle connection and per request in flight, counted by the allocator")]
struct Args {
    /// Idle connections to open.
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Requests to hold in flight.
    #[arg(long, default_value_t = 200)]
    requests: usize,
    /// Hold nested GraphQL queries in flight instead of REST GETs.
    #[arg(long)]
    graphql: bool,
    /// Internal: the peer role (backends and clients).
    #[arg(long, hide = true)]
    peer: bool,
}

const NESTED: &str =
    "{ user(id: \"1\") { displayName orders { id items { product { title } } } } }";

fn main() -> anyhow::Result<()> {
    let args = <Args as clap::Parser>::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    if args.peer {
        rt.block_on(peer())
    } else {
        let _profiler = dhat::Profiler::builder()
            .file_name("dhat-heap.json")
            .build();
        rt.block_on(measure(&args))
    }
}

/// The peer: demo backends, then commands on stdin (`connect ADDR N`, `inflight ADDR N
/// graphql|rest`, `slow`), each answered with a line on stdout.
async fn peer() -> anyhow::Result<()> {
    let cluster = portico_demo::spawn_all([127, 0, 0, 1].into()).await?;
    for s in [&cluster.users, &cluster.orders, &cluster.catalog] {
        println!("{} {}", s.service, s.endpoint());
    }
    println!("ready");
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut held = Vec::new();
    while let Some(line) = lines.next_line().await? {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["connect", addr, n] => {
                let addr: SocketAddr = addr.parse()?;
                for _ in 0..n.parse::<usize>()? {
                    let mut c = crate_load::http_connect(addr).await?;
                    let resp = c
                        .send_request(get(addr, "/v1/users/1"))
                        .await
                        .context("GET on a new connection")?;
                    resp.into_body().collect().await?;
                    held.push(c);
                }
                println!("ok");
            }
            ["inflight", addr, n, kind] => {
                let addr: SocketAddr = addr.parse()?;
                for _ in 0..n.parse::<usize>()? {
                    let mut c = crate_load::http_connect(addr).await?;
                    let req = if *kind == "graphql" {
                        let body = serde_json::json!({ "query": NESTED }).to_string();
                        http::Request::post("/graphql")
                            .header(http::header::HOST, addr.to_string())
                            .header(http::header::CONTENT_TYPE, "application/json")
                            .body(Full::new(Bytes::from(body)))?
                    } else {
                        get(addr, "/v1/users/2")
                    };
                    tokio::spawn(async move {
                        let _ = c.send_request(req).await;
                    });
                }
                println!("ok");
            }
            ["slow"] => {
                for s in [&cluster.users, &cluster.orders, &cluster.catalog] {
                    s.knobs.set_latency(Duration::from_secs(30));
                }
                println!("ok");
            }
            _ => bail!("unknown command {line:?}"),
        }
    }
    Ok(())
}

fn get(addr: SocketAddr, path: &str) -> http::Request<Full<Bytes>> {
    http::Request::get(path)
        .header(http::header::HOST, addr.to_string())
        .body(Full::new(Bytes::new()))
        .unwrap_or_default()
}

/// The peer process, spoken to line by line.
struct Peer {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Peer {
    async fn ask(&mut self, command: &str) -> anyhow::Result<String> {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await?;
        self.stdin.flush().await?;
        self.lines
            .next_line()
            .await?
            .with_context(|| format!("the peer stopped after {command:?}"))
    }
}

async fn measure(args: &Args) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let mut child = tokio::process::Command::new(exe)
        .arg("--peer")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the peer")?;
    let mut peer = Peer {
        stdin: child.stdin.take().context("stdin")?,
        lines: BufReader::new(child.stdout.take().context("stdout")?).lines(),
        child,
    };
    let mut endpoints = std::collections::HashMap::new();
    loop {
        let line = peer.lines.next_line().await?.context("the peer stopped")?;
        if line == "ready" {
            break;
        }
        if let Some((svc, url)) = line.split_once(' ') {
            endpoints.insert(svc.to_string(), url.to_string());
        }
    }
    let dir = std::env::temp_dir().join(format!("portico-heap-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let text = config_text(&dir, &endpoints)?;
    let cfg = portico::config::parse(&text, "heap.yaml", &dir)?;
    let snapshot = portico::snapshot::Snapshot::build(cfg).await?;
    let limits = snapshot.config.limits.clone();
    let gateway = portico::app::Gateway::new(snapshot);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = portico::app::router(gateway.clone());
    let drain = portico::server::Drain {
        readiness: gateway.readiness().clone(),
        ..Default::default()
    };
    tokio::spawn(async move {
        let _ = portico::server::serve_with(listener, app, &limits, std::future::pending(), drain)
            .await;
    });
    // Warm up: one connection, a few requests of each kind, so lazily built state is there.
    peer.ask(&format!("connect {addr} 10")).await?;
    settle().await;

    let before = live();
    let n = args.connections;
    peer.ask(&format!("connect {addr} {n}")).await?;
    until(|| gateway.readiness().open_connections() >= (n + 10) as i64).await?;
    settle().await;
    let idle = (live() - before) as f64 / n as f64;
    println!(
        "{n} idle connections (one request each): {:.1} KiB of heap each ({:.1} MiB in all)",
        idle / 1024.0,
        (live() - before) as f64 / 1048576.0
    );

    peer.ask("slow").await?;
    let metrics = gateway.current().metrics().clone();
    let active0 = metrics.http_active.get();
    let before = live();
    let r = args.requests;
    let kind = if args.graphql { "graphql" } else { "rest" };
    peer.ask(&format!("inflight {addr} {r} {kind}")).await?;
    until(|| metrics.http_active.get() >= active0 + r as i64).await?;
    settle().await;
    let total = (live() - before) as f64;
    let per = total / r as f64 - idle;
    println!(
        "{r} {} requests in flight (each on its own connection): {:.1} KiB of heap each beyond its connection's ({:.1} KiB with it)",
        if args.graphql {
            "nested GraphQL"
        } else {
            "REST GET"
        },
        per / 1024.0,
        total / r as f64 / 1024.0
    );
    drop(peer.child);
    Ok(())
}

/// Lets deferred work finish (connection tasks settle after their last response).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}

async fn until(mut cond: impl FnMut() -> bool) -> anyhow::Result<()> {
    tokio::time::timeout(Duration::from_secs(60), async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .context("the gateway did not get there within 60 s")
}

fn config_text(
    dir: &std::path::Path,
    endpoints: &std::collections::HashMap<String, String>,
) -> anyhow::Result<String> {
    let descriptors = dir.join("demo.binpb");
    std::fs::write(&descriptors, portico_demo::DESCRIPTOR_SET)?;
    let url = |s: &str| endpoints.get(s).cloned().with_context(|| format!("no {s}"));
    Ok(format!(
        "listen: 127.0.0.1:0\ndescriptors:\n  - file: demo.binpb\nbackends:\n  users: {{ endpoints: [{}], services: [demo.v1.UserService] }}\n  orders: {{ endpoints: [{}], services: [demo.v1.OrderService] }}\n  catalog: {{ endpoints: [{}], services: [demo.v1.CatalogService] }}\ngraphql:\n  links:{}\nlog:\n  access: false\nlimits:\n  max_connections_per_ip: null\n",
        url("users")?,
        url("orders")?,
        url("catalog")?,
        portico_demo::GRAPHQL_LINKS_YAML,
    ))
}

/// The HTTP/1.1 client of the load benchmark.
mod crate_load {
    use std::net::SocketAddr;

    use anyhow::Context;
    use bytes::Bytes;
    use http_body_util::Full;
    use hyper::client::conn::http1::SendRequest;
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpStream;

    pub async fn http_connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }
}
