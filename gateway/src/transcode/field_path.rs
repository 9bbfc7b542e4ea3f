//! Dotted field paths (`user.address.city`) resolved on a message type, and walking them.

use std::borrow::Cow;

use prost_reflect::{DynamicMessage, FieldDescriptor, MessageDescriptor, Value};

use super::error::{TranscodeError, TranscodeErrorKind};

/// A resolved dotted field path (`"user.address.city"`) on a message type.
///
/// Every segment but the last is a singular (not repeated, not map) message field; the last
/// one may be any field.
#[derive(Clone, Debug)]
pub struct FieldPath {
    fields: Vec<FieldDescriptor>,
    text: String,
}

impl PartialEq for FieldPath {
    /// Two paths are equal when they name the same fields (however they were spelled).
    fn eq(&self, other: &Self) -> bool {
        self.fields == other.fields
    }
}

impl Eq for FieldPath {}

impl FieldPath {
    /// Resolves a dotted path on `desc`. Each segment may be the proto field name (snake_case
    /// as in the .proto) or its JSON name (lowerCamelCase or a custom `json_name`).
    ///
    /// Errors ([`TranscodeErrorKind::InvalidFieldPath`]) if the path is empty, a segment is
    /// empty or unknown, or a non-last segment is not a singular message field.
    pub fn resolve(desc: &MessageDescriptor, dotted: &str) -> Result<FieldPath, TranscodeError> {
        let err = |msg: String| {
            TranscodeError::with_field(TranscodeErrorKind::InvalidFieldPath, dotted, msg)
        };
        if dotted.is_empty() {
            return Err(err("empty field path".to_owned()));
        }
        let mut fields = Vec::with_capacity(dotted.bytes().filter(|b| *b == b'.').count() + 1);
        let mut current = desc.clone();
        let mut segments = dotted.split('.').peekable();
        while let Some(segment) = segments.next() {
            if segment.is_empty() {
                return Err(err(format!("empty segment in field path \"{dotted}\"")));
            }
            let field = current
                .get_field_by_name(segment)
                .or_else(|| current.get_field_by_json_name(segment))
                .ok_or_else(|| {
                    err(format!(
                        "no field \"{segment}\" in message {} (field path \"{dotted}\")",
                        current.full_name()
                    ))
                })?;
            if segments.peek().is_some() {
                match field.kind() {
                    prost_reflect::Kind::Message(m) if !field.is_list() && !field.is_map() => {
                        current = m;
                    }
                    _ => {
                        return Err(err(format!(
                            "field \"{segment}\" in path \"{dotted}\" is not a singular message \
                             field, so it has no subfields"
                        )));
                    }
                }
            }
            fields.push(field);
        }
        Ok(FieldPath {
            fields,
            text: dotted.to_owned(),
        })
    }

    /// The path as it was given to [`FieldPath::resolve`].
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The last field of the path (the one the path designates).
    pub fn last(&self) -> &FieldDescriptor {
        // `resolve` never builds an empty path.
        &self.fields[self.fields.len() - 1]
    }

    /// All fields of the path, outermost first.
    pub fn fields(&self) -> &[FieldDescriptor] {
        &self.fields
    }

    /// The path spelled with proto field names (`user.display_name`), as used in FieldMasks.
    pub fn proto_path(&self) -> String {
        join_proto_names(&self.fields)
    }

    /// True if `self` is `prefix` or lies beneath it (`user.id` starts with `user`).
    pub fn starts_with(&self, prefix: &FieldPath) -> bool {
        self.fields.starts_with(&prefix.fields)
    }
}

/// Joins the proto names of `fields` with dots.
pub(crate) fn join_proto_names(fields: &[FieldDescriptor]) -> String {
    let mut out = String::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        out.push_str(f.name());
    }
    out
}

