//! GraphQL arguments to protobuf: arguments and input objects are rewritten into proto3's
//! canonical JSON (map entry lists become objects, `@oneOf` inputs are flattened into their
//! member) and decoded by prost-reflect, so every JSON rule (int64 as strings or numbers,
//! base64 bytes, well-known types) holds here too.

use async_graphql::indexmap::IndexMap;
use async_graphql::{Error, ErrorExtensions, Name, Value as Gql};
use prost_reflect::{DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value as Json};

use super::naming::lower_camel;
use super::shape::Wkt;

/// An error in the client's input, with `extensions.code = BAD_USER_INPUT`.
pub fn bad_input(message: impl Into<String>) -> Error {
    Error::new(message)
        .extend_with(|_, e| e.set("code", crate::error::ErrorKind::BadUserInput.code()))
}

/// Builds the request message of a root field from its arguments. At most
/// `max_struct_values` values (counted at every level) may be given inside
/// `google.protobuf.Struct`/`Value`/`ListValue` arguments in all (`limits.max_struct_values`):
/// each decodes to a message of its own.
pub fn args_to_message(
    desc: &MessageDescriptor,
    args: &IndexMap<Name, Gql>,
    max_struct_values: usize,
) -> Result<DynamicMessage, Error> {
    let budget = Budget(std::cell::Cell::new(max_struct_values), max_struct_values);
    let json = Json::Object(object_to_json(desc, args.iter(), &budget)?);
    decode(desc, json)
}

/// What is left of the arguments' allowance of free-form values, and the allowance.
struct Budget(std::cell::Cell<usize>, usize);

impl Budget {
    /// Spends one allowance per value of `v` (at every level).
    fn spend(&self, v: &Gql) -> Result<(), Error> {
        let mut stack = vec![v];
        while let Some(v) = stack.pop() {
            let left = self.0.get().checked_sub(1).ok_or_else(|| {
                bad_input(format!(
                    "more than {} values inside google.protobuf.Struct, Value or ListValue arguments: send less free-form JSON",
                    self.1
                ))
            })?;
            self.0.set(left);
            match v {
                Gql::List(items) => stack.extend(items),
                Gql::Object(fields) => stack.extend(fields.values()),
                _ => {}
            }
        }
        Ok(())
    }
}

/// Decodes canonical JSON into a message, mapping failures to `BAD_USER_INPUT`.
pub fn decode(desc: &MessageDescriptor, json: Json) -> Result<DynamicMessage, Error> {
    DynamicMessage::deserialize_with_options(desc.clone(), json, &DeserializeOptions::new())
        .map_err(|e| bad_input(format!("invalid input for {}: {e}", desc.full_name())))
}

fn object_to_json<'v>(
    desc: &MessageDescriptor,
    fields: impl Iterator<Item = (&'v Name, &'v Gql)>,
    budget: &Budget,
) -> Result<Map<String, Json>, Error> {
    let mut out = Map::new();
    for (name, value) in fields {
        if let Some(field) = desc.get_field_by_json_name(name.as_str()) {
            out.insert(name.to_string(), field_to_json(&field, value, budget)?);
            continue;
        }
        let oneof = desc
            .oneofs()
            .filter(|o| !o.is_synthetic())
            .find(|o| lower_camel(o.name()) == name.as_str());
        match (oneof, value) {
            (Some(_), Gql::Null) => {}
            (Some(oneof), Gql::Object(members)) => {
                for (member, v) in members {
                    let field = oneof
                        .fields()
                        .find(|f| f.json_name() == member.as_str())
                        .ok_or_else(|| {
                            bad_input(format!(
                                "{name}.{member} is not a member of oneof {}",
                                oneof.name()
                            ))
                        })?;
                    out.insert(member.to_string(), field_to_json(&field, v, budget)?);
                }
            }
            _ => {
                return Err(bad_input(format!(
                    "unknown input field {name} of {}",
                    desc.full_name()
                )));
            }
        }
    }
    Ok(out)
}

fn field_to_json(field: &FieldDescriptor, value: &Gql, budget: &Budget) -> Result<Json, Error> {
    if matches!(value, Gql::Null) {
        return Ok(Json::Null);
    }
    if field.is_map() {
        let Kind::Message(entry) = field.kind() else {
            return Err(bad_input("internal: map without entry type"));
        };
        let value_field = entry.map_entry_value_field();
        let mut obj = Map::new();
        let Gql::List(items) = value else {
            return Err(bad_input(format!(
                "{} takes a list of {{key, value}}",
                field.json_name()
            )));
        };
        for item in items {
            let Gql::Object(kv) = item else {
                return Err(bad_input(format!(
                    "{} takes a list of {{key, value}}",
                    field.json_name()
                )));
            };
            let key = match kv.get("key") {
                Some(Gql::String(s)) => s.clone(),
                Some(Gql::Number(n)) => n.to_string(),
                Some(Gql::Boolean(b)) => b.to_string(),
                _ => {
                    return Err(bad_input(format!(
                        "every entry of {} needs a key",
                        field.json_name()
                    )));
                }
            };
            let v = match kv.get("value") {
                Some(v) => single_to_json(&value_field.kind(), v, budget)?,
                None => Json::Null,
            };
            obj.insert(key, v);
        }
        return Ok(Json::Object(obj));
    }
    if field.is_list() {
        let items = match value {
            Gql::List(items) => items.iter().collect::<Vec<_>>(),
            single => vec![single],
        };
        return items
            .into_iter()
            .map(|v| single_to_json(&field.kind(), v, budget))
            .collect::<Result<Vec<_>, _>>()
            .map(Json::Array);
    }
    single_to_json(&field.kind(), value, budget)
}

fn single_to_json(kind: &Kind, value: &Gql, budget: &Budget) -> Result<Json, Error> {
    match (kind, value) {
        (_, Gql::Null) => Ok(Json::Null),
        (Kind::Message(m), v) => match Wkt::of(m) {
            Some(Wkt::Empty) => Ok(Json::Object(Map::new())),
            Some(_) => {
                if matches!(
                    m.full_name(),
                    "google.protobuf.Struct"
                        | "google.protobuf.Value"
                        | "google.protobuf.ListValue"
                ) {
                    budget.spend(v)?;
                }
                to_json(v)
            }
            None => match v {
                Gql::Object(obj) => Ok(Json::Object(object_to_json(m, obj.iter(), budget)?)),
                _ => Err(bad_input(format!(
                    "expected an input object for {}",
                    m.full_name()
                ))),
            },
        },
        (Kind::Enum(_), Gql::Enum(name)) => Ok(Json::String(name.to_string())),
        (_, v) => to_json(v),
    }
}

fn to_json(v: &Gql) -> Result<Json, Error> {
    v.clone()
        .into_json()
        .map_err(|e| bad_input(format!("invalid value: {e}")))
}
