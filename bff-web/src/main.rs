//! `bff-web`: the web frontend's BFF. Names its profile and launches the shared core.

use std::process::ExitCode;

use portico::cli::{Profile, main as run_bff};

fn main() -> ExitCode {
    run_bff(Profile {
        name: "web",
        default_config: concat!(env!("CARGO_MANIFEST_DIR"), "/config.yaml").into(),
    })
}
