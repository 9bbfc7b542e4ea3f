//! `portico-load limiter`: the rate limiter measured two ways, in one run.
//!
//! 1. The stores alone: closed-loop tasks asking the in-process and the Redis store for
//!    decisions (1000 keys, limits never reached), decisions per second and their p50/p99.
//! 2. What a limit adds to a request: the same `GET /v1/users/1` load through a BFF without
//!    `rate_limits`, then with one rule in each store, p50/p99 side by side.
//!
//! Redis is a `redis-server` this program starts on a free port (or `--redis-url`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use portico::config::RedisLimitConfig;
use portico::ratelimit::Check;
use portico::ratelimit::gcra::Rate;
use portico::ratelimit::memory::MemoryStore;
use portico::ratelimit::redis::RedisStore;
use tokio::time::Instant;

use crate::load::micros;
use crate::stats::Summary;
use crate::{Args, stack};

/// One store's decisions at one concurrency.
async fn decisions<F, Fut>(decide: F, concurrency: usize, args: &Args) -> anyhow::Result<Summary>
where
    F: Fn(Check) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let decide = Arc::new(decide);
    let start = Instant::now() + args.warmup;
    let end = start + args.duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|w| {
            let decide = decide.clone();
            tokio::spawn(async move {
                let mut samples = Vec::new();
                let mut errors = 0u64;
                let rate = Rate::new(1_000_000_000, Duration::from_secs(1), None);
                let mut i = w * 7919;
                loop {
                    let t0 = Instant::now();
                    if t0 >= end {
                        break;
                    }
                    i = (i + 1) % 1000;
                    let ok = decide(Check {
                        key: format!("bench:{i}"),
                        rate,
                        cost: 1,
                    })
                    .await;
                    let t1 = Instant::now();
                    // A failing store answers at once: let the other tasks (and the
                    // connection's own) run, as a request's network I/O would.
                    tokio::task::yield_now().await;
                    if t0 >= start && t1 <= end {
                        if ok {
                            samples.push(u64::try_from((t1 - t0).as_nanos()).unwrap_or(u64::MAX));
                        } else {
                            errors += 1;
                        }
                    }
                }
                (samples, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (s, e) = t.await.context("a decision task")?;
        all.extend(s);
        errors += e;
    }
    Ok(Summary::from_samples(all, errors, args.duration))
}

/// The whole limiter benchmark.
pub async fn run(args: &Args, redis_url: Option<String>) -> anyhow::Result<()> {
    let own = match redis_url {
        Some(_) => None,
        None => Some(portico_e2e::RedisServer::start()),
    };
    let url = match (&own, redis_url) {
        (Some(r), _) => r.url(),
        (None, Some(u)) => u,
        (None, None) => unreachable!("one of them is set"),
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    eprintln!("{cores} cores; Redis at {url}");
    let redis_cfg = RedisLimitConfig {
        url: url.clone(),
        prefix: format!("portico-bench-{}:", std::process::id()),
        timeout: portico::config::HumanDuration(Duration::from_millis(50)),
        on_error: portico::config::OnError::Allow,
        fallback_to_memory: false,
    };
    let mut out = String::from(
        "| store | tasks | decisions/s | p50 | p99 | errors |\n|---|--:|--:|--:|--:|--:|\n",
    );
    for &c in &args.concurrency {
        let memory = Arc::new(MemoryStore::new(1_000_000));
        let s = decisions(
            move |check| {
                let memory = memory.clone();
                async move { memory.decide(&[check])[0].allowed }
            },
            c,
            args,
        )
        .await?;
        out.push_str(&row("in-process", c, &s));
        let redis = Arc::new(RedisStore::new(&redis_cfg).map_err(anyhow::Error::msg)?);
        let s = decisions(
            move |check| {
                let redis = redis.clone();
                async move {
                    match redis.decide(&[check]).await {
                        Ok(v) => v.first().is_some_and(|v| v.allowed),
                        Err(e) => {
                            // Say why once: after a failure the store rests for a second,
                            // and every decision then fails fast (counted as errors).
                            static SAID: std::sync::Once = std::sync::Once::new();
                            SAID.call_once(|| eprintln!("Redis store: {e}"));
                            false
                        }
                    }
                }
            },
            c,
            args,
        )
        .await?;
        out.push_str(&row("Redis", c, &s));
        eprintln!("decisions, {c} tasks: done");
    }
    println!("Decisions (one key each, limit never reached):\n\n{out}");

    let rule = "  rules:\n    - { name: bench, key: ip, limit: 1000000000, per: 1s }\n";
    let configs = [
        ("no rate_limits", String::new()),
        ("in-process store", format!("rate_limits:\n{rule}")),
        (
            "Redis store",
            format!(
                "rate_limits:\n  store: redis\n  redis: {{ url: \"{url}\", prefix: \"portico-bench:\" }}\n{rule}"
            ),
        ),
    ];
    let mut table = String::from(
        "| BFF | c | req/s | p50 | p99 | p50 added | p99 added |\n|---|--:|--:|--:|--:|--:|--:|\n",
    );
    let mut base: Vec<Summary> = Vec::new();
    for (i, (name, extra)) in configs.iter().enumerate() {
        let rows = stack::rest_with(args, extra).await?;
        for (j, (c, s)) in rows.iter().enumerate() {
            if i == 0 {
                base.push(s.clone());
            }
            let b = base.get(j).cloned().unwrap_or_default();
            let added = |x: Duration, y: Duration| micros(x) - micros(y);
            table.push_str(&format!(
                "| {name} | {c} | {:.0} | {:.0} us | {:.0} us | {:+.0} us | {:+.0} us |\n",
                s.rps(),
                micros(s.p50),
                micros(s.p99),
                added(s.p50, b.p50),
                added(s.p99, b.p99),
            ));
        }
    }
    println!("`GET /v1/users/1` through the BFF:\n\n{table}");

    // One limit held by two BFF processes: 3200 requests, 1000 allowed in all.
    let shared = format!(
        "rate_limits:\n  store: redis\n  redis: {{ url: \"{url}\", prefix: \"portico-bench-shared-{}:\" }}\n  rules:\n    - {{ name: shared, key: global, limit: 1000, per: 1h }}\n",
        std::process::id()
    );
    let (ok, limited) = stack::two_bffs(args, &shared, 3200).await?;
    println!(
        "Two BFF processes, one Redis, `limit: 1000, per: 1h`: {} requests, {ok} answered 200, {limited} answered 429.",
        ok + limited
    );
    drop(own);
    Ok(())
}

fn row(store: &str, tasks: usize, s: &Summary) -> String {
    format!(
        "| {store} | {tasks} | {:.0} | {:.1} us | {:.1} us | {} |\n",
        s.rps(),
        micros(s.p50),
        micros(s.p99),
        s.errors
    )
}
