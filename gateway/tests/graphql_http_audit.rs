//! Runs the `graphql-http` conformance audit (npm package) against the GraphQL HTTP layer
//! serving a toy dynamic schema; every MUST audit has to pass.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use async_graphql::Value;
use async_graphql::dynamic::{
    Field, FieldFuture, InputValue, Object, Schema, Subscription, SubscriptionField,
    SubscriptionFieldFuture, TypeRef,
};
use futures::StreamExt;
use portico::graphql::http::{HttpSettings, PassThrough, ValidationSignal, router};
use tokio::process::Command;

/// Query { hello(name: String): String }, Mutation { shout(text: String!): String },
/// Subscription { count(to: Int!): Int! }.
fn toy_schema() -> Schema {
    let query = Object::new("Query").field(
        Field::new("hello", TypeRef::named(TypeRef::STRING), |ctx| {
            FieldFuture::new(async move {
                let name = match ctx.args.get("name") {
                    Some(v) => v.string()?.to_owned(),
                    None => "world".to_owned(),
                };
                Ok(Some(Value::from(format!("hello {name}"))))
            })
        })
        .argument(InputValue::new("name", TypeRef::named(TypeRef::STRING))),
    );
    let mutation = Object::new("Mutation").field(
        Field::new("shout", TypeRef::named(TypeRef::STRING), |ctx| {
            FieldFuture::new(async move {
                let text = ctx.args.try_get("text")?.string()?.to_uppercase();
                Ok(Some(Value::from(text)))
            })
        })
        .argument(InputValue::new("text", TypeRef::named_nn(TypeRef::STRING))),
    );
    let subscription = Subscription::new("Subscription").field(
        SubscriptionField::new("count", TypeRef::named_nn(TypeRef::INT), |ctx| {
            SubscriptionFieldFuture::new(async move {
                let to = ctx.args.try_get("to")?.i64()?;
                Ok(futures::stream::iter(1..=to).map(|i| Ok(Value::from(i))))
            })
        })
        .argument(InputValue::new("to", TypeRef::named_nn(TypeRef::INT))),
    );
    Schema::build("Query", Some("Mutation"), Some("Subscription"))
        .extension(ValidationSignal)
        .register(query)
        .register(mutation)
        .register(subscription)
        .finish()
        .unwrap()
}

/// True when `node` runs on this machine.
async fn have_node() -> bool {
    Command::new("node")
        .arg("--version")
        .output()
        .await
        .is_ok_and(|o| o.status.success())
}

#[tokio::test]
async fn graphql_http_audit_passes() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let audit_dir = root.join("tests/graphql-http");
    if !have_node().await {
        eprintln!("SKIPPED: node is not installed; the graphql-http audit needs Node.js 18+");
        return;
    }
    if !audit_dir.join("node_modules").exists() {
        let out = Command::new("npm")
            .arg("ci")
            .arg("--prefix")
            .arg(&audit_dir)
            .args(["--no-audit", "--no-fund"])
            .output()
            .await
            .expect("running npm");
        assert!(
            out.status.success(),
            "npm ci failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let settings = HttpSettings {
        graphiql: true,
        path: "/graphql".into(),
        max_body_bytes: 64 * 1024,
    };
    let app = router(toy_schema(), Arc::new(PassThrough), settings);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let out = Command::new("node")
        .arg(audit_dir.join("audit.mjs"))
        .arg(format!("http://{addr}/graphql"))
        .output()
        .await
        .expect("running node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "graphql-http audit failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
