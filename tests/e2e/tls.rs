//! TLS on the listener, with certificates the test makes (`portico::cli::certs`, rcgen): ALPN
//! h2 and http/1.1, client certificates required or optional, and a certificate rotated on disk
//! without dropping an open connection.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::BoxFuture;
use portico::cli::certs::{Written, generate};
use portico::error::GatewayError;
use portico::request::RequestCtx;
use portico::request::policy::{Policy, Stage};
use portico::server::ServerTls;
use portico_e2e::{TestEnv, build_snapshot, demo_config};
use reqwest::{Certificate, Identity, Version};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("portico-tls-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn pem(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// A client that trusts `ca` (and nothing else), presenting `identity` if given.
fn client(ca: &Path, identity: Option<&(PathBuf, PathBuf)>, http1: bool) -> reqwest::Client {
    let mut b =
        reqwest::Client::builder().tls_certs_only([Certificate::from_pem(&pem(ca)).unwrap()]);
    if let Some((cert, key)) = identity {
        let mut both = pem(cert);
        both.extend_from_slice(&pem(key));
        b = b.identity(Identity::from_pem(&both).unwrap());
    }
    if http1 {
        b = b.http1_only();
    }
    b.build().unwrap()
}

/// Records whether requests came with a client certificate, and its subject's first bytes.
#[derive(Default)]
struct SeenCerts(Mutex<Vec<bool>>);

impl Policy for SeenCerts {
    fn name(&self) -> &str {
        "seen-certs"
    }
    fn on_request<'a>(
        &'a self,
        _parts: &'a http::request::Parts,
        ctx: &'a mut RequestCtx,
    ) -> BoxFuture<'a, Result<(), GatewayError>> {
        self.0.lock().unwrap().push(ctx.client_cert.is_some());
        futures::future::ready(Ok(())).boxed()
    }
}

/// Demo backends and a gateway with `tls` (YAML, paths into `certs`).
async fn start(certs: &Written, tls_yaml: &str) -> (TestEnv, Arc<ServerTls>, Arc<SeenCerts>) {
    let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .unwrap();
    let yaml = format!("{}tls: {tls_yaml}\n", demo_config(&demo, ""))
        .replace("CERT", &certs.server.0.display().to_string())
        .replace("KEY", &certs.server.1.display().to_string())
        .replace("CA", &certs.ca.display().to_string());
    let seen = Arc::new(SeenCerts::default());
    let snapshot = build_snapshot(&yaml)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .with_policy(Stage::Identify, seen.clone());
    let tls_cfg = snapshot.config.tls.clone().unwrap();
    let tls = ServerTls::load(&tls_cfg, Path::new("/")).unwrap();
    (
        TestEnv::serve_tls(demo, snapshot, tls.clone()).await,
        tls,
        seen,
    )
}

#[tokio::test]
async fn tls_serves_http2_and_http1_chosen_by_alpn() {
    let d = dir("alpn");
    let certs = generate(&d, &["127.0.0.1".into()], "client-a").unwrap();
    let (env, _tls, _) = start(&certs, "{ cert: CERT, key: KEY }").await;
    let url = env.url("/v1/users/1");
    let r = client(&certs.ca, None, false)
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), Version::HTTP_2);
    let r = client(&certs.ca, None, true)
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), Version::HTTP_11);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["displayName"],
        "Ada Lovelace"
    );
    // Plain HTTP to a TLS listener gets nothing served.
    let plain = reqwest::get(url.replace("https://", "http://")).await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
    let _ = std::fs::remove_dir_all(d);
}

