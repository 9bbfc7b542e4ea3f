//! The `bff-web` binary itself: `--check` on the example config, a broken config's message,
//! and `--demo` serving a curl-able API (the README's first command).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_bff-web");

#[test]
fn check_validates_the_example_config_and_lists_routes() {
    let out = Command::new(BIN).arg("--check").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("configuration OK"), "{stdout}");
    assert!(
        stdout.contains("GET    /v1/users/{id}  ->  demo.v1.UserService.GetUser"),
        "{stdout}"
    );
    assert!(
        stdout.contains("POST   /demo.v1.OrderService/ImportOrders"),
        "{stdout}"
    );
}

#[test]
fn check_fails_with_the_file_and_key_named() {
    let dir = std::env::temp_dir().join(format!("portico-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("broken.yaml");
    std::fs::write(
        &cfg,
        "descriptors:\n  - file: nowhere.binpb\nbackends:\n  users:\n    endpoints: [http://127.0.0.1:1]\n    services: [x]\n    retries: 3\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["--check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("broken.yaml: backends.users.retries: unknown field `retries`"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn demo_mode_serves_the_readme_curl() {
    let mut child = Command::new(BIN)
        .args(["--demo", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    // Reads stdout to the end (so the child never writes into a closed pipe), reporting the
    // address from the "serving ... on URL" line.
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line
                .split(" on ")
                .nth(1)
                .filter(|_| line.contains("serving"))
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(url.trim().to_string());
            }
        }
    });
    let base = rx.await.expect("bff-web prints where it serves");
    let resp = reqwest::get(format!("{base}/v1/users/1")).await.unwrap();
    let status = resp.status();
    let body = resp.text().await.unwrap();
    child.kill().ok();
    child.wait().ok();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Ada Lovelace"), "{body}");
}

#[test]
fn the_docker_compose_configs_are_valid() {
    for cfg in ["web.yaml", "mobile.yaml"] {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/").to_string() + cfg;
        let out = Command::new(BIN)
            .args(["--check", "--config", &path])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{cfg}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The committed SDL is what the BFF generates: schema changes are reviewed like code.
/// Regenerate with `UPDATE_SCHEMAS=1 cargo test -p bff-web --test cli`.
#[test]
fn the_committed_schema_matches_the_generated_one() {
    let out = Command::new(BIN).arg("schema").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let generated = String::from_utf8(out.stdout).unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/web.graphql");
    if std::env::var_os("UPDATE_SCHEMAS").is_some() {
        std::fs::write(path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "schemas/web.graphql is not what bff-web generates; review the change and run \
         `UPDATE_SCHEMAS=1 cargo test -p bff-web --test cli` (or `bff-web schema --check \
         schemas/web.graphql` to list breaking changes)"
    );
}

#[test]
fn schema_check_lists_breaking_changes_and_fails() {
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../schemas/web.graphql"
    ))
    .unwrap();
    // An older schema that had a field the current one no longer has.
    let old = committed.replacen("type Money {", "type Money {\n\tlegacyAmount: Float!", 1);
    let dir = std::env::temp_dir().join(format!("portico-sdl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("old.graphql");
    std::fs::write(&file, old).unwrap();
    let out = Command::new(BIN)
        .arg("schema")
        .arg("--check")
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(stdout.contains("[BREAKING] Money.legacyAmount"), "{stdout}");
    let out = Command::new(BIN)
        .args(["schema", "--check"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../schemas/web.graphql"
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    std::fs::remove_dir_all(&dir).ok();
}
