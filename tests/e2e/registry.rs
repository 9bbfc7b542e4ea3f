//! The three ways of registering descriptors, mixed, and config errors that say what is wrong.

use portico_demo::DemoService;
use portico_e2e::{TestEnv, build_snapshot, demo_config};

#[tokio::test]
async fn proto_sources_compiled_in_process() {
    let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .unwrap();
    let yaml = demo_config(&demo, "").replace(
        "  - file: descriptors/demo.binpb",
        "  - proto: descriptors/proto",
    );
    let env = TestEnv::start_config(demo, &yaml).await;
    let r = env.get("/v1/users/1").await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn reflection_from_a_live_backend_discovers_services_and_http_rules() {
    let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .unwrap();
    // users and catalog by reflection only (no services listed), orders from the file
    let yaml = format!(
        r#"
descriptors:
  - reflection: users
  - reflection: catalog
  - file: descriptors/demo.binpb
backends:
  users:
    endpoints: [{}]
  catalog:
    endpoints: [{}]
  orders:
    endpoints: [{}]
    services: [demo.v1.OrderService]
"#,
        demo.users.endpoint(),
        demo.catalog.endpoint(),
        demo.orders.endpoint()
    );
    let env = TestEnv::start_config(demo, &yaml).await;
    assert_eq!(env.get("/v1/users/1").await.status, 200);
    assert_eq!(env.get("/v1/products:batchGet?ids=p-3").await.status, 200);
    assert_eq!(env.get("/v1/users/1/orders").await.status, 200);
    assert_eq!(env.knobs(DemoService::Catalog).calls("BatchGetProducts"), 1);
}

#[tokio::test]
async fn config_and_descriptor_errors_name_what_is_wrong() {
    let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .unwrap();
    let base = demo_config(&demo, "");

    let e = build_snapshot(&base.replace("descriptors/demo.binpb", "descriptors/missing.binpb"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("test.yaml: descriptors:") && e.contains("missing.binpb"),
        "{e}"
    );

    let e = build_snapshot(&base.replace("[demo.v1.UserService]", "[demo.v1.UserServic]"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("backends.users.services[0]") && e.contains("UserServic"),
        "{e}"
    );

    let e = build_snapshot(&base.replace("endpoints: [", "endpoint: ["))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field `endpoint`"), "{e}");

    let e = build_snapshot(&format!(
        "{base}rest:\n  methods:\n    demo.v1.UserService.Nope: {{}}\n"
    ))
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("rest.methods.demo.v1.UserService.Nope"), "{e}");

    // a backend that serves no reflection is named in the error
    let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = plain.local_addr().unwrap();
    drop(plain);
    let yaml = format!(
        "descriptors:\n  - reflection: ghost\nbackends:\n  ghost:\n    endpoints: [http://{dead}]\n"
    );
    let e = build_snapshot(&yaml).await.unwrap_err().to_string();
    assert!(e.contains("ghost"), "{e}");
}

#[tokio::test]
async fn two_methods_claiming_one_route_leave_one_out_or_with_strict_fail_the_load() {
    let dir = std::env::temp_dir().join(format!("portico-dup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("dup.proto"),
        r#"syntax = "proto3";
package dup.v1;
import "google/api/annotations.proto";
service Things {
  rpc GetThing(Req) returns (Req) { option (google.api.http) = { get: "/v1/things/{id}" }; }
}
service Stuff {
  rpc FetchStuff(Req) returns (Req) { option (google.api.http) = { get: "/v1/things/{name}" }; }
}
message Req { string id = 1; string name = 2; }
"#,
    )
    .unwrap();
    let yaml = format!(
        "descriptors:\n  - proto: {}\nbackends:\n  things:\n    endpoints: [http://127.0.0.1:9]\n    services: [dup.v1.Things, dup.v1.Stuff]\n",
        dir.display()
    );
    // By default the first binding keeps the route, the second is left out and reported
    // (log, --check) naming both methods; every other route of both services is served.
    let snap = build_snapshot(&yaml).await.unwrap();
    let described = snap.describe();
    assert!(
        described.contains("1 HTTP bindings left out"),
        "{described}"
    );
    assert!(
        described.contains(
            "dup.v1.Things.GetThing: GET /v1/things/{id}: the same route is already bound to dup.v1.Stuff.FetchStuff"
        ),
        "{described}"
    );
    assert!(
        described.contains("POST   /dup.v1.Things/GetThing"),
        "{described}"
    );
    // With rest.strict, the same is a load error naming both.
    let e = build_snapshot(&format!("{yaml}rest:\n  strict: true\n"))
        .await
        .unwrap_err()
        .to_string();
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        e.contains("dup.v1.Things.GetThing") && e.contains("dup.v1.Stuff.FetchStuff"),
        "{e}"
    );
    assert!(e.contains("/v1/things/"), "{e}");
}
