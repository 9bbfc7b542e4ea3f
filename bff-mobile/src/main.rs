//! `bff-mobile`: the mobile frontend's BFF. Names its profile and launches the shared core.

use std::process::ExitCode;

use portico::cli::{Profile, main as run_bff};

/// The global allocator, chosen by the binary (the `portico` library leaves it to whoever links
/// it): mimalloc, built with `no_thp` (the workspace's `mimalloc` dependency). The request path
/// allocates many small short-lived objects across threads, where mimalloc spends far less CPU
/// than glibc's malloc; `no_thp` keeps its arenas off transparent huge pages, which otherwise
/// nearly double the idle RSS. Numbers: the README's Performance section.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    run_bff(Profile {
        name: "mobile",
        default_config: concat!(env!("CARGO_MANIFEST_DIR"), "/config.yaml").into(),
    })
}
