//! `portico-load soak`: a long run at a fixed rate with a mixed load, reloads and a backend
//! restarted now and then, sampling the BFF every few seconds; what it shows is whether
//! anything grows (memory, file descriptors, tasks, latency) once warmed up.
//!
//! Load: open-loop, `--rate` requests per second spread evenly over REST `GET
//! /v1/users/{id}`, a nested GraphQL query (users -> orders -> products), a flat one, a
//! server-streaming REST call read to its end (NDJSON, 3 events), and a REST `POST` creating a
//! user (`validateOnly`, so the backend does not grow), sent by a pool of keep-alive connections; latency counts from when a request was due,
//! so a stall shows in it (no coordinated omission). Every `--reload-every` the BFF reloads
//! (`POST /admin/reload`); every `--restart-every` the catalog backend is killed and started
//! again on the same port (calls to it fail meanwhile: the errors column shows them).
//!
//! Every `--sample`: the BFF's RSS, open file descriptors (`/proc/PID/fd`), tokio tasks
//! (`portico_runtime_tasks` from `/metrics`), open client connections, requests completed,
//! errors, p50 and p99 of the window. One table row per sample, then a summary comparing the
//! first sample after `--warmup` with the last.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::BodyExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::load::{HttpRequest, http_connect, send};
use crate::procs::{Proc, ProcSample};
use crate::stack::mb;
use crate::stats::percentile;

/// The soak run's settings.
#[derive(Clone, Debug, clap::Args)]
pub struct SoakArgs {
    /// How long the whole run lasts.
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    pub length: Duration,
    /// Samples before this are the warm-up (not in the summary).
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    pub settle: Duration,
    /// Requests per second, all kinds together.
    #[arg(long, default_value_t = 300)]
    pub rate: u32,
    /// Keep-alive connections sending them.
    #[arg(long, default_value_t = 32)]
    pub pool: usize,
    /// Time between two samples.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub sample: Duration,
    /// Time between two reloads.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub reload_every: Duration,
    /// Time between two restarts of the catalog backend.
    #[arg(long, default_value = "180s", value_parser = humantime::parse_duration)]
    pub restart_every: Duration,
    /// Also write the samples as CSV here.
    #[arg(long)]
    pub csv: Option<PathBuf>,
}

/// The kinds of request, in the order the schedule cycles through them.
const KINDS: [&str; 5] = ["rest", "nested", "flat", "stream", "create"];

const NESTED: &str = "{ user(id: \"1\") { displayName orders { id status \
    total { currencyCode units } items { quantity product { title price { units } } } } } }";
const FLAT: &str = "{ user(id: \"2\") { id displayName email } }";

/// One request: which kind, and when it was due.
struct Job {
    kind: usize,
    n: u64,
    due: Instant,
}

/// What the senders record between two samples.
#[derive(Default)]
struct Window {
    latencies: Vec<u64>,
    errors: u64,
    by_kind: [u64; KINDS.len()],
}

/// One row of the table.
#[derive(Clone, Copy, Debug, Default)]
struct Row {
    at: Duration,
    rss: u64,
    fds: usize,
    tasks: i64,
    connections: i64,
    done: u64,
    errors: u64,
    p50: u64,
    p99: u64,
}

fn request(addr: SocketAddr, kind: usize, n: u64) -> HttpRequest {
    let graphql = |q: &str| HttpRequest {
        addr,
        method: http::Method::POST,
        path: "/graphql".into(),
        body: Some(Bytes::from(serde_json::json!({ "query": q }).to_string())),
        graphql: true,
    };
    match KINDS[kind] {
        "rest" => HttpRequest {
            addr,
            method: http::Method::GET,
            path: format!("/v1/users/{}", n % 3 + 1),
            body: None,
            graphql: false,
        },
        "nested" => graphql(NESTED),
        "flat" => graphql(FLAT),
        "stream" => HttpRequest {
            addr,
            method: http::Method::GET,
            path: "/v1/users/1/orders:watch?maxEvents=3".into(),
            body: None,
            graphql: false,
        },
        _ => HttpRequest {
            addr,
            method: http::Method::POST,
            path: "/v1/users".into(),
            body: Some(Bytes::from(
                serde_json::json!({
                    "user": {"displayName": format!("soak {n}"), "email": format!("soak{n}@example.com")},
                    "validateOnly": true,
                })
                .to_string(),
            )),
            graphql: false,
        },
    }
}

