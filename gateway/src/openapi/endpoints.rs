//! Operation endpoints as OpenAPI operations: their parameters from the operation's variables
//! (path variables in the path; the others in the query string for GET, in a JSON body for
//! POST) and their answer from the operation's selection set, typed by the GraphQL schema
//! (`data`, or `data.<unwrap>`), with the errors (`{"errors": [...]}`) of a failed one.

use std::collections::HashMap;

use async_graphql::Name;
use async_graphql::parser::types::{
    ExecutableDocument, FragmentDefinition, OperationType, Selection, SelectionSet,
};
use async_graphql::registry::{MetaType, MetaTypeName, Registry};
use serde_json::{Map, Value, json};

use crate::graphql::bff::endpoints::Endpoint;
use crate::graphql::bff::operations::{Scalar, VarType};
use crate::rest::template::PathTemplate;

/// How deep selections are followed (operations are checked against the query limits
/// anyway; this only bounds the walk).
const MAX_DEPTH: usize = 32;

/// The operation object of an endpoint (`None` when its path does not parse, which the
/// endpoint table already refused).
pub fn operation(ep: &Endpoint, registry: &Registry, operation_id: String) -> Option<Value> {
    let template = PathTemplate::parse(&ep.path).ok()?;
    let op = &ep.operation;
    let path_vars: Vec<String> = template.variables().iter().map(|v| v.dotted()).collect();
    let mut parameters = Vec::new();
    let mut body = Map::new();
    let mut required = Vec::new();
    for v in &op.variables {
        let schema = variable_schema(&v.ty);
        if path_vars.contains(&v.name) {
            parameters
                .push(json!({ "name": v.name, "in": "path", "required": true, "schema": schema }));
        } else if ep.method == http::Method::GET {
            let mut p =
                json!({ "name": v.name, "in": "query", "required": v.required, "schema": schema });
            if matches!(v.ty, VarType::List { .. }) {
                p["explode"] = Value::Bool(true);
            }
            parameters.push(p);
        } else {
            if v.required {
                required.push(Value::String(v.name.clone()));
            }
            body.insert(v.name.clone(), schema);
        }
    }
    let doc = async_graphql::parser::parse_query(op.document.as_ref()).ok();
    let data = doc
        .as_ref()
        .and_then(|d| data_schema(registry, d, &op.name))
        .unwrap_or_else(|| json!({ "type": "object" }));
    let answer = match &ep.unwrap {
        Some(field) => data["properties"][field].clone(),
        None => data,
    };
    let mut out = json!({
        "operationId": operation_id,
        "tags": ["operations"],
        "summary": format!("The {} operation ({})", op.name, op.file),
        "x-graphql-operation": op.name,
        "responses": {
            "200": {
                "description": "The operation's data. When some root fields failed, the same with an `errors` member and the header `x-portico-partial: true`.",
                "content": { "application/json": { "schema": answer } }
            },
            "default": {
                "description": "Every root field failed: the most severe status of the errors.",
                "content": { "application/json": { "schema": {
                    "type": "object",
                    "properties": { "errors": { "type": "array", "items": { "type": "object" } } },
                    "required": ["errors"]
                } } }
            }
        }
    });
    if !parameters.is_empty() {
        out["parameters"] = Value::Array(parameters);
    }
    if ep.method != http::Method::GET {
        out["requestBody"] = json!({
            "required": !required.is_empty(),
            "content": { "application/json": { "schema": {
                "type": "object", "properties": body, "required": required
            } } }
        });
    }
    Some(out)
}

fn variable_schema(ty: &VarType) -> Value {
    match ty {
        VarType::Scalar { scalar, non_null } => nullable(scalar_schema(scalar), *non_null),
        VarType::Enum {
            values, non_null, ..
        } => nullable(json!({ "type": "string", "enum": values }), *non_null),
        VarType::Input { non_null, .. } => nullable(json!({ "type": "object" }), *non_null),
        VarType::List { item, non_null } => nullable(
            json!({ "type": "array", "items": variable_schema(item) }),
            *non_null,
        ),
    }
}

fn scalar_schema(s: &Scalar) -> Value {
    match s {
        Scalar::Int => json!({ "type": "integer", "format": "int32" }),
        Scalar::Float => json!({ "type": "number" }),
        Scalar::Boolean => json!({ "type": "boolean" }),
        Scalar::String | Scalar::Id => json!({ "type": "string" }),
        Scalar::Int64 => json!({ "type": "string", "format": "int64", "pattern": "^-?[0-9]+$" }),
        Scalar::UInt64 => json!({ "type": "string", "format": "uint64", "pattern": "^[0-9]+$" }),
        Scalar::Other(name) => named_scalar(name),
    }
}

