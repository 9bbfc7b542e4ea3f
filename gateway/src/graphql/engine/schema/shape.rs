//! How each protobuf field appears in GraphQL: its shape (scalar, enum, object, well-known
//! type, list, map) and its type reference, decided once at build time.

use async_graphql::dynamic::TypeRef;
use prost_reflect::{EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor};

use super::naming::TypeNames;

/// A GraphQL scalar the schema uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scalar {
    /// `Int`: 32-bit integers.
    Int,
    /// `Int64`: signed 64-bit, a string on output (precision), string or number on input.
    Int64,
    /// `UInt64`: unsigned 64-bit, like `Int64`.
    UInt64,
    /// `Float`.
    Float,
    /// `Boolean`.
    Boolean,
    /// `String`.
    String,
    /// `Bytes`: base64.
    Bytes,
}

impl Scalar {
    /// The GraphQL type name.
    pub fn name(self) -> &'static str {
        match self {
            Scalar::Int => "Int",
            Scalar::Int64 => "Int64",
            Scalar::UInt64 => "UInt64",
            Scalar::Float => "Float",
            Scalar::Boolean => "Boolean",
            Scalar::String => "String",
            Scalar::Bytes => "Bytes",
        }
    }

    /// The scalar of a protobuf scalar kind (`None` for messages and enums).
    pub fn of_kind(kind: &Kind) -> Option<Scalar> {
        Some(match kind {
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 | Kind::Uint32 | Kind::Fixed32 => {
                Scalar::Int
            }
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Scalar::Int64,
            Kind::Uint64 | Kind::Fixed64 => Scalar::UInt64,
            Kind::Float | Kind::Double => Scalar::Float,
            Kind::Bool => Scalar::Boolean,
            Kind::String => Scalar::String,
            Kind::Bytes => Scalar::Bytes,
            Kind::Message(_) | Kind::Enum(_) => return None,
        })
    }
}

/// Well-known types that become scalars.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wkt {
    /// `google.protobuf.Timestamp` -> `Timestamp` (RFC 3339).
    Timestamp,
    /// `google.protobuf.Duration` -> `Duration` (`"1.5s"`).
    Duration,
    /// `google.protobuf.FieldMask` -> `FieldMask` (`"displayName,address.city"`).
    FieldMask,
    /// `Struct`, `Value`, `ListValue`, `Any` -> `JSON`.
    Json,
    /// `google.protobuf.Empty` -> `Boolean` (always `true`).
    Empty,
    /// A wrapper (`StringValue`...) -> its nullable scalar.
    Wrapper(Scalar),
}

impl Wkt {
    /// The well-known type of a message, if it is one that becomes a scalar.
    pub fn of(msg: &MessageDescriptor) -> Option<Wkt> {
        Some(match msg.full_name() {
            "google.protobuf.Timestamp" => Wkt::Timestamp,
            "google.protobuf.Duration" => Wkt::Duration,
            "google.protobuf.FieldMask" => Wkt::FieldMask,
            "google.protobuf.Struct"
            | "google.protobuf.Value"
            | "google.protobuf.ListValue"
            | "google.protobuf.Any" => Wkt::Json,
            "google.protobuf.Empty" => Wkt::Empty,
            "google.protobuf.DoubleValue" | "google.protobuf.FloatValue" => {
                Wkt::Wrapper(Scalar::Float)
            }
            "google.protobuf.Int64Value" => Wkt::Wrapper(Scalar::Int64),
            "google.protobuf.UInt64Value" => Wkt::Wrapper(Scalar::UInt64),
            "google.protobuf.Int32Value" | "google.protobuf.UInt32Value" => {
                Wkt::Wrapper(Scalar::Int)
            }
            "google.protobuf.BoolValue" => Wkt::Wrapper(Scalar::Boolean),
            "google.protobuf.StringValue" => Wkt::Wrapper(Scalar::String),
            "google.protobuf.BytesValue" => Wkt::Wrapper(Scalar::Bytes),
            _ if msg.fields().len() == 0 => Wkt::Empty,
            _ => return None,
        })
    }

    /// The GraphQL type name.
    pub fn name(self) -> &'static str {
        match self {
            Wkt::Timestamp => "Timestamp",
            Wkt::Duration => "Duration",
            Wkt::FieldMask => "FieldMask",
            Wkt::Json => "JSON",
            Wkt::Empty => "Boolean",
            Wkt::Wrapper(s) => s.name(),
        }
    }
}

