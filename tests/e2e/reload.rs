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

/// A folder of its own for one test's files (removed when dropped).
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("portico-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// GETs an admin path (the test's config has an admin listener).
async fn admin_get(env: &TestEnv, path: &str) -> portico_e2e::Reply {
    let url = format!("{}{path}", env.admin.as_ref().expect("an admin listener"));
    env.send(env.client.get(url)).await
}

/// The breaker state of `backend` in `/admin/backends`.
async fn breaker_state(env: &TestEnv, backend: &str) -> String {
    let all = admin_get(env, "/admin/backends").await.json();
    all["backends"]
        .as_array()
        .and_then(|l| l.iter().find(|b| b["name"] == backend))
        .map(|b| b["breaker"]["state"].as_str().unwrap_or("").to_string())
        .unwrap_or_else(|| panic!("no backend {backend} in {all}"))
}

#[tokio::test]
async fn a_backend_keeps_its_breaker_state_across_a_reload_that_does_not_touch_it() {
    let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .unwrap();
    let dir = TempDir::new("reload-breaker");
    let path = dir.0.join("bff.yaml");
    let descriptors = repo_root().join("descriptors/demo.binpb");
    let base = demo_config(&demo, "admin: { listen: 127.0.0.1:0 }\n")
        .replace("descriptors/demo.binpb", &descriptors.display().to_string())
        .replace(
            "    services: [demo.v1.UserService]\n",
            "    services: [demo.v1.UserService]\n    resilience: { breaker: { consecutive_failures: 2, open_for: 60s } }\n",
        );
    std::fs::write(&path, &base).unwrap();
    let source = ConfigSource {
        path: path.clone(),
        ..Default::default()
    };
    let env = TestEnv::serve(demo, source.build().await.unwrap()).await;
    let knobs = env.knobs(portico_demo::DemoService::Users);
    knobs.fail_next(2);
    for _ in 0..2 {
        assert_eq!(env.get("/v1/users/1").await.status, 503);
    }
    assert_eq!(breaker_state(&env, "users").await, "open");

    // another backend's config changes: the users backend is carried over as it was
    let other = base.replace(
        "    services: [demo.v1.OrderService]\n",
        "    services: [demo.v1.OrderService]\n    timeout: 3s\n",
    );
    assert_ne!(other, base);
    std::fs::write(&path, &other).unwrap();
    reload(&env.gateway, &source).await.unwrap();
    assert_eq!(breaker_state(&env, "users").await, "open");
    let r = env.get("/v1/users/1").await;
    assert!(r.text.contains("circuit breaker is open"), "{}", r.text);
    assert_eq!(
        knobs.calls("GetUser"),
        2,
        "the open breaker kept the backend out"
    );
    assert_eq!(env.get("/v1/orders/o-1001").await.status, 200);

    // its own config changes: it starts afresh
    std::fs::write(
        &path,
        other.replace("consecutive_failures: 2", "consecutive_failures: 3"),
    )
    .unwrap();
    reload(&env.gateway, &source).await.unwrap();
    assert_eq!(breaker_state(&env, "users").await, "closed");
    assert_eq!(env.get("/v1/users/1").await.status, 200);
}

#[tokio::test]
async fn a_proto_changed_on_disk_adds_a_route_under_load_and_a_broken_one_keeps_the_old_routes() {
    let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .unwrap();
    let dir = TempDir::new("reload-watch");
    // the demo protos, compiled in-process from a folder of the test's own
    let protos = dir.0.join("proto/demo/v1");
    std::fs::create_dir_all(&protos).unwrap();
    for f in ["catalog", "common", "orders", "users"] {
        std::fs::copy(
            repo_root().join(format!("descriptors/proto/demo/v1/{f}.proto")),
            protos.join(format!("{f}.proto")),
        )
        .unwrap();
    }
    let path = dir.0.join("bff.yaml");
    let yaml = demo_config(
        &demo,
        "admin: { listen: 127.0.0.1:0 }\nreload: { debounce: 100ms }\n",
    )
    .replace("- file: descriptors/demo.binpb", "- proto: proto");
    std::fs::write(&path, &yaml).unwrap();
    let source = ConfigSource {
        path: path.clone(),
        ..Default::default()
    };
    let env = TestEnv::serve_source(demo, source).await;
    env.reloader.as_ref().unwrap().start();
    assert_eq!(env.get("/v2/people/1").await.status, 404);

    // a load loop that must never see a failure
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = tokio::spawn({
        let (client, url, stop) = (
            env.client.clone(),
            format!("{}/v1/users/1", env.base),
            stop.clone(),
        );
        async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                match client.get(&url).send().await {
                    Ok(r) if r.status() == 200 => ok += 1,
                    Ok(r) => failed.push(r.status().to_string()),
                    Err(e) => failed.push(e.to_string()),
                }
            }
            (ok, failed)
        }
    });

    // a new binding, written to disk, is served within 2s
    let users = protos.join("users.proto");
    let text = std::fs::read_to_string(&users).unwrap();
    let binding = r#"additional_bindings { get: "/v1/people/{id}" }"#;
    assert!(text.contains(binding));
    let changed_at = std::time::Instant::now();
    std::fs::write(
        &users,
        text.replace(
            binding,
            &format!(r#"{binding} additional_bindings {{ get: "/v2/people/{{id}}" }}"#),
        ),
    )
    .unwrap();
    let served_after = loop {
        if env.get("/v2/people/1").await.status == 200 {
            break changed_at.elapsed();
        }
        assert!(
            changed_at.elapsed() < std::time::Duration::from_secs(10),
            "the new route never appeared: {}",
            admin_get(&env, "/admin/reloads").await.text
        );
    };
    eprintln!("the new route was served {served_after:?} after the write");
    assert!(
        served_after < std::time::Duration::from_secs(2),
        "took {served_after:?}"
    );
    let history = admin_get(&env, "/admin/reloads").await.json();
    let last = history["reloads"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["result"], "ok", "{history}");
    assert!(
        last["trigger"].as_str().unwrap().contains("users.proto"),
        "{history}"
    );

    // a broken file: the reload fails, says why in the history, the old routes keep serving
    let before = history["reloads"].as_array().unwrap().len();
    std::fs::write(&users, "syntax = \"proto3\";\nmessage {").unwrap();
    let failed = loop {
        let h = admin_get(&env, "/admin/reloads").await.json();
        let records = h["reloads"].as_array().unwrap().clone();
        if records.len() > before {
            break records.last().unwrap().clone();
        }
        assert!(
            changed_at.elapsed() < std::time::Duration::from_secs(20),
            "no reload after the broken write: {h}"
        );
    };
    assert_eq!(failed["result"], "error", "{failed}");
    assert!(
        failed["error"].as_str().unwrap().contains("users.proto"),
        "{failed}"
    );
    assert_eq!(env.get("/v2/people/1").await.status, 200);

    // POST /admin/reload answers the record of the reload it ran (422: it failed)
    let url = format!("{}/admin/reload", env.admin.as_ref().unwrap());
    let r = env.send(env.client.post(&url)).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.json()["trigger"], "POST /admin/reload");
    std::fs::write(&users, &text).unwrap();
    let r = env.send(env.client.post(&url)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["result"], "ok");

    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = load.await.unwrap();
    assert!(ok > 0);
    assert!(
        failed.is_empty(),
        "{} of {} failed: {failed:?}",
        failed.len(),
        ok as usize + failed.len()
    );
}

