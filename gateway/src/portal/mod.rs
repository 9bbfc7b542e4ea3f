//! The developer portal (`/portal` on the client port, `portal.enabled`): what the
//! registered descriptors made available, for frontend teams, as server-rendered HTML with its
//! CSS inline: no JavaScript needed to read it, nothing loaded from elsewhere.
//!
//! - `/portal`: every service and method with its REST routes and GraphQL root field, the
//!   GraphQL object types with their fields, the BFF's named operations with their REST
//!   endpoints, links to `/openapi.json`, the SDL and GraphiQL;
//! - `/portal/types/{package.Message}`: a message's fields (JSON name, type, description) and
//!   an example JSON body;
//! - `/portal/schema.graphql`: the GraphQL SDL.

mod example;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};

use crate::descriptors::Docs;
use crate::snapshot::Snapshot;

/// What a portal path answers.
#[derive(Debug, PartialEq, Eq)]
pub enum Page {
    /// An HTML page.
    Html(String),
    /// The SDL, as text.
    Text(String),
    /// Nothing there; the message says what is.
    NotFound(String),
}

/// The page at `path` (`/portal...`).
pub fn page(snapshot: &Snapshot, path: &str) -> Page {
    let rest = path.trim_start_matches("/portal");
    match rest {
        "" | "/" => Page::Html(index(snapshot)),
        "/schema.graphql" => match &snapshot.graphql {
            Some(g) => Page::Text(g.sdl()),
            None => Page::NotFound("GraphQL is disabled in this config".into()),
        },
        other => match other.strip_prefix("/types/") {
            Some(name) => match snapshot.registry.pool().get_message_by_name(name) {
                Some(desc) => Page::Html(message_page(snapshot, &desc)),
                None => Page::NotFound(format!("no message type {name:?} in the descriptors")),
            },
            None => Page::NotFound(format!(
                "no portal page {path:?}: see /portal, /portal/types/{{package.Message}}, /portal/schema.graphql"
            )),
        },
    }
}

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn layout(title: &str, body: &str) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; padding: 0 1rem; color: #1d1d1f; }}
h1, h2, h3 {{ font-weight: 600; }}
table {{ border-collapse: collapse; width: 100%; margin: .5rem 0 1.5rem; }}
th, td {{ text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #ddd; vertical-align: top; }}
code, pre {{ font-family: ui-monospace, monospace; font-size: .9em; }}
pre {{ background: #f5f5f7; padding: .8rem; overflow-x: auto; }}
.verb {{ font-weight: 600; }}
nav a {{ margin-right: 1rem; }}
</style>
</head>
<body>
<nav><a href="/portal">Portal</a><a href="/openapi.json">OpenAPI</a><a href="/portal/schema.graphql">GraphQL SDL</a></nav>
{body}
</body>
</html>
"#,
        title = esc(title)
    )
}

fn type_link(desc: &MessageDescriptor) -> String {
    format!(
        r#"<a href="/portal/types/{0}"><code>{0}</code></a>"#,
        esc(desc.full_name())
    )
}

/// The ways to call one method: its REST routes and its GraphQL root fields (as HTML).
type Ways = (Vec<String>, Vec<String>);

fn index(snapshot: &Snapshot) -> String {
    let mut docs = Docs::default();
    let mut body = String::from("<h1>What this BFF serves</h1>\n");
    let graphql_path = &snapshot.config.graphql.path;
    let _ = writeln!(
        body,
        "<p>REST routes transcoded to gRPC (<a href=\"/openapi.json\">OpenAPI 3.1</a>), GraphQL at <code>{}</code>{}, and the BFF's named operations.</p>",
        esc(graphql_path),
        if snapshot.graphql.is_some() && snapshot.config.graphql.graphiql {
            format!(
                " (<a href=\"{}\">GraphiQL</a>, <a href=\"/portal/schema.graphql\">SDL</a>)",
                esc(graphql_path)
            )
        } else {
            String::new()
        }
    );
    // Methods by service, with their REST routes and GraphQL root fields.
    let mut services: BTreeMap<String, BTreeMap<String, Ways>> = BTreeMap::new();
    let mut methods = BTreeMap::new();
    for (method, template, target) in snapshot.routes.routes() {
        let m = &target.method;
        methods.insert(m.full_name().to_string(), m.clone());
        services
            .entry(m.parent_service().full_name().to_string())
            .or_default()
            .entry(m.name().to_string())
            .or_default()
            .0
            .push(format!(
                "<span class=\"verb\">{}</span> <code>{}</code>",
                method,
                esc(template.as_str())
            ));
    }
    if let Some(g) = &snapshot.graphql {
        for root in &g.roots {
            methods.insert(root.method.full_name().to_string(), root.method.clone());
            services
                .entry(root.method.parent_service().full_name().to_string())
                .or_default()
                .entry(root.method.name().to_string())
                .or_default()
                .1
                .push(format!(
                    "<code>{}.{}</code>",
                    esc(root.root),
                    esc(&root.name)
                ));
        }
    }
    body.push_str("<h2>Services</h2>\n");
    for (service, ms) in &services {
        let _ = writeln!(
            body,
            "<h3 id=\"{0}\">{0}</h3>\n<table>\n<tr><th>Method</th><th>REST</th><th>GraphQL</th><th>Request</th><th>Response</th></tr>",
            esc(service)
        );
        for (name, (rest, gql)) in ms {
            let Some(m) = methods.get(&format!("{service}.{name}")) else {
                continue;
            };
            let doc = docs
                .get(&m.parent_file(), m.path())
                .map(|d| format!("<br><small>{}</small>", esc(d.lines().next().unwrap_or(""))))
                .unwrap_or_default();
            let _ = writeln!(
                body,
                "<tr><td><code>{}</code>{doc}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(name),
                rest.join("<br>"),
                gql.join("<br>"),
                type_link(&m.input()),
                type_link(&m.output())
            );
        }
        body.push_str("</table>\n");
    }
    if let Some(g) = &snapshot.graphql {
        let _ = writeln!(
            body,
            "<h2>GraphQL types</h2>\n<p>Object types of the schema and their fields (the whole schema: <a href=\"/portal/schema.graphql\">SDL</a>).</p>\n<table>\n<tr><th>Type</th><th>Fields</th></tr>"
        );
        let registry = g.schema.registry();
        let mut names: Vec<&String> = registry
            .types
            .iter()
            .filter(|(n, t)| {
                !n.starts_with("__")
                    && matches!(t, async_graphql::registry::MetaType::Object { .. })
            })
            .map(|(n, _)| n)
            .collect();
        names.sort();
        for name in names {
            let Some(fields) = registry.types.get(name).and_then(|t| t.fields()) else {
                continue;
            };
            let list: Vec<String> = fields
                .values()
                .filter(|f| !f.name.starts_with("__"))
                .map(|f| format!("<code>{}: {}</code>", esc(&f.name), esc(&f.ty)))
                .collect();
            let _ = writeln!(
                body,
                "<tr><td id=\"gql-{0}\"><code>{0}</code></td><td>{1}</td></tr>",
                esc(name),
                list.join(", ")
            );
        }
        body.push_str("</table>\n");
    }
    if let Some(ops) = &snapshot.operations {
        let mut endpoints: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (method, template, ep) in snapshot.endpoints.routes() {
            endpoints
                .entry(ep.operation.name.clone())
                .or_default()
                .push(format!(
                    "<span class=\"verb\">{method}</span> <code>{}</code>",
                    esc(template.as_str())
                ));
        }
        body.push_str("<h2>Operations</h2>\n<table>\n<tr><th>Operation</th><th>Variables</th><th>REST endpoints</th><th>Document</th></tr>\n");
        for op in ops.iter() {
            let vars: Vec<String> = op
                .variables
                .iter()
                .map(|v| format!("<code>${}: {}</code>", esc(&v.name), esc(&v.declared)))
                .collect();
            let _ = writeln!(
                body,
                "<tr><td><code>{}</code> ({:?})</td><td>{}</td><td>{}</td><td><pre>{}</pre></td></tr>",
                esc(&op.name),
                op.kind,
                vars.join("<br>"),
                endpoints
                    .get(&op.name)
                    .map(|e| e.join("<br>"))
                    .unwrap_or_default(),
                esc(&op.document)
            );
        }
        body.push_str("</table>\n");
    }
    layout("Portico developer portal", &body)
}

fn field_type(f: &FieldDescriptor) -> String {
    let single = |k: Kind| match k {
        Kind::Message(m) => type_link(&m),
        Kind::Enum(e) => {
            let values: Vec<String> = e.values().map(|v| esc(v.name())).collect();
            format!(
                "<code>{}</code> (one of {})",
                esc(e.full_name()),
                values.join(", ")
            )
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint64 | Kind::Fixed64 => {
            format!(
                "<code>{}</code> (a string in JSON)",
                format!("{k:?}").to_lowercase()
            )
        }
        Kind::Bytes => "<code>bytes</code> (base64)".into(),
        other => format!("<code>{}</code>", format!("{other:?}").to_lowercase()),
    };
    if f.is_map()
        && let Kind::Message(entry) = f.kind()
    {
        return format!(
            "map of {} to {}",
            single(entry.map_entry_key_field().kind()),
            single(entry.map_entry_value_field().kind())
        );
    }
    if f.is_list() {
        return format!("list of {}", single(f.kind()));
    }
    single(f.kind())
}

fn message_page(snapshot: &Snapshot, desc: &MessageDescriptor) -> String {
    let mut docs = Docs::default();
    let proto_names = snapshot.config.rest.use_proto_field_names;
    let mut body = format!("<h1><code>{}</code></h1>\n", esc(desc.full_name()));
    if let Some(d) = docs.get(&desc.parent_file(), desc.path()) {
        let _ = writeln!(body, "<p>{}</p>", esc(&d));
    }
    body.push_str("<table>\n<tr><th>Field (JSON)</th><th>Type</th><th>Description</th></tr>\n");
    for f in desc.fields() {
        let name = if proto_names { f.name() } else { f.json_name() };
        let doc = docs.get(&f.parent_file(), f.path()).unwrap_or_default();
        let _ = writeln!(
            body,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            esc(name),
            field_type(&f),
            esc(&doc)
        );
    }
    body.push_str("</table>\n<h2>Example</h2>\n");
    let example = example::of(desc, proto_names);
    let _ = writeln!(
        body,
        "<pre>{}</pre>",
        esc(&serde_json::to_string_pretty(&example).unwrap_or_default())
    );
    layout(desc.full_name(), &body)
}
