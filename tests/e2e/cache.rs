//! The response cache, counted at the backend: hits and misses across doors, callers kept
//! apart by scope, TTL and the backend's `cache-control`, failures never stored, concurrent
//! identical calls made once, and the config checked against the descriptors.

use std::time::Duration;

use futures::future::join_all;
use portico_demo::DemoService;
use portico_e2e::{TestEnv, build_snapshot, demo_config, metric};
use serde_json::json;

const PRODUCT_CACHED: &str = "admin: { listen: 127.0.0.1:0 }\ncache:\n  methods:\n    demo.v1.CatalogService.GetProduct: { ttl: 1h }\n";

async fn lookups(env: &TestEnv, result: &str) -> f64 {
    metric(
        &env.scrape().await,
        "portico_cache_lookups_total",
        &[("result", result)],
    )
}

#[tokio::test]
async fn repeated_calls_are_answered_from_the_cache_whichever_door_asks() {
    let env = TestEnv::start_with(PRODUCT_CACHED).await;
    let catalog = env.knobs(DemoService::Catalog);
    let first = env.get("/v1/products/p-1").await;
    assert_eq!(first.status, 200, "{}", first.text);
    for _ in 0..2 {
        let again = env.get("/v1/products/p-1").await;
        assert_eq!(again.status, 200);
        assert_eq!(again.text, first.text, "a hit is the same answer");
    }
    assert_eq!(catalog.calls("GetProduct"), 1);
    assert_eq!(env.get("/v1/products/p-2").await.status, 200);
    assert_eq!(
        catalog.calls("GetProduct"),
        2,
        "another request, another key"
    );

    // GraphQL's root field makes the same call: the entry REST filled answers it (decoded
    // from the same bytes).
    let data = env
        .graphql(
            r#"{ product(id: "p-1") { id title price { units } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(data["data"]["product"]["id"], "p-1", "{data}");
    assert_eq!(data["data"]["product"]["title"], first.json()["title"]);
    assert_eq!(catalog.calls("GetProduct"), 2);
    assert_eq!(lookups(&env, "hit").await, 3.0);
    assert_eq!(lookups(&env, "miss").await, 2.0);

    // A method not listed is not stored.
    let users = env.knobs(DemoService::Users);
    env.get("/v1/users/1").await;
    env.get("/v1/users/1").await;
    assert_eq!(users.calls("GetUser"), 2);
}

#[tokio::test]
async fn callers_never_share_an_answer_their_scope_keeps_apart() {
    let keys = format!(
        "auth:\n  api_keys:\n    keys:\n      - {{ id: alice, sha256: {} }}\n      - {{ id: bob, sha256: {} }}\nauthorization:\n  default: anonymous\ncache:\n  methods:\n    demo.v1.UserService.GetUser: {{ ttl: 1h, scope: subject }}\n",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"key-alice")),
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"key-bob")),
    );
    let env = TestEnv::start_with(&keys).await;
    let users = env.knobs(DemoService::Users);
    let as_key = |key: Option<&'static str>| {
        let mut r = env.client.get(env.url("/v1/users/1"));
        if let Some(k) = key {
            r = r.header("x-api-key", k);
        }
        env.send(r)
    };
    assert_eq!(as_key(Some("key-alice")).await.status, 200);
    assert_eq!(as_key(Some("key-alice")).await.status, 200);
    assert_eq!(users.calls("GetUser"), 1, "alice's second call is a hit");
    assert_eq!(as_key(Some("key-bob")).await.status, 200);
    assert_eq!(users.calls("GetUser"), 2, "bob does not get alice's entry");
    assert_eq!(as_key(Some("key-bob")).await.status, 200);
    assert_eq!(users.calls("GetUser"), 2);
    // Anonymous callers have no entry to share: every call reaches the backend.
    assert_eq!(as_key(None).await.status, 200);
    assert_eq!(as_key(None).await.status, 200);
    assert_eq!(users.calls("GetUser"), 4);
}

