//! Registering the schema's types: scalars, enums, object types (output) and input types.

use async_graphql::Value as Gql;
use async_graphql::dynamic::{
    Enum, EnumItem, Field, FieldFuture, FieldValue, InputObject, InputValue, Object, Scalar,
    TypeRef,
};
use futures::FutureExt;
use prost_reflect::{
    DynamicMessage, EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor, Value,
};

use super::naming::{TypeNames, lower_camel, pascal};
use super::output::{MapEntry, field_of, map_key, parent_message, to_field_value};
use crate::config::RedactAction;
use crate::descriptors::Docs;
use crate::shaping::Redactions;
use crate::shaping::redact::redact_str;

use super::shape::{
    Scalar as S, Shape, entry_type_name, input_named, input_type, output_named, output_type,
};

/// The custom scalars, with their descriptions and input validators.
pub fn scalars() -> Vec<Scalar> {
    fn int_like(v: &Gql, signed: bool) -> bool {
        match v {
            Gql::String(s) => {
                if signed {
                    s.parse::<i64>().is_ok()
                } else {
                    s.parse::<u64>().is_ok()
                }
            }
            Gql::Number(n) => {
                if signed {
                    n.as_i64().is_some()
                } else {
                    n.as_u64().is_some()
                }
            }
            _ => false,
        }
    }
    vec![
        Scalar::new("Int64")
            .description("A signed 64-bit integer. Written as a string so that no digit is lost in JavaScript; a string or a number is accepted as input.")
            .validator(|v| int_like(v, true)),
        Scalar::new("UInt64")
            .description("An unsigned 64-bit integer. Written as a string so that no digit is lost in JavaScript; a string or a number is accepted as input.")
            .validator(|v| int_like(v, false)),
        Scalar::new("Bytes")
            .description("Binary data, base64-encoded (standard or URL-safe alphabet accepted on input).")
            .validator(|v| matches!(v, Gql::String(_))),
        Scalar::new("Timestamp")
            .description("A point in time, RFC 3339 in UTC (google.protobuf.Timestamp), e.g. \"2024-01-02T03:04:05Z\".")
            .validator(|v| matches!(v, Gql::String(_))),
        Scalar::new("Duration")
            .description("A span of time in seconds with an \"s\" suffix (google.protobuf.Duration), e.g. \"1.5s\".")
            .validator(|v| matches!(v, Gql::String(_))),
        Scalar::new("FieldMask")
            .description("Field paths separated by commas, in lowerCamelCase (google.protobuf.FieldMask), e.g. \"displayName,address.city\".")
            .validator(|v| matches!(v, Gql::String(_))),
        Scalar::new("JSON").description(
            "Any JSON value (google.protobuf.Struct, Value, ListValue, or Any with its \"@type\").",
        ),
    ]
}

/// A GraphQL enum of a protobuf enum.
pub fn enum_type(e: &EnumDescriptor, names: &TypeNames, docs: &mut Docs) -> Enum {
    let name = names.get(e.full_name()).unwrap_or(e.name());
    let mut out = Enum::new(name);
    if let Some(d) = docs.get(&e.parent_file(), e.path()) {
        out = out.description(d);
    }
    for v in e.values() {
        let mut item = EnumItem::new(v.name());
        if let Some(d) = docs.get(&e.parent_file(), v.path()) {
            item = item.description(d);
        }
        if v.enum_value_descriptor_proto()
            .options
            .as_ref()
            .and_then(|o| o.deprecated)
            .unwrap_or(false)
        {
            item = item.deprecation(Some("Deprecated in the protobuf definition."));
        }
        out = out.item(item);
    }
    out
}

fn deprecated(f: &FieldDescriptor) -> bool {
    f.field_descriptor_proto()
        .options
        .as_ref()
        .and_then(|o| o.deprecated)
        .unwrap_or(false)
}

fn field_doc(f: &FieldDescriptor, docs: &mut Docs) -> Option<String> {
    let own = docs.get(&f.parent_file(), f.path());
    let oneof = f.containing_oneof().filter(|o| !o.is_synthetic()).map(|o| {
        let members: Vec<String> = o.fields().map(|m| format!("`{}`", m.json_name())).collect();
        format!(
            "At most one of {} is set (oneof `{}`).",
            members.join(", "),
            o.name()
        )
    });
    match (own, oneof) {
        (Some(a), Some(b)) => Some(format!("{a}\n\n{b}")),
        (a, b) => a.or(b),
    }
}

