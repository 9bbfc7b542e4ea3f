//! Query string -> fields: `a.b=1&ids=1&ids=2`, keys are dotted field paths.

use std::borrow::Cow;
use std::collections::HashSet;

use prost_reflect::{DynamicMessage, MessageDescriptor};

use super::error::{TranscodeError, TranscodeErrorKind as K};
use super::field_path::{FieldPath, message_at_mut, set_at};
use super::scalar::{is_text_settable, parse_text};
use super::{BodyTarget, DecodeOptions};

/// Sets the fields named by the query string `query` on `msg` (of type `desc`).
///
/// Fields bound by a path variable (`bindings`) or covered by the body target may not be set
/// from the query.
pub(crate) fn apply_query(
    msg: &mut DynamicMessage,
    desc: &MessageDescriptor,
    query: &str,
    bindings: &[(&FieldPath, &str)],
    body: &BodyTarget,
    opts: &DecodeOptions,
) -> Result<(), TranscodeError> {
    let mut seen_singular: HashSet<String> = HashSet::new();
    for pair in query.split('&') {
        if pair.is_empty() {
            continue;
        }
        let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(raw_key, opts.query_plus_is_space).map_err(|why| {
            TranscodeError::new(
                K::InvalidValue,
                format!("invalid query parameter name \"{raw_key}\": {why}"),
            )
        })?;
        if opts.ignored_query_params.iter().any(|p| *p == *key) {
            continue;
        }
        let value = percent_decode(raw_value, opts.query_plus_is_space).map_err(|why| {
            TranscodeError::with_field(
                K::InvalidValue,
                key.as_ref(),
                format!("invalid value for query parameter \"{key}\": {why}"),
            )
        })?;
        apply_one(msg, desc, &key, &value, bindings, body, &mut seen_singular)?;
    }
    Ok(())
}

fn apply_one(
    msg: &mut DynamicMessage,
    desc: &MessageDescriptor,
    key: &str,
    value: &str,
    bindings: &[(&FieldPath, &str)],
    body: &BodyTarget,
    seen_singular: &mut HashSet<String>,
) -> Result<(), TranscodeError> {
    if matches!(body, BodyTarget::Whole) {
        return Err(TranscodeError::with_field(
            K::UnknownQueryParameter,
            key,
            format!(
                "query parameter \"{key}\" is not accepted: this method takes its fields from the request body"
            ),
        ));
    }
    let path = FieldPath::resolve(desc, key).map_err(|e| {
        TranscodeError::with_field(
            K::UnknownQueryParameter,
            key,
            format!("unknown query parameter \"{key}\": {}", e.message),
        )
    })?;
    if let Some((bound, _)) = bindings
        .iter()
        .find(|(b, _)| path.starts_with(b) || b.starts_with(&path))
    {
        return Err(TranscodeError::with_field(
            K::Conflict,
            key,
            format!(
                "query parameter \"{key}\" sets a field bound by the URL path (\"{}\")",
                bound.as_str()
            ),
        ));
    }
    if let BodyTarget::Field(target) = body
        && (path.starts_with(target) || target.starts_with(&path))
    {
        return Err(TranscodeError::with_field(
            K::UnknownQueryParameter,
            key,
            format!(
                "query parameter \"{key}\" is not accepted: field \"{}\" comes from the request body",
                target.as_str()
            ),
        ));
    }
    let last = path.last();
    if last.is_map() {
        return Err(TranscodeError::with_field(
            K::InvalidValue,
            key,
            format!("map field \"{key}\" cannot be set from the query string"),
        ));
    }
    let kind = last.kind();
    if !is_text_settable(&kind) {
        let type_name = kind.as_message().map(|m| m.full_name()).unwrap_or_default();
        return Err(TranscodeError::with_field(
            K::InvalidValue,
            key,
            format!(
                "field \"{key}\" is a message ({type_name}) and cannot be set from one query \
                 value; set its fields instead, e.g. \"{key}.<field>=...\""
            ),
        ));
    }
    let parsed = parse_text(&kind, value).map_err(|why| {
        TranscodeError::with_field(
            K::InvalidValue,
            key,
            format!("invalid value \"{value}\" for field \"{key}\": {why}"),
        )
    })?;
    let fields = path.fields();
    if last.is_list() {
        let parents = &fields[..fields.len() - 1];
        let target = message_at_mut(msg, parents, key)?;
        super::field_path::check_oneof(target, last, key)?;
        match target.get_field_mut(last).as_list_mut() {
            Some(list) => list.push(parsed),
            None => {
                return Err(TranscodeError::with_field(
                    K::InvalidValue,
                    key,
                    format!("field \"{key}\" is not a list"),
                ));
            }
        }
        return Ok(());
    }
    if !seen_singular.insert(path.proto_path()) {
        return Err(TranscodeError::with_field(
            K::RepeatedQueryParameter,
            key,
            format!(
                "query parameter \"{key}\" is given more than once but the field is not repeated"
            ),
        ));
    }
    set_at(msg, fields, parsed, key)
}

/// Percent-decodes one query component. Invalid escapes (`%`, `%4`, `%zz`) and escapes that
/// do not form UTF-8 are errors. `+` becomes a space only if `plus_is_space`.
pub(crate) fn percent_decode(s: &str, plus_is_space: bool) -> Result<Cow<'_, str>, String> {
    let needs_work = s.contains('%') || (plus_is_space && s.contains('+'));
    if !needs_work {
        return Ok(Cow::Borrowed(s));
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|b| (*b as char).to_digit(16));
                let lo = bytes.get(i + 2).and_then(|b| (*b as char).to_digit(16));
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
                    _ => {
                        return Err(format!(
                            "invalid percent-encoding at byte {i} (expected '%' and two hex digits)"
                        ));
                    }
                }
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| "percent-decoded bytes are not valid UTF-8".to_owned())
}