#[tokio::test]
async fn with_one_runtime_per_core_every_core_speaks_tls_and_checks_client_certificates() {
    let d = dir("cores");
    let certs = generate(&d, &["127.0.0.1".into()], "client-a").unwrap();
    let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .unwrap();
    let yaml = format!(
        "{}tls: {{ cert: {}, key: {}, client_ca: {}, client_auth: required }}\n",
        demo_config(&demo, ""),
        certs.server.0.display(),
        certs.server.1.display(),
        certs.ca.display()
    );
    let seen = Arc::new(SeenCerts::default());
    // Slots for the cores' own backend channels, before the snapshot's endpoints are built.
    portico::cores::reserve(2);
    let snapshot = build_snapshot(&yaml)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .with_policy(Stage::Identify, seen.clone());
    let tls = ServerTls::load(snapshot.config.tls.as_ref().unwrap(), Path::new("/")).unwrap();
    let env = TestEnv::serve_tls_cores(demo, snapshot, tls, 2).await;
    let url = env.url("/v1/users/1");
    // 32 handshakes, each on a new connection: both cores' listeners get some (all on one:
    // odds of 2^-31), over HTTP/2 and HTTP/1.1.
    for i in 0..32 {
        let r = client(&certs.ca, Some(&certs.client), i % 2 == 0)
            .get(&url)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    assert_eq!(*seen.0.lock().unwrap(), vec![true; 32]);
    assert_eq!(
        env.knobs(portico_demo::DemoService::Users).connections(),
        2,
        "both cores served (each calls over its own connection)"
    );
    // Without a certificate: no handshake, on any core.
    for _ in 0..8 {
        assert!(
            client(&certs.ca, None, false)
                .get(&url)
                .send()
                .await
                .is_err()
        );
    }
    let _ = std::fs::remove_dir_all(d);
}

#[tokio::test]
async fn mtls_required_refuses_a_client_without_a_certificate() {
    let d = dir("mtls");
    let certs = generate(&d, &["127.0.0.1".into()], "client-a").unwrap();
    let (env, _tls, seen) = start(
        &certs,
        "{ cert: CERT, key: KEY, client_ca: CA, client_auth: required }",
    )
    .await;
    let url = env.url("/v1/users/1");
    let refused = client(&certs.ca, None, false).get(&url).send().await;
    assert!(refused.is_err(), "{refused:?}");
    let r = client(&certs.ca, Some(&certs.client), false)
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A certificate from another CA is refused too.
    let other = generate(&d.join("other"), &["127.0.0.1".into()], "mallory").unwrap();
    let refused = client(&certs.ca, Some(&other.client), false)
        .get(&url)
        .send()
        .await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(*seen.0.lock().unwrap(), [true]);
    let _ = std::fs::remove_dir_all(d);
}

#[tokio::test]
async fn mtls_optional_accepts_both_and_says_which() {
    let d = dir("optional");
    let certs = generate(&d, &["127.0.0.1".into()], "client-a").unwrap();
    let (env, _tls, seen) = start(
        &certs,
        "{ cert: CERT, key: KEY, client_ca: CA, client_auth: optional }",
    )
    .await;
    let url = env.url("/v1/users/1");
    let r = client(&certs.ca, None, false)
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client(&certs.ca, Some(&certs.client), false)
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(*seen.0.lock().unwrap(), [false, true]);
    let _ = std::fs::remove_dir_all(d);
}

#[tokio::test]
async fn a_rotated_certificate_serves_new_handshakes_and_open_connections_stay() {
    let d = dir("rotate");
    let old = generate(&d, &["127.0.0.1".into()], "client-a").unwrap();
    // reload_interval 0s: rotation is driven by reload() here (the file watcher and SIGHUP
    // call the same thing).
    let (env, tls, _) = start(&old, "{ cert: CERT, key: KEY, reload_interval: 0s }").await;
    let url = env.url("/v1/users/1");
    let trusting_old = client(&old.ca, None, false);
    assert_eq!(trusting_old.get(&url).send().await.unwrap().status(), 200);
    // New files in the same place: a new CA, a new server certificate.
    let keep = d.join("old-ca.pem");
    std::fs::copy(&old.ca, &keep).unwrap();
    let new = generate(&d, &["127.0.0.1".into()], "client-a").unwrap();
    assert!(tls.reload().unwrap(), "the new files are taken");
    assert!(!tls.reload().unwrap(), "unchanged files are not read again");
    // The open (HTTP/2) connection goes on.
    let r = trusting_old.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // A new handshake gets the new certificate: only a client trusting the new CA accepts it.
    assert!(client(&keep, None, false).get(&url).send().await.is_err());
    assert_eq!(
        client(&new.ca, None, false)
            .get(&url)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Broken files keep the running certificate.
    std::fs::write(&new.server.1, "not a key").unwrap();
    assert!(tls.reload().is_err());
    assert_eq!(
        client(&new.ca, None, false)
            .get(&url)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let _ = std::fs::remove_dir_all(d);
}

/// A demo backend of `service` over TLS with the server certificate of `certs`, requiring a
/// client certificate signed by their CA when `mtls`.
async fn tls_backend(
    service: portico_demo::DemoService,
    certs: &Written,
    mtls: bool,
) -> portico_demo::RunningService {
    use tonic::transport::{Certificate as Ca, Identity as Id, ServerTlsConfig};
    let mut tls =
        ServerTlsConfig::new().identity(Id::from_pem(pem(&certs.server.0), pem(&certs.server.1)));
    if mtls {
        tls = tls.client_ca_root(Ca::from_pem(pem(&certs.ca)));
    }
    portico_demo::spawn_tls(service, "127.0.0.1:0".parse().unwrap(), Some(tls))
        .await
        .unwrap()
}

#[tokio::test]
async fn backends_behind_tls_and_mtls_including_reflection() {
    use portico_demo::DemoService;
    let d = dir("backends");
    let certs = generate(&d, &["127.0.0.1".into()], "portico-gateway").unwrap();
    let users = tls_backend(DemoService::Users, &certs, false).await;
    let catalog = tls_backend(DemoService::Catalog, &certs, true).await;
    let orders = portico_demo::spawn(DemoService::Orders, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    assert!(users.endpoint().starts_with("https://"));
    let (ca, cert, key) = (
        certs.ca.display().to_string(),
        certs.client.0.display().to_string(),
        certs.client.1.display().to_string(),
    );
    // Users are registered by reflection, over TLS; catalog needs the gateway's certificate.
    let yaml = |catalog_tls: &str| {
        format!(
            r#"
descriptors:
  - reflection: users
  - file: descriptors/demo.binpb
backends:
  users:
    endpoints: [{users}]
    tls: {{ ca: {ca} }}
  orders:
    endpoints: [{orders}]
    services: [demo.v1.OrderService]
  catalog:
    endpoints: [{catalog}]
    services: [demo.v1.CatalogService]
    tls: {catalog_tls}
"#,
            users = users.endpoint(),
            orders = orders.endpoint(),
            catalog = catalog.endpoint(),
        )
    };
    let snapshot = build_snapshot(&yaml(&format!("{{ ca: {ca}, cert: {cert}, key: {key} }}")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let env = TestEnv::serve(
        portico_demo::spawn_all([127, 0, 0, 1].into())
            .await
            .unwrap(),
        snapshot,
    )
    .await;
    let r = env.get("/v1/users/1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = env.get("/v1/products/p-1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(users.knobs.calls("GetUser"), 1);
    assert_eq!(catalog.knobs.calls("GetProduct"), 1);

    // Without the client certificate the mTLS backend refuses the handshake: 503, no detail.
    let snapshot = build_snapshot(&yaml(&format!("{{ ca: {ca} }}")))
        .await
        .unwrap();
    let env = TestEnv::serve(
        portico_demo::spawn_all([127, 0, 0, 1].into())
            .await
            .unwrap(),
        snapshot,
    )
    .await;
    let r = env.get("/v1/products/p-1").await;
    portico_e2e::assert_error(&r, 503, 14, "catalog");
    // Trusting another CA, the TLS backend is refused too.
    let other = generate(&d.join("other"), &["127.0.0.1".into()], "x").unwrap();
    let e = build_snapshot(&yaml(&format!("{{ ca: {ca} }}")).replace(
        &format!("tls: {{ ca: {ca} }}\n  orders"),
        &format!("tls: {{ ca: {} }}\n  orders", other.ca.display()),
    ))
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("reflection from backend \"users\""), "{e}");
    // A missing file is a load error naming it.
    let e = build_snapshot(&yaml("{ ca: /nonexistent/ca.pem }"))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    let _ = std::fs::remove_dir_all(d);
}

#[tokio::test]
async fn the_admin_listener_can_require_a_client_certificate() {
    let d = dir("admin-mtls");
    let w: Written = generate(&d, &["127.0.0.1".into()], "operator").unwrap();
    let env = TestEnv::start_with(&format!(
        "admin:\n  listen: 127.0.0.1:0\n  tls: {{ cert: {}, key: {}, client_ca: {} }}\n",
        w.server.0.display(),
        w.server.1.display(),
        w.ca.display()
    ))
    .await;
    let admin = env.admin.clone().unwrap();
    assert!(admin.starts_with("https://"), "{admin}");
    // without a client certificate: no TLS session, nothing served
    let anonymous = client(&w.ca, None, false);
    assert!(
        anonymous
            .get(format!("{admin}/metrics"))
            .send()
            .await
            .is_err()
    );
    // with one the CA signed: served
    let operator = client(&w.ca, Some(&w.client), false);
    let r = operator
        .get(format!("{admin}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("http_server_active_requests")
    );
    // the client port is plain HTTP as configured, and has no metrics
    assert_eq!(env.get("/metrics").await.status, 404);
    std::fs::remove_dir_all(&d).ok();
}