#[tokio::test]
async fn the_backend_cache_control_shortens_forbids_or_keeps_private() {
    let env = TestEnv::start_with(PRODUCT_CACHED).await;
    let catalog = env.knobs(DemoService::Catalog);
    let get = || env.get("/v1/products/p-4");

    // no-store: never kept.
    catalog.set_cache_control(Some("no-store"));
    get().await;
    get().await;
    assert_eq!(catalog.calls("GetProduct"), 2);
    // private, for a method whose scope is public: never kept either.
    catalog.set_cache_control(Some("private, max-age=600"));
    get().await;
    get().await;
    assert_eq!(catalog.calls("GetProduct"), 4);

    // max-age=1 replaces the configured hour: a hit within the second, a miss after it.
    catalog.set_cache_control(Some("max-age=1"));
    get().await;
    get().await;
    assert_eq!(catalog.calls("GetProduct"), 5);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    get().await;
    assert_eq!(catalog.calls("GetProduct"), 6, "expired");
}

#[tokio::test]
async fn failures_are_never_stored() {
    let env = TestEnv::start_with(PRODUCT_CACHED).await;
    let catalog = env.knobs(DemoService::Catalog);
    catalog.fail_next(1);
    let r = env.get("/v1/products/p-5").await;
    assert!(r.status >= 500, "{} {}", r.status, r.text);
    assert_eq!(env.get("/v1/products/p-5").await.status, 200);
    assert_eq!(env.get("/v1/products/p-5").await.status, 200);
    assert_eq!(
        catalog.calls("GetProduct"),
        2,
        "the failure, then one success kept"
    );
    // An unknown product (NOT_FOUND) is an answer, but an error: not kept.
    assert_eq!(env.get("/v1/products/p-nope").await.status, 404);
    assert_eq!(env.get("/v1/products/p-nope").await.status, 404);
    assert_eq!(catalog.calls("GetProduct"), 4);
}

#[tokio::test]
async fn concurrent_identical_calls_make_one_backend_call() {
    let env = TestEnv::start_with(PRODUCT_CACHED).await;
    let catalog = env.knobs(DemoService::Catalog);
    catalog.set_latency(Duration::from_millis(500));
    let replies = join_all((0..100).map(|_| env.get("/v1/products/p-3"))).await;
    assert!(replies.iter().all(|r| r.status == 200));
    assert!(replies.iter().all(|r| r.text == replies[0].text));
    // The first call leads; the others wait for it (or, arriving after it, hit its entry).
    assert_eq!(catalog.calls("GetProduct"), 1);
    assert!(lookups(&env, "coalesced").await >= 1.0);

    // A method without side effects that is not cached is still coalesced: concurrent
    // identical calls share one call, later ones make their own.
    let users = env.knobs(DemoService::Users);
    users.set_latency(Duration::from_millis(500));
    let replies = join_all((0..10).map(|_| env.get("/v1/users/2"))).await;
    assert!(replies.iter().all(|r| r.status == 200));
    let shared = users.calls("GetUser");
    assert!(shared < 10, "{shared} calls for 10 concurrent requests");
    env.get("/v1/users/2").await;
    assert_eq!(users.calls("GetUser"), shared + 1, "not stored");
}

