//! `demo-services`: runs one or all of the demo gRPC backends until Ctrl-C.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use portico_demo::{DemoService, RunningService};
use tonic::Code;

/// Demo gRPC backends for Portico (users, orders, catalog), with health and reflection.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Run only this backend: users, orders or catalog. Without it all three run, on ports
    /// 50051 (users), 50052 (orders) and 50053 (catalog).
    #[arg(long, value_parser = parse_service)]
    service: Option<DemoService>,

    /// Where to listen. With --service: a socket address (default 127.0.0.1:50051, :50052 or
    /// :50053 for users, orders, catalog). Without --service: a host IP only (default
    /// 127.0.0.1); the three backends use ports 50051-50053 on it.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,

    /// Delay every call by this long, e.g. "20ms".
    #[arg(long, value_parser = humantime::parse_duration)]
    latency: Option<Duration>,

    /// Probability (0.0 to 1.0) that a call fails with the --fail-with code.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    error_rate: f64,

    /// Status code of injected failures, e.g. "unavailable", "internal", "deadline_exceeded"
    /// (or its number).
    #[arg(long, default_value = "unavailable", value_parser = parse_code)]
    fail_with: Code,
}

fn parse_service(s: &str) -> Result<DemoService, String> {
    s.parse()
        .map_err(|e: portico_demo::UnknownService| e.to_string())
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err(format!("{s:?} is not a number between 0.0 and 1.0")),
    }
}

/// Parses a gRPC status code from its name (any case, `_` or `-`) or its number.
fn parse_code(s: &str) -> Result<Code, String> {
    if let Ok(n) = s.parse::<i32>() {
        return match Code::from_i32(n) {
            Code::Unknown if n != 2 => Err(format!("{n} is not a gRPC status code")),
            code => Ok(code),
        };
    }
    let wanted: String = s.to_ascii_lowercase().replace(['-', ' '], "_");
    (0..=16)
        .map(Code::from_i32)
        .find(|code| {
            let name = format!("{code:?}"); // CamelCase, e.g. DeadlineExceeded
            let snake: String = name
                .chars()
                .enumerate()
                .flat_map(|(i, c)| {
                    let sep = (i > 0 && c.is_ascii_uppercase()).then_some('_');
                    sep.into_iter()
                        .chain(std::iter::once(c.to_ascii_lowercase()))
                })
                .collect();
            snake == wanted || name.eq_ignore_ascii_case(&wanted)
        })
        .ok_or_else(|| format!("{s:?} is not a gRPC status code name"))
}

/// The (service, address) pairs to start.
fn plan(args: &Args) -> anyhow::Result<Vec<(DemoService, SocketAddr)>> {
    let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
    match args.service {
        Some(service) => {
            let addr = match &args.listen {
                None => SocketAddr::new(localhost, service.default_port()),
                Some(listen) => listen
                    .parse()
                    .with_context(|| format!("--listen {listen:?} is not a host:port address"))?,
            };
            Ok(vec![(service, addr)])
        }
        None => {
            let host = match &args.listen {
                None => localhost,
                Some(listen) => match listen.parse::<IpAddr>() {
                    Ok(host) => host,
                    Err(_) => bail!(
                        "without --service, --listen takes a host IP only (the ports are \
                         50051-50053), got {listen:?}"
                    ),
                },
            };
            Ok(DemoService::ALL
                .into_iter()
                .map(|s| (s, SocketAddr::new(host, s.default_port())))
                .collect())
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();

    let mut running: Vec<RunningService> = Vec::new();
    for (service, addr) in plan(&args)? {
        let server = portico_demo::spawn(service, addr)
            .await
            .with_context(|| format!("cannot listen on {addr} for {service}"))?;
        if let Some(latency) = args.latency {
            server.knobs.set_latency(latency);
        }
        server.knobs.set_error_rate(args.error_rate);
        server.knobs.set_fail_with(Some(args.fail_with));
        println!(
            "{service} ({}) listening on {}",
            service.grpc_name(),
            server.endpoint()
        );
        running.push(server);
    }

    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    tracing::info!("Ctrl-C received, shutting down");
    futures::future::join_all(running.into_iter().map(RunningService::shutdown)).await;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_codes() {
        assert_eq!(parse_code("unavailable").unwrap(), Code::Unavailable);
        assert_eq!(
            parse_code("DEADLINE_EXCEEDED").unwrap(),
            Code::DeadlineExceeded
        );
        assert_eq!(
            parse_code("resource-exhausted").unwrap(),
            Code::ResourceExhausted
        );
        assert_eq!(parse_code("Internal").unwrap(), Code::Internal);
        assert_eq!(parse_code("13").unwrap(), Code::Internal);
        assert_eq!(parse_code("2").unwrap(), Code::Unknown);
        assert!(parse_code("17").is_err());
        assert!(parse_code("nope").is_err());
    }

    #[test]
    fn plans_listen_addresses() {
        let args = Args::try_parse_from(["demo-services"]).unwrap();
        let plan_all = plan(&args).unwrap();
        assert_eq!(plan_all.len(), 3);
        assert_eq!(plan_all[2].1.port(), 50053);

        let args = Args::try_parse_from(["demo-services", "--service", "orders"]).unwrap();
        assert_eq!(plan(&args).unwrap()[0].1.to_string(), "127.0.0.1:50052");

        let args = Args::try_parse_from([
            "demo-services",
            "--service",
            "catalog",
            "--listen",
            "0.0.0.0:7000",
            "--latency",
            "20ms",
            "--error-rate",
            "0.1",
            "--fail-with",
            "internal",
        ])
        .unwrap();
        assert_eq!(plan(&args).unwrap()[0].1.port(), 7000);
        assert_eq!(args.latency, Some(Duration::from_millis(20)));

        let args = Args::try_parse_from(["demo-services", "--listen", "0.0.0.0"]).unwrap();
        assert!(
            plan(&args)
                .unwrap()
                .iter()
                .all(|(_, a)| a.ip().is_unspecified())
        );
        let args = Args::try_parse_from(["demo-services", "--listen", "0.0.0.0:1"]).unwrap();
        assert!(plan(&args).is_err());
        assert!(Args::try_parse_from(["demo-services", "--error-rate", "2"]).is_err());
    }
}
