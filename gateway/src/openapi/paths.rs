//! REST routes as OpenAPI operations: the path with its variables (a variable covering several
//! segments, `{name=categories/*/products/*}`, is one parameter whose pattern says so; a custom
//! verb stays literal), the query parameters the router reads (every field the path and the
//! body leave, by dotted name, repeated ones repeated), the body, the success answer (a stream
//! as NDJSON or Server-Sent Events) and the error answer. `google.api.HttpBody` bodies and
//! replies are raw bytes (`*/*`, `format: binary`); a body a form may fill also lists
//! `multipart/form-data`, a part per field.

use std::collections::HashSet;

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Value, json};

use super::schema::{Schemas, reference};
use crate::rest::routes::{RouteTarget, Streaming};
use crate::rest::template::{PathTemplate, Segment};
use crate::transcode::BodyTarget;

/// The OpenAPI path of a template, and the pattern of each variable (by dotted name) that
/// covers more than one segment or a `**`.
pub fn openapi_path(template: &PathTemplate) -> (String, Vec<(String, String)>) {
    let mut out = String::new();
    let mut patterns = Vec::new();
    let segments = template.segments();
    let mut i = 0;
    let mut wildcards = 0;
    while i < segments.len() {
        out.push('/');
        if let Some(v) = template.variables().iter().find(|v| v.segments.start == i) {
            let name = v.dotted();
            out.push_str(&format!("{{{name}}}"));
            let covered = &segments[v.segments.clone()];
            if covered.len() > 1 || covered.contains(&Segment::Multi) {
                let shape: Vec<String> = covered
                    .iter()
                    .map(|s| match s {
                        Segment::Literal(l) => regex_escape(l),
                        Segment::Single => "[^/]+".into(),
                        Segment::Multi => ".*".into(),
                    })
                    .collect();
                patterns.push((name, format!("^{}$", shape.join("/"))));
            }
            i = v.segments.end;
            continue;
        }
        match &segments[i] {
            Segment::Literal(l) => out.push_str(l),
            Segment::Single | Segment::Multi => {
                wildcards += 1;
                out.push_str(&format!("{{_wildcard{wildcards}}}"));
            }
        }
        i += 1;
    }
    if out.is_empty() {
        out.push('/');
    }
    if let Some(verb) = template.verb() {
        out.push(':');
        out.push_str(verb);
    }
    (out, patterns)
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$".contains(c);
            special
                .then_some('\\')
                .into_iter()
                .chain(std::iter::once(c))
        })
        .collect()
}

/// Marks an operation with its API version (`x-api-version`), and, when that version is
/// deprecated or retired, `deprecated: true` and the note at the end of its description.
pub fn version_note(op: &mut Value, version: &crate::versions::Version) {
    op["x-api-version"] = Value::String(version.name.clone());
    if let Some(note) = &version.note {
        op["deprecated"] = Value::Bool(true);
        let text = match op.get("description").and_then(Value::as_str) {
            Some(d) => format!("{d}\n\n**Deprecated:** {note}"),
            None => format!("**Deprecated:** {note}"),
        };
        op["description"] = Value::String(text);
    }
}

