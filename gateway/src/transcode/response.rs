//! Message -> JSON bytes, whole or only the `response_body` field.

use prost_reflect::{DynamicMessage, Kind, ReflectMessage, SerializeOptions, Value};
use serde::ser::{self, Impossible, Serialize, SerializeMap, Serializer};

use super::EncodeOptions;
use super::error::{TranscodeError, TranscodeErrorKind};
use super::field_path::{FieldPath, message_at};
use super::scalar::is_well_known_type;

fn encode_error(e: impl std::fmt::Display) -> TranscodeError {
    TranscodeError::new(
        TranscodeErrorKind::Encode,
        format!("cannot encode the response as JSON: {e}"),
    )
}

fn serialize_options(opts: &EncodeOptions) -> SerializeOptions {
    SerializeOptions::new()
        .use_proto_field_name(opts.use_proto_field_names)
        .skip_default_fields(!opts.emit_unpopulated)
}

/// Serialises `msg` (canonical proto3 JSON), or only its `response_body` field.
pub fn encode_response(
    msg: &DynamicMessage,
    response_body: Option<&FieldPath>,
    opts: &EncodeOptions,
) -> Result<Vec<u8>, TranscodeError> {
    let sopts = serialize_options(opts);
    let mut ser = serde_json::Serializer::new(Vec::with_capacity(256));
    let Some(path) = response_body else {
        msg.serialize_with_options(&mut ser, &sopts)
            .map_err(encode_error)?;
        return Ok(ser.into_inner());
    };
    let fields = path.fields();
    let (last, parents) = match fields.split_last() {
        Some(split) => split,
        None => return Err(encode_error("empty response_body path")),
    };
    // The message that holds the field.
    let holder = message_at(msg, parents);
    if let Kind::Message(m) = last.kind()
        && !last.is_list()
        && !last.is_map()
    {
        if holder.has_field(last) {
            if let Value::Message(inner) = holder.get_field(last).as_ref() {
                inner
                    .serialize_with_options(&mut ser, &sopts)
                    .map_err(encode_error)?;
                return Ok(ser.into_inner());
            }
        } else if is_well_known_type(m.full_name()) {
            // An unset Timestamp, wrapper... is `null`, not its zero value.
            return Ok(b"null".to_vec());
        } else {
            DynamicMessage::new(m)
                .serialize_with_options(&mut ser, &sopts)
                .map_err(encode_error)?;
            return Ok(ser.into_inner());
        }
    }
    // Repeated, map or scalar: let prost-reflect serialise the holder and keep only our key.
    let name = if opts.use_proto_field_names {
        last.name()
    } else {
        last.json_name()
    };
    let mut found = false;
    holder
        .serialize_with_options(
            Picker {
                out: &mut ser,
                name,
                found: &mut found,
            },
            &sopts,
        )
        .map_err(encode_error)?;
    if !found {
        // The field is at its default value and was skipped: write that default.
        if last.supports_presence() {
            return Ok(b"null".to_vec());
        }
        let only = DynamicMessage::new(holder.descriptor());
        only.serialize_with_options(
            Picker {
                out: &mut ser,
                name,
                found: &mut found,
            },
            &sopts.clone().skip_default_fields(false),
        )
        .map_err(encode_error)?;
        if !found {
            return Ok(b"null".to_vec());
        }
    }
    Ok(ser.into_inner())
}

/// A serializer that accepts one JSON object and writes the value of its key `name` (only)
/// to `out`.
struct Picker<'a> {
    out: &'a mut serde_json::Serializer<Vec<u8>>,
    name: &'a str,
    found: &'a mut bool,
}

struct PickerMap<'a> {
    out: &'a mut serde_json::Serializer<Vec<u8>>,
    name: &'a str,
    found: &'a mut bool,
    matched: bool,
}

fn unexpected<T>() -> Result<T, serde_json::Error> {
    Err(ser::Error::custom("expected a JSON object"))
}

