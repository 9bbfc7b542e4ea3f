//! API versions: v1 and v2 of the user service on two backends, selected by path prefix,
//! header, `Accept` vendor type, query parameter or default; v1 deprecated (headers, OpenAPI,
//! SDL, metrics), then retired (410 over REST, GONE in GraphQL, UNIMPLEMENTED over gRPC-Web);
//! config errors; a reload that deprecates then retires v1 under load.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use portico::reload::ConfigSource;
use portico_demo::DemoCluster;
use portico_demo::pb::GetUserRequest;
use portico_demo::users_v2::RunningUsersV2;
use portico_e2e::grpc_web::WebMode;
use portico_e2e::{
    DEMO_LINKS, DEMO_SIZE_ARGS, TestEnv, build_snapshot, demo_config, metric, repo_root,
};
use serde_json::json;

const DEPRECATED: &str = "deprecated: { since: 2026-10-01T00:00:00Z, sunset: 2027-03-31T00:00:00Z, link: https://example.com/migrate }";
const RETIRED: &str =
    "retired: { replacement: v2, message: \"v1 was retired on 2027-03-31: use /v2\" }";

/// The demo config plus `demo.v2.UserService` on its own backend, v1 and v2 as versions
/// (`v1_state`: extra keys of v1's entry, e.g. [`DEPRECATED`]).
fn config(demo: &DemoCluster, v2: &RunningUsersV2, v1_state: &[&str]) -> String {
    let v1_extra: String = v1_state.iter().map(|s| format!("\n      {s}")).collect();
    let extra = format!(
        r#"admin: {{ listen: 127.0.0.1:0 }}
headers: {{ response: [x-demo-served-by] }}
versions:
  select: {{ header: x-api-version, accept_vendor: demo, query: api-version }}
  default: v1
  list:
    - name: v1
      services: [demo.v1.UserService]{v1_extra}
    - name: v2
      services: [demo.v2.*]
graphql:
  limits: {{ size_args: {DEMO_SIZE_ARGS} }}
  methods:
    demo.v1.UserService.GetUser: {{ field: user }}
    demo.v2.UserService.GetUser: {{ field: userV2 }}
  links:{DEMO_LINKS}"#
    );
    demo_config(demo, &extra)
        .replacen(
            "  - file: descriptors/demo.binpb\n",
            "  - file: descriptors/demo.binpb\n  - proto: descriptors/versions\n",
            1,
        )
        .replacen(
        "backends:\n",
        &format!(
            "backends:\n  users_v2:\n    endpoints: [{}]\n    services: [demo.v2.UserService]\n",
            v2.endpoint()
        ),
        1,
    )
}

