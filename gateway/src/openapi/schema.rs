//! Message types as JSON Schema (OpenAPI 3.1's dialect, JSON Schema 2020-12), following the
//! proto3 JSON mapping the REST door writes and reads: 64-bit integers as strings, enums by
//! name, bytes as base64, well-known types in their JSON forms, maps as objects, a `oneof` as
//! "at most one of these properties". Each message is one schema under
//! `components/schemas`, named by its full name and referred to by `$ref`.

use std::collections::{BTreeMap, HashSet};

use prost_reflect::{EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value, json};

use crate::descriptors::Docs;

/// The schemas of the messages and enums referred to so far.
pub struct Schemas {
    /// Write proto field names (`display_name`) instead of JSON names.
    proto_names: bool,
    docs: Docs,
    done: HashSet<String>,
    out: BTreeMap<String, Value>,
}

/// `$ref` to a component schema.
pub fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

impl Schemas {
    /// An empty set; `proto_names` as `rest.use_proto_field_names`.
    pub fn new(proto_names: bool) -> Self {
        Self {
            proto_names,
            docs: Docs::default(),
            done: HashSet::new(),
            out: BTreeMap::new(),
        }
    }

    /// The schema of a message type: a `$ref`, or the inline JSON form of a well-known type.
    pub fn message(&mut self, desc: &MessageDescriptor) -> Value {
        if let Some(wkt) = well_known(desc) {
            return wkt;
        }
        let name = desc.full_name().to_string();
        if self.done.insert(name.clone()) {
            let schema = self.message_schema(desc);
            self.out.insert(name.clone(), schema);
        }
        reference(&name)
    }

    /// The schema of a field's value (list and map included).
    pub fn field(&mut self, f: &FieldDescriptor) -> Value {
        let mut schema = if f.is_map() {
            let value = match f.kind() {
                Kind::Message(entry) => self.single(&entry.map_entry_value_field()),
                _ => json!({}),
            };
            json!({ "type": "object", "additionalProperties": value })
        } else if f.is_list() {
            json!({ "type": "array", "items": self.single(f) })
        } else {
            self.single(f)
        };
        if let Some(doc) = self.docs.get(&f.parent_file(), f.path())
            && let Some(o) = schema.as_object_mut()
        {
            if o.contains_key("$ref") {
                // A sibling of `$ref` is fine in 3.1, but keep the reference plain.
                schema = json!({ "allOf": [schema], "description": doc });
            } else {
                o.insert("description".into(), Value::String(doc));
            }
        }
        if field_deprecated(f)
            && let Some(o) = schema.as_object_mut()
        {
            o.insert("deprecated".into(), Value::Bool(true));
        }
        schema
    }

    /// The schema of one value of a field's kind (an element, for a list).
    fn single(&mut self, f: &FieldDescriptor) -> Value {
        match f.kind() {
            Kind::Double => float("double"),
            Kind::Float => float("float"),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                json!({ "type": "integer", "format": "int32" })
            }
            Kind::Uint32 | Kind::Fixed32 => {
                json!({ "type": "integer", "format": "uint32", "minimum": 0, "maximum": u32::MAX })
            }
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => int64("int64"),
            Kind::Uint64 | Kind::Fixed64 => int64("uint64"),
            Kind::Bool => json!({ "type": "boolean" }),
            Kind::String => json!({ "type": "string" }),
            Kind::Bytes => json!({ "type": "string", "contentEncoding": "base64" }),
            Kind::Enum(e) => self.enumeration(&e),
            Kind::Message(m) => self.message(&m),
        }
    }

    fn enumeration(&mut self, e: &EnumDescriptor) -> Value {
        if e.full_name() == "google.protobuf.NullValue" {
            return json!({ "type": "null" });
        }
        let name = e.full_name().to_string();
        if self.done.insert(name.clone()) {
            let values: Vec<String> = e.values().map(|v| v.name().to_string()).collect();
            let mut schema = json!({ "type": "string", "enum": values });
            if let Some(doc) = self.docs.get(&e.parent_file(), e.path()) {
                schema["description"] = Value::String(doc);
            }
            self.out.insert(name.clone(), schema);
        }
        reference(&name)
    }

    /// The comment of a descriptor element (by its source path), if any.
    pub fn doc(&mut self, file: &prost_reflect::FileDescriptor, path: &[i32]) -> Option<String> {
        self.docs.get(file, path)
    }

    /// The JSON name of a field, as the REST door writes it.
    pub fn name(&self, f: &FieldDescriptor) -> String {
        if self.proto_names {
            f.name().to_string()
        } else {
            f.json_name().to_string()
        }
    }

    fn message_schema(&mut self, desc: &MessageDescriptor) -> Value {
        let mut properties = Map::new();
        for f in desc.fields() {
            let schema = self.field(&f);
            properties.insert(self.name(&f), schema);
        }
        let mut schema = json!({ "type": "object", "properties": properties });
        // A oneof: at most one of its fields (proto3 `optional` is a oneof of one: skipped).
        let mut all_of = Vec::new();
        for o in desc.oneofs().filter(|o| !o.is_synthetic()) {
            let names: Vec<Value> = o.fields().map(|f| Value::String(self.name(&f))).collect();
            if names.len() < 2 {
                continue;
            }
            let each: Vec<Value> = names.iter().map(|n| json!({ "required": [n] })).collect();
            let mut choices = each.clone();
            choices.push(json!({ "not": { "anyOf": each } }));
            all_of.push(json!({ "oneOf": choices }));
        }
        if !all_of.is_empty() {
            schema["allOf"] = Value::Array(all_of);
        }
        if let Some(doc) = self.docs.get(&desc.parent_file(), desc.path()) {
            schema["description"] = Value::String(doc);
        }
        schema
    }

    /// Every schema referred to, by name.
    pub fn finish(self) -> Map<String, Value> {
        self.out.into_iter().collect()
    }
}

