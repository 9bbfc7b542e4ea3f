//! Caller identity and authorization: JWTs verified against a JWKS the test serves (rotation,
//! rate-limited refetches, an identity provider that goes down), the usual forgeries, API
//! keys, client certificates, identity metadata that clients cannot spoof, and rules by method
//! and by operation enforced on every door.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use portico::snapshot::Snapshot;
use portico_demo::DemoService;
use portico_e2e::{Reply, TestEnv, build_snapshot, demo_config};
use serde_json::{Value, json};
use sha2::Digest;

const ISSUER: &str = "https://idp.test";

/// An identity provider: a JWKS endpoint on 127.0.0.1 whose keys the test sets, counting its
/// hits, and failing on demand.
struct Idp {
    url: String,
    state: Arc<IdpState>,
}

#[derive(Default)]
struct IdpState {
    keys: Mutex<Vec<Jwk>>,
    hits: AtomicUsize,
    down: AtomicBool,
}

async fn jwks(State(s): State<Arc<IdpState>>) -> Response {
    s.hits.fetch_add(1, Ordering::SeqCst);
    if s.down.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    let keys = s.keys.lock().unwrap().clone();
    Json(JwkSet { keys }).into_response()
}

impl Idp {
    async fn start(keys: &[&Signer]) -> Idp {
        let state = Arc::new(IdpState::default());
        *state.keys.lock().unwrap() = keys.iter().map(|k| k.jwk.clone()).collect();
        let app = axum::Router::new()
            .route("/jwks", axum::routing::get(jwks))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Idp { url, state }
    }

    fn publish(&self, keys: &[&Signer]) {
        *self.state.keys.lock().unwrap() = keys.iter().map(|k| k.jwk.clone()).collect();
    }

    fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }
}

/// A signing key of the identity provider, and its public JWK.
struct Signer {
    kid: String,
    alg: Algorithm,
    key: EncodingKey,
    jwk: Jwk,
    /// The public key's PEM (what an attacker has).
    public_pem: String,
}

