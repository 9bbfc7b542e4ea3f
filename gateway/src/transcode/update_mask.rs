//! Filling `update_mask` from the fields present in a PATCH body (like grpc-gateway).

use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, Value};

use super::error::{TranscodeError, TranscodeErrorKind};
use super::scalar::is_well_known_type;

/// The request's `update_mask` field, if it has one of type `google.protobuf.FieldMask`.
pub(crate) fn update_mask_field(desc: &MessageDescriptor) -> Option<FieldDescriptor> {
    let field = desc.get_field_by_name("update_mask")?;
    match field.kind() {
        Kind::Message(m) if m.full_name() == "google.protobuf.FieldMask" && !field.is_list() => {
            Some(field)
        }
        _ => None,
    }
}

/// True if a body for `field` is descended into to collect paths: a singular message that is
/// not a well-known type.
pub(crate) fn collects_paths(field: &FieldDescriptor) -> bool {
    !field.is_list()
        && !field.is_map()
        && matches!(field.kind(), Kind::Message(m) if !is_well_known_type(m.full_name()))
}

/// Sets `mask_field` on `msg` to a FieldMask holding `paths` (proto names).
pub(crate) fn set_mask(
    msg: &mut DynamicMessage,
    mask_field: &FieldDescriptor,
    paths: Vec<String>,
) -> Result<(), TranscodeError> {
    let err = |why: String| {
        TranscodeError::with_field(
            TranscodeErrorKind::InvalidValue,
            mask_field.name(),
            format!("cannot fill update_mask: {why}"),
        )
    };
    let Kind::Message(mask_desc) = mask_field.kind() else {
        return Err(err("not a message field".to_owned()));
    };
    let paths_field = mask_desc
        .get_field_by_name("paths")
        .ok_or_else(|| err("malformed google.protobuf.FieldMask".to_owned()))?;
    let mut mask = DynamicMessage::new(mask_desc);
    mask.try_set_field(
        &paths_field,
        Value::List(paths.into_iter().map(Value::String).collect()),
    )
    .map_err(|e| err(e.to_string()))?;
    msg.try_set_field(mask_field, Value::Message(mask))
        .map_err(|e| err(e.to_string()))
}
