//! A corpus of real protos no one here wrote (`tests/corpus/`), registered the three ways a
//! backend team can: `.proto` sources, a descriptor set made by a current protoc, and server
//! reflection from a running backend. Every service loads, every route built routes, and the
//! bindings that cannot be served are left out and reported, the same way from every source.

use portico::rest::router::Lookup;
use portico::snapshot::Snapshot;
use portico_e2e::{build_snapshot, repo_root};
use tokio_stream::wrappers::TcpListenerStream;

/// One corpus entry.
struct Corpus {
    /// The folder of `.proto` sources (the import root of its own imports).
    protos: &'static str,
    /// The descriptor set protoc made of them.
    set: &'static str,
    /// Every service it defines.
    services: &'static [&'static str],
    /// The bindings left out, as `method: binding`, sorted.
    skipped: &'static [&'static str],
}

const GRPC_GATEWAY: Corpus = Corpus {
    protos: "tests/corpus/grpc-gateway",
    set: "tests/corpus/grpc-gateway.binpb",
    services: &[
        "grpc.gateway.examples.examplepb.ABitOfEverythingService",
        "grpc.gateway.examples.examplepb.AnotherServiceWithNoBindings",
        "grpc.gateway.examples.examplepb.EchoService",
        "grpc.gateway.examples.examplepb.FlowCombination",
        "grpc.gateway.examples.examplepb.ResponseBodyService",
        "grpc.gateway.examples.examplepb.StreamService",
        "grpc.gateway.examples.examplepb.UnannotatedEchoService",
        "grpc.gateway.examples.examplepb.WrappersService",
        "grpc.gateway.examples.examplepb.camelCaseServiceName",
        "helloworld.Greeter",
    ],
    skipped: &[
        // grpc-gateway binds repeated fields in paths (comma-separated); not served yet.
        "grpc.gateway.examples.examplepb.ABitOfEverythingService.GetRepeatedQuery: GET /v1/example/a_bit_of_everything_repeated/",
        // Bidirectional streams are not REST routes (they are served over WebSocket).
        "grpc.gateway.examples.examplepb.FlowCombination.StreamEmptyStream: every binding",
        // grpc-gateway's own examples bind two methods to one route (the first keeps it).
        "grpc.gateway.examples.examplepb.FlowCombination.RpcPathNestedRpc: POST /rpc/path-nested/{a.str}/rpc",
        "grpc.gateway.examples.examplepb.FlowCombination.RpcPathNestedRpc: POST /rpc/path-nested/{a.str}/rpc",
        "grpc.gateway.examples.examplepb.FlowCombination.RpcPathNestedStream: POST /rpc/path-nested/{a.str}/stream",
        "grpc.gateway.examples.examplepb.FlowCombination.RpcPathNestedStream: POST /rpc/path-nested/{a.str}/stream",
        "grpc.gateway.examples.examplepb.StreamService.BulkEcho: every binding",
    ],
};

const LIBRARY: Corpus = Corpus {
    protos: "tests/corpus/googleapis",
    set: "tests/corpus/googleapis-library.binpb",
    services: &["google.example.library.v1.LibraryService"],
    skipped: &[],
};

/// The config of a corpus registered by `source` (a `descriptors` entry), its services on one
/// backend at `endpoint`.
fn config(corpus: &Corpus, source: &str, endpoint: &str, list_services: bool) -> String {
    let services = if list_services {
        format!("\n    services: [{}]", corpus.services.join(", "))
    } else {
        String::new()
    };
    format!(
        "descriptors:\n  - {source}\nbackends:\n  corpus:\n    endpoints: [{endpoint}]{services}\ngraphql:\n  enabled: true\n"
    )
}

/// A reflection server serving `set` (the way a backend built from these protos would).
async fn reflection_server(set: Vec<u8>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let set: &'static [u8] = Box::leak(set.into_boxed_slice());
    let service = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(set)
        .build_v1()
        .unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    format!("http://{addr}")
}

/// A request path matching `template`: every variable and wildcard becomes `x` (a
/// variable's own pattern is followed: `{name=shelves/*}` is `shelves/x`).
fn sample_path(template: &str) -> String {
    fn wildcards(pattern: &str) -> String {
        pattern
            .split('/')
            .map(|seg| match seg {
                "*" | "**" => "x",
                other => other,
            })
            .collect::<Vec<_>>()
            .join("/")
    }
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&wildcards(&rest[..open]));
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c);
        let var = &rest[open + 1..close];
        match var.split_once('=') {
            Some((_, pattern)) => out.push_str(&wildcards(pattern)),
            None => out.push('x'),
        }
        rest = rest.get(close + 1..).unwrap_or("");
    }
    out.push_str(&wildcards(rest));
    out
}