impl Signer {
    fn new(kid: &str, alg: Algorithm) -> Signer {
        let (rc_alg, from_pem): (_, fn(&[u8]) -> _) = match alg {
            Algorithm::ES256 => (&rcgen::PKCS_ECDSA_P256_SHA256, EncodingKey::from_ec_pem),
            Algorithm::RS256 => (&rcgen::PKCS_RSA_SHA256, EncodingKey::from_rsa_pem),
            other => panic!("no test key for {other:?}"),
        };
        let pair = rcgen::KeyPair::generate_for(rc_alg).unwrap();
        let key = from_pem(pair.serialize_pem().as_bytes()).unwrap();
        let mut jwk = Jwk::from_encoding_key(&key, alg).unwrap();
        jwk.common.key_id = Some(kid.into());
        jwk.common.key_algorithm = Some(match alg {
            Algorithm::ES256 => KeyAlgorithm::ES256,
            _ => KeyAlgorithm::RS256,
        });
        Signer {
            kid: kid.into(),
            alg,
            key,
            jwk,
            public_pem: pair.public_key_pem(),
        }
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Claims that check out, for subject `sub`, with `extra` merged in.
fn claims(sub: &str, extra: Value) -> Value {
    let mut c = json!({
        "iss": ISSUER, "aud": "portico", "sub": sub,
        "iat": now(), "exp": now() + 600, "email": "ada@example.com",
    });
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

fn sha256(key: &str) -> String {
    hex::encode(sha2::Sha256::digest(key.as_bytes()))
}

/// The auth config under test; `jwt_extra` goes into the `jwt` section.
fn auth_yaml(idp: &Idp, jwt_extra: &str) -> String {
    format!(
        r#"
auth:
  jwt:
    issuer: {ISSUER}
    audiences: [portico]
    algorithms: [ES256, RS256]
    jwks_url: {url}
    {jwt_extra}
  api_keys:
    query: api_key
    keys:
      - {{ id: partner-a, sha256: {a}, plan: gold, scopes: [catalog.read] }}
  forward:
    subject: x-caller
    scopes: x-caller-scopes
    key_id: x-key-id
    plan: x-plan
    claims: {{ x-user-email: email }}
authorization:
  methods:
    demo.v1.CatalogService.GetProduct: {{ anonymous: true }}
    demo.v1.UserService.CreateUser: {{ scopes: [users.write] }}
    demo.v1.OrderService.ListOrdersByUser: {{ claims: {{ role: [support, admin] }} }}
  operations:
    Home: {{ scopes: [home] }}
headers:
  forward: [x-caller, x-caller-scopes, x-plan, x-user-*, x-tenant-id]
"#,
        url = idp.url,
        a = sha256("key-a"),
    )
}

async fn start(idp: &Idp, jwt_extra: &str, extra: &str) -> TestEnv {
    TestEnv::start_with(&format!("{}{extra}", auth_yaml(idp, jwt_extra))).await
}

async fn get_as(env: &TestEnv, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = env.client.get(env.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    env.send(req).await
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A 401 in the gateway's shape, with its challenge.
fn assert_unauthenticated(r: &Reply, invalid_token: bool) {
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(r.json()["code"], 16, "{}", r.text);
    let challenge = r.header("www-authenticate");
    assert!(
        challenge.starts_with("Bearer realm=\"portico\""),
        "{challenge}"
    );
    assert_eq!(
        challenge.contains("error=\"invalid_token\""),
        invalid_token,
        "{challenge}"
    );
    assert!(challenge.contains("ApiKey realm=\"portico\", header=\"x-api-key\""));
}

#[tokio::test]
async fn a_token_identifies_the_caller_to_backends_and_clients_cannot_spoof_it() {
    let es = Signer::new("k1", Algorithm::ES256);
    let rs = Signer::new("k2", Algorithm::RS256);
    let idp = Idp::start(&[&es, &rs]).await;
    let env = start(&idp, "", "").await;
    // What `--check` and the start-up listing say.
    let listing = env.gateway.snapshot().describe();
    assert!(
        listing.contains(
            "callers identified by JWTs of https://idp.test (2 signing keys loaded), 1 API keys\n"
        ),
        "{listing}"
    );
    assert!(
        listing.contains(
            "authorization: 3 method rules, 1 operation rules, other methods open to identified callers\n"
        ),
        "{listing}"
    );
    let token = es.sign(&claims("user-7", json!({"scope": "orders.read home"})));
    let r = get_as(
        &env,
        "/v1/users/1",
        &[
            ("authorization", &bearer(&token)),
            ("x-caller", "admin"),
            ("x-plan", "platinum"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let md = env
        .knobs(DemoService::Users)
        .last_metadata("GetUser")
        .unwrap();
    assert_eq!(md.get("x-caller").unwrap(), "user-7");
    assert_eq!(md.get_all("x-caller").iter().count(), 1);
    assert_eq!(md.get("x-caller-scopes").unwrap(), "orders.read home");
    assert_eq!(md.get("x-user-email").unwrap(), "ada@example.com");
    assert!(md.get("x-plan").is_none(), "spoofed plan dropped: {md:?}");
    assert!(md.get("authorization").is_none(), "{md:?}");
    // RS256 keys work as well.
    let r = get_as(
        &env,
        "/v1/users/1",
        &[(
            "authorization",
            &bearer(&rs.sign(&claims("user-8", json!({})))),
        )],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Anonymous: refused where the default rule needs a caller, with a challenge...
    let r = get_as(&env, "/v1/users/1", &[("x-caller", "admin")]).await;
    assert_unauthenticated(&r, false);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("needs an identified caller"),
        "{}",
        r.text
    );
    // ...served where a rule allows anyone, and a spoofed identity never reaches the backend.
    let r = get_as(&env, "/v1/products/p-1", &[("x-caller", "admin")]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let md = env
        .knobs(DemoService::Catalog)
        .last_metadata("GetProduct")
        .unwrap();
    assert!(md.get("x-caller").is_none(), "{md:?}");
    // Health checks never need credentials.
    assert_eq!(env.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn forged_expired_and_misdirected_tokens_are_refused() {
    let es = Signer::new("k1", Algorithm::ES256);
    let idp = Idp::start(&[&es]).await;
    let env = start(&idp, "leeway: 5s", "").await;
    let good = es.sign(&claims("u1", json!({})));
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let parts: Vec<&str> = good.split('.').collect();

    // alg "none", unsigned.
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        parts[1]
    );
    // HS256 "signed" with the public key as the shared secret (algorithm confusion).
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some("k1".into());
    let confused = jsonwebtoken::encode(
        &hs,
        &claims("u1", json!({})),
        &EncodingKey::from_secret(es.public_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    // A valid signature over a payload that was changed afterwards.
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(&claims("admin", json!({}))),
        parts[2]
    );
    // Signed by a key the issuer never published, under a published key id.
    let stranger = Signer::new("k1", Algorithm::ES256).sign(&claims("u1", json!({})));
    let cases = [
        ("none", none),
        ("hs256-confusion", confused),
        ("tampered", tampered),
        ("stranger", stranger),
        (
            "expired",
            es.sign(&claims("u1", json!({"exp": now() - 60}))),
        ),
        (
            "not yet valid",
            es.sign(&claims("u1", json!({"nbf": now() + 120}))),
        ),
        (
            "other issuer",
            es.sign(&claims("u1", json!({"iss": "https://evil.test"}))),
        ),
        (
            "other audience",
            es.sign(&claims("u1", json!({"aud": "someone-else"}))),
        ),
        ("no exp", es.sign(&claims("u1", json!({"exp": null})))),
        ("no sub", es.sign(&claims("u1", json!({"sub": null})))),
        ("garbage", "not.a.jwt".to_string()),
    ];
    for (what, token) in &cases {
        let r = get_as(&env, "/v1/users/1", &[("authorization", &bearer(token))]).await;
        assert_unauthenticated(&r, true);
        let body = r.json();
        let message = body["message"].as_str().unwrap();
        assert_eq!(
            message,
            "the bearer token is not valid (expired, not yet valid, or not issued for this API)",
            "{what}: the reason is logged, not sent"
        );
    }
    // Within the leeway, a just-expired token still passes.
    let r = get_as(
        &env,
        "/v1/users/1",
        &[(
            "authorization",
            &bearer(&es.sign(&claims("u1", json!({"exp": now() - 2})))),
        )],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Other schemes, and credentials on routes anyone may call, are still checked.
    let r = get_as(&env, "/v1/users/1", &[("authorization", "Basic dTpw")]).await;
    assert_unauthenticated(&r, false);
    let r = get_as(
        &env,
        "/v1/products/p-1",
        &[("authorization", &bearer(&cases[2].1))],
    )
    .await;
    assert_unauthenticated(&r, true);
    // The backend was never called with a bad token.
    assert_eq!(env.knobs(DemoService::Users).calls("GetUser"), 1);
}

#[tokio::test]
async fn rotated_keys_are_fetched_and_unknown_key_ids_cannot_hammer_the_idp() {
    let k1 = Signer::new("k1", Algorithm::ES256);
    let k2 = Signer::new("k2", Algorithm::ES256);
    let idp = Idp::start(&[&k1]).await;
    // Refetching on an unknown key id at most once an hour.
    let env = start(&idp, "min_refresh_interval: 1h", "").await;
    assert_eq!(idp.hits(), 1, "fetched once at start");
    let t2 = k2.sign(&claims("u1", json!({})));
    for _ in 0..20 {
        let r = get_as(&env, "/v1/users/1", &[("authorization", &bearer(&t2))]).await;
        assert_unauthenticated(&r, true);
    }
    assert_eq!(idp.hits(), 1, "unknown key ids do not trigger fetches");

    // Without that floor, the issuer's new key is picked up on first sight.
    let idp = Idp::start(&[&k1]).await;
    let env = start(&idp, "min_refresh_interval: 0s", "").await;
    idp.publish(&[&k1, &k2]);
    let r = get_as(&env, "/v1/users/1", &[("authorization", &bearer(&t2))]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(idp.hits(), 2);
    // Known keys need no fetch.
    let t1 = k1.sign(&claims("u1", json!({})));
    let r = get_as(&env, "/v1/users/1", &[("authorization", &bearer(&t1))]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(idp.hits(), 2);
}

#[tokio::test]
async fn an_idp_that_goes_down_keeps_known_keys_working_across_a_reload() {
    let k1 = Signer::new("k1", Algorithm::ES256);
    let idp = Idp::start(&[&k1]).await;
    let env = start(&idp, "min_refresh_interval: 0s", "").await;
    let t1 = k1.sign(&claims("u1", json!({})));
    idp.state.down.store(true, Ordering::SeqCst);
    let unknown = Signer::new("k9", Algorithm::ES256).sign(&claims("u1", json!({})));
    let r = get_as(&env, "/v1/users/1", &[("authorization", &bearer(&unknown))]).await;
    assert_unauthenticated(&r, true);
    assert_eq!(
        idp.hits(),
        2,
        "the unknown key id made a fetch, which failed"
    );
    let r = get_as(&env, "/v1/users/1", &[("authorization", &bearer(&t1))]).await;
    assert_eq!(r.status, 200, "the cached key still verifies: {}", r.text);

    // A reload that leaves auth.jwt alone keeps the verifier and its keys.
    let yaml = demo_config(&env.demo, &auth_yaml(&idp, "min_refresh_interval: 0s"));
    let cfg = portico::config::parse(&yaml, "test.yaml", &portico_e2e::repo_root()).unwrap();
    let old = env.gateway.snapshot();
    let new = Snapshot::build_after(cfg, Some(&old)).await.unwrap();
    assert!(Arc::ptr_eq(
        old.jwt.as_ref().unwrap(),
        new.jwt.as_ref().unwrap()
    ));
    env.gateway.swap(new);
    let r = get_as(&env, "/v1/users/1", &[("authorization", &bearer(&t1))]).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn api_keys_identify_partners_by_header_or_query() {
    let es = Signer::new("k1", Algorithm::ES256);
    let idp = Idp::start(&[&es]).await;
    let env = start(&idp, "", "").await;
    let r = get_as(&env, "/v1/users/1", &[("x-api-key", "key-a")]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let md = env
        .knobs(DemoService::Users)
        .last_metadata("GetUser")
        .unwrap();
    assert_eq!(md.get("x-caller").unwrap(), "partner-a");
    assert_eq!(md.get("x-key-id").unwrap(), "partner-a");
    assert_eq!(md.get("x-plan").unwrap(), "gold");
    assert_eq!(md.get("x-caller-scopes").unwrap(), "catalog.read");
    assert!(
        md.get("x-api-key").is_none(),
        "the key never leaves: {md:?}"
    );

    // In the query string too; the parameter is not taken for a request field.
    let r = env.get("/v1/users/1?api_key=key-a").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = env.get("/v1/users/1?api_key=key-b").await;
    assert_unauthenticated(&r, false);
    assert_eq!(r.json()["message"], "the API key is not valid");
    let r = get_as(&env, "/v1/users/1", &[("x-api-key", "")]).await;
    assert_unauthenticated(&r, false);

    // A key and a token: the token says who, the key brings its plan.
    let token = es.sign(&claims("user-7", json!({})));
    let r = get_as(
        &env,
        "/v1/users/1",
        &[("x-api-key", "key-a"), ("authorization", &bearer(&token))],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let md = env
        .knobs(DemoService::Users)
        .last_metadata("GetUser")
        .unwrap();
    assert_eq!(md.get("x-caller").unwrap(), "user-7");
    assert_eq!(md.get("x-plan").unwrap(), "gold");
}

#[tokio::test]
async fn rules_by_method_hold_on_rest_graphql_links_and_operation_endpoints() {
    let es = Signer::new("k1", Algorithm::ES256);
    let idp = Idp::start(&[&es]).await;
    let env = start(
        &idp,
        "",
        "operations: { dir: bff-web/operations }\nendpoints:\n  - { path: \"/api/home/{userId}\", operation: Home, unwrap: user }\n",
    )
    .await;
    let plain = bearer(&es.sign(&claims("u1", json!({}))));
    let writer = bearer(&es.sign(&claims("u2", json!({"scope": "users.write"}))));
    let support = bearer(&es.sign(&claims("u3", json!({"role": ["support"], "scope": "home"}))));
    let create = json!({"user": {"displayName": "Grace", "email": "grace@example.com"}});

    // REST: a scope.
    let post = |auth: &str| {
        env.client
            .post(env.url("/v1/users"))
            .header("authorization", auth)
            .json(&create)
    };
    let r = env.send(post(&plain)).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.json()["code"], 7);
    assert!(r.text.contains("users.write"), "{}", r.text);
    assert_eq!(env.knobs(DemoService::Users).calls("CreateUser"), 0);
    assert_eq!(env.send(post(&writer)).await.status, 200);

    // GraphQL: the root resolves, the link the caller may not call fails alone.
    let q = json!({"query": r#"{ user(id: "1") { displayName orders { id } } }"#});
    let gql = |auth: &str| {
        env.client
            .post(env.url("/graphql"))
            .header("authorization", auth)
            .json(&q)
    };
    let body = env.send(gql(&plain)).await.json();
    assert_eq!(
        body["data"]["user"]["displayName"], "Ada Lovelace",
        "{body}"
    );
    assert!(body["data"]["user"]["orders"].is_null(), "{body}");
    assert_eq!(
        body["errors"][0]["path"],
        json!(["user", "orders"]),
        "{body}"
    );
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "PERMISSION_DENIED",
        "{body}"
    );
    let body = env.send(gql(&support)).await.json();
    assert!(body["errors"].is_null(), "{body}");
    assert!(body["data"]["user"]["orders"].is_array(), "{body}");
    // Anonymous: the field says why.
    let r = env.json("POST", "/graphql", &q).await;
    let body = r.json();
    assert!(body["data"]["user"].is_null(), "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");

    // Operations by name: on the endpoint and on the GraphQL endpoint alike.
    let home = |auth: Option<&str>| {
        let mut req = env.client.get(env.url("/api/home/1"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        req
    };
    let r = env.send(home(None)).await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert!(r.header("www-authenticate").starts_with("Bearer"));
    let r = env.send(home(Some(&plain))).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(
        r.text.contains("the operation Home needs the scope"),
        "{}",
        r.text
    );
    let r = env.send(home(Some(&support))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let doc =
        std::fs::read_to_string(portico_e2e::repo_root().join("bff-web/operations/home.graphql"))
            .unwrap()
            + &std::fs::read_to_string(
                portico_e2e::repo_root().join("bff-web/operations/fragments.graphql"),
            )
            .unwrap();
    let r = env
        .send(
            env.client
                .post(env.url("/graphql"))
                .header("authorization", &plain)
                .json(&json!({"query": doc, "variables": {"userId": "1"}})),
        )
        .await;
    let body = r.json();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "PERMISSION_DENIED",
        "{body}"
    );
    assert!(body.get("data").is_none_or(Value::is_null), "{body}");
    assert_eq!(env.knobs(DemoService::Users).calls("GetUser"), 3);
}

#[tokio::test]
async fn client_certificates_identify_their_holder() {
    let d = std::env::temp_dir().join(format!("portico-auth-certs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    let certs = portico::cli::certs::generate(&d, &["127.0.0.1".into()], "billing-batch").unwrap();
    let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .unwrap();
    let yaml = format!(
        "{}tls: {{ cert: {}, key: {}, client_ca: {}, client_auth: optional }}\nauth:\n  client_certificates: true\n  forward: {{ subject: x-caller }}\n",
        demo_config(&demo, ""),
        certs.server.0.display(),
        certs.server.1.display(),
        certs.ca.display()
    );
    let snapshot = build_snapshot(&yaml).await.unwrap();
    let tls_cfg = snapshot.config.tls.clone().unwrap();
    let tls = portico::server::ServerTls::load(&tls_cfg, Path::new("/")).unwrap();
    let env = TestEnv::serve_tls(demo, snapshot, tls).await;
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&certs.ca).unwrap()).unwrap();
    let mut pem = std::fs::read(&certs.client.0).unwrap();
    pem.extend(std::fs::read(&certs.client.1).unwrap());
    let with_cert = reqwest::Client::builder()
        .tls_certs_only([ca.clone()])
        .identity(reqwest::Identity::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let r = with_cert
        .get(env.url("/v1/users/1"))
        .header("x-caller", "someone-else")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let md = env
        .knobs(DemoService::Users)
        .last_metadata("GetUser")
        .unwrap();
    assert_eq!(md.get("x-caller").unwrap(), "billing-batch");
    // Without a certificate (optional): anonymous, refused by the default rule.
    let without = reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .unwrap();
    let r = without.get(env.url("/v1/users/1")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"].to_str().unwrap(),
        "Certificate realm=\"portico\""
    );
    let _ = std::fs::remove_dir_all(d);
}

#[tokio::test]
async fn auth_config_mistakes_are_named() {
    let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
        .await
        .unwrap();
    let err = |extra: &str| {
        let yaml = demo_config(&demo, extra);
        async move { build_snapshot(&yaml).await.err().unwrap().to_string() }
    };
    let e = err(
        "auth:\n  jwt: { issuer: x, audiences: [a], algorithms: [HS256], jwks_file: j.json }\n",
    )
    .await;
    assert!(e.contains("auth.jwt.algorithms[0]"), "{e}");
    assert!(e.contains("shared secrets"), "{e}");
    let e =
        err("authorization:\n  methods:\n    demo.v1.UserService.GetUser: { scopes: [x] }\n").await;
    assert!(e.contains("authorization"), "{e}");
    assert!(e.contains("add an auth section"), "{e}");
    let e = err(&format!(
        "auth:\n  api_keys: {{ keys: [{{ id: a, sha256: {} }}] }}\nauthorization:\n  methods:\n    demo.v1.UserService.GetUsr: {{ anonymous: true }}\n",
        sha256("k")
    ))
    .await;
    assert!(
        e.contains("authorization.methods.demo.v1.UserService.GetUsr"),
        "{e}"
    );
    let e = err("auth:\n  api_keys: { keys: [{ id: a, sha256: abc }] }\n").await;
    assert!(e.contains("auth.api_keys.keys[0].sha256"), "{e}");
    let e = err(&format!(
        "auth:\n  api_keys: {{ keys: [{{ id: a, sha256: {} }}] }}\n  forward: {{ subject: grpc-caller }}\n",
        sha256("k")
    ))
    .await;
    assert!(e.contains("auth.forward.subject"), "{e}");
    let e = err("auth:\n  jwt: { issuer: x, audiences: [a], algorithms: [ES256], jwks_file: missing.json }\n").await;
    assert!(e.contains("auth.jwt") && e.contains("missing.json"), "{e}");
    let e = err("auth: {}\n").await;
    assert!(e.contains("say how callers are identified"), "{e}");
}

#[tokio::test]
async fn websocket_operations_take_the_token_from_connection_init() {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message;

    let es = Signer::new("k1", Algorithm::ES256);
    let idp = Idp::start(&[&es]).await;
    let env = start(&idp, "", "").await;
    let token = es.sign(&claims("ws-user", json!({})));
    let connect = |init: Value| {
        let env = &env;
        async move {
            let mut ws = env.graphql_ws(Some(init)).await;
            ws.send(Message::text(
                json!({"id": "1", "type": "subscribe", "payload": {
                    "query": r#"{ user(id: "1") { displayName } }"#
                }})
                .to_string(),
            ))
            .await
            .unwrap();
            portico_e2e::next_ws_json(&mut ws).await
        }
    };
    let next = connect(json!({"Authorization": bearer(&token)})).await;
    assert_eq!(next["type"], "next", "{next}");
    assert_eq!(
        next["payload"]["data"]["user"]["displayName"], "Ada Lovelace",
        "{next}"
    );
    let md = env
        .knobs(DemoService::Users)
        .last_metadata("GetUser")
        .unwrap();
    assert_eq!(md.get("x-caller").unwrap(), "ws-user");
    // No token: the field is refused; a bad one: the operation is.
    let next = connect(json!({})).await;
    assert_eq!(
        next["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{next}"
    );
    let next = connect(json!({"Authorization": "Bearer nope"})).await;
    assert_eq!(
        next["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{next}"
    );
    assert!(next["payload"]["data"].is_null(), "{next}");
}

#[tokio::test]
async fn introspection_and_graphiql_can_need_a_caller() {
    let es = Signer::new("k1", Algorithm::ES256);
    let idp = Idp::start(&[&es]).await;
    let schema_query = json!({"query": "{ __schema { queryType { name } } }"});
    let post = |env: &TestEnv, auth: Option<String>| {
        let mut req = env.client.post(env.url("/graphql")).json(&schema_query);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        req
    };
    let code = |body: &Value| body["errors"][0]["extensions"]["code"].clone();

    // By default introspection follows `default` (authenticated here); GraphiQL is open.
    let env = start(&idp, "", "").await;
    let body = env.send(post(&env, None)).await.json();
    assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
    let plain = bearer(&es.sign(&claims("u1", json!({}))));
    let body = env.send(post(&env, Some(plain.clone()))).await.json();
    assert_eq!(
        body["data"]["__schema"]["queryType"]["name"], "Query",
        "{body}"
    );
    // `__typename` reads nothing.
    let r = env
        .json("POST", "/graphql", &json!({"query": "{ __typename }"}))
        .await;
    assert_eq!(r.json()["data"]["__typename"], "Query", "{}", r.text);
    let page = |env: &TestEnv, key: Option<&str>| {
        let mut req = env
            .client
            .get(env.url("/graphql"))
            .header("accept", "text/html");
        if let Some(k) = key {
            req = req.header("x-api-key", k);
        }
        req
    };
    let r = env.send(page(&env, None)).await;
    assert_eq!(r.status, 200);
    assert!(r.text.contains("GraphiQL"));

    // Rules of their own: a scope to read the schema, a caller for the page.
    let yaml = auth_yaml(&idp, "").replace(
        "authorization:\n",
        "authorization:\n  introspection: { scopes: [schema.read] }\n  graphiql: {}\n",
    );
    let env = TestEnv::start_with(&yaml).await;
    let body = env.send(post(&env, Some(plain))).await.json();
    assert_eq!(code(&body), "PERMISSION_DENIED", "{body}");
    assert!(body["data"].is_null(), "{body}");
    let reader = bearer(&es.sign(&claims("u1", json!({"scope": "schema.read"}))));
    let body = env.send(post(&env, Some(reader))).await.json();
    assert_eq!(
        body["data"]["__schema"]["queryType"]["name"], "Query",
        "{body}"
    );
    // Hidden in a fragment, still introspection.
    let hidden = json!({"query": "query Q { ...F } fragment F on Query { __type(name: \"User\") { name } }"});
    let body = env.json("POST", "/graphql", &hidden).await.json();
    assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
    let r = env.send(page(&env, None)).await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert!(r.header("www-authenticate").contains("ApiKey"));
    let r = env.send(page(&env, Some("key-a"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("GraphiQL"));
}
