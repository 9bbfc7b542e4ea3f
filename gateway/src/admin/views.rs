//! The admin listener's read-only views of what the gateway serves, as JSON built from a
//! snapshot: services and methods with the descriptor source they came from, the REST route
//! table (and the bindings left out), the BFF's operations and their endpoints.

use serde_json::{Value as Json, json};

use crate::rest::routes::Streaming;
use crate::snapshot::Snapshot;

/// `GET /admin/services`: every served service, its backend, where its descriptor came from,
/// and its methods with their message types and streaming kind.
pub fn services(snapshot: &Snapshot) -> Json {
    let list: Vec<Json> = snapshot
        .services
        .iter()
        .map(|(svc, backend)| {
            let methods: Vec<Json> = svc
                .methods()
                .map(|m| {
                    let streaming = match (m.is_client_streaming(), m.is_server_streaming()) {
                        (false, false) => "unary",
                        (false, true) => "server",
                        (true, false) => "client",
                        (true, true) => "bidi",
                    };
                    json!({
                        "name": m.name(),
                        "full_name": m.full_name(),
                        "input": m.input().full_name(),
                        "output": m.output().full_name(),
                        "streaming": streaming,
                    })
                })
                .collect();
            json!({
                "name": svc.full_name(),
                "backend": backend,
                "file": svc.parent_file().name(),
                "source": snapshot.registry.service_origin(svc.full_name()),
                "methods": methods,
            })
        })
        .collect();
    json!({ "services": list })
}

/// `GET /admin/routes`: the REST route table in matching order, and the bindings that were
/// left out with the reason.
pub fn routes(snapshot: &Snapshot) -> Json {
    let routes: Vec<Json> = snapshot
        .routes
        .routes()
        .map(|(method, template, target)| {
            json!({
                "method": method.as_str(),
                "path": template.to_string(),
                "rpc": target.full_name,
                "backend": &*target.call.backend,
                "streaming": match target.streaming {
                    Streaming::Unary => "unary",
                    Streaming::Server => "server",
                    Streaming::Client => "client",
                },
                "success_status": target.success.as_u16(),
            })
        })
        .collect();
    let skipped: Vec<Json> = snapshot
        .skipped_routes
        .iter()
        .map(|e| json!({ "rpc": e.method, "binding": e.binding, "reason": e.message }))
        .collect();
    json!({ "routes": routes, "skipped": skipped })
}

/// `GET /admin/operations`: the BFF's named operations (name, kind, file, id, variables) and
/// the REST endpoints that publish them.
pub fn operations(snapshot: &Snapshot) -> Json {
    let operations: Vec<Json> = snapshot
        .operations
        .iter()
        .flat_map(|ops| ops.iter())
        .map(|op| {
            json!({
                "name": op.name,
                "kind": op.kind.to_string(),
                "file": op.file,
                "id": op.id,
                "variables": op.variables.iter()
                    .map(|v| json!({ "name": v.name, "type": v.declared }))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    let endpoints: Vec<Json> = snapshot
        .endpoints
        .routes()
        .map(|(method, _, e)| {
            json!({
                "method": method.as_str(),
                "path": e.path,
                "operation": e.operation.name,
                "unwrap": e.unwrap,
            })
        })
        .collect();
    json!({ "operations": operations, "endpoints": endpoints })
}
