//! Persisted operations on `/graphql`: trusted documents in `persisted_only` mode (both id
//! styles, unknown documents refused unparsed), and APQ's three cases over POST and GET with
//! the memory store and with Redis shared by two gateways.

use std::time::{SystemTime, UNIX_EPOCH};

use portico::graphql::bff::operations::document_id;
use portico_demo::DemoService;
use portico_e2e::{Reply, TestEnv};
use serde_json::{Value, json};

const MOBILE: &str =
    "operations: { dir: bff-mobile/operations }\npersisted: { mode: persisted_only }\n";
const WEB_APQ: &str =
    "operations: { dir: bff-web/operations }\npersisted: { mode: allow, apq: true }\n";

/// The manifest id of an operation of the gateway's folder.
fn id_of(env: &TestEnv, name: &str) -> String {
    let snap = env.gateway.snapshot();
    let ops = snap.operations.as_ref().expect("an operations folder");
    ops.get(name).expect("the operation").id.clone()
}

fn pq(hash: &str) -> Value {
    json!({"persistedQuery": {"version": 1, "sha256Hash": hash}})
}

/// `extensions.code` of the first error.
fn code(r: &Reply) -> String {
    r.json()["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A GET on /graphql with these URL parameters.
async fn get(env: &TestEnv, params: &[(&str, String)]) -> Reply {
    env.send(env.client.get(env.url("/graphql")).query(params))
        .await
}

#[tokio::test]
async fn persisted_only_runs_trusted_documents_by_either_id() {
    let env = TestEnv::start_with(MOBILE).await;
    let id = id_of(&env, "Product");
    // The manifest lists that id with the document the gateway runs.
    let manifest = env
        .gateway
        .snapshot()
        .operations
        .as_ref()
        .unwrap()
        .manifest();
    assert_eq!(document_id(&manifest[&id]), id);

    let r = env
        .json(
            "POST",
            "/graphql",
            &json!({"documentId": format!("sha256:{id}"), "variables": {"id": "p-1"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["data"]["product"]["id"], "p-1");
    let r = env
        .json(
            "POST",
            "/graphql",
            &json!({"extensions": pq(&id), "variables": {"id": "p-2"}}),
        )
        .await;
    assert_eq!(r.json()["data"]["product"]["id"], "p-2", "{}", r.text);
    let r = get(
        &env,
        &[
            ("extensions", pq(&id).to_string()),
            ("variables", json!({"id": "p-3"}).to_string()),
        ],
    )
    .await;
    assert_eq!(r.json()["data"]["product"]["id"], "p-3", "{}", r.text);
    let r = get(
        &env,
        &[
            ("documentId", id.clone()),
            ("variables", json!({"id": "p-4"}).to_string()),
        ],
    )
    .await;
    assert_eq!(r.json()["data"]["product"]["id"], "p-4", "{}", r.text);
    // The same text sent as a document is still refused: only ids run.
    let r = env
        .json(
            "POST",
            "/graphql",
            &json!({"query": manifest[&id], "variables": {"id": "p-1"}}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(code(&r), "PERSISTED_QUERY_REQUIRED");
    assert_eq!(env.knobs(DemoService::Catalog).calls("GetProduct"), 4);
}

#[tokio::test]
async fn persisted_only_refuses_other_documents_before_parsing() {
    let env = TestEnv::start_with(MOBILE).await;
    for doc in [
        "{ users { users { email } } }",
        "{{{{ this would not even parse",
    ] {
        let r = env.json("POST", "/graphql", &json!({"query": doc})).await;
        assert_eq!(r.status, 400, "{}", r.text);
        // Not GRAPHQL_PARSE_FAILED: the document was never parsed.
        assert_eq!(code(&r), "PERSISTED_QUERY_REQUIRED", "{}", r.text);
    }
    let r = get(&env, &[("query", "{ users { users { email } } }".into())]).await;
    assert_eq!(code(&r), "PERSISTED_QUERY_REQUIRED", "{}", r.text);
    let unknown = document_id("{ users { users { email } } }");
    let r = env
        .json("POST", "/graphql", &json!({"extensions": pq(&unknown)}))
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(code(&r), "PERSISTED_QUERY_NOT_FOUND");
    assert_eq!(env.knobs(DemoService::Users).total_calls(), 0);
    // REST endpoints run the trusted documents directly (no endpoint here, so 404).
    assert_eq!(env.get("/api/home/1").await.status, 404);
}

/// APQ's three cases with a fresh document; `post` picks the transport.
async fn apq_three_cases(env: &TestEnv, post: bool, product: &str) {
    let doc = format!("{{ product(id: \"{product}\") {{ id name }} }}");
    let hash = document_id(&doc);
    let send = |query: Option<&str>, hash: &str| {
        let hash = hash.to_string();
        let query = query.map(str::to_string);
        async move {
            if post {
                let mut body = json!({"extensions": pq(&hash)});
                if let Some(q) = query {
                    body["query"] = Value::String(q);
                }
                env.json("POST", "/graphql", &body).await
            } else {
                let mut params = vec![("extensions", pq(&hash).to_string())];
                if let Some(q) = query {
                    params.push(("query", q));
                }
                get(env, &params).await
            }
        }
    };
    // 1. Hash only, unknown: PERSISTED_QUERY_NOT_FOUND with 200, as Apollo clients expect.
    let r = send(None, &hash).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(code(&r), "PERSISTED_QUERY_NOT_FOUND");
    assert_eq!(r.json()["errors"][0]["message"], "PersistedQueryNotFound");
    // 2. Hash + a document that does not hash to it: 400.
    let r = send(Some(&doc), &document_id("{ other }")).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(code(&r), "PERSISTED_QUERY_HASH_MISMATCH");
    // 3. Hash + document: verified, stored, executed; then the hash alone runs it.
    let r = send(Some(&doc), &hash).await;
    assert_eq!(r.json()["data"]["product"]["id"], product, "{}", r.text);
    let r = send(None, &hash).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["data"]["product"]["id"], product, "{}", r.text);
}

#[tokio::test]
async fn apq_over_post_and_get_with_the_memory_store() {
    let env = TestEnv::start_with(WEB_APQ).await;
    apq_three_cases(&env, true, "p-5").await;
    apq_three_cases(&env, false, "p-6").await;
    // A document registered over POST runs by hash over GET (cacheable URLs).
    let doc = "{ product(id: \"p-5\") { id name } }";
    let r = get(&env, &[("extensions", pq(&document_id(doc)).to_string())]).await;
    assert_eq!(r.json()["data"]["product"]["id"], "p-5", "{}", r.text);
    // The operations folder's documents are known by id without registration.
    let r = env
        .json(
            "POST",
            "/graphql",
            &json!({"extensions": pq(&id_of(&env, "Product")), "variables": {"id": "p-7"}}),
        )
        .await;
    assert_eq!(r.json()["data"]["product"]["id"], "p-7", "{}", r.text);
    // Ordinary documents still run in `allow` mode.
    let r = env
        .graphql("{ product(id: \"p-8\") { id } }", json!({}))
        .await;
    assert_eq!(r["data"]["product"]["id"], "p-8");
}

#[tokio::test]
async fn manifest_ids_are_known_with_apq_off() {
    let env = TestEnv::start_with("operations: { dir: bff-web/operations }\n").await;
    let r = env
        .json(
            "POST",
            "/graphql",
            &json!({"documentId": id_of(&env, "Home"), "variables": {"userId": "2"}}),
        )
        .await;
    assert_eq!(
        r.json()["data"]["user"]["displayName"],
        "Grace Hopper",
        "{}",
        r.text
    );
    let r = env
        .json(
            "POST",
            "/graphql",
            &json!({"extensions": pq(&document_id("{ x }"))}),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(code(&r), "PERSISTED_QUERY_NOT_FOUND");
}

/// A Redis key prefix no other test (or run) uses.
fn unique_prefix(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("portico-e2e:{}:{nanos}:{name}:", std::process::id())
}

fn redis_config(prefix: &str, url: &str) -> String {
    format!(
        "operations: {{ dir: bff-web/operations }}\npersisted: {{ mode: allow, apq: true, store: redis, redis_url: \"{url}\", redis_prefix: \"{prefix}\", ttl: 5m }}\n"
    )
}

#[tokio::test]
async fn apq_with_redis_is_shared_by_replicas() {
    let prefix = unique_prefix("shared");
    let cfg = redis_config(&prefix, "redis://127.0.0.1:6379");
    let a = TestEnv::start_with(&cfg).await;
    let b = TestEnv::start_with(&cfg).await;
    apq_three_cases(&a, true, "p-9").await;
    apq_three_cases(&a, false, "p-10").await;
    // Registered on replica A, known on replica B.
    let doc = "{ product(id: \"p-9\") { id name } }";
    let r = b
        .json(
            "POST",
            "/graphql",
            &json!({"extensions": pq(&document_id(doc))}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["data"]["product"]["id"], "p-9", "{}", r.text);
    let r = get(
        &b,
        &[(
            "extensions",
            pq(&document_id("{ product(id: \"p-10\") { id name } }")).to_string(),
        )],
    )
    .await;
    assert_eq!(r.json()["data"]["product"]["id"], "p-10", "{}", r.text);
    // Another prefix is another store.
    let c = TestEnv::start_with(&redis_config(
        &unique_prefix("other"),
        "redis://127.0.0.1:6379",
    ))
    .await;
    let r = c
        .json(
            "POST",
            "/graphql",
            &json!({"extensions": pq(&document_id(doc))}),
        )
        .await;
    assert_eq!(code(&r), "PERSISTED_QUERY_NOT_FOUND", "{}", r.text);
}

#[tokio::test]
async fn an_unreachable_redis_degrades_to_unstored_documents() {
    // Nothing listens on port 1.
    let env =
        TestEnv::start_with(&redis_config(&unique_prefix("down"), "redis://127.0.0.1:1")).await;
    let doc = "{ product(id: \"p-11\") { id } }";
    let hash = document_id(doc);
    let r = env
        .json("POST", "/graphql", &json!({"extensions": pq(&hash)}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(code(&r), "PERSISTED_QUERY_NOT_FOUND");
    let r = env
        .json(
            "POST",
            "/graphql",
            &json!({"extensions": pq(&hash), "query": doc}),
        )
        .await;
    assert_eq!(r.json()["data"]["product"]["id"], "p-11", "{}", r.text);
}
