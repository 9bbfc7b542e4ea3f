//! Converting one text value (a URL path variable or a query value) to a field's protobuf value.

use std::num::IntErrorKind;
use std::str::FromStr;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use prost_reflect::{DynamicMessage, EnumDescriptor, Kind, MessageDescriptor, Value};

/// True for the message types that the proto3 JSON mapping treats specially.
pub(crate) fn is_well_known_type(full_name: &str) -> bool {
    matches!(
        full_name,
        "google.protobuf.Any"
            | "google.protobuf.Timestamp"
            | "google.protobuf.Duration"
            | "google.protobuf.Struct"
            | "google.protobuf.FloatValue"
            | "google.protobuf.DoubleValue"
            | "google.protobuf.Int32Value"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt32Value"
            | "google.protobuf.UInt64Value"
            | "google.protobuf.BoolValue"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue"
            | "google.protobuf.FieldMask"
            | "google.protobuf.ListValue"
            | "google.protobuf.Value"
            | "google.protobuf.Empty"
    )
}

/// True for the well-known message types whose JSON form is a single scalar string/number,
/// and which can therefore be set from a path variable or query value.
pub(crate) fn is_scalar_like_wkt(full_name: &str) -> bool {
    is_wrapper(full_name)
        || matches!(
            full_name,
            "google.protobuf.Timestamp" | "google.protobuf.Duration" | "google.protobuf.FieldMask"
        )
}

fn is_wrapper(full_name: &str) -> bool {
    matches!(
        full_name,
        "google.protobuf.FloatValue"
            | "google.protobuf.DoubleValue"
            | "google.protobuf.Int32Value"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt32Value"
            | "google.protobuf.UInt64Value"
            | "google.protobuf.BoolValue"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue"
    )
}

/// True if a value of this kind can be parsed from one text value.
pub(crate) fn is_text_settable(kind: &Kind) -> bool {
    match kind {
        Kind::Message(m) => is_scalar_like_wkt(m.full_name()),
        _ => true,
    }
}

/// Converts `text` to a value of `kind` (one element for repeated fields).
///
/// On failure returns the reason, phrased to follow `invalid value "..." for field "...": `.
pub(crate) fn parse_text(kind: &Kind, text: &str) -> Result<Value, String> {
    match kind {
        Kind::Double => parse_f64(text).map(Value::F64),
        Kind::Float => parse_f32(text).map(Value::F32),
        Kind::Int32 => parse_int::<i32>(text, "int32").map(Value::I32),
        Kind::Sint32 => parse_int::<i32>(text, "sint32").map(Value::I32),
        Kind::Sfixed32 => parse_int::<i32>(text, "sfixed32").map(Value::I32),
        Kind::Int64 => parse_int::<i64>(text, "int64").map(Value::I64),
        Kind::Sint64 => parse_int::<i64>(text, "sint64").map(Value::I64),
        Kind::Sfixed64 => parse_int::<i64>(text, "sfixed64").map(Value::I64),
        Kind::Uint32 => parse_int::<u32>(text, "uint32").map(Value::U32),
        Kind::Fixed32 => parse_int::<u32>(text, "fixed32").map(Value::U32),
        Kind::Uint64 => parse_int::<u64>(text, "uint64").map(Value::U64),
        Kind::Fixed64 => parse_int::<u64>(text, "fixed64").map(Value::U64),
        Kind::Bool => match text {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err("expected a boolean (true or false)".to_owned()),
        },
        Kind::String => Ok(Value::String(text.to_owned())),
        Kind::Bytes => parse_bytes(text).map(|b| Value::Bytes(b.into())),
        Kind::Enum(e) => parse_enum(e, text).map(Value::EnumNumber),
        Kind::Message(m) => parse_wkt(m, text).map(Value::Message),
    }
}

fn parse_int<T>(text: &str, type_name: &str) -> Result<T, String>
where
    T: FromStr<Err = std::num::ParseIntError>,
{
    text.parse::<T>().map_err(|e| match e.kind() {
        IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => {
            format!("integer out of range for {type_name}")
        }
        _ if type_name.starts_with('u') || type_name == "fixed32" || type_name == "fixed64" => {
            format!("expected a non-negative integer ({type_name})")
        }
        _ => format!("expected an integer ({type_name})"),
    })
}