/// The message reached by walking the singular message fields `parents` from `msg` (default
/// messages for unset fields along the way). Borrows when everything on the way is set.
pub(crate) fn message_at<'m>(
    msg: &'m DynamicMessage,
    parents: &[FieldDescriptor],
) -> Cow<'m, DynamicMessage> {
    let mut current: Cow<'m, DynamicMessage> = Cow::Borrowed(msg);
    for field in parents {
        let next = match current {
            Cow::Borrowed(m) => match m.get_field(field) {
                Cow::Borrowed(Value::Message(inner)) => Some(Cow::Borrowed(inner)),
                other => match other.into_owned() {
                    Value::Message(inner) => Some(Cow::Owned(inner)),
                    _ => None,
                },
            },
            Cow::Owned(m) => match m.get_field(field).into_owned() {
                Value::Message(inner) => Some(Cow::Owned(inner)),
                _ => None,
            },
        };
        current = match next {
            Some(next) => next,
            // Not a message field: stop at the default of what the path expected.
            None => match field.kind() {
                prost_reflect::Kind::Message(m) => Cow::Owned(DynamicMessage::new(m)),
                _ => return Cow::Owned(DynamicMessage::new(field.parent_message().clone())),
            },
        };
    }
    current
}

/// Reads the value at `fields` (defaults for unset fields along the way).
pub(crate) fn value_at<'m>(msg: &'m DynamicMessage, fields: &[FieldDescriptor]) -> Cow<'m, Value> {
    let Some((last, parents)) = fields.split_last() else {
        return Cow::Owned(Value::Message(msg.clone()));
    };
    match message_at(msg, parents) {
        Cow::Borrowed(m) => m.get_field(last),
        Cow::Owned(m) => Cow::Owned(m.get_field(last).into_owned()),
    }
}

/// If `field` belongs to a oneof of `msg` and another member of it is already set, returns
/// that member's name.
pub(crate) fn other_oneof_member(msg: &DynamicMessage, field: &FieldDescriptor) -> Option<String> {
    let oneof = field.containing_oneof()?;
    oneof
        .fields()
        .find(|f| f.number() != field.number() && msg.has_field(f))
        .map(|f| f.name().to_owned())
}

/// Walks `parents` (singular message fields) from `msg`, creating the intermediate messages,
/// and returns the innermost one. Setting a field of a oneof while another member is set is a
/// [`TranscodeErrorKind::Conflict`] (`shown` names the path in that error).
pub(crate) fn message_at_mut<'m>(
    msg: &'m mut DynamicMessage,
    parents: &[FieldDescriptor],
    shown: &str,
) -> Result<&'m mut DynamicMessage, TranscodeError> {
    let mut current = msg;
    for field in parents {
        check_oneof(current, field, shown)?;
        current = match current.get_field_mut(field).as_message_mut() {
            Some(inner) => inner,
            None => {
                return Err(TranscodeError::with_field(
                    TranscodeErrorKind::InvalidFieldPath,
                    shown,
                    format!("field \"{}\" is not a message field", field.name()),
                ));
            }
        };
    }
    Ok(current)
}

/// Errors with [`TranscodeErrorKind::Conflict`] if setting `field` on `msg` would silently
/// clear another member of its oneof.
pub(crate) fn check_oneof(
    msg: &DynamicMessage,
    field: &FieldDescriptor,
    shown: &str,
) -> Result<(), TranscodeError> {
    match other_oneof_member(msg, field) {
        Some(other) => Err(TranscodeError::with_field(
            TranscodeErrorKind::Conflict,
            shown,
            format!(
                "field \"{shown}\" and field \"{other}\" belong to the same oneof; only one may be set"
            ),
        )),
        None => Ok(()),
    }
}

/// Sets the value at `fields` (singular), creating intermediate messages.
pub(crate) fn set_at(
    msg: &mut DynamicMessage,
    fields: &[FieldDescriptor],
    value: Value,
    shown: &str,
) -> Result<(), TranscodeError> {
    let Some((last, parents)) = fields.split_last() else {
        return Err(TranscodeError::with_field(
            TranscodeErrorKind::InvalidFieldPath,
            shown,
            "empty field path",
        ));
    };
    let target = message_at_mut(msg, parents, shown)?;
    check_oneof(target, last, shown)?;
    target.try_set_field(last, value).map_err(|e| {
        TranscodeError::with_field(
            TranscodeErrorKind::InvalidValue,
            shown,
            format!("cannot set field \"{shown}\": {e}"),
        )
    })
}