/// The JSON form of a GraphQL scalar of this schema.
fn named_scalar(name: &str) -> Value {
    match name {
        "Int" => json!({ "type": "integer", "format": "int32" }),
        "Float" => json!({ "type": "number" }),
        "Boolean" => json!({ "type": "boolean" }),
        "String" | "ID" => json!({ "type": "string" }),
        "Int64" => json!({ "type": "string", "format": "int64", "pattern": "^-?[0-9]+$" }),
        "UInt64" => json!({ "type": "string", "format": "uint64", "pattern": "^[0-9]+$" }),
        "Timestamp" => json!({ "type": "string", "format": "date-time" }),
        "Duration" => json!({ "type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$" }),
        "Bytes" => json!({ "type": "string", "contentEncoding": "base64" }),
        "FieldMask" => json!({ "type": "string" }),
        _ => json!({}),
    }
}

fn nullable(schema: Value, non_null: bool) -> Value {
    if non_null {
        schema
    } else {
        json!({ "oneOf": [schema, { "type": "null" }] })
    }
}

/// The schema of `data` for operation `name` of `doc`.
fn data_schema(registry: &Registry, doc: &ExecutableDocument, name: &str) -> Option<Value> {
    let op = doc
        .operations
        .iter()
        .find(|(n, _)| n.map(|n| n.as_str()) == Some(name))?
        .1;
    let root = match op.node.ty {
        OperationType::Query => registry.query_type.as_str(),
        OperationType::Mutation => registry.mutation_type.as_deref()?,
        OperationType::Subscription => return None,
    };
    let ty = registry.types.get(root)?;
    let walk = Walk {
        registry,
        fragments: &doc.fragments,
    };
    Some(walk.object(ty, &op.node.selection_set.node, 0))
}

struct Walk<'a> {
    registry: &'a Registry,
    fragments: &'a HashMap<Name, async_graphql::Positioned<FragmentDefinition>>,
}

impl Walk<'_> {
    /// An object with the fields `set` selects on `parent` (fragments merged); fields under
    /// `@skip`/`@include` may be absent, the others are always there.
    fn object(&self, parent: &MetaType, set: &SelectionSet, depth: usize) -> Value {
        let mut properties = Map::new();
        let mut required = Vec::new();
        self.collect(parent, set, depth, &mut properties, &mut required, false);
        json!({ "type": "object", "properties": properties, "required": required })
    }

    fn collect(
        &self,
        parent: &MetaType,
        set: &SelectionSet,
        depth: usize,
        properties: &mut Map<String, Value>,
        required: &mut Vec<Value>,
        conditional: bool,
    ) {
        if depth > MAX_DEPTH {
            return;
        }
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => {
                    let key = f.node.response_key().node.to_string();
                    let name = f.node.name.node.as_str();
                    let schema = if name == "__typename" {
                        json!({ "type": "string" })
                    } else {
                        match parent.field_by_name(name) {
                            Some(field) => {
                                self.typed(&field.ty, &f.node.selection_set.node, depth + 1)
                            }
                            None => json!({}),
                        }
                    };
                    let always = !conditional && f.node.directives.is_empty();
                    if always && !required.contains(&Value::String(key.clone())) {
                        required.push(Value::String(key.clone()));
                    }
                    properties.entry(key).or_insert(schema);
                }
                Selection::FragmentSpread(spread) => {
                    if let Some(fragment) = self.fragments.get(&spread.node.fragment_name.node) {
                        let on = fragment.node.type_condition.node.on.node.as_str();
                        let ty = self.registry.types.get(on).unwrap_or(parent);
                        let cond = conditional
                            || !spread.node.directives.is_empty()
                            || ty.name() != parent.name();
                        self.collect(
                            ty,
                            &fragment.node.selection_set.node,
                            depth + 1,
                            properties,
                            required,
                            cond,
                        );
                    }
                }
                Selection::InlineFragment(inline) => {
                    let ty = inline
                        .node
                        .type_condition
                        .as_ref()
                        .and_then(|c| self.registry.types.get(c.node.on.node.as_str()))
                        .unwrap_or(parent);
                    let cond = conditional
                        || !inline.node.directives.is_empty()
                        || ty.name() != parent.name();
                    self.collect(
                        ty,
                        &inline.node.selection_set.node,
                        depth + 1,
                        properties,
                        required,
                        cond,
                    );
                }
            }
        }
    }

    /// The schema of a value of GraphQL type `ty` (`[Order!]!`...) with its selection.
    fn typed(&self, ty: &str, set: &SelectionSet, depth: usize) -> Value {
        let (inner, non_null) = match ty.strip_suffix('!') {
            Some(inner) => (inner, true),
            None => (ty, false),
        };
        let schema = if let Some(item) = inner.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            json!({ "type": "array", "items": self.typed(item, set, depth) })
        } else {
            let name = MetaTypeName::concrete_typename(inner);
            match self.registry.types.get(name) {
                Some(MetaType::Enum { enum_values, .. }) => {
                    let values: Vec<&str> = enum_values.keys().map(String::as_str).collect();
                    json!({ "type": "string", "enum": values })
                }
                Some(MetaType::Scalar { .. }) | None => named_scalar(name),
                Some(object) => self.object(object, set, depth),
            }
        };
        nullable(schema, non_null)
    }
}
