//! The persisted-operation rules of the module docs, one by one, with the memory store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use async_graphql::{Name, Value};
use http::StatusCode;

use super::*;
use crate::graphql::bff::operations::tests::demo_operations;

const OP: &str = "query Product($id: String) { product(id: $id) { name } }";

async fn policy(mode: PersistedMode, apq: bool) -> (Persisted, String) {
    let ops = demo_operations(&format!("persisted-{mode:?}-{apq}"), &[("p.graphql", OP)]).await;
    let id = ops.get("Product").unwrap().id.clone();
    let cfg = PersistedConfig {
        mode,
        apq,
        ..Default::default()
    };
    (Persisted::new(&cfg, Some(Arc::new(ops))).unwrap(), id)
}

fn with_hash(query: &str, hash: &str) -> async_graphql::Request {
    let mut req = async_graphql::Request::new(query);
    let mut pq = async_graphql::indexmap::IndexMap::new();
    pq.insert(Name::new("version"), Value::from(1));
    pq.insert(Name::new("sha256Hash"), Value::from(hash));
    req.extensions
        .0
        .insert("persistedQuery".into(), Value::Object(pq));
    req
}

fn with_document_id(id: &str) -> async_graphql::Request {
    async_graphql::Request::new("").data(DocumentId(id.to_string()))
}

fn code(
    r: Result<(async_graphql::Request, Option<Pending>), GatewayError>,
) -> (StatusCode, &'static str) {
    let e = r.unwrap_err();
    (e.http_status(), e.kind().code())
}

#[tokio::test]
async fn persisted_only_runs_manifest_ids_and_refuses_documents_unparsed() {
    let (p, id) = policy(PersistedMode::PersistedOnly, false).await;
    let (req, pending) = p.resolve(with_hash("", &id)).await.unwrap();
    assert!(req.query.starts_with("query Product"));
    assert!(pending.is_none());
    let (req, _) = p
        .resolve(with_document_id(&format!("sha256:{id}")))
        .await
        .unwrap();
    assert!(req.query.starts_with("query Product"));
    let (req, _) = p
        .resolve(with_document_id(&id.to_uppercase()))
        .await
        .unwrap();
    assert!(req.query.starts_with("query Product"));
    // A document, even one that does not parse, is refused before parsing.
    assert_eq!(
        code(
            p.resolve(async_graphql::Request::new("{{{ not graphql"))
                .await
        ),
        (StatusCode::BAD_REQUEST, codes::REQUIRED.code())
    );
    let unknown = document_id("{ other }");
    assert_eq!(
        code(p.resolve(with_hash("", &unknown)).await),
        (StatusCode::NOT_FOUND, codes::NOT_FOUND.code())
    );
    assert_eq!(
        code(p.resolve(with_hash("{ other }", &unknown)).await),
        (StatusCode::NOT_FOUND, codes::NOT_FOUND.code())
    );
}

#[tokio::test]
async fn apq_three_cases() {
    let (p, _) = policy(PersistedMode::Allow, true).await;
    let doc = "{ product(id: \"p-1\") { name } }";
    let hash = document_id(doc);
    // 1. Hash only, unknown: NOT_FOUND with 200 so that Apollo clients resend.
    assert_eq!(
        code(p.resolve(with_hash("", &hash)).await),
        (StatusCode::OK, codes::NOT_FOUND.code())
    );
    // 2. Wrong hash: 400 mismatch.
    assert_eq!(
        code(p.resolve(with_hash(doc, &document_id("{ x }"))).await),
        (StatusCode::BAD_REQUEST, codes::HASH_MISMATCH.code())
    );
    // 3. Hash + document: runs, registered afterwards; then hash only runs.
    let (req, pending) = p.resolve(with_hash(doc, &hash)).await.unwrap();
    assert_eq!(req.query, doc);
    p.register(pending.unwrap()).await;
    let (req, pending) = p.resolve(with_hash("", &hash)).await.unwrap();
    assert_eq!(req.query, doc);
    assert!(pending.is_none());
}

#[tokio::test]
async fn manifest_ids_are_known_without_apq_and_other_ids_are_404() {
    let (p, id) = policy(PersistedMode::Allow, false).await;
    assert!(p.resolve(with_hash("", &id)).await.is_ok());
    let other = document_id("{ x }");
    assert_eq!(
        code(p.resolve(with_hash("", &other)).await),
        (StatusCode::NOT_FOUND, codes::NOT_FOUND.code())
    );
    // With the document it runs, unstored.
    let (req, pending) = p.resolve(with_hash("{ x }", &other)).await.unwrap();
    assert_eq!(req.query, "{ x }");
    assert!(pending.is_none());
    // Plain documents run.
    assert!(
        p.resolve(async_graphql::Request::new("{ x }"))
            .await
            .is_ok()
    );
    // Mode off: the manifest is not consulted.
    let (off, id) = policy(PersistedMode::Off, false).await;
    assert_eq!(
        code(off.resolve(with_hash("", &id)).await),
        (StatusCode::NOT_FOUND, codes::NOT_FOUND.code())
    );
}

#[tokio::test]
async fn malformed_ids_are_400() {
    let (p, id) = policy(PersistedMode::Allow, true).await;
    for req in [
        with_hash("", "abc"),
        with_document_id("sha256:zz"),
        with_hash("", &id).data(DocumentId(document_id("{ y }"))),
    ] {
        assert_eq!(
            code(p.resolve(req).await),
            (StatusCode::BAD_REQUEST, codes::BAD_ID.code())
        );
    }
    let mut req = with_hash("", &id);
    if let Some(Value::Object(pq)) = req.extensions.0.get_mut("persistedQuery") {
        pq.insert(Name::new("version"), Value::from(2));
    }
    assert_eq!(
        code(p.resolve(req).await),
        (StatusCode::BAD_REQUEST, codes::BAD_ID.code())
    );
}
