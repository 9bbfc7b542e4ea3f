//! JSON body -> message (or -> one field's value): the checking pass, then prost-reflect.

use prost_reflect::{
    DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, Value,
};
use serde_path_to_error::Segment;

use super::DecodeOptions;
use super::error::{TranscodeError, TranscodeErrorKind};
use super::scan::{Ctx, ScanOptions, ScanReport, scan};

/// True if the body holds nothing but JSON whitespace (treated as `{}` / "no value").
pub(crate) fn is_blank(body: &[u8]) -> bool {
    body.iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

/// A serde_json error message without its " at line L column C" suffix.
pub(crate) fn strip_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    if e.line() == 0 {
        return text;
    }
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&suffix) {
        Some(s) => s.to_owned(),
        None => text,
    }
}

/// What to record while checking the body.
pub(crate) struct Recording<'a> {
    /// Record every leaf path (for update masks).
    pub all: bool,
    /// Report the presence of these proto paths (relative to the body root).
    pub watch: &'a [String],
}

impl Recording<'_> {
    /// Records nothing.
    pub(crate) const NONE: Recording<'static> = Recording {
        all: false,
        watch: &[],
    };
}

fn scan_options<'a>(opts: &DecodeOptions, rec: &Recording<'a>) -> ScanOptions<'a> {
    ScanOptions {
        max_depth: opts.max_depth,
        max_struct_values: opts.max_struct_values,
        ignore_unknown: opts.ignore_unknown_fields,
        record_all: rec.all,
        watch: rec.watch,
    }
}

fn deserialize_options(opts: &DecodeOptions) -> DeserializeOptions {
    DeserializeOptions::new().deny_unknown_fields(!opts.ignore_unknown_fields)
}

/// The checking pass over a JSON document of a message of type `desc` (nothing to check in a
/// blank one): what [`decode_message`] checks before prost-reflect parses.
pub(crate) fn check_message(
    desc: &MessageDescriptor,
    json: &[u8],
    opts: &DecodeOptions,
    rec: &Recording<'_>,
    shown: &str,
) -> Result<ScanReport, TranscodeError> {
    if is_blank(json) {
        return Ok(ScanReport {
            leaves: Vec::new(),
            watched: vec![None; rec.watch.len()],
        });
    }
    let root = if super::scalar::is_well_known_type(desc.full_name()) {
        Ctx::Opaque
    } else {
        Ctx::Message(desc.clone())
    };
    scan(json, root, &scan_options(opts, rec), shown)
}

/// The checking pass over a JSON document of the value of `field`: what [`decode_field`]
/// checks before prost-reflect parses.
pub(crate) fn check_field(
    field: &FieldDescriptor,
    json: &[u8],
    opts: &DecodeOptions,
    rec: &Recording<'_>,
    shown: &str,
) -> Result<ScanReport, TranscodeError> {
    if let Kind::Message(m) = field.kind()
        && !field.is_list()
        && !field.is_map()
    {
        return check_message(&m, json, opts, rec, shown);
    }
    if is_blank(json) {
        return Ok(ScanReport {
            leaves: Vec::new(),
            watched: vec![None; rec.watch.len()],
        });
    }
    scan(json, Ctx::for_field(field), &scan_options(opts, rec), shown)
}

/// Decodes a JSON document as a message of type `desc`. A blank document is `{}`.
/// `shown` is the field path that prefixes JSON paths in errors (empty for a whole body).
pub(crate) fn decode_message(
    desc: &MessageDescriptor,
    json: &[u8],
    opts: &DecodeOptions,
    rec: &Recording<'_>,
    shown: &str,
) -> Result<(DynamicMessage, ScanReport), TranscodeError> {
    let report = check_message(desc, json, opts, rec, shown)?;
    if is_blank(json) {
        return Ok((DynamicMessage::new(desc.clone()), report));
    }
    let de_opts = deserialize_options(opts);
    let mut de = serde_json::Deserializer::from_slice(json);
    let result = DynamicMessage::deserialize_with_options(desc.clone(), &mut de, &de_opts)
        .and_then(|m| de.end().map(|()| m));
    match result {
        Ok(msg) => Ok((msg, report)),
        Err(e) => {
            // Errors are rare: parse again, tracking the path, to name the field.
            let mut de = serde_json::Deserializer::from_slice(json);
            let mut track = serde_path_to_error::Track::new();
            let tracked = serde_path_to_error::Deserializer::new(&mut de, &mut track);
            let _ = DynamicMessage::deserialize_with_options(desc.clone(), tracked, &de_opts);
            Err(prost_error(&e, &track.path(), 0, shown))
        }
    }
}