/// What a value looks like in GraphQL.
#[derive(Clone, Debug)]
pub enum Shape {
    /// A scalar of a protobuf scalar kind.
    Scalar(Kind),
    /// An enum.
    Enum(EnumDescriptor),
    /// A well-known type shown as a scalar.
    Wkt(Wkt),
    /// A message shown as an object type.
    Object(MessageDescriptor),
    /// A repeated field.
    List(Box<Shape>),
    /// A map field: a list of entry objects `{key, value}`, sorted by key.
    Map {
        /// The entry type's name.
        entry: String,
    },
}

impl Shape {
    /// The shape of one (non-repeated) value of `kind`.
    pub fn of_kind(kind: Kind) -> Shape {
        match kind {
            Kind::Enum(e) => Shape::Enum(e),
            Kind::Message(m) => match Wkt::of(&m) {
                Some(w) => Shape::Wkt(w),
                None => Shape::Object(m),
            },
            other => Shape::Scalar(other),
        }
    }

    /// The shape of a field.
    pub fn of_field(field: &FieldDescriptor, owner: &str) -> Shape {
        if field.is_map() {
            Shape::Map {
                entry: entry_type_name(owner, field),
            }
        } else if field.is_list() {
            Shape::List(Box::new(Shape::of_kind(field.kind())))
        } else {
            Shape::of_kind(field.kind())
        }
    }
}

/// `<Owner><Field>Entry`, the object type of a map field's entries.
pub fn entry_type_name(owner: &str, field: &FieldDescriptor) -> String {
    format!("{owner}{}Entry", super::naming::pascal(field.name()))
}

/// Whether a singular field can be absent (and so is nullable on output).
pub fn has_presence(field: &FieldDescriptor) -> bool {
    field.supports_presence()
}

/// The named GraphQL type of a single value of `kind` (output side).
pub fn output_named(kind: &Kind, names: &TypeNames) -> String {
    match kind {
        Kind::Enum(e) => names.get(e.full_name()).unwrap_or("String").to_string(),
        Kind::Message(m) => match Wkt::of(m) {
            Some(w) => w.name().to_string(),
            None => names.get(m.full_name()).unwrap_or("JSON").to_string(),
        },
        other => Scalar::of_kind(other)
            .map_or("String", Scalar::name)
            .to_string(),
    }
}

/// The named GraphQL type of a single value of `kind` (input side).
pub fn input_named(kind: &Kind, names: &TypeNames) -> String {
    match kind {
        Kind::Message(m) if Wkt::of(m).is_none() => {
            format!("{}Input", names.get(m.full_name()).unwrap_or("JSON"))
        }
        other => output_named(other, names),
    }
}

/// The output type reference of a field: lists and maps are `[T!]!`, fields with presence are
/// nullable, proto3 scalars (which always have a value) are non-null. Enums are nullable (`[E]!`
/// in lists): proto3 enums are open, and a number the gateway's descriptors do not know becomes
/// null with a field error.
pub fn output_type(field: &FieldDescriptor, names: &TypeNames, owner: &str) -> TypeRef {
    if field.is_map() {
        return TypeRef::named_nn_list_nn(entry_type_name(owner, field));
    }
    let named = output_named(&field.kind(), names);
    let is_enum = matches!(field.kind(), Kind::Enum(_));
    if field.is_list() && is_enum {
        TypeRef::named_list_nn(named)
    } else if field.is_list() {
        TypeRef::named_nn_list_nn(named)
    } else if is_enum || has_presence(field) {
        TypeRef::named(named)
    } else {
        TypeRef::named_nn(named)
    }
}

/// The input type reference of a field: always optional (proto3 fields are), lists `[T!]`.
pub fn input_type(field: &FieldDescriptor, names: &TypeNames, owner: &str) -> TypeRef {
    if field.is_map() {
        return TypeRef::named_nn_list(format!("{}Input", entry_type_name(owner, field)));
    }
    let named = input_named(&field.kind(), names);
    if field.is_list() {
        TypeRef::named_nn_list(named)
    } else {
        TypeRef::named(named)
    }
}
