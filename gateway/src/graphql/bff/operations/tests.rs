//! Loading operation folders against the demo schema: ids, fragments, types, and precise errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use super::*;
use crate::config::{GraphqlConfig, LinkConfig};
use crate::descriptors::{self, Registry};

/// The demo schema (with the `User.orders` link), as the example BFFs have it.
pub(crate) fn demo_schema() -> GraphqlSchema {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../descriptors/demo.binpb");
    let registry = Registry::build(vec![descriptors::load_descriptor_set(&path).unwrap()]).unwrap();
    let services: Vec<_> = registry
        .services()
        .into_iter()
        .map(|s| (s, "b".to_string()))
        .collect();
    let link: LinkConfig = yaml_serde::from_str(
        "{ on: demo.v1.User, field: orders, call: demo.v1.OrderService.ListOrdersByUser, args: { user_id: id }, result: orders }",
    )
    .unwrap();
    let cfg = GraphqlConfig {
        links: vec![link],
        ..Default::default()
    };
    crate::graphql::engine::schema::build(&services, &cfg).unwrap()
}

/// The operations of `files`, loaded against the demo schema.
pub(crate) async fn demo_operations(name: &str, files: &[(&str, &str)]) -> Operations {
    load_files(name, files).await.unwrap()
}

/// A fresh folder holding `files`.
fn folder(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("portico-ops-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (f, text) in files {
        std::fs::write(dir.join(f), text).unwrap();
    }
    dir
}

async fn load_files(name: &str, files: &[(&str, &str)]) -> Result<Operations, OperationsError> {
    let dir = folder(name, files);
    let r = load(&dir, &demo_schema()).await;
    let _ = std::fs::remove_dir_all(&dir);
    r
}

#[tokio::test]
async fn operations_load_with_ids_variables_and_shared_fragments() {
    let ops = load_files(
        "ok",
        &[
            (
                "home.graphql",
                "# Home screen\nquery Home($userId: Int64!, $status: OrderStatus, $n: Int = 2) {\n  user(id: $userId) { ...UserCard orders { id } }\n  page: ordersByUser(userId: $userId, status: $status, pageSize: $n) { nextPageToken }\n}\n",
            ),
            (
                "fragments.graphql",
                "fragment UserCard on User { id displayName }",
            ),
            (
                "more.graphql",
                "query Product($id: String!) { product(id: $id) { name } }\nmutation Rename($id: Int64!, $name: String!) { updateUser(user: {id: $id, displayName: $name}, updateMask: \"display_name\") { id } }",
            ),
            ("notes.txt", "not an operation"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        ops.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(),
        ["Home", "Product", "Rename"]
    );
    let home = ops.get("Home").unwrap();
    assert!(home.document.contains("fragment UserCard on User"));
    assert!(!home.document.contains("Home screen"));
    assert_eq!(home.id, document_id(&home.document));
    assert_eq!(home.id.len(), 64);
    assert!(ops.by_id(&home.id).is_some());
    assert_eq!(home.root_fields, ["user", "page"]);
    assert!(home.file.ends_with("home.graphql"));
    let v: Vec<_> = home
        .variables
        .iter()
        .map(|v| (v.name.as_str(), v.declared.as_str(), v.required))
        .collect();
    assert_eq!(
        v,
        [
            ("userId", "Int64!", true),
            ("status", "OrderStatus", false),
            ("n", "Int", false)
        ]
    );
    assert!(
        matches!(&home.variables[1].ty, VarType::Enum { values, .. } if values.iter().any(|v| v == "ORDER_STATUS_PAID"))
    );
    assert_eq!(ops.get("Rename").unwrap().kind, OperationType::Mutation);
    let manifest = ops.manifest();
    assert_eq!(manifest.len(), 3);
    assert_eq!(manifest[&home.id], &*home.document);
    let json: serde_json::Value = serde_json::from_str(&ops.manifest_json()).unwrap();
    assert_eq!(
        json[&home.id],
        serde_json::Value::String(home.document.to_string())
    );
}

#[tokio::test]
async fn a_removed_field_names_file_operation_field_and_position() {
    let e = load_files(
        "broken",
        &[(
            "home.graphql",
            "query Home($userId: Int64!) {\n  user(id: $userId) {\n    id\n    shoeSize\n  }\n}\n",
        )],
    )
    .await
    .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("home.graphql:4:5: operation Home, field shoeSize: "),
        "{text}"
    );
    assert!(
        text.contains("Unknown field \"shoeSize\" on type \"User\""),
        "{text}"
    );
}

#[tokio::test]
async fn an_error_inside_a_shared_fragment_names_the_fragments_file() {
    let e = load_files(
        "fragment",
        &[
            ("a.graphql", "query A { user(id: 1) { ...F } }"),
            ("b.graphql", "fragment F on User {\n  id\n  gone\n}"),
        ],
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("b.graphql:3:3: operation A, field gone"), "{e}");
}

#[tokio::test]
async fn wrong_arguments_and_variables_are_load_errors() {
    let e = load_files(
        "arg",
        &[("a.graphql", "query A {\n  user(idd: 1) { id }\n}")],
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("a.graphql:2:3: operation A, field user"), "{e}");
    let e = load_files(
        "var",
        &[("a.graphql", "query A {\n  user(id: $nope) { id }\n}")],
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("operation A") && e.contains("nope"), "{e}");
    let e = load_files(
        "required",
        &[("a.graphql", "query A {\n  product(id: 1) { name }\n}")],
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("a.graphql:2:3: operation A, field product"),
        "{e}"
    );
}

#[tokio::test]
async fn syntax_anonymous_duplicate_and_missing_fragment_errors() {
    let e = load_files(
        "syntax",
        &[("a.graphql", "query A {\n  user(id: 1 { id }\n}")],
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("a.graphql:2:"), "{e}");
    let e = load_files("anon", &[("a.graphql", "{ user(id: 1) { id } }")])
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("a.graphql:1:1: anonymous operation"), "{e}");
    let e = load_files(
        "dup",
        &[
            ("a.graphql", "query A { user(id: 1) { id } }"),
            ("b.graphql", "query A { user(id: 2) { id } }"),
        ],
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("b.graphql:1:1: operation A is also defined in"),
        "{e}"
    );
    assert!(e.contains("a.graphql"), "{e}");
    let e = load_files(
        "frag",
        &[("a.graphql", "query A {\n  user(id: 1) { ...Missing }\n}")],
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("a.graphql:2:17: operation A: unknown fragment Missing"),
        "{e}"
    );
    let e = load(
        std::path::Path::new("/nonexistent/portico-ops"),
        &demo_schema(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("cannot read the operations folder"), "{e}");
}

#[test]
fn document_ids_are_sha256_hex() {
    assert_eq!(
        document_id("{__typename}"),
        "ecf4edb46db40b5132295c0291d62fb65d6759a9eedfa4d5d612dd5ec54a6b38"
    );
}