/// What every source of a corpus must give.
fn check(corpus: &Corpus, snap: &Snapshot, source: &str) {
    let services: Vec<String> = snap
        .services
        .iter()
        .map(|(s, _)| s.full_name().to_string())
        .collect();
    assert_eq!(services, corpus.services, "{source}");
    let mut skipped: Vec<String> = snap
        .skipped_routes
        .iter()
        .map(|s| format!("{}: {}", s.method, s.binding))
        .collect();
    skipped.sort();
    let mut expected = corpus.skipped.to_vec();
    expected.sort();
    assert_eq!(skipped.len(), expected.len(), "{source}: {skipped:#?}");
    for (got, want) in skipped.iter().zip(&expected) {
        assert!(got.starts_with(want), "{source}: {got} is not {want}");
    }
    // Every route built routes a request made from its template.
    assert!(!snap.routes.is_empty(), "{source}");
    for (method, template, target) in snap.routes.routes() {
        let path = sample_path(template.as_str());
        match snap.routes.lookup(method, &path) {
            Lookup::Matched { .. } => {}
            other => panic!(
                "{source}: {method} {path} (from {} of {}) does not route: {other:?}",
                template.as_str(),
                target.full_name
            ),
        }
    }
    // GraphQL serves them too.
    assert!(snap.graphql.is_some(), "{source}");
}

async fn every_source(corpus: &Corpus) {
    let root = repo_root();
    // .proto sources, compiled in process.
    let yaml = config(
        corpus,
        &format!("proto: {}", root.join(corpus.protos).display()),
        "http://127.0.0.1:9",
        true,
    );
    let from_protos = build_snapshot(&yaml)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", corpus.protos));
    check(corpus, &from_protos, corpus.protos);
    // The descriptor set protoc made.
    let yaml = config(
        corpus,
        &format!("file: {}", root.join(corpus.set).display()),
        "http://127.0.0.1:9",
        true,
    );
    let from_set = build_snapshot(&yaml)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", corpus.set));
    check(corpus, &from_set, corpus.set);
    // Server reflection from a running backend (services discovered, not listed).
    let endpoint = reflection_server(std::fs::read(root.join(corpus.set)).unwrap()).await;
    let yaml = config(corpus, "reflection: corpus", &endpoint, false);
    let from_reflection = build_snapshot(&yaml)
        .await
        .unwrap_or_else(|e| panic!("reflection of {}: {e}", corpus.set));
    check(corpus, &from_reflection, "reflection");
    // The three give the same routes.
    let routes = |s: &Snapshot| {
        let mut r: Vec<String> = s
            .routes
            .routes()
            .map(|(m, t, v)| format!("{m} {} {}", t.as_str(), v.full_name))
            .collect();
        r.sort();
        r
    };
    assert_eq!(routes(&from_protos), routes(&from_set));
    assert_eq!(routes(&from_set), routes(&from_reflection));
}

#[tokio::test]
async fn grpc_gateways_examples_load_from_every_source() {
    every_source(&GRPC_GATEWAY).await;
}

#[tokio::test]
async fn googles_library_example_loads_from_every_source() {
    every_source(&LIBRARY).await;
}

#[tokio::test]
async fn strict_refuses_what_would_be_left_out() {
    let root = repo_root();
    let yaml = config(
        &GRPC_GATEWAY,
        &format!("file: {}", root.join(GRPC_GATEWAY.set).display()),
        "http://127.0.0.1:9",
        true,
    );
    let e = build_snapshot(&format!("{yaml}rest:\n  strict: true\n"))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("GetRepeatedQuery"), "{e}");
}

#[tokio::test]
async fn an_editions_backend_registered_by_reflection_is_served() {
    let set =
        std::fs::read(repo_root().join("gateway/tests/fixtures/editions/items.binpb")).unwrap();
    let endpoint = reflection_server(set).await;
    let yaml = format!(
        "descriptors:\n  - reflection: items\nbackends:\n  items:\n    endpoints: [{endpoint}]\n"
    );
    let snap = build_snapshot(&yaml)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(
            snap.routes.lookup(&http::Method::GET, "/v1/items/a"),
            Lookup::Matched { .. }
        ),
        "{}",
        snap.describe()
    );
    let item = snap
        .registry
        .pool()
        .get_message_by_name("ed.v1.Item")
        .unwrap();
    assert!(item.get_field_by_name("count").unwrap().supports_presence());
    assert!(
        !item
            .get_field_by_name("implicit_count")
            .unwrap()
            .supports_presence()
    );
}
