//! The link order of the shipped binaries: `bff-web` and `bff-mobile` use this file as their
//! build script.
//!
//! `gateway/link/order.txt` lists the functions a BFF runs: those serving requests first, the
//! hottest at the top, then those only start-up runs, written by `bench/link-order.sh` from a
//! callgrind run. The linker places them side by side at the start of `.text`, so the code a
//! running BFF needs sits in a few hundred contiguous pages instead of being spread over all
//! 18 MB of it: the kernel maps code 64 KiB around each page a process touches, so scattered
//! code costs resident memory out of all proportion to its size (see the README, "Resident
//! memory: the code a BFF runs, side by side"). Names the binary does not have (code changed
//! since the file was written, another feature set) are skipped: a stale file costs memory,
//! never correctness.
//!
//! Only release builds for `x86_64-unknown-linux-gnu` get it, where rustc links with its own
//! lld (the default since Rust 1.90; GNU ld has no `--symbol-ordering-file`).
//! `PORTICO_LINK_ORDER=off` turns it off, for a linker without the option.

use std::env;
use std::path::PathBuf;

fn main() {
    let Some(manifest) = env::var_os("CARGO_MANIFEST_DIR") else {
        return;
    };
    let order = PathBuf::from(manifest).join("../gateway/link/order.txt");
    println!("cargo:rerun-if-changed={}", order.display());
    println!("cargo:rerun-if-env-changed=PORTICO_LINK_ORDER");
    let release = env::var("PROFILE").is_ok_and(|p| p == "release");
    let lld_target = env::var("TARGET").is_ok_and(|t| t == "x86_64-unknown-linux-gnu");
    let off = env::var("PORTICO_LINK_ORDER").is_ok_and(|v| v == "off");
    if release && lld_target && !off && order.is_file() {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}
