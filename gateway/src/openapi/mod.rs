//! The OpenAPI 3.1 document of a snapshot's REST routes, generated from the descriptors and
//! the route table (so it is the router's own reading of the `google.api.http` rules, and is
//! regenerated with every reload): served at `/openapi.json` on the client port
//! (`rest.openapi`), printed by `bff-web openapi`.
//!
//! [`paths`] turns each route into an operation (parameters as the router binds them, body,
//! answers); [`schema`] turns message types into JSON Schema by the proto3 JSON mapping;
//! [`endpoints`] documents the BFF's operation endpoints (tag `operations`).

pub mod endpoints;
pub mod paths;
pub mod schema;

use serde_json::{Map, Value, json};

use self::paths::{openapi_path, operation};
use self::schema::Schemas;
use crate::snapshot::Snapshot;

/// The document, for a BFF named `title`.
pub fn document(snapshot: &Snapshot, title: &str) -> Value {
    document_for(snapshot, title, None)
}

/// The services with REST routes, by full name.
pub fn services(snapshot: &Snapshot) -> std::collections::BTreeSet<String> {
    snapshot
        .routes
        .routes()
        .map(|(_, _, t)| t.method.parent_service().full_name().to_string())
        .collect()
}

/// The document of one service's routes (`Some(package.Service)`), or of everything.
pub fn document_for(snapshot: &Snapshot, title: &str, service: Option<&str>) -> Value {
    let mut schemas = Schemas::new(snapshot.config.rest.use_proto_field_names);
    let mut paths: Map<String, Value> = Map::new();
    let mut ids: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut tags = std::collections::BTreeSet::new();
    for (method, template, target) in snapshot.routes.routes() {
        if service.is_some_and(|s| s != target.method.parent_service().full_name()) {
            continue;
        }
        let (path, _) = openapi_path(template);
        // One id per method; its other bindings numbered after it.
        let base = target.full_name.replace('.', "_");
        let n = ids.entry(base.clone()).or_insert(0);
        *n += 1;
        let id = if *n == 1 { base } else { format!("{base}_{n}") };
        tags.insert(target.method.parent_service().full_name().to_string());
        let mut op = operation(&mut schemas, template, target, id);
        if let Some(v) = snapshot.versions.of_method(&target.full_name) {
            paths::version_note(&mut op, v);
        }
        let item = paths
            .entry(path)
            .or_insert_with(|| Value::Object(Map::new()));
        let key = method.as_str().to_ascii_lowercase();
        // Two templates can read as one OpenAPI path (`{name=a/*}` and `{name=b/*}`): the
        // first keeps the slot, the others are listed on it.
        if let Some(o) = item.as_object_mut() {
            if let Some(existing) = o.get_mut(&key) {
                let also = existing
                    .as_object_mut()
                    .map(|e| e.entry("x-also-bound").or_insert_with(|| json!([])));
                if let Some(Value::Array(list)) = also {
                    list.push(Value::String(format!("{method} {}", template.as_str())));
                }
            } else {
                o.insert(key, op);
            }
        }
    }
    // The operation endpoints, typed by the GraphQL schema.
    if let (Some(graphql), None) = (&snapshot.graphql, service) {
        let registry = graphql.schema.registry();
        for (method, template, ep) in snapshot.endpoints.routes() {
            let (path, _) = openapi_path(template);
            let id = format!("operation_{}", ep.operation.name);
            let n = ids.entry(id.clone()).or_insert(0);
            *n += 1;
            let id = if *n == 1 { id } else { format!("{id}_{n}") };
            if let Some(op) = endpoints::operation(ep, registry, id) {
                tags.insert("operations".to_string());
                if let Some(o) = paths
                    .entry(path)
                    .or_insert_with(|| Value::Object(Map::new()))
                    .as_object_mut()
                {
                    o.entry(method.as_str().to_ascii_lowercase()).or_insert(op);
                }
            }
        }
    }
    // The detail types errors carry (google/rpc/error_details.proto, in every pool).
    let pool = snapshot.registry.pool();
    let mut details = Vec::new();
    for name in [
        "BadRequest",
        "ErrorInfo",
        "RetryInfo",
        "DebugInfo",
        "QuotaFailure",
        "PreconditionFailure",
        "RequestInfo",
        "ResourceInfo",
        "Help",
        "LocalizedMessage",
    ] {
        let full = format!("google.rpc.{name}");
        if let Some(desc) = pool.get_message_by_name(&full) {
            schemas.message(&desc);
            details.push(full);
        }
    }
    let mut components = schemas.finish();
    components.insert("google.rpc.Status".into(), schema::status(&details));
    let tags: Vec<Value> = tags.into_iter().map(|t| json!({ "name": t })).collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": match service {
                Some(s) => format!("Portico {title} BFF: {s}"),
                None => format!("Portico {title} BFF"),
            },
            "version": env!("CARGO_PKG_VERSION"),
            "description": "REST routes transcoded to gRPC methods, generated from the registered descriptors (google.api.http rules and the default POST /package.Service/Method routes). JSON follows the proto3 JSON mapping: 64-bit integers as strings, enums by name, bytes as base64.",
        },
        "tags": tags,
        "paths": paths,
        "components": { "schemas": components },
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::paths::openapi_path;
    use crate::rest::template::PathTemplate;

    fn path(t: &str) -> (String, Vec<(String, String)>) {
        openapi_path(&PathTemplate::parse(t).unwrap())
    }

    #[test]
    fn templates_read_as_openapi_paths() {
        assert_eq!(path("/v1/users/{id}").0, "/v1/users/{id}");
        assert_eq!(path("/v1/users/{user.id}").0, "/v1/users/{user.id}");
        let (p, patterns) = path("/v1/{name=categories/*/products/*}");
        assert_eq!(p, "/v1/{name}");
        assert_eq!(
            patterns,
            vec![(
                "name".to_string(),
                "^categories/[^/]+/products/[^/]+$".to_string()
            )]
        );
        let (p, patterns) = path("/v1/products/{product_id}/images/{path=**}");
        assert_eq!(p, "/v1/products/{product_id}/images/{path}");
        assert_eq!(patterns[0].1, "^.*$");
        assert_eq!(path("/v1/products:batchGet").0, "/v1/products:batchGet");
        assert_eq!(path("/v1/users/{id}:watch").0, "/v1/users/{id}:watch");
        assert_eq!(path("/v1/*/x").0, "/v1/{_wildcard1}/x");
    }
}
