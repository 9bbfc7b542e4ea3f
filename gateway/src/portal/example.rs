//! Example JSON bodies of message types, in the proto3 JSON mapping (every field set once,
//! nested messages a few levels deep), for the portal's type pages.

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value, json};

/// How deep nested messages are filled in.
const DEPTH: usize = 3;

/// An example of a `desc` message as JSON.
pub fn of(desc: &MessageDescriptor, proto_names: bool) -> Value {
    message(desc, proto_names, 0)
}

fn message(desc: &MessageDescriptor, proto_names: bool, depth: usize) -> Value {
    if let Some(v) = well_known(desc.full_name()) {
        return v;
    }
    let mut out = Map::new();
    if depth >= DEPTH {
        return Value::Object(out);
    }
    let mut oneofs_done = std::collections::HashSet::new();
    for f in desc.fields() {
        // One field of each oneof.
        if let Some(o) = f.containing_oneof()
            && !o.is_synthetic()
            && !oneofs_done.insert(o.name().to_string())
        {
            continue;
        }
        let name = if proto_names { f.name() } else { f.json_name() };
        out.insert(name.to_string(), field(&f, proto_names, depth));
    }
    Value::Object(out)
}

fn field(f: &FieldDescriptor, proto_names: bool, depth: usize) -> Value {
    if f.is_map()
        && let Kind::Message(entry) = f.kind()
    {
        let key = match single(&entry.map_entry_key_field().kind(), proto_names, depth) {
            Value::String(s) => s,
            other => other.to_string(),
        };
        let value = single(&entry.map_entry_value_field().kind(), proto_names, depth);
        return json!({ key: value });
    }
    let one = single(&f.kind(), proto_names, depth);
    if f.is_list() { json!([one]) } else { one }
}

fn single(kind: &Kind, proto_names: bool, depth: usize) -> Value {
    match kind {
        Kind::Double | Kind::Float => json!(1.5),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 | Kind::Uint32 | Kind::Fixed32 => json!(1),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint64 | Kind::Fixed64 => json!("1"),
        Kind::Bool => json!(true),
        Kind::String => json!("text"),
        Kind::Bytes => json!("AAE="),
        Kind::Enum(e) => {
            // The first value that is not the zero "unspecified" one, when there is one.
            let v = e
                .values()
                .find(|v| v.number() != 0)
                .or_else(|| e.values().next());
            v.map_or(Value::Null, |v| json!(v.name()))
        }
        Kind::Message(m) => message(m, proto_names, depth + 1),
    }
}

fn well_known(name: &str) -> Option<Value> {
    Some(match name {
        "google.protobuf.Timestamp" => json!("2024-01-02T03:04:05Z"),
        "google.protobuf.Duration" => json!("1.5s"),
        "google.protobuf.FieldMask" => json!("displayName,email"),
        "google.protobuf.Struct" => json!({ "key": "value" }),
        "google.protobuf.Value" => json!("any JSON"),
        "google.protobuf.ListValue" => json!([1, "two"]),
        "google.protobuf.Empty" => json!({}),
        "google.protobuf.Any" => json!({ "@type": "type.googleapis.com/package.Message" }),
        "google.protobuf.DoubleValue" | "google.protobuf.FloatValue" => json!(1.5),
        "google.protobuf.Int64Value" | "google.protobuf.UInt64Value" => json!("1"),
        "google.protobuf.Int32Value" | "google.protobuf.UInt32Value" => json!(1),
        "google.protobuf.BoolValue" => json!(true),
        "google.protobuf.StringValue" => json!("text"),
        "google.protobuf.BytesValue" => json!("AAE="),
        _ => return None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use prost_reflect::{DescriptorPool, DynamicMessage};

    use super::*;

    #[test]
    fn examples_are_messages_of_their_type() {
        let pool =
            DescriptorPool::decode(&include_bytes!("../../../descriptors/demo.binpb")[..]).unwrap();
        for desc in pool.all_messages().filter(|m| !m.is_map_entry()) {
            let example = of(&desc, false);
            let text = example.to_string();
            // An Any's example names a placeholder type for the reader to fill in (as in
            // google.api.HttpBody's `extensions`): not a type of the pool.
            if text.contains("type.googleapis.com/package.Message") {
                continue;
            }
            let mut de = serde_json::Deserializer::from_str(&text);
            DynamicMessage::deserialize(desc.clone(), &mut de)
                .unwrap_or_else(|e| panic!("{}: {e}: {text}", desc.full_name()));
        }
    }
}