impl<'a> Serializer for Picker<'a> {
    type Ok = ();
    type Error = serde_json::Error;
    type SerializeSeq = Impossible<(), serde_json::Error>;
    type SerializeTuple = Impossible<(), serde_json::Error>;
    type SerializeTupleStruct = Impossible<(), serde_json::Error>;
    type SerializeTupleVariant = Impossible<(), serde_json::Error>;
    type SerializeMap = PickerMap<'a>;
    type SerializeStruct = Impossible<(), serde_json::Error>;
    type SerializeStructVariant = Impossible<(), serde_json::Error>;

    fn serialize_map(self, _len: Option<usize>) -> Result<PickerMap<'a>, serde_json::Error> {
        Ok(PickerMap {
            out: self.out,
            name: self.name,
            found: self.found,
            matched: false,
        })
    }

    fn serialize_bool(self, _: bool) -> Result<(), serde_json::Error> {
        unexpected()
    }
    fn serialize_i8(self, _: i8) -> Result<(), serde_json::Error> {
        unexpected()
    }
    fn serialize_i16(self, _: i16) -> Result<(), serde_json::Error> {
        unexpected()
    }
    fn serialize_i32(self, _: i32) -> Result<(), serde_json::Error> {
        unexpected()
    }
    fn serialize_i64(self, _: i64) -> Result<(), serde_json::Error> {
        unexpected()
    }
    fn serialize_u8(self, _: u8) -> Result<(), serde_json::Error> {
        unexpected()
    }
    fn serialize_u16(self, _: u16) -> Result<(), serde_json::Error> {
        unexpected()
    }
    fn serialize_u32(self, _: u32) -> Result<(), serde_json::Error> {
        unexpected()
    }
    fn serialize_u64(self, _: u64) -> Result<(), serde_json::Error> {
        unexpected()
    }
    fn serialize_f32(self, _: f32) -> Result<(), serde_json::Error> {
        unexpected()
    }
    fn serialize_f64(self, _: f64) -> Result<(), serde_json::Error> {
        unexpected()
    }
    fn serialize_char(self, _: char) -> Result<(), serde_json::Error> {
        unexpected()
    }
    fn serialize_str(self, _: &str) -> Result<(), serde_json::Error> {
        unexpected()
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), serde_json::Error> {
        unexpected()
    }
    fn serialize_none(self) -> Result<(), serde_json::Error> {
        unexpected()
    }
    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<(), serde_json::Error> {
        unexpected()
    }
    fn serialize_unit(self) -> Result<(), serde_json::Error> {
        unexpected()
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), serde_json::Error> {
        unexpected()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<(), serde_json::Error> {
        unexpected()
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<(), serde_json::Error> {
        unexpected()
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), serde_json::Error> {
        unexpected()
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, serde_json::Error> {
        unexpected()
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, serde_json::Error> {
        unexpected()
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, serde_json::Error> {
        unexpected()
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, serde_json::Error> {
        unexpected()
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, serde_json::Error> {
        unexpected()
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, serde_json::Error> {
        unexpected()
    }
}

impl SerializeMap for PickerMap<'_> {
    type Ok = ();
    type Error = serde_json::Error;

    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), serde_json::Error> {
        // Keys are short field names: comparing through a JSON value is cheap enough.
        self.matched = matches!(
            key.serialize(serde_json::value::Serializer)?,
            serde_json::Value::String(ref s) if s == self.name
        );
        Ok(())
    }

    fn serialize_value<T: ?Sized + Serialize>(
        &mut self,
        value: &T,
    ) -> Result<(), serde_json::Error> {
        if self.matched && !*self.found {
            value.serialize(&mut *self.out)?;
            *self.found = true;
        }
        self.matched = false;
        Ok(())
    }

    fn end(self) -> Result<(), serde_json::Error> {
        Ok(())
    }
}
