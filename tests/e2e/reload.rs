//! Hot reload: a valid new config is swapped in; a bad one keeps the running config serving.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::future::BoxFuture;
use portico::error::GatewayError;
use portico::reload::{ConfigSource, reload};
use portico::request::RequestCtx;
use portico::request::policy::{CallSite, Chain, Next, Outcome, Policy, Stage};
use portico::upstream::Call;
use portico_e2e::{TestEnv, demo_config, repo_root};
use serde_json::json;

/// Counts the calls it sees.
#[derive(Default)]
struct Counter(AtomicUsize);

impl Policy for Counter {
    fn name(&self) -> &str {
        "counter"
    }

    fn on_call<'a>(
        &'a self,
        ctx: &'a RequestCtx,
        site: &'a CallSite,
        call: Call,
        next: Next<'a>,
    ) -> BoxFuture<'a, Result<Outcome, GatewayError>> {
        self.0.fetch_add(1, Ordering::Relaxed);
        next.run(ctx, site, call)
    }
}

#[tokio::test]
async fn a_good_reload_swaps_and_a_bad_one_keeps_the_old_config_serving() {
    let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("portico-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bff.yaml");
    let descriptors = repo_root().join("descriptors/demo.binpb");
    let base = demo_config(&demo, "")
        .replace("descriptors/demo.binpb", &descriptors.display().to_string());
    std::fs::write(&path, &base).unwrap();
    let counter = Arc::new(Counter::default());
    let source = ConfigSource {
        path: path.clone(),
        policies: Chain::default().with(Stage::Limit, counter.clone()),
        ..Default::default()
    };
    let env = TestEnv::serve(demo, source.build().await.unwrap()).await;
    let create = json!({"user": {"displayName": "R", "email": "r@x.io"}, "validateOnly": true});
    assert_eq!(env.json("POST", "/v1/users", &create).await.status, 200);

    // a valid change is swapped in for the next requests
    let changed = format!(
        "{base}rest:\n  methods:\n    demo.v1.UserService.CreateUser: {{ success_status: 201 }}\n"
    );
    std::fs::write(&path, &changed).unwrap();
    let restart = reload(&env.gateway, &source).await.unwrap();
    assert!(restart.is_empty(), "{restart:?}");
    assert_eq!(env.json("POST", "/v1/users", &create).await.status, 201);
    // policies installed in code are on the new snapshot too
    assert_eq!(counter.0.load(Ordering::Relaxed), 2);

    // a broken config is refused with the file and key named, and the old one keeps serving
    std::fs::write(
        &path,
        changed.replace("success_status: 201", "success_status: 201, colour: red"),
    )
    .unwrap();
    let e = reload(&env.gateway, &source).await.unwrap_err().to_string();
    assert!(e.contains("bff.yaml") && e.contains("colour"), "{e}");
    assert_eq!(env.json("POST", "/v1/users", &create).await.status, 201);
    assert_eq!(env.get("/v1/users/1").await.status, 200);

    // a change that needs a restart is reported
    std::fs::write(
        &path,
        changed.replace("listen: 127.0.0.1:0", "listen: 127.0.0.1:1"),
    )
    .unwrap();
    let restart = reload(&env.gateway, &source).await.unwrap();
    assert_eq!(restart, vec!["listen"]);
    std::fs::remove_dir_all(&dir).ok();
}