#[tokio::test]
async fn the_cache_config_is_checked_against_the_descriptors() {
    let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .expect("demo backends start");
    let err = |extra: &str| {
        let yaml = demo_config(&demo, extra);
        async move {
            match build_snapshot(&yaml).await {
                Ok(_) => panic!("accepted: {yaml}"),
                Err(e) => e.to_string(),
            }
        }
    };
    let e = err("cache:\n  methods:\n    demo.v1.UserService.CreateUser: { ttl: 1m }\n").await;
    assert!(
        e.contains("cache.methods.demo.v1.UserService.CreateUser") && e.contains("side effects"),
        "{e}"
    );
    let e = err("cache:\n  methods:\n    demo.v1.UserService.GetUsr: { ttl: 1m }\n").await;
    assert!(
        e.contains("cache.methods.demo.v1.UserService.GetUsr"),
        "{e}"
    );
    let e = err("cache:\n  methods:\n    demo.v1.OrderService.WatchOrders: { ttl: 1m }\n").await;
    assert!(e.contains("streaming"), "{e}");
    let e = err("cache:\n  methods:\n    demo.v1.UserService.GetUser: { ttl: 0s }\n").await;
    assert!(
        e.contains("cache.methods.demo.v1.UserService.GetUser.ttl"),
        "{e}"
    );
    let e =
        err("cache:\n  methods:\n    demo.v1.UserService.GetUser: { ttl: 1m, scope: everyone }\n")
            .await;
    assert!(e.contains("scope"), "{e}");
    // A method with side effects the team vouches for is accepted.
    let yaml = demo_config(
        &demo,
        "cache:\n  methods:\n    demo.v1.UserService.CreateUser: { ttl: 1m, cacheable: true }\n",
    );
    assert!(build_snapshot(&yaml).await.is_ok());
}

#[tokio::test]
async fn graphql_link_batches_are_cached_across_requests() {
    let env = TestEnv::start_with(
        "cache:\n  methods:\n    demo.v1.CatalogService.BatchGetProducts: { ttl: 1h }\n    demo.v1.OrderService.ListOrdersByUser: { ttl: 1h }\n",
    )
    .await;
    let query = r#"{ user(id: "1") { orders { items { quantity product { title } } } } }"#;
    let first = env.graphql(query, json!({})).await;
    assert!(first.get("errors").is_none(), "{first}");
    let second = env.graphql(query, json!({})).await;
    assert_eq!(first, second);
    let catalog = env.knobs(DemoService::Catalog);
    let orders = env.knobs(DemoService::Orders);
    assert_eq!(
        catalog.calls("BatchGetProducts"),
        1,
        "the products of every order, once"
    );
    assert_eq!(orders.calls("ListOrdersByUser"), 1);
    assert_eq!(
        env.knobs(DemoService::Users).calls("GetUser"),
        2,
        "not cached"
    );
}