/// The operation object of a route; `operation_id` unique in the document.
pub fn operation(
    schemas: &mut Schemas,
    template: &PathTemplate,
    target: &RouteTarget,
    operation_id: String,
) -> Value {
    let input = target.method.input();
    let (_, patterns) = openapi_path(template);
    let mut parameters = Vec::new();
    let mut bound: HashSet<String> = HashSet::new();
    for v in &target.variables {
        bound.insert(v.as_str().to_string());
        let mut schema = schemas.field(v.last());
        if let Some((_, p)) = patterns.iter().find(|(n, _)| n == v.as_str()) {
            schema = json!({ "type": "string", "pattern": p });
        }
        parameters.push(json!({
            "name": v.as_str(),
            "in": "path",
            "required": true,
            "schema": schema,
        }));
    }
    let mut wildcard = 0;
    let (path, _) = openapi_path(template);
    while path.contains(&format!("{{_wildcard{}}}", wildcard + 1)) {
        wildcard += 1;
        parameters.push(json!({
            "name": format!("_wildcard{wildcard}"),
            "in": "path",
            "required": true,
            "description": "Any one path segment (the template has an unnamed wildcard).",
            "schema": { "type": "string" },
        }));
    }
    let body_field = match &target.body {
        BodyTarget::Field(fp) => Some(fp.as_str().to_string()),
        _ => None,
    };
    if !matches!(target.body, BodyTarget::Whole) {
        query_parameters(
            schemas,
            &input,
            ("", ""),
            &bound,
            body_field.as_deref(),
            &mut HashSet::new(),
            &mut parameters,
        );
    }
    let mut op = json!({
        "operationId": operation_id,
        "tags": [target.method.parent_service().full_name()],
        "x-grpc-method": target.full_name,
    });
    if let Some(doc) = schemas.doc(&target.method.parent_file(), target.method.path()) {
        let summary = doc.lines().next().unwrap_or_default().to_string();
        op["summary"] = Value::String(summary);
        op["description"] = Value::String(doc);
    }
    if method_deprecated(&target.method) {
        op["deprecated"] = Value::Bool(true);
    }
    if !parameters.is_empty() {
        op["parameters"] = Value::Array(parameters);
    }
    let request_schema = match &target.body {
        BodyTarget::None => None,
        BodyTarget::Whole => Some(schemas.message(&input)),
        BodyTarget::Field(fp) => Some(schemas.field(fp.last())),
    };
    if let Some(schema) = request_schema {
        op["requestBody"] = if target.raw_request {
            json!({
                "required": true,
                "description": "The raw body (a google.api.HttpBody): its bytes and its Content-Type go to the backend as they are.",
                "content": { "*/*": { "schema": binary() } }
            })
        } else if target.streaming == Streaming::Client {
            json!({
                "required": true,
                "description": "The stream of request messages, one JSON object per line.",
                "content": { "application/x-ndjson": { "schema": schema } }
            })
        } else if target.takes_form {
            let form_desc = match &target.body {
                BodyTarget::Field(fp) => fp.last().kind().as_message().cloned(),
                _ => Some(input.clone()),
            };
            let mut content = json!({ "application/json": { "schema": schema } });
            if let Some(desc) = form_desc {
                content["multipart/form-data"] = json!({ "schema": form_schema(schemas, &desc) });
            }
            json!({ "required": true, "content": content })
        } else {
            json!({ "required": true, "content": { "application/json": { "schema": schema } } })
        };
    }
    let output = target.method.output();
    let reply = match &target.response_body {
        Some(fp) => schemas.field(fp.last()),
        None => schemas.message(&output),
    };
    let success = if target.raw_reply {
        let description = if target.streaming == Streaming::Server {
            "A download: the raw bytes of the stream's google.api.HttpBody messages, one after the other, with the first one's content type. If the stream fails after it started, the body ends abruptly (incomplete)."
        } else {
            "The raw bytes of the reply (a google.api.HttpBody) with its content type."
        };
        json!({ "description": description, "content": { "*/*": { "schema": binary() } } })
    } else if target.streaming == Streaming::Server {
        json!({
            "description": "A stream: one line per message, `{\"result\": MESSAGE}`, or `{\"error\": STATUS}` last if the stream fails after it started (Server-Sent Events with `Accept: text/event-stream`).",
            "content": {
                "application/x-ndjson": {
                    "schema": {
                        "type": "object",
                        "properties": { "result": reply, "error": reference("google.rpc.Status") }
                    }
                },
                "text/event-stream": { "schema": { "type": "string" } }
            }
        })
    } else {
        json!({
            "description": "The method's reply.",
            "content": { "application/json": { "schema": reply } }
        })
    };
    op["responses"] = json!({
        target.success.as_u16().to_string(): success,
        "default": {
            "description": "An error, as a google.rpc.Status (the HTTP status maps its gRPC code).",
            "content": { "application/json": { "schema": reference("google.rpc.Status") } }
        }
    });
    op
}