/// The object type of an output message, and the entry types of its map fields. Fields with
/// a redaction rule resolve to the redacted value; dropped ones are nullable and always null.
pub fn object_type(
    m: &MessageDescriptor,
    names: &TypeNames,
    docs: &mut Docs,
    redactions: &Redactions,
) -> (Object, Vec<Object>) {
    let owner = names.get(m.full_name()).unwrap_or(m.name()).to_string();
    let mut obj = Object::new(owner.clone());
    if let Some(d) = docs.get(&m.parent_file(), m.path()) {
        obj = obj.description(d);
    }
    let mut entries = Vec::new();
    for f in m.fields() {
        let shape = Shape::of_field(&f, &owner);
        if let Shape::Map { entry } = &shape {
            entries.push(entry_object(&f, entry, names));
        }
        let fd = f.clone();
        let action = redactions.rule(m.full_name(), &f);
        let ty = output_type(&f, names, &owner);
        let mut field = match action {
            None => Field::new(f.json_name(), ty, move |ctx| {
                let r = parent_message(ctx.parent_value).and_then(|msg| field_of(msg, &fd, &shape));
                FieldFuture::Value(super::roots::or_report(&ctx, r))
            }),
            Some(RedactAction::Drop) => Field::new(f.json_name(), nullable(ty), |_| {
                FieldFuture::from_value(None)
            }),
            Some(action) => Field::new(f.json_name(), ty, move |ctx| {
                let r = parent_message(ctx.parent_value)
                    .map(|msg| redacted_string_field(msg, &fd, action));
                FieldFuture::Value(super::roots::or_report(&ctx, r))
            }),
        };
        let doc = field_doc(&f, docs);
        let note = action.map(|a| match a {
            RedactAction::Drop => "Redacted by this gateway: always null.".to_string(),
            other => format!(
                "Redacted by this gateway ({}): {}.",
                other.name(),
                match other {
                    RedactAction::Last4 => "only the last four characters are shown",
                    RedactAction::Hash => "a stable hash of the value, not the value",
                    _ => "masked",
                }
            ),
        });
        let doc = match (doc, note) {
            (Some(d), Some(n)) => Some(format!("{d}\n\n{n}")),
            (d, n) => d.or(n),
        };
        if let Some(d) = doc {
            field = field.description(d);
        }
        if deprecated(&f) {
            field = field.deprecation(Some("Deprecated in the protobuf definition."));
        }
        obj = obj.field(field);
    }
    (obj, entries)
}

/// The nullable form of a type reference (`T!` -> `T`, `[T!]!` -> `[T!]`).
fn nullable(ty: TypeRef) -> TypeRef {
    match ty {
        TypeRef::NonNull(inner) => *inner,
        other => other,
    }
}

/// A redacted string (or list of strings) field; null when a field with presence is unset.
fn redacted_string_field<'a>(
    msg: &DynamicMessage,
    field: &FieldDescriptor,
    action: RedactAction,
) -> Option<FieldValue<'a>> {
    if !field.is_list() && field.supports_presence() && !msg.has_field(field) {
        return None;
    }
    let one = |v: &Value| Gql::String(redact_str(v.as_str().unwrap_or_default(), action));
    Some(match msg.get_field(field).as_ref() {
        Value::List(items) => FieldValue::list(items.iter().map(|v| FieldValue::value(one(v)))),
        v => FieldValue::value(one(v)),
    })
}

/// The scalar type name of a map key kind.
fn key_type(kind: &Kind) -> &'static str {
    S::of_kind(kind).map_or("String", S::name)
}

