//! The `bff-web` binary itself: `--check` on the example config, a broken config's message,
//! and `--demo` serving a curl-able API (the README's first command).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{BIN, signal, spawn_bff};

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
    let (mut child, base) = spawn_bff(
        &[
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ],
        &[],
    )
    .await;
    let resp = reqwest::get(format!("{base}/v1/users/1")).await.unwrap();
    let status = resp.status();
    let body = resp.text().await.unwrap();
    child.kill().ok();
    child.wait().ok();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Ada Lovelace"), "{body}");
}

#[tokio::test]
async fn sighup_reloads_the_config_and_a_bad_one_is_refused() {
    let dir = std::env::temp_dir().join(format!("portico-hup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("bff.yaml");
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.yaml"))
        .unwrap()
        .replace(
            "operations:\n  dir: operations",
            &format!(
                "operations:\n  dir: {}/operations",
                env!("CARGO_MANIFEST_DIR")
            ),
        )
        .replace(
            "file: ../descriptors/demo.binpb",
            &format!(
                "file: {}/../descriptors/demo.binpb",
                env!("CARGO_MANIFEST_DIR")
            ),
        );
    std::fs::write(&cfg, &example).unwrap();
    let cfg_arg = cfg.display().to_string();
    let (mut child, base) = spawn_bff(
        &[
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--config",
            &cfg_arg,
        ],
        &[],
    )
    .await;
    let client = reqwest::Client::new();
    let create = |client: reqwest::Client| {
        let url = format!("{base}/v1/users");
        async move {
            client
                .post(url)
                .header("content-type", "application/json")
                .body(r#"{"user":{"displayName":"H","email":"h@x.io"},"validateOnly":true}"#)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(create(client.clone()).await, 201);

    // a broken file: the running config keeps serving
    std::fs::write(&cfg, example.replace("listen:", "lissen:")).unwrap();
    signal(&child, "HUP");
    // a good one: CreateUser's success status becomes 202 once the reload lands
    std::fs::write(
        &cfg,
        example.replace("success_status: 201", "success_status: 202"),
    )
    .unwrap();
    signal(&child, "HUP");
    let t0 = std::time::Instant::now();
    let mut last = 0;
    while t0.elapsed() < std::time::Duration::from_secs(15) {
        last = create(client.clone()).await;
        if last == 202 {
            break;
        }
        assert_eq!(last, 201, "only the old or the new config ever answers");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    child.kill().ok();
    child.wait().ok();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(last, 202, "the reload never took effect");
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

#[test]
fn check_reports_left_out_bindings_in_plain_log_lines() {
    // grpc-gateway's examples: a few bindings cannot be served; the rest is, and the log says
    // which and why, without terminal escape codes (stderr is not a terminal here).
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::temp_dir().join(format!("portico-cli-corpus-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("corpus.yaml");
    std::fs::write(
        &cfg,
        format!(
            "descriptors:\n  - file: {}\nbackends:\n  gg:\n    endpoints: [http://127.0.0.1:1]\n    services: [grpc.gateway.examples.examplepb.FlowCombination, grpc.gateway.examples.examplepb.EchoService]\n",
            root.join("tests/corpus/grpc-gateway.binpb").display()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["--check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("HTTP bindings left out") && stdout.contains("StreamEmptyStream"),
        "{stdout}"
    );
    assert!(stderr.contains("HTTP binding left out"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "escape codes in {stderr:?}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn certs_writes_a_ca_a_server_and_a_client_certificate_that_load() {
    let dir = std::env::temp_dir().join(format!("portico-cli-certs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(BIN)
        .args(["certs", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        "ca.pem",
        "server.pem",
        "server.key",
        "client.pem",
        "client.key",
    ] {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        assert!(text.starts_with("-----BEGIN "), "{f}: {text}");
    }
    assert!(stdout.contains("tls: { cert: "), "{stdout}");
    // A config with TLS on these files checks out, and --check reads the files.
    let descriptors =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../descriptors/demo.binpb");
    let cfg = dir.join("tls.yaml");
    let yaml = |key: &str| {
        format!(
            "descriptors:\n  - file: {}\nbackends:\n  users:\n    endpoints: [http://127.0.0.1:1]\n    services: [demo.v1.UserService]\ntls: {{ cert: server.pem, key: {key}, client_ca: ca.pem, client_auth: optional }}\n",
            descriptors.display()
        )
    };
    std::fs::write(&cfg, yaml("server.key")).unwrap();
    let out = Command::new(BIN)
        .args(["--check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("client certificates optional"), "{stdout}");
    // The client's key is not the server certificate's: --check says so.
    std::fs::write(&cfg, yaml("client.key")).unwrap();
    let out = Command::new(BIN)
        .args(["--check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("do not go together"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn openapi_prints_the_document_of_the_rest_routes() {
    let out = Command::new(BIN).arg("openapi").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "Portico web BFF");
    assert!(doc["paths"]["/v1/users/{id}"]["get"].is_object(), "{doc}");
}