#[tokio::test]
async fn post_admin_reload_without_a_config_file_says_there_is_nothing_to_reload() {
    let env = TestEnv::start_with("admin: { listen: 127.0.0.1:0 }\n").await;
    let url = format!("{}/admin/reload", env.admin.as_ref().unwrap());
    let r = env.send(env.client.post(&url)).await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert!(r.text.contains("nothing to reload"), "{}", r.text);
}

/// A reflection server serving the descriptor set `set` on `addr` (port 0: any), until the
/// returned sender is dropped; the join handle ends once it stopped.
async fn reflection_on(
    addr: std::net::SocketAddr,
    set: &'static [u8],
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(set)
        .build_v1()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                async {
                    let _ = stopped.await;
                },
            )
            .await;
    });
    (addr, stop, task)
}

/// The services `/admin/services` lists.
async fn served_services(env: &TestEnv) -> Vec<String> {
    let all = admin_get(env, "/admin/services").await.json();
    all["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn reflection_is_polled_and_a_changed_answer_is_swapped_in() {
    let demo_set: &'static [u8] = Box::leak(
        std::fs::read(repo_root().join("descriptors/demo.binpb"))
            .unwrap()
            .into_boxed_slice(),
    );
    let corpus_set: &'static [u8] = Box::leak(
        std::fs::read(repo_root().join("tests/corpus/grpc-gateway.binpb"))
            .unwrap()
            .into_boxed_slice(),
    );
    let (addr, stop, task) = reflection_on("127.0.0.1:0".parse().unwrap(), demo_set).await;
    let dir = TempDir::new("reload-reflection");
    let path = dir.0.join("bff.yaml");
    std::fs::write(
        &path,
        format!(
            "listen: 127.0.0.1:0\nadmin: {{ listen: 127.0.0.1:0 }}\nreload: {{ watch: false, reflection_interval: 50ms }}\ndescriptors:\n  - reflection: things\nbackends:\n  things:\n    endpoints: [http://{addr}]\n"
        ),
    )
    .unwrap();
    let source = ConfigSource {
        path,
        ..Default::default()
    };
    let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .unwrap();
    let env = TestEnv::serve_source(demo, source).await;
    let reloader = env.reloader.clone().unwrap();
    reloader.start();
    assert!(
        served_services(&env)
            .await
            .contains(&"demo.v1.UserService".to_string())
    );

    // the backend is redeployed on the same address with other services
    drop(stop);
    task.await.unwrap();
    let (_, stop_b, task_b) = reflection_on(addr, corpus_set).await;
    let t0 = std::time::Instant::now();
    let record = loop {
        let h = admin_get(&env, "/admin/reloads").await.json();
        if let Some(r) = h["reloads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["result"] == "ok")
        {
            break r.clone();
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(10),
            "no reload after the backend changed: {h}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(record["trigger"], "reflection poll", "{record}");
    let now = served_services(&env).await;
    assert!(!now.contains(&"demo.v1.UserService".to_string()), "{now:?}");
    assert!(!now.is_empty());
    // polls that found nothing new swapped nothing and left no record (a poll that found
    // the backend down in between is recorded as an error)
    let h = admin_get(&env, "/admin/reloads").await.json();
    let records = h["reloads"].as_array().unwrap();
    assert_eq!(
        records.iter().filter(|r| r["result"] == "ok").count(),
        1,
        "{h}"
    );
    assert!(
        records
            .iter()
            .all(|r| r["trigger"] == "reflection poll" && r["result"] != "unchanged"),
        "{h}"
    );

    // the backend goes away for good: every poll fails, counted each time, said once
    drop(stop_b);
    task_b.await.unwrap();
    let before = records.iter().filter(|r| r["result"] == "error").count();
    let errors = || async {
        portico_e2e::metric(
            &env.scrape().await,
            "portico_reloads_total",
            &[("result", "error")],
        )
    };
    let start_errors = errors().await;
    let t0 = std::time::Instant::now();
    while errors().await < start_errors + 3.0 {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(10),
            "the polls stopped failing"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let h = admin_get(&env, "/admin/reloads").await.json();
    let after = h["reloads"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["result"] == "error")
        .count();
    assert_eq!(after, before + 1, "{h}");
    // and the services it served last keep being served
    assert!(!served_services(&env).await.is_empty());
}