fn entry_object(f: &FieldDescriptor, entry: &str, names: &TypeNames) -> Object {
    let Kind::Message(e) = f.kind() else {
        return Object::new(entry);
    };
    let key_kind = e.map_entry_key_field().kind();
    let value_field = e.map_entry_value_field();
    let value_kind = value_field.kind();
    let value_shape = Shape::of_kind(value_kind.clone());
    let value_ty = match &value_kind {
        Kind::Message(_) | Kind::Enum(_) => TypeRef::named(output_named(&value_kind, names)),
        _ => TypeRef::named_nn(output_named(&value_kind, names)),
    };
    Object::new(entry)
        .description(format!("An entry of the map field `{}`.", f.json_name()))
        .field(Field::new(
            "key",
            TypeRef::named_nn(key_type(&key_kind)),
            |ctx| match ctx.parent_value.try_downcast_ref::<MapEntry>() {
                Ok(e) => FieldFuture::from_value(Some(map_key(&e.key))),
                Err(e) => FieldFuture::Future(async move { Err(e) }.boxed()),
            },
        ))
        .field(Field::new("value", value_ty, move |ctx| {
            let r = ctx
                .parent_value
                .try_downcast_ref::<MapEntry>()
                .and_then(|e| to_field_value(std::borrow::Cow::Borrowed(&e.value), &value_shape));
            FieldFuture::Value(super::roots::or_report(&ctx, r.map(Some)))
        }))
}

/// Input values for the fields of `m` (used for input objects and for root field
/// arguments): plain fields, one `@oneOf` field per real oneof, map fields as entry lists.
/// Returns the values and the extra input types they need.
pub fn input_fields(
    m: &MessageDescriptor,
    owner: &str,
    names: &TypeNames,
    docs: &mut Docs,
) -> (Vec<InputValue>, Vec<InputObject>) {
    let mut values = Vec::new();
    let mut extra = Vec::new();
    for f in m.fields() {
        if f.containing_oneof().is_some_and(|o| !o.is_synthetic()) {
            continue;
        }
        if f.is_map() {
            extra.push(entry_input(&f, owner, names));
        }
        let mut v = InputValue::new(f.json_name(), input_type(&f, names, owner));
        if let Some(d) = docs.get(&f.parent_file(), f.path()) {
            v = v.description(d);
        }
        values.push(v);
    }
    for o in m.oneofs().filter(|o| !o.is_synthetic()) {
        let name = format!("{owner}{}Input", pascal(o.name()));
        let mut obj = InputObject::new(name.clone())
            .oneof()
            .description(format!("Exactly one member of the oneof `{}`.", o.name()));
        for f in o.fields() {
            let mut v =
                InputValue::new(f.json_name(), TypeRef::named(input_named(&f.kind(), names)));
            if let Some(d) = docs.get(&f.parent_file(), f.path()) {
                v = v.description(d);
            }
            obj = obj.field(v);
        }
        extra.push(obj);
        let mut v = InputValue::new(lower_camel(o.name()), TypeRef::named(name));
        if let Some(d) = docs.get(&o.parent_file(), o.path()) {
            v = v.description(d);
        }
        values.push(v);
    }
    (values, extra)
}

fn entry_input(f: &FieldDescriptor, owner: &str, names: &TypeNames) -> InputObject {
    let name = format!("{}Input", entry_type_name(owner, f));
    let Kind::Message(e) = f.kind() else {
        return InputObject::new(name);
    };
    let key_kind = e.map_entry_key_field().kind();
    let value_kind = e.map_entry_value_field().kind();
    InputObject::new(name)
        .description(format!("An entry of the map field `{}`.", f.json_name()))
        .field(InputValue::new(
            "key",
            TypeRef::named_nn(key_type(&key_kind)),
        ))
        .field(InputValue::new(
            "value",
            TypeRef::named(input_named(&value_kind, names)),
        ))
}

/// The input object type of a message, and the extra input types it needs.
pub fn input_object(
    m: &MessageDescriptor,
    names: &TypeNames,
    docs: &mut Docs,
) -> (InputObject, Vec<InputObject>) {
    let owner = names.get(m.full_name()).unwrap_or(m.name()).to_string();
    let mut obj = InputObject::new(format!("{owner}Input"));
    if let Some(d) = docs.get(&m.parent_file(), m.path()) {
        obj = obj.description(d);
    }
    let (values, extra) = input_fields(m, &owner, names, docs);
    for v in values {
        obj = obj.field(v);
    }
    (obj, extra)
}