/// Decodes a JSON document as the value of `field` (a message, repeated, map or scalar
/// field). Returns `None` for a blank document or `null` (the field stays unset), except for
/// message fields, where a blank document is `{}`.
pub(crate) fn decode_field(
    field: &FieldDescriptor,
    json: &[u8],
    opts: &DecodeOptions,
    rec: &Recording<'_>,
    shown: &str,
) -> Result<(Option<Value>, ScanReport), TranscodeError> {
    if let Kind::Message(m) = field.kind()
        && !field.is_list()
        && !field.is_map()
    {
        let (msg, report) = decode_message(&m, json, opts, rec, shown)?;
        return Ok((Some(Value::Message(msg)), report));
    }
    let report = ScanReport {
        leaves: Vec::new(),
        watched: vec![None; rec.watch.len()],
    };
    if is_blank(json) {
        return Ok((None, report));
    }
    scan(json, Ctx::for_field(field), &scan_options(opts, rec), shown)?;
    // prost-reflect only parses whole messages: parse `{"<field>": <body>}` as the parent.
    let parent = field.parent_message().clone();
    let name = field.name();
    let mut wrapped = Vec::with_capacity(json.len() + name.len() + 5);
    wrapped.extend_from_slice(b"{\"");
    wrapped.extend_from_slice(name.as_bytes());
    wrapped.extend_from_slice(b"\":");
    wrapped.extend_from_slice(json);
    wrapped.extend_from_slice(b"}");
    let de_opts = deserialize_options(opts);
    let mut de = serde_json::Deserializer::from_slice(&wrapped);
    let result = DynamicMessage::deserialize_with_options(parent.clone(), &mut de, &de_opts)
        .and_then(|m| de.end().map(|()| m));
    match result {
        Ok(mut msg) => {
            let value = if msg.has_field(field) {
                msg.take_field(field)
            } else {
                None
            };
            Ok((value, report))
        }
        Err(e) => {
            let mut de = serde_json::Deserializer::from_slice(&wrapped);
            let mut track = serde_path_to_error::Track::new();
            let tracked = serde_path_to_error::Deserializer::new(&mut de, &mut track);
            let _ = DynamicMessage::deserialize_with_options(parent, tracked, &de_opts);
            Err(prost_error(&e, &track.path(), 1, shown))
        }
    }
}

/// Maps a prost-reflect deserialisation error to a [`TranscodeError`], naming the JSON path
/// (its first `skip` segments dropped, `shown` put in front).
pub(crate) fn prost_error(
    e: &serde_json::Error,
    path: &serde_path_to_error::Path,
    skip: usize,
    shown: &str,
) -> TranscodeError {
    use TranscodeErrorKind as K;
    let detail = strip_position(e);
    if e.is_syntax() || e.is_eof() {
        return TranscodeError::new(K::MalformedJson, format!("malformed JSON: {e}"));
    }
    let mut field = shown.to_owned();
    for seg in path.iter().skip(skip) {
        match seg {
            Segment::Seq { index } => {
                field.push('[');
                field.push_str(&index.to_string());
                field.push(']');
            }
            Segment::Map { key } => {
                if !field.is_empty() {
                    field.push('.');
                }
                field.push_str(key);
            }
            _ => {}
        }
    }
    let kind = if detail.contains("recursion limit") {
        K::TooDeep
    } else if detail.starts_with("unrecognized field name") {
        K::UnknownField
    } else {
        K::InvalidValue
    };
    let message = if field.is_empty() {
        format!("invalid request body: {detail}")
    } else if kind == K::UnknownField {
        format!("unknown field in \"{field}\": {detail}")
    } else {
        format!("invalid value for field \"{field}\": {detail}")
    };
    TranscodeError {
        kind,
        field: (!field.is_empty()).then_some(field),
        message,
    }
}
