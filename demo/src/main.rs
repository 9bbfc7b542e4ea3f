//! `demo-services`: runs one or all of the demo gRPC backends until Ctrl-C.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::{Context, bail};
use clap::Parser;
use portico_demo::cli::Args;
use portico_demo::{DemoService, RunningService};

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
    use std::time::Duration;

    use super::*;

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
