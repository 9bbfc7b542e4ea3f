//! Running the real `bff-web` binary in tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_bff-web");

/// Starts `bff-web` with `args` and `envs` and returns it with its base URL, read from the
/// "serving ... on URL" line (stdout is drained to the end so the child never writes into a
/// closed pipe).
pub async fn spawn_bff(args: &[&str], envs: &[(&str, &str)]) -> (Child, String) {
    let (child, base, _) = spawn(args, envs, false).await;
    (child, base)
}

/// [`spawn_bff`] for a config with an `admin` section: also the admin listener's URL, read
/// from the "admin endpoints ... on URL" line.
pub async fn spawn_bff_with_admin(args: &[&str], envs: &[(&str, &str)]) -> (Child, String, String) {
    let (child, base, admin) = spawn(args, envs, true).await;
    (
        child,
        base,
        admin.expect("bff-web prints where its admin listener is"),
    )
}

async fn spawn(
    args: &[&str],
    envs: &[(&str, &str)],
    admin: bool,
) -> (Child, String, Option<String>) {
    let mut child = Command::new(BIN)
        .args(args)
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (admin_tx, admin_rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let (mut tx, mut admin_tx) = (Some(tx), Some(admin_tx));
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let url = line.split(" on ").nth(1).map(|u| u.trim().to_string());
            if line.contains("serving")
                && let (Some(url), Some(tx)) = (url.clone(), tx.take())
            {
                let _ = tx.send(url);
            } else if line.starts_with("admin endpoints")
                && let (Some(url), Some(tx)) = (url, admin_tx.take())
            {
                let _ = tx.send(url);
            }
        }
    });
    let base = rx.await.expect("bff-web prints where it serves");
    let admin = if admin { admin_rx.await.ok() } else { None };
    (child, base, admin)
}

/// Sends `signal` (e.g. "HUP", "TERM") to the process.
pub fn signal(child: &Child, signal: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{signal}");
}
