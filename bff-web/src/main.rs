//! `bff-web`: the web frontend's BFF. Parses flags and launches the shared core.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::Parser;
use portico::cli::{Args, Profile, init_tracing, run};

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    init_tracing(args.log_format);
    let profile = Profile {
        name: "web",
        default_config: concat!(env!("CARGO_MANIFEST_DIR"), "/config.yaml").into(),
    };
    // Kept alive for the whole run: dropping the cluster stops the demo backends.
    let demo = if args.demo {
        let latency = match portico::cli::demo_latency_from_env() {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        match portico_demo::spawn_all([127, 0, 0, 1].into()).await {
            Ok(cluster) => {
                if let Some(latency) = latency {
                    for s in [&cluster.users, &cluster.orders, &cluster.catalog] {
                        s.knobs.set_latency(latency);
                    }
                }
                Some(cluster)
            }
            Err(e) => {
                eprintln!("error: cannot start the demo backends: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    let endpoints = demo.as_ref().map(|c| {
        [&c.users, &c.orders, &c.catalog]
            .into_iter()
            .map(|s| (s.service.to_string(), s.endpoint()))
            .collect::<BTreeMap<_, _>>()
    });
    match run(args, profile, endpoints).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