/// Raw bytes.
fn binary() -> Value {
    json!({ "type": "string", "format": "binary" })
}

/// A `multipart/form-data` body filling a message: a part per field, bytes (and
/// `google.api.HttpBody`) fields as files, scalars as text, other messages and maps as JSON
/// text.
fn form_schema(schemas: &mut Schemas, desc: &MessageDescriptor) -> Value {
    let mut properties = serde_json::Map::new();
    for f in desc.fields() {
        let file = match f.kind() {
            Kind::Bytes => true,
            Kind::Message(m) => crate::transcode::is_http_body(&m),
            _ => false,
        };
        let json_text =
            !file && (f.is_map() || matches!(f.kind(), Kind::Message(m) if !is_scalar_wkt(&m)));
        let mut schema = if file {
            binary()
        } else if json_text {
            json!({ "type": "string", "contentMediaType": "application/json" })
        } else {
            schemas.field(&f)
        };
        // A file per element; a JSON part is the whole field (a list as a JSON array).
        if file && f.is_list() {
            schema = json!({ "type": "array", "items": schema });
        }
        properties.insert(schemas.name(&f), schema);
    }
    json!({ "type": "object", "properties": properties })
}

/// The query parameters of the fields under `prefix` that neither the path nor the body
/// binds: scalars, enums and their lists by dotted name, nested messages walked (each type
/// once per path, so recursive types end), maps and repeated messages left out (the query
/// string cannot set them).
fn query_parameters(
    schemas: &mut Schemas,
    desc: &MessageDescriptor,
    (prefix, json_prefix): (&str, &str),
    bound: &HashSet<String>,
    body_field: Option<&str>,
    walking: &mut HashSet<String>,
    out: &mut Vec<Value>,
) {
    if !walking.insert(desc.full_name().to_string()) {
        return;
    }
    for f in desc.fields() {
        let proto_path = format!("{prefix}{}", f.name());
        if bound.contains(&proto_path) || body_field == Some(proto_path.as_str()) {
            continue;
        }
        if f.is_map() {
            continue;
        }
        match f.kind() {
            Kind::Message(m) if !is_scalar_wkt(&m) => {
                if !f.is_list() {
                    let json_path = format!("{json_prefix}{}.", schemas.name(&f));
                    query_parameters(
                        schemas,
                        &m,
                        (&format!("{proto_path}."), &json_path),
                        bound,
                        body_field,
                        walking,
                        out,
                    );
                }
            }
            _ => out.push(query_parameter(schemas, &f, json_prefix)),
        }
    }
    walking.remove(desc.full_name());
}

fn query_parameter(schemas: &mut Schemas, f: &FieldDescriptor, json_prefix: &str) -> Value {
    let name = format!("{json_prefix}{}", schemas.name(f));
    let mut p = json!({ "name": name, "in": "query", "schema": schemas.field(f) });
    if f.is_list() {
        p["explode"] = Value::Bool(true);
        p["style"] = Value::String("form".into());
    }
    p
}

/// Well-known types read from one query value (`2024-01-01T00:00:00Z`, `1.5s`, `5`).
fn is_scalar_wkt(m: &MessageDescriptor) -> bool {
    matches!(
        m.full_name(),
        "google.protobuf.Timestamp"
            | "google.protobuf.Duration"
            | "google.protobuf.FieldMask"
            | "google.protobuf.DoubleValue"
            | "google.protobuf.FloatValue"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt64Value"
            | "google.protobuf.Int32Value"
            | "google.protobuf.UInt32Value"
            | "google.protobuf.BoolValue"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue"
    )
}

fn method_deprecated(m: &prost_reflect::MethodDescriptor) -> bool {
    m.method_descriptor_proto()
        .options
        .as_ref()
        .and_then(|o| o.deprecated)
        .unwrap_or(false)
}