#[tokio::test]
async fn a_failing_backend_is_answered_by_a_recent_reply_marked_stale() {
    let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .expect("demo backends start");
    let services = "    services: [demo.v1.CatalogService]\n";
    let yaml = demo_config(
        &demo,
        "admin: { listen: 127.0.0.1:0 }\ncache:\n  methods:\n    demo.v1.CatalogService.GetProduct: { ttl: 1h, stale_if_error: 10m }\n",
    )
    .replace(
        services,
        &format!(
            "{services}    resilience: {{ breaker: {{ consecutive_failures: 2, open_for: 1h }} }}\n"
        ),
    );
    let env = TestEnv::start_config(demo, &yaml).await;
    let catalog = env.knobs(DemoService::Catalog);
    // Fresh for one second (the backend's max-age beats the configured hour), then stale.
    catalog.set_cache_control(Some("max-age=1"));
    let fresh = env.get("/v1/products/p-1").await;
    assert_eq!(fresh.status, 200, "{}", fresh.text);
    assert_eq!(fresh.header("x-portico-fallback"), "");
    tokio::time::sleep(Duration::from_millis(1100)).await;

    catalog.set_fail_with(Some(tonic::Code::Unavailable));
    catalog.set_error_rate(1.0);
    let r = env.get("/v1/products/p-1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.text, fresh.text, "the recent reply");
    assert_eq!(r.header("x-portico-fallback"), "stale");
    assert_eq!(r.header("cache-control"), "no-store");
    assert!(r.header("age").parse::<u64>().unwrap() >= 1);
    let g = env
        .graphql(r#"{ product(id: "p-1") { title } }"#, json!({}))
        .await;
    assert_eq!(g["data"]["product"]["title"], fresh.json()["title"], "{g}");
    assert_eq!(
        g["extensions"]["stale"],
        json!(["demo.v1.CatalogService.GetProduct"]),
        "{g}"
    );
    // By now the breaker is open: no call reaches the backend, the stale reply still answers.
    let calls = catalog.calls("GetProduct");
    let r = env.get("/v1/products/p-1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("x-portico-fallback"), "stale");
    assert_eq!(catalog.calls("GetProduct"), calls, "the circuit is open");
    // Nothing recent to answer with: the failure shows.
    assert_eq!(env.get("/v1/products/p-2").await.status, 503);
    assert!(lookups(&env, "stale").await >= 3.0);
}

#[tokio::test]
async fn get_answers_say_how_long_they_may_be_kept() {
    let env = TestEnv::start_with(
        "cache:\n  methods:\n    demo.v1.CatalogService.GetProduct: { ttl: 60s, vary: [Accept-Language] }\n    demo.v1.UserService.ListUsers: { ttl: 30s }\n",
    )
    .await;
    let r = env.get("/v1/products/p-1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("cache-control"), "public, max-age=60");
    assert_eq!(r.header("age"), "0");
    assert_eq!(r.header("vary").to_ascii_lowercase(), "accept-language");
    // The hit says the same (within the same second).
    let r = env.get("/v1/products/p-1").await;
    assert_eq!(r.header("cache-control"), "public, max-age=60");
    // Another language is another entry.
    let before = env.knobs(DemoService::Catalog).calls("GetProduct");
    env.send(
        env.client
            .get(env.url("/v1/products/p-1"))
            .header("accept-language", "fr"),
    )
    .await;
    assert_eq!(
        env.knobs(DemoService::Catalog).calls("GetProduct"),
        before + 1
    );

    // A GraphQL GET whose every call is cached: the least fresh decides.
    let q = r#"{ product(id: "p-1") { title } users(pageSize: 2) { users { id } } }"#;
    let r = env
        .send(env.client.get(env.url("/graphql")).query(&[("query", q)]))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json().get("errors").is_none(), "{}", r.text);
    let cc = r.header("cache-control");
    assert!(cc.starts_with("public, max-age="), "{cc}");
    let max_age: u64 = cc["public, max-age=".len()..].parse().unwrap();
    let age: u64 = r.header("age").parse().unwrap();
    assert!(max_age - age <= 30, "{cc}, age {age}");

    // One call not cached (GetUser is not listed): no caching headers.
    let r = env.get("/v1/users/1").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), "");
    // Not a GET: none either.
    let r = env
        .json(
            "POST",
            "/demo.v1.CatalogService/GetProduct",
            &json!({"id": "p-1"}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), "");
    // A failure: none.
    let r = env.get("/v1/products/p-nope").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.header("cache-control"), "");
}