fn float(format: &str) -> Value {
    json!({
        "oneOf": [
            { "type": "number" },
            { "type": "string", "enum": ["NaN", "Infinity", "-Infinity"] }
        ],
        "format": format
    })
}

fn int64(format: &str) -> Value {
    json!({ "type": "string", "format": format, "pattern": "^-?[0-9]+$" })
}

fn field_deprecated(f: &FieldDescriptor) -> bool {
    f.field_descriptor_proto()
        .options
        .as_ref()
        .and_then(|o| o.deprecated)
        .unwrap_or(false)
}

/// The JSON form of a well-known type, inline; `None` for any other message.
fn well_known(desc: &MessageDescriptor) -> Option<Value> {
    let nullable = |inner: Value| json!({ "oneOf": [inner, { "type": "null" }] });
    Some(match desc.full_name() {
        "google.protobuf.Timestamp" => json!({ "type": "string", "format": "date-time" }),
        "google.protobuf.Duration" => {
            json!({ "type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$", "examples": ["1.5s"] })
        }
        "google.protobuf.FieldMask" => {
            json!({ "type": "string", "description": "Field paths, comma-separated, in lowerCamelCase." })
        }
        "google.protobuf.Struct" => json!({ "type": "object", "additionalProperties": true }),
        "google.protobuf.Value" => json!({}),
        "google.protobuf.ListValue" => json!({ "type": "array" }),
        "google.protobuf.Empty" => json!({ "type": "object" }),
        "google.protobuf.Any" => json!({
            "type": "object",
            "properties": { "@type": { "type": "string" } },
            "required": ["@type"],
            "additionalProperties": true
        }),
        "google.protobuf.DoubleValue" => nullable(float("double")),
        "google.protobuf.FloatValue" => nullable(float("float")),
        "google.protobuf.Int64Value" => nullable(int64("int64")),
        "google.protobuf.UInt64Value" => nullable(int64("uint64")),
        "google.protobuf.Int32Value" => nullable(json!({ "type": "integer", "format": "int32" })),
        "google.protobuf.UInt32Value" => {
            nullable(json!({ "type": "integer", "format": "uint32", "minimum": 0 }))
        }
        "google.protobuf.BoolValue" => nullable(json!({ "type": "boolean" })),
        "google.protobuf.StringValue" => nullable(json!({ "type": "string" })),
        "google.protobuf.BytesValue" => {
            nullable(json!({ "type": "string", "contentEncoding": "base64" }))
        }
        _ => return None,
    })
}

/// `google.rpc.Status`, the body of every error; `details` names the detail types (full
/// names, with schemas in the components) its `details` may hold, each with its `@type`.
pub fn status(details: &[String]) -> Value {
    let mut known: Vec<Value> = details
        .iter()
        .map(|d| {
            json!({ "allOf": [
                reference(d),
                { "properties": { "@type": { "const": format!("type.googleapis.com/{d}") } }, "required": ["@type"] }
            ] })
        })
        .collect();
    // And any other detail message, with its @type.
    known.push(json!({
        "type": "object",
        "properties": { "@type": { "type": "string" } },
        "required": ["@type"],
        "additionalProperties": true
    }));
    json!({
        "type": "object",
        "description": "An error: the gRPC status code, a message, and typed details (google.rpc.BadRequest, ResourceInfo, ...), each with its @type.",
        "properties": {
            "code": { "type": "integer", "format": "int32", "description": "The gRPC status code." },
            "message": { "type": "string" },
            "details": { "type": "array", "items": { "anyOf": known } }
        },
        "required": ["code", "message"]
    })
}