/// One sender: a keep-alive connection taking jobs from the queue, reconnecting on errors.
async fn sender(
    addr: SocketAddr,
    jobs: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
    window: Arc<Mutex<Window>>,
) {
    let mut conn = None;
    loop {
        let Some(job) = jobs.lock().await.recv().await else {
            return;
        };
        if conn.is_none() {
            conn = http_connect(addr).await.ok();
        }
        let req = request(addr, job.kind, job.n);
        let ok = match conn.as_mut() {
            None => false,
            Some(c) => match send(c, &req).await {
                Ok(resp) => {
                    let status = resp.status();
                    match resp.into_body().collect().await {
                        Ok(body) => {
                            let body = body.to_bytes();
                            status.is_success()
                                && !(req.graphql && body.windows(9).any(|w| w == b"\"errors\""))
                        }
                        Err(_) => false,
                    }
                }
                Err(_) => {
                    conn = None;
                    false
                }
            },
        };
        let took = u64::try_from(job.due.elapsed().as_micros()).unwrap_or(u64::MAX);
        let mut w = window.lock().unwrap_or_else(PoisonError::into_inner);
        w.latencies.push(took);
        w.by_kind[job.kind] += 1;
        if !ok {
            w.errors += 1;
        }
    }
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// A gauge's value from the admin listener's `/metrics`.
async fn gauges(admin: SocketAddr) -> HashMap<String, i64> {
    let mut out = HashMap::new();
    let req = HttpRequest {
        addr: admin,
        method: http::Method::GET,
        path: "/metrics".into(),
        body: None,
        graphql: false,
    };
    let Ok(mut conn) = http_connect(admin).await else {
        return out;
    };
    let Ok(resp) = send(&mut conn, &req).await else {
        return out;
    };
    let Ok(body) = resp.into_body().collect().await else {
        return out;
    };
    for line in String::from_utf8_lossy(&body.to_bytes()).lines() {
        for name in ["portico_runtime_tasks", "portico_connections_open"] {
            if let Some(v) = line
                .strip_prefix(name)
                .and_then(|r| r.trim().parse::<f64>().ok())
            {
                out.insert(name.to_string(), v as i64);
            }
        }
    }
    out
}

async fn admin_post(admin: SocketAddr, path: &str) -> bool {
    let req = HttpRequest {
        addr: admin,
        method: http::Method::POST,
        path: path.into(),
        body: Some(Bytes::from_static(b"{}")),
        graphql: false,
    };
    match http_connect(admin).await {
        Ok(mut c) => send(&mut c, &req)
            .await
            .is_ok_and(|r| r.status().is_success()),
        Err(_) => false,
    }
}

/// Starts the demo backends `services` (on `ports`, or free ones); returns the process and
/// each service's URL.
async fn backends(
    exe: &Path,
    services: &str,
    ports: Option<&str>,
) -> anyhow::Result<(Proc, HashMap<String, String>)> {
    let mut args = vec!["--services".to_string(), services.into()];
    if let Some(p) = ports {
        args.push("--ports".into());
        args.push(p.into());
    }
    crate::procs::start_backends(exe, &args).await
}

/// The whole soak run.
pub async fn run(args: &SoakArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("finding this program's path")?;
    let dir = std::env::temp_dir().join(format!("portico-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let (_users_orders, mut endpoints) = backends(&exe, "users,orders", None).await?;
    let (mut catalog, more) = backends(&exe, "catalog", None).await?;
    endpoints.extend(more);
    let catalog_port = endpoints
        .get("catalog")
        .and_then(|u| u.rsplit(':').next())
        .context("no catalog port")?
        .to_string();
    let config = dir.join("bff.yaml");
    let text = crate::stack::config_text(
        &dir,
        &endpoints,
        "admin:\n  listen: 127.0.0.1:0\nlog:\n  access: false\n",
    )?;
    std::fs::write(&config, text).with_context(|| format!("writing {}", config.display()))?;
    let mut bff = Proc::start(
        "BFF",
        &exe,
        &[
            "bff".into(),
            "--config".into(),
            config.display().to_string(),
        ],
        // Errors only: the catalog's restarts would print a warning per failed call.
        &[("RUST_LOG", "error")],
    )?;
    let (mut addr, mut admin) = (None, None);
    bff.wait_for(Duration::from_secs(60), |line| {
        if let Some((_, a)) = line.split_once(" on http://") {
            let a = a.trim().parse::<SocketAddr>().ok();
            if line.starts_with("admin") {
                admin = a;
            } else {
                addr = a;
            }
        }
        (addr.is_some() && admin.is_some()).then_some(())
    })
    .await?;
    bff.drain_stdout();
    let (addr, admin) = (
        addr.context("no address")?,
        admin.context("no admin address")?,
    );
    let pid = bff.pid()?;
    eprintln!(
        "soak: {} at {} req/s ({}), reload every {:?}, catalog restarted every {:?}, sample every {:?}",
        humantime::format_duration(args.length),
        args.rate,
        KINDS.join(", "),
        args.reload_every,
        args.restart_every,
        args.sample
    );

    let window = Arc::new(Mutex::new(Window::default()));
    let (tx, rx) = mpsc::channel::<Job>(10_000);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let senders: Vec<_> = (0..args.pool)
        .map(|_| tokio::spawn(sender(addr, rx.clone(), window.clone())))
        .collect();
    let start = Instant::now();
    let end = start + args.length;
    let interval = Duration::from_secs(1) / args.rate.max(1);
    // The load goes on a little past the last sample, so that sample sees it.
    let load_end = end + args.sample;
    let schedule = tokio::spawn(async move {
        let mut n: u64 = 0;
        let mut next = Instant::now();
        let mut dropped: u64 = 0;
        while next < load_end {
            tokio::time::sleep_until(next).await;
            let job = Job {
                kind: usize::try_from(n % KINDS.len() as u64).unwrap_or(0),
                n,
                due: next,
            };
            if tx.try_send(job).is_err() {
                dropped += 1;
            }
            n += 1;
            next += interval;
        }
        dropped
    });

    let header = "| t | RSS MB | fds | tasks | conns | req/s | errors | p50 ms | p99 ms | event |";
    println!("{header}\n|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|");
    let mut csv =
        String::from("t_s,rss_bytes,fds,tasks,connections,requests,errors,p50_us,p99_us,event\n");
    let mut rows: Vec<Row> = Vec::new();
    let (mut next_reload, mut next_restart) =
        (start + args.reload_every, start + args.restart_every);
    let mut next_sample = start + args.sample;
    let mut event = String::new();
    while next_sample <= end {
        let wake = next_sample.min(next_reload).min(next_restart);
        tokio::time::sleep_until(wake).await;
        let now = Instant::now();
        if now >= next_reload {
            next_reload += args.reload_every;
            let ok = admin_post(admin, "/admin/reload").await;
            event.push_str(if ok { "reload " } else { "reload FAILED " });
        }
        if now >= next_restart {
            next_restart += args.restart_every;
            catalog.stop().await;
            let (proc, _) = backends(&exe, "catalog", Some(&catalog_port)).await?;
            catalog = proc;
            event.push_str("catalog restarted ");
        }
        if now < next_sample {
            continue;
        }
        next_sample += args.sample;
        let w = std::mem::take(&mut *window.lock().unwrap_or_else(PoisonError::into_inner));
        let mut lat = w.latencies;
        lat.sort_unstable();
        let sample = ProcSample::read(pid)?;
        let g = gauges(admin).await;
        let row = Row {
            at: now - start,
            rss: sample.rss,
            fds: open_fds(pid),
            tasks: g.get("portico_runtime_tasks").copied().unwrap_or(-1),
            connections: g.get("portico_connections_open").copied().unwrap_or(-1),
            done: lat.len() as u64,
            errors: w.errors,
            p50: percentile(&lat, 0.50),
            p99: percentile(&lat, 0.99),
        };
        let secs = args.sample.as_secs_f64();
        println!(
            "| {} | {:.1} | {} | {} | {} | {:.0} | {} | {:.1} | {:.1} | {} |",
            humantime::format_duration(Duration::from_secs(row.at.as_secs())),
            mb(row.rss),
            row.fds,
            row.tasks,
            row.connections,
            row.done as f64 / secs,
            row.errors,
            row.p50 as f64 / 1000.0,
            row.p99 as f64 / 1000.0,
            event.trim()
        );
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{}\n",
            row.at.as_secs(),
            row.rss,
            row.fds,
            row.tasks,
            row.connections,
            row.done,
            row.errors,
            row.p50,
            row.p99,
            event.trim()
        ));
        event.clear();
        rows.push(row);
    }
    let dropped = schedule.await.unwrap_or(0);
    for s in senders {
        s.abort();
    }
    if let Some(path) = &args.csv {
        std::fs::write(path, csv).with_context(|| format!("writing {}", path.display()))?;
    }
    summary(&rows, args.settle, dropped);
    bff.stop().await;
    catalog.stop().await;
    Ok(())
}

/// First sample after the warm-up against the last; the largest of each.
fn summary(rows: &[Row], settle: Duration, dropped: u64) {
    let settled: Vec<&Row> = rows.iter().filter(|r| r.at >= settle).collect();
    let (Some(first), Some(last)) = (settled.first(), settled.last()) else {
        println!("\n(no sample after the warm-up)");
        return;
    };
    let max = |f: &dyn Fn(&Row) -> f64| settled.iter().map(|r| f(r)).fold(f64::MIN, f64::max);
    let min = |f: &dyn Fn(&Row) -> f64| settled.iter().map(|r| f(r)).fold(f64::MAX, f64::min);
    let errors: u64 = settled.iter().map(|r| r.errors).sum();
    let done: u64 = settled.iter().map(|r| r.done).sum();
    println!(
        "\nafter the warm-up ({} samples from {}): first -> last (min .. max)",
        settled.len(),
        humantime::format_duration(Duration::from_secs(first.at.as_secs()))
    );
    println!(
        "RSS {:.1} -> {:.1} MB ({:.1} .. {:.1}); fds {} -> {} ({} .. {}); tasks {} -> {} ({} .. {}); p99 {:.1} -> {:.1} ms (max {:.1}); {} requests, {} errors, {} not sent (queue full)",
        mb(first.rss),
        mb(last.rss),
        min(&|r| mb(r.rss)),
        max(&|r| mb(r.rss)),
        first.fds,
        last.fds,
        min(&|r| r.fds as f64),
        max(&|r| r.fds as f64),
        first.tasks,
        last.tasks,
        min(&|r| r.tasks as f64),
        max(&|r| r.tasks as f64),
        first.p99 as f64 / 1000.0,
        last.p99 as f64 / 1000.0,
        max(&|r| r.p99 as f64) / 1000.0,
        done,
        errors,
        dropped
    );
}