fn parse_special_float(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

fn parse_f64(text: &str) -> Result<f64, String> {
    if let Some(v) = parse_special_float(text) {
        return Ok(v);
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err("number out of range for double (use \"Infinity\" or \"-Infinity\")".into()),
        Err(_) => {
            Err("expected a number (double; \"NaN\", \"Infinity\", \"-Infinity\" allowed)".into())
        }
    }
}

fn parse_f32(text: &str) -> Result<f32, String> {
    if let Some(v) = parse_special_float(text) {
        return Ok(v as f32);
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v.abs() <= f64::from(f32::MAX) => Ok(v as f32),
        Ok(_) => Err("number out of range for float (use \"Infinity\" or \"-Infinity\")".into()),
        Err(_) => {
            Err("expected a number (float; \"NaN\", \"Infinity\", \"-Infinity\" allowed)".into())
        }
    }
}

/// Decodes base64 in the standard or the URL-safe alphabet, padding optional (what
/// prost-reflect accepts in JSON).
pub(crate) fn parse_bytes(text: &str) -> Result<Vec<u8>, String> {
    const CONFIG: GeneralPurposeConfig = GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, CONFIG);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, CONFIG);
    let engine = if text.bytes().any(|b| b == b'-' || b == b'_') {
        &URL_SAFE
    } else {
        &STANDARD
    };
    engine
        .decode(text)
        .map_err(|e| format!("expected base64 (standard or URL-safe alphabet): {e}"))
}

fn parse_enum(desc: &EnumDescriptor, text: &str) -> Result<i32, String> {
    if let Some(v) = desc.get_value_by_name(text) {
        return Ok(v.number());
    }
    if let Ok(n) = text.parse::<i32>() {
        return Ok(n);
    }
    let mut names: Vec<String> = desc.values().take(6).map(|v| v.name().to_owned()).collect();
    if desc.values().len() > 6 {
        names.push("...".to_owned());
    }
    Err(format!(
        "expected a value of enum {} ({}) or its number",
        desc.full_name(),
        names.join(", ")
    ))
}

fn parse_wkt(desc: &MessageDescriptor, text: &str) -> Result<DynamicMessage, String> {
    let name = desc.full_name();
    if is_wrapper(name) {
        let inner = desc
            .get_field_by_name("value")
            .ok_or_else(|| format!("malformed wrapper type {name}"))?;
        let value = parse_text(&inner.kind(), text)?;
        let mut msg = DynamicMessage::new(desc.clone());
        msg.try_set_field(&inner, value)
            .map_err(|e| e.to_string())?;
        return Ok(msg);
    }
    match name {
        "google.protobuf.FieldMask" => parse_field_mask(desc, text),
        "google.protobuf.Timestamp" | "google.protobuf.Duration" => {
            // Reuse prost-reflect's canonical parser on the JSON string form.
            let quoted = serde_json::to_string(text).map_err(|e| e.to_string())?;
            let mut de = serde_json::Deserializer::from_str(&quoted);
            DynamicMessage::deserialize(desc.clone(), &mut de).map_err(|e| {
                let what = if name.ends_with("Timestamp") {
                    "an RFC 3339 timestamp such as 2024-01-31T12:00:00Z"
                } else {
                    "a duration in seconds such as 1.5s"
                };
                format!("expected {what} ({})", super::body::strip_position(&e))
            })
        }
        _ => Err(format!(
            "a message of type {name} cannot be given as a single text value"
        )),
    }
}

/// A FieldMask from text: comma-separated paths; each dotted segment may be lowerCamelCase
/// (the JSON form) or snake_case (proto names, as grpc-gateway accepts). Stored snake_case.
fn parse_field_mask(desc: &MessageDescriptor, text: &str) -> Result<DynamicMessage, String> {
    let paths_field = desc
        .get_field_by_name("paths")
        .ok_or_else(|| "malformed google.protobuf.FieldMask".to_owned())?;
    let mut paths = Vec::new();
    for path in text.split(',').filter(|p| !p.is_empty()) {
        let mut out = String::with_capacity(path.len() + 4);
        for (i, segment) in path.split('.').enumerate() {
            if i > 0 {
                out.push('.');
            }
            let valid = !segment.is_empty()
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(format!(
                    "expected a field mask (comma-separated field paths), \"{path}\" is not a field path"
                ));
            }
            for c in segment.chars() {
                if c.is_ascii_uppercase() {
                    out.push('_');
                    out.push(c.to_ascii_lowercase());
                } else {
                    out.push(c);
                }
            }
        }
        paths.push(Value::String(out));
    }
    let mut msg = DynamicMessage::new(desc.clone());
    msg.try_set_field(&paths_field, Value::List(paths))
        .map_err(|e| e.to_string())?;
    Ok(msg)
}
