//! A SIGTERM under load loses no request: readiness turns 503 first, in-flight requests all
//! finish with 200, and the process exits 0; with one multi-threaded runtime and with one
//! runtime per core. Runs the real binary with `--demo` and `PORTICO_DEMO_LATENCY` so that
//! requests are in flight when the signal arrives.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{signal, spawn_bff_with_admin};

/// Requests in flight when the signal is sent.
const N: usize = 8;

#[tokio::test]
async fn sigterm_under_load_loses_no_request() {
    sigterm_under_load("multi_thread").await;
}

#[tokio::test]
async fn sigterm_under_load_loses_no_request_with_one_runtime_per_core() {
    sigterm_under_load("per_core").await;
}

async fn sigterm_under_load(runtime: &str) {
    let dir = std::env::temp_dir().join(format!("portico-drain-{runtime}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("drain.yaml");
    let descriptors = concat!(env!("CARGO_MANIFEST_DIR"), "/../descriptors/demo.binpb");
    std::fs::write(
        &cfg,
        format!(
            "descriptors:\n  - file: {descriptors}\nbackends:\n  users: {{ endpoints: [http://127.0.0.1:1], services: [demo.v1.UserService] }}\n  orders: {{ endpoints: [http://127.0.0.1:1], services: [demo.v1.OrderService] }}\n  catalog: {{ endpoints: [http://127.0.0.1:1], services: [demo.v1.CatalogService] }}\ndrain: {{ delay: 500ms, grace: 10s }}\nadmin: {{ listen: 127.0.0.1:0 }}\nruntime: {{ mode: {runtime}, threads: 2 }}\n"
        ),
    )
    .unwrap();
    let cfg_arg = cfg.display().to_string();
    let (mut child, base, admin_base) = spawn_bff_with_admin(
        &["--demo", "--listen", "127.0.0.1:0", "--config", &cfg_arg],
        &[("PORTICO_DEMO_LATENCY", "1500ms")],
    )
    .await;
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let requests: Vec<_> = (0..N)
        .map(|i| {
            let (client, url) = (client.clone(), format!("{base}/v1/users/{}", i + 1));
            tokio::spawn(async move {
                let resp = client.get(url).send().await?;
                let status = resp.status().as_u16();
                let body = resp.text().await?;
                Ok::<_, reqwest::Error>((status, body))
            })
        })
        .collect();
    // Wait until all N are in flight at the backend (a counter, not a sleep).
    let t0 = Instant::now();
    loop {
        let admin: serde_json::Value = client
            .get(format!("{admin_base}/admin/backends"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let users = admin["backends"]
            .as_array()
            .and_then(|l| l.iter().find(|b| b["name"] == "users").cloned())
            .unwrap();
        if users["in_flight"] == N {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "never in flight: {admin}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    signal(&child, "TERM");

    // Readiness turns 503 first, while the listener still accepts (drain.delay).
    let t0 = Instant::now();
    loop {
        let r = client.get(format!("{base}/readyz")).send().await.unwrap();
        if r.status() == 503 {
            assert_eq!(r.text().await.unwrap(), "draining\n");
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "readiness never flipped"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    for r in requests {
        let (status, body) = r.await.unwrap().expect("the request was answered");
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"id\""), "{body}");
    }
    let exit = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(exit.success(), "exit status {exit:?}");
    std::fs::remove_dir_all(&dir).ok();
}