#[tokio::test]
async fn entries_are_purged_by_the_admin_endpoint_and_by_the_backend() {
    let env = TestEnv::start_with(
        "admin: { listen: 127.0.0.1:0 }\ncache:\n  methods:\n    demo.v1.CatalogService.GetProduct: { ttl: 1h }\n    demo.v1.UserService.GetUser: { ttl: 1h }\n",
    )
    .await;
    let catalog = env.knobs(DemoService::Catalog);
    let purge = |body: serde_json::Value| {
        let url = format!("{}/admin/cache/purge", env.admin.as_ref().unwrap());
        env.send(env.client.post(url).json(&body))
    };
    env.get("/v1/products/p-1").await;
    env.get("/v1/products/p-2").await;
    assert_eq!(catalog.calls("GetProduct"), 2);

    // One request's entries.
    let r = purge(json!({"method": "demo.v1.CatalogService.GetProduct", "request": {"id": "p-1"}}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["purged"], 1);
    env.get("/v1/products/p-1").await;
    env.get("/v1/products/p-2").await;
    assert_eq!(
        catalog.calls("GetProduct"),
        3,
        "p-1 fetched again, p-2 still kept"
    );
    // Every entry of the method.
    let r = purge(json!({"method": "demo.v1.CatalogService.GetProduct"})).await;
    assert_eq!(r.json()["purged"], 2, "{}", r.text);
    env.get("/v1/products/p-1").await;
    env.get("/v1/products/p-2").await;
    assert_eq!(catalog.calls("GetProduct"), 5);

    // Mistakes are named.
    let r = purge(json!({"method": "demo.v1.UserService.CreateUser"})).await;
    assert_eq!(r.status, 400);
    assert!(r.text.contains("not a cached method"), "{}", r.text);
    let r =
        purge(json!({"method": "demo.v1.CatalogService.GetProduct", "request": {"nope": 1}})).await;
    assert_eq!(r.status, 400);
    assert!(r.text.contains("nope"), "{}", r.text);
    let r = purge(json!({"methods": "x"})).await;
    assert_eq!(r.status, 400);
    assert!(r.text.contains("unknown field `methods`"), "{}", r.text);

    // A mutation's reply names what it made stale.
    let users = env.knobs(DemoService::Users);
    env.get("/v1/users/1").await;
    env.get("/v1/users/1").await;
    assert_eq!(users.calls("GetUser"), 1);
    users.add_reply_metadata(
        "portico-cache-purge",
        r#"demo.v1.UserService.GetUser {"id":"1"}"#,
    );
    let r = env
        .json("PATCH", "/v1/users/1", &json!({"displayName": "Renamed"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = env.get("/v1/users/1").await;
    assert_eq!(r.json()["displayName"], "Renamed", "{}", r.text);
    assert_eq!(users.calls("GetUser"), 2, "purged by the update's reply");
}

#[tokio::test]
async fn two_bffs_share_the_redis_tier_and_a_stopped_redis_fails_nothing() {
    let mut redis = portico_e2e::RedisServer::start();
    let cfg = format!(
        "admin: {{ listen: 127.0.0.1:0 }}\ncache:\n  redis: {{ url: \"{}\", prefix: \"t:cache:\", timeout: 500ms }}\n  methods:\n    demo.v1.CatalogService.GetProduct: {{ ttl: 1h }}\n",
        redis.url()
    );
    let a = TestEnv::start_with(&cfg).await;
    let b = TestEnv::start_with(&cfg).await;
    let (ca, cb) = (a.knobs(DemoService::Catalog), b.knobs(DemoService::Catalog));

    // A fetches; B answers from the shared tier without calling its backend.
    let x = a.get("/v1/products/p-1").await;
    assert_eq!(x.status, 200, "{}", x.text);
    let y = b.get("/v1/products/p-1").await;
    assert_eq!(y.status, 200, "{}", y.text);
    assert_eq!(y.text, x.text);
    assert_eq!((ca.calls("GetProduct"), cb.calls("GetProduct")), (1, 0));
    assert_eq!(lookups(&b, "redis_hit").await, 1.0);
    // Then from its own memory.
    b.get("/v1/products/p-1").await;
    assert_eq!(lookups(&b, "hit").await, 1.0);

    // A purge on A drops the shared entry: B fetches it itself.
    a.get("/v1/products/p-2").await;
    let url = format!("{}/admin/cache/purge", a.admin.as_ref().unwrap());
    let r = a
        .send(a.client.post(url).json(
            &json!({"method": "demo.v1.CatalogService.GetProduct", "request": {"id": "p-2"}}),
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["purged"], 2, "memory and Redis: {}", r.text);
    b.get("/v1/products/p-2").await;
    assert_eq!(cb.calls("GetProduct"), 1);

    // A purge reaches the other replica's memory too (published through Redis): B held p-1
    // in memory, and fetches it again once the purge made on A is heard.
    let cache_b = b.gateway.snapshot().cache.clone().expect("a cache");
    tokio::time::timeout(Duration::from_secs(10), cache_b.listening())
        .await
        .expect("B listens for purges");
    let heard = cache_b.purges_heard();
    let url = format!("{}/admin/cache/purge", a.admin.as_ref().unwrap());
    let r = a
        .send(a.client.post(url).json(
            &json!({"method": "demo.v1.CatalogService.GetProduct", "request": {"id": "p-1"}}),
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    tokio::time::timeout(Duration::from_secs(10), cache_b.heard_purges(heard + 1))
        .await
        .expect("B hears the purge");
    assert_eq!(b.get("/v1/products/p-1").await.status, 200);
    assert_eq!(cb.calls("GetProduct"), 2, "B's copy was purged too");

    // Redis gone: no request fails; the memory tier still answers.
    redis.stop();
    for env in [&a, &b] {
        for _ in 0..2 {
            let r = env.get("/v1/products/p-3").await;
            assert_eq!(r.status, 200, "{}", r.text);
        }
        assert_eq!(env.get("/v1/products/p-1").await.status, 200);
    }
    assert_eq!(
        ca.calls("GetProduct"),
        4,
        "p-1, p-2, p-3 once, p-1 after its purge"
    );
}

#[tokio::test]
async fn stale_while_revalidate_answers_at_once_and_refreshes_behind() {
    let env = TestEnv::start_with(
        "admin: { listen: 127.0.0.1:0 }\ncache:\n  methods:\n    demo.v1.CatalogService.GetProduct: { ttl: 1h, stale_while_revalidate: 1h }\n",
    )
    .await;
    let catalog = env.knobs(DemoService::Catalog);
    let cache = || env.gateway.snapshot().cache.clone().expect("a cache");
    catalog.set_cache_control(Some("max-age=1"));
    let first = env.get("/v1/products/p-1").await;
    assert_eq!(first.status, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // Stale: answered at once from the entry, even while the backend fails; the refresh
    // behind it fails too and the entry stays.
    catalog.set_error_rate(1.0);
    let r = env.get("/v1/products/p-1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.text, first.text);
    assert_eq!(
        r.header("x-portico-fallback"),
        "",
        "not a fallback: a cache answer"
    );
    cache().idle().await;
    assert_eq!(catalog.calls("GetProduct"), 2, "one refresh");
    assert_eq!(lookups(&env, "revalidate").await, 1.0);

    // Backend back: the next answer is still the stale one, and its refresh succeeds.
    catalog.set_error_rate(0.0);
    catalog.set_cache_control(Some("max-age=3600"));
    let r = env.get("/v1/products/p-1").await;
    assert_eq!(r.status, 200);
    cache().idle().await;
    assert_eq!(catalog.calls("GetProduct"), 3);
    // Now fresh: a plain hit, no call.
    let r = env.get("/v1/products/p-1").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), "public, max-age=3600");
    assert_eq!(catalog.calls("GetProduct"), 3);
    assert_eq!(lookups(&env, "revalidate").await, 2.0);
}

#[tokio::test]
async fn operation_endpoints_say_it_too_and_etags_still_revalidate() {
    let env = TestEnv::start_with(
        "operations: { dir: bff-web/operations }\nendpoints:\n  - { path: \"/api/products/{id}\", operation: Product, unwrap: product }\nshaping:\n  etag: true\ncache:\n  methods:\n    demo.v1.CatalogService.GetProduct: { ttl: 120s }\n",
    )
    .await;
    let r = env.get("/api/products/p-1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("cache-control"), "public, max-age=120");
    let etag = r.header("etag").to_string();
    assert!(!etag.is_empty());
    let again = env
        .send(
            env.client
                .get(env.url("/api/products/p-1"))
                .header("if-none-match", &etag),
        )
        .await;
    assert_eq!(again.status, 304);
    assert_eq!(env.knobs(DemoService::Catalog).calls("GetProduct"), 1);
    // The same on the REST route.
    let r = env.get("/v1/products/p-1").await;
    assert_eq!(r.header("cache-control"), "public, max-age=120");
    assert_eq!(env.knobs(DemoService::Catalog).calls("GetProduct"), 1);
}