async fn start(v1_state: &[&str]) -> (TestEnv, RunningUsersV2) {
    let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .unwrap();
    let v2 = portico_demo::users_v2::spawn(([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    let snapshot = build_snapshot(&config(&demo, &v2, v1_state))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (TestEnv::serve(demo, snapshot).await, v2)
}

async fn get_with(env: &TestEnv, path: &str, headers: &[(&str, &str)]) -> portico_e2e::Reply {
    let mut req = env.client.get(env.url(path));
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    env.send(req).await
}

fn served_by(r: &portico_e2e::Reply) -> &str {
    r.header("grpc-metadata-x-demo-served-by")
}

#[tokio::test]
async fn v1_and_v2_are_served_side_by_side_by_two_backends() {
    let (env, _v2) = start(&[]).await;
    let v1 = env.get("/v1/users/1").await;
    assert_eq!(v1.status, 200, "{}", v1.text);
    assert_eq!(served_by(&v1), "users");
    assert_eq!(v1.json()["displayName"], "Ada Lovelace");
    assert!(v1.json().get("fullName").is_none());
    let v2 = env.get("/v2/users/1").await;
    assert_eq!(v2.status, 200, "{}", v2.text);
    assert_eq!(served_by(&v2), "users-v2");
    assert_eq!(
        v2.json(),
        json!({"id": "1", "fullName": "Ada Lovelace", "contactEmail": "ada@example.com", "createdAt": v1.json()["createdAt"]})
    );
    // a current version says nothing about deprecation
    for r in [&v1, &v2] {
        assert!(r.headers.get("deprecation").is_none());
        assert!(r.headers.get("sunset").is_none());
    }
    // errors come from each version's own backend
    let missing = env.get("/v2/users/999").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["details"][0]["resourceType"], "demo.v2.User");
    // the answers are counted by version
    let s = env.scrape().await;
    let count = |v| {
        metric(
            &s,
            "portico_api_version_requests_total",
            &[("version", v), ("state", "current")],
        )
    };
    assert_eq!(count("v1"), 1.0);
    assert_eq!(count("v2"), 2.0);
}

#[tokio::test]
async fn an_unversioned_path_is_served_by_the_version_the_caller_names() {
    let (env, _v2) = start(&[]).await;
    // no name: the default (v1); the answer varies on the selecting headers
    let r = env.get("/users/1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(served_by(&r), "users");
    assert_eq!(r.header("vary"), "x-api-version, accept");
    // by header, by Accept vendor type, by query parameter
    let r = get_with(&env, "/users/1", &[("x-api-version", "v2")]).await;
    assert_eq!(served_by(&r), "users-v2");
    assert_eq!(r.json()["fullName"], "Ada Lovelace");
    let r = get_with(
        &env,
        "/users/1",
        &[("accept", "application/vnd.demo.v2+json")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(served_by(&r), "users-v2");
    let r = env.get("/users/1?api-version=v2").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(served_by(&r), "users-v2");
    let r = env.get("/users/1?api-version=v1").await;
    assert_eq!(served_by(&r), "users");
    // the header wins over the query parameter; a versioned path wins over both
    let r = get_with(&env, "/users/1?api-version=v1", &[("x-api-version", "v2")]).await;
    assert_eq!(served_by(&r), "users-v2");
    let r = get_with(&env, "/v1/users/1", &[("x-api-version", "v2")]).await;
    assert_eq!(served_by(&r), "users");
    assert!(r.headers.get("vary").is_none());
    // an unknown version is refused, naming where it was read
    let r = get_with(&env, "/users/1", &[("x-api-version", "v9")]).await;
    portico_e2e::assert_error(
        &r,
        400,
        3,
        "unknown API version \"v9\" in the x-api-version header (known: v1, v2)",
    );
    let r = get_with(
        &env,
        "/users/1",
        &[("accept", "application/vnd.demo.v9+json")],
    )
    .await;
    assert_eq!(r.status, 406, "{}", r.text);
    let r = env.get("/users/1?api-version=v9").await;
    portico_e2e::assert_error(&r, 400, 3, "api-version query parameter");
    // a path no version has stays a 404
    assert_eq!(env.get("/nothing/here").await.status, 404);
}

fn assert_deprecation_headers(r: &portico_e2e::Reply) {
    assert_eq!(r.header("deprecation"), "@1790812800", "{:?}", r.headers);
    assert_eq!(r.header("sunset"), "Wed, 31 Mar 2027 00:00:00 GMT");
    assert_eq!(
        r.header("link"),
        "<https://example.com/migrate>; rel=\"deprecation\""
    );
}

#[tokio::test]
async fn a_deprecated_version_says_so_on_every_answer_and_in_its_documents() {
    let (env, _v2) = start(&[DEPRECATED]).await;
    // success and error answers of v1, by path and by selection
    let ok = env.get("/v1/users/1").await;
    assert_eq!(ok.status, 200);
    assert_deprecation_headers(&ok);
    let missing = env.get("/v1/users/999").await;
    assert_eq!(missing.status, 404);
    assert_deprecation_headers(&missing);
    let bad = env.get("/v1/users/abc").await;
    assert_eq!(bad.status, 400);
    assert_deprecation_headers(&bad);
    let selected = get_with(&env, "/users/1", &[("x-api-version", "v1")]).await;
    assert_deprecation_headers(&selected);
    // gRPC-Web calls of v1 too
    let web = env
        .grpc_web(
            "/demo.v1.UserService/GetUser",
            &GetUserRequest { id: 1 },
            WebMode::Binary,
            &[],
        )
        .await;
    assert_eq!(web.code(), 0, "{web:?}");
    assert_eq!(web.headers["deprecation"], "@1790812800");
    // v2 and unversioned services say nothing
    for path in ["/v2/users/1", "/v1/products/p-001"] {
        let r = env.get(path).await;
        assert!(r.headers.get("deprecation").is_none(), "{path}");
        assert!(r.headers.get("sunset").is_none(), "{path}");
    }

    // OpenAPI: v1's operations deprecated with the note, v2's not
    let doc = env.get("/openapi.json").await.json();
    let op = &doc["paths"]["/v1/users/{id}"]["get"];
    assert_eq!(op["deprecated"], true, "{op}");
    assert_eq!(op["x-api-version"], "v1");
    let note = "API version v1 is deprecated since 2026-10-01T00:00:00Z and will be retired on 2027-03-31T00:00:00Z. See https://example.com/migrate";
    assert!(
        op["description"].as_str().unwrap().ends_with(note),
        "{}",
        op["description"]
    );
    assert_eq!(doc["paths"]["/v1/users"]["post"]["deprecated"], true);
    let v2 = &doc["paths"]["/v2/users/{id}"]["get"];
    assert!(v2.get("deprecated").is_none(), "{v2}");
    assert_eq!(v2["x-api-version"], "v2");
    assert!(
        doc["paths"]["/v1/products/{id}"]["get"]
            .get("deprecated")
            .is_none()
    );

    // the SDL: v1's root fields deprecated with the note, v2's not
    let sdl = env.gateway.snapshot().graphql.as_ref().unwrap().sdl();
    assert!(
        sdl.contains(&format!("@deprecated(reason: \"{note}\")")),
        "{sdl}"
    );
    let user_v2 = sdl.split("userV2(").nth(1).unwrap();
    let user_v2 = &user_v2[..user_v2.find('\n').unwrap()];
    assert!(!user_v2.contains("@deprecated"), "{user_v2}");
    // introspection says the same
    let r = env
        .graphql(
            "{ __type(name: \"Query\") { fields(includeDeprecated: true) { name isDeprecated deprecationReason } } }",
            json!({}),
        )
        .await;
    let fields = r["data"]["__type"]["fields"].as_array().unwrap();
    let field = |n: &str| fields.iter().find(|f| f["name"] == n).unwrap().clone();
    assert_eq!(field("user")["isDeprecated"], true);
    assert_eq!(field("user")["deprecationReason"], note);
    assert_eq!(field("userV2")["isDeprecated"], false);

    let s = env.scrape().await;
    assert!(
        metric(
            &s,
            "portico_api_version_requests_total",
            &[("version", "v1"), ("state", "deprecated")],
        ) >= 5.0
    );
}

#[tokio::test]
async fn a_retired_version_answers_gone_naming_its_replacement_on_every_door() {
    let (env, _v2) = start(&[DEPRECATED, RETIRED]).await;
    // REST: 410 with the usual google.rpc.Status body, naming v2 and its route
    let r = env.get("/v1/users/1").await;
    assert_eq!(r.status, 410, "{}", r.text);
    assert_eq!(
        r.json(),
        json!({
            "code": 12,
            "message": "v1 was retired on 2027-03-31: use /v2 (replacement: GET /v2/users/{id})",
            "details": [{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_VERSION_RETIRED",
                "domain": "portico",
                "metadata": {
                    "version": "v1",
                    "method": "demo.v1.UserService.GetUser",
                    "replacement": "v2",
                    "replacementMethod": "demo.v2.UserService.GetUser",
                    "replacementRoute": "GET /v2/users/{id}",
                },
            }],
        })
    );
    assert_eq!(r.header("content-type"), "application/json");
    assert_deprecation_headers(&r);
    // before the body is read: a bad body still gets the 410
    let r = env
        .raw("POST", "/v1/users", "application/json", "{not json")
        .await;
    assert_eq!(r.status, 410, "{}", r.text);
    let body = r.json();
    assert_eq!(body["message"], "v1 was retired on 2027-03-31: use /v2");
    assert!(
        body["details"][0]["metadata"]
            .get("replacementRoute")
            .is_none()
    );
    // the default routes and a selected unversioned path too
    let r = env
        .json("POST", "/demo.v1.UserService/GetUser", &json!({"id": 1}))
        .await;
    assert_eq!(r.status, 410);
    let r = get_with(&env, "/users/1", &[("x-api-version", "v1")]).await;
    assert_eq!(r.status, 410);
    // v2 is served
    assert_eq!(env.get("/v2/users/1").await.status, 200);
    assert_eq!(
        get_with(&env, "/users/1", &[("x-api-version", "v2")])
            .await
            .status,
        200
    );

    // GraphQL: the field stays (deprecated, saying so), its call answers GONE
    let r = env
        .graphql(
            "{ user(id: 1) { displayName } userV2(id: 1) { fullName } }",
            json!({}),
        )
        .await;
    assert_eq!(r["data"]["userV2"]["fullName"], "Ada Lovelace", "{r}");
    assert!(r["data"]["user"].is_null(), "{r}");
    let e = &r["errors"][0];
    assert_eq!(e["path"], json!(["user"]));
    assert_eq!(e["extensions"]["code"], "GONE");
    assert_eq!(e["extensions"]["replacement"], "v2");
    assert_eq!(
        e["extensions"]["replacementMethod"],
        "demo.v2.UserService.GetUser"
    );
    assert!(e["message"].as_str().unwrap().contains("use /v2"), "{e}");
    let sdl = env.gateway.snapshot().graphql.as_ref().unwrap().sdl();
    assert!(
        sdl.contains(
            "@deprecated(reason: \"v1 was retired on 2027-03-31: use /v2 (answers 410 Gone).\")"
        ),
        "{sdl}"
    );

    // gRPC-Web: UNIMPLEMENTED with the message
    let web = env
        .grpc_web(
            "/demo.v1.UserService/GetUser",
            &GetUserRequest { id: 1 },
            WebMode::Text,
            &[],
        )
        .await;
    web.assert_status(
        12,
        "v1 was retired on 2027-03-31: use /v2 (replacement: GET /v2/users/{id})",
    );

    // nothing reached the v1 backend
    assert_eq!(
        env.knobs(portico_demo::DemoService::Users).calls("GetUser"),
        0
    );
    let s = env.scrape().await;
    assert!(
        metric(
            &s,
            "portico_api_version_requests_total",
            &[("version", "v1"), ("state", "retired")],
        ) >= 5.0
    );
}

#[tokio::test]
async fn config_errors_name_the_key() {
    let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .unwrap();
    let v2 = portico_demo::users_v2::spawn(([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    let good = config(&demo, &v2, &[]);
    let err = |yaml: String| async move {
        match build_snapshot(&yaml).await {
            Ok(_) => panic!("accepted:\n{yaml}"),
            Err(e) => e.to_string(),
        }
    };
    let e = err(good.replace("default: v1", "default: v3")).await;
    assert!(
        e.contains("test.yaml: versions.default: no version named \"v3\" (known: v1, v2)"),
        "{e}"
    );
    let e = err(config(&demo, &v2, &["retired: { replacement: v3 }"])).await;
    assert!(
        e.contains("versions.list[0].retired.replacement: no version named \"v3\""),
        "{e}"
    );
    let e = err(config(&demo, &v2, &["sunset: 2027-03-31T00:00:00Z"])).await;
    assert!(
        e.contains("versions.list[0]") && e.contains("unknown field `sunset`"),
        "{e}"
    );
    let e = err(config(
        &demo,
        &v2,
        &["deprecated: { since: 2026-10-01T00:00:00Z, sunset: 2025-01-01T00:00:00Z }"],
    ))
    .await;
    assert!(e.contains("versions.list[0].deprecated.sunset"), "{e}");
    let e = err(config(&demo, &v2, &["deprecated: { since: yesterday }"])).await;
    assert!(
        e.contains("versions.list[0].deprecated.since") && e.contains("RFC 3339"),
        "{e}"
    );
    let e = err(good.replace("services: [demo.v2.*]", "services: [demo.v3.*]")).await;
    assert!(
        e.contains("versions.list[1].services[0]: \"demo.v3.*\" matches no exposed method"),
        "{e}"
    );
    let e = err(good.replace("services: [demo.v2.*]", "services: [demo.*]")).await;
    assert!(
        e.contains("versions.list[1].services[0]") && e.contains("already in version \"v1\""),
        "{e}"
    );
    assert!(build_snapshot(&good).await.is_ok());
}

/// The state of v1 an answer shows: 0 current, 1 deprecated, 2 retired.
fn v1_state(r: &portico_e2e::Reply) -> u8 {
    match (r.status, r.headers.contains_key("deprecation")) {
        (200, false) => 0,
        (200, true) => 1,
        (410, true) => 2,
        (s, d) => panic!(
            "unexpected v1 answer {s} (deprecation header: {d}): {}",
            r.text
        ),
    }
}

#[tokio::test]
async fn a_reload_deprecates_then_retires_v1_while_requests_keep_being_served() {
    let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .unwrap();
    let v2 = portico_demo::users_v2::spawn(([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("portico-versions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bff.yaml");
    let descriptors = repo_root().join("descriptors/demo.binpb");
    let yaml = |states: &[&str]| {
        config(&demo, &v2, states)
            .replace("descriptors/demo.binpb", &descriptors.display().to_string())
            .replace(
                "proto: descriptors/versions",
                &format!(
                    "proto: {}",
                    repo_root().join("descriptors/versions").display()
                ),
            )
    };
    let (current, deprecated, retired) =
        (yaml(&[]), yaml(&[DEPRECATED]), yaml(&[DEPRECATED, RETIRED]));
    let write = |yaml: &str| std::fs::write(&path, yaml).unwrap();
    write(&current);
    let source = ConfigSource {
        path: path.clone(),
        ..Default::default()
    };
    let snapshot = source.build().await.unwrap();
    let env = std::sync::Arc::new(TestEnv::serve(demo, snapshot).await);

    // a client calling v1 and v2 in a loop, reporting how many rounds it made
    let (count_tx, mut count_rx) = tokio::sync::watch::channel(0usize);
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let client = {
        let env = env.clone();
        tokio::spawn(async move {
            let mut states = Vec::new();
            let mut rounds = 0;
            loop {
                if stop_rx.try_recv().is_ok() {
                    break;
                }
                let v2 = env.get("/v2/users/1").await;
                assert_eq!(v2.status, 200, "{}", v2.text);
                assert!(v2.headers.get("deprecation").is_none());
                states.push(v1_state(&env.get("/v1/users/1").await));
                rounds += 1;
                count_tx.send_replace(rounds);
            }
            states
        })
    };
    let rounds_past = |n: usize| {
        let mut rx = count_rx.clone();
        async move {
            let now = *rx.borrow();
            rx.wait_for(|r| *r >= now + n).await.unwrap();
        }
    };
    rounds_past(3).await;

    write(&deprecated);
    portico::reload::reload(&env.gateway, &source)
        .await
        .unwrap();
    assert_eq!(v1_state(&env.get("/v1/users/1").await), 1);
    rounds_past(3).await;

    write(&retired);
    portico::reload::reload(&env.gateway, &source)
        .await
        .unwrap();
    assert_eq!(v1_state(&env.get("/v1/users/1").await), 2);
    rounds_past(3).await;

    stop_tx.send(()).unwrap();
    let states = client.await.unwrap();
    count_rx.borrow_and_update();
    // every answer was one of the three, and v1 only moved forward: current, deprecated,
    // retired, each seen
    assert!(states.windows(2).all(|w| w[0] <= w[1]), "{states:?}");
    for s in 0..=2 {
        assert!(states.contains(&s), "state {s} never seen: {states:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
