//! Transcoding between HTTP (JSON body, URL path variables, query string) and protobuf
//! messages (prost-reflect `DynamicMessage`), following the proto3 JSON mapping and the
//! `google.api.http` rules. Pure functions, no I/O.
//!
//! Decoding a request ([`decode_request`]):
//! 1. The body is checked in one cheap pass ([`DecodeOptions::max_depth`], duplicate keys,
//!    unknown fields with their JSON path), then parsed by prost-reflect (canonical proto3
//!    JSON: JSON and proto field names accepted, 64-bit integers as numbers or strings, enums
//!    by name or number, bytes in standard or URL-safe base64, padding optional).
//!    A blank body (empty or only whitespace) counts as `{}` for a message target, and as "not
//!    set" for a repeated/map/scalar body field. A body must be a JSON object when its target
//!    is a message (`null` is rejected too).
//! 2. Path variables are converted to their field's type and set, creating intermediate
//!    messages. A path field also present in the body must have the same value
//!    ([`TranscodeErrorKind::Conflict`] otherwise); `null` in the body counts as absent.
//! 3. Query parameters set the remaining fields (see [`HttpRequestParts::query`]).
//! 4. With [`HttpRequestParts::fill_update_mask`], `update_mask` is filled from the body.
//!
//! With `ignore_unknown_fields`, prost-reflect also drops unknown enum *names* (the field
//! stays unset), as the proto3 JSON spec allows.
//!
//! The REST door does not build that message: [`encode_request`] gives the same request as
//! wire bytes, written straight from the JSON by [`direct`]'s decoder (the same checks, the
//! same errors), falling back to [`decode_request`] for what it leaves.
//!
//! Bodies that are not JSON ([`form`]): a raw body as a `google.api.HttpBody`
//! ([`encode_raw_request`]) and `multipart/form-data` parts as fields
//! ([`encode_form_request`]).

mod body;
pub mod direct;
mod error;
mod field_path;
mod form;
pub mod json_text;
mod query;
mod response;
mod scalar;
mod scan;
mod update_mask;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests_body;
#[cfg(test)]
mod tests_direct;
#[cfg(test)]
mod tests_from_json;
#[cfg(test)]
mod tests_query;
#[cfg(test)]
mod tests_request;
#[cfg(test)]
mod tests_response;

use prost_reflect::{DynamicMessage, MessageDescriptor, Value};

pub use error::{TranscodeError, TranscodeErrorKind};
pub use field_path::FieldPath;
pub use form::{
    FormPart, HTTP_BODY, encode_form_request, encode_raw_request, is_http_body, is_http_body_field,
};
pub use response::encode_response;

use body::{Recording, decode_field, decode_message, is_blank};
use field_path::{join_proto_names, set_at, value_at};
use scalar::{is_text_settable, parse_text};

/// Where the request body goes, from `HttpRule.body`.
#[derive(Clone, Debug, Default)]
pub enum BodyTarget {
    /// `body` is empty: the method takes no body; a non-blank body is an error.
    #[default]
    None,
    /// `body: "*"`: the body is the whole request message; no query parameters are accepted.
    Whole,
    /// `body: "some.field"`: the body is the value of that field (message, repeated, map or
    /// scalar).
    Field(FieldPath),
}

/// Options for decoding requests.
#[derive(Clone, Debug)]
pub struct DecodeOptions {
    /// If false (default), an unknown JSON field is a [`TranscodeErrorKind::UnknownField`]
    /// error naming it; if true it is skipped.
    pub ignore_unknown_fields: bool,
    /// Maximum nesting of JSON objects + arrays (default 32). Deeper is
    /// [`TranscodeErrorKind::TooDeep`]. Values above ~100 are capped by serde_json's own
    /// limit of 128 (also reported as `TooDeep`), and `Struct`/`ListValue` content fails
    /// inside prost-reflect past about 50 levels.
    pub max_depth: usize,
    /// If true, `+` in the query string means a space (HTML forms); default false: `+` stays.
    pub query_plus_is_space: bool,
    /// Query parameter names that are silently ignored (e.g. `access_token`, `callback`).
    /// Empty by default.
    pub ignored_query_params: Vec<String>,
    /// Most JSON values (objects, arrays and scalars, counted at every level) inside
    /// `google.protobuf.Struct`, `Value` and `ListValue` fields of one body (default 10,000;
    /// [`TranscodeErrorKind::TooManyValues`] past it). Each such value decodes to a whole
    /// message of its own (about 800 bytes on the heap for a 2-byte `0,`), so this bounds
    /// what free-form JSON can make the gateway allocate.
    pub max_struct_values: usize,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            ignore_unknown_fields: false,
            max_depth: 32,
            query_plus_is_space: false,
            ignored_query_params: Vec::new(),
            max_struct_values: 10_000,
        }
    }
}

/// Options for encoding responses.
#[derive(Clone, Debug, Default)]
pub struct EncodeOptions {
    /// Write proto field names (`display_name`) instead of lowerCamelCase JSON names.
    pub use_proto_field_names: bool,
    /// Write fields that hold their default value (`0`, `""`, `[]`...). Unset message fields
    /// and unset proto3 `optional` fields are still left out.
    pub emit_unpopulated: bool,
}

/// The parts of an HTTP request that make up the request message.
#[derive(Clone, Copy, Debug)]
pub struct HttpRequestParts<'a> {
    /// Raw body bytes; may be empty.
    pub body: &'a [u8],
    /// Where the body goes.
    pub body_target: &'a BodyTarget,
    /// URL path variables: field path and its already percent-decoded value. A variable may
    /// not name a repeated or map field, nor a message other than Timestamp, Duration,
    /// FieldMask and the wrappers ([`TranscodeErrorKind::InvalidFieldPath`]).
    pub path_bindings: &'a [(&'a FieldPath, &'a str)],
    /// The raw query string (still percent-encoded), without the `?`.
    ///
    /// Keys are dotted field paths (proto or JSON name per segment); values are converted like
    /// path variables. A repeated field takes one value per occurrence (`ids=1&ids=2`; values
    /// are never split on commas; a key without `=` has the empty value); a singular field
    /// given twice is
    /// [`TranscodeErrorKind::RepeatedQueryParameter`]. Rejected: unknown keys and any key
    /// when the body is the whole message ([`TranscodeErrorKind::UnknownQueryParameter`]),
    /// keys for the body field or beneath it (`UnknownQueryParameter`), keys for a path-bound
    /// field ([`TranscodeErrorKind::Conflict`]), message fields other than the scalar-like
    /// well-known types, and map fields ([`TranscodeErrorKind::InvalidValue`]).
    pub query: Option<&'a str>,
    /// True for PATCH: if the request has a `google.protobuf.FieldMask update_mask` field,
    /// the body target is a message field, and nothing set `update_mask`, it is set to the
    /// leaf paths present in the body (proto names, relative to the body field; maps,
    /// repeated fields, well-known types and empty objects are one path each; `null` values
    /// count). Left unset if the body names no field.
    pub fill_update_mask: bool,
}

/// Builds the request message of type `desc` from the parts of an HTTP request.
pub fn decode_request(
    desc: &MessageDescriptor,
    parts: &HttpRequestParts<'_>,
    opts: &DecodeOptions,
) -> Result<DynamicMessage, TranscodeError> {
    use TranscodeErrorKind as K;

    let bound = convert_bindings(parts)?;

    let mask_field = if parts.fill_update_mask {
        update_mask::update_mask_field(desc)
    } else {
        None
    };
    let (watch, in_body) = watch_bindings(parts);

    let mut mask_paths: Option<Vec<String>> = None;
    let mut body_present = false;
    let (mut msg, watched) = match parts.body_target {
        BodyTarget::None => {
            if !is_blank(parts.body) {
                return Err(TranscodeError::new(
                    K::InvalidValue,
                    "this method takes no request body",
                ));
            }
            (DynamicMessage::new(desc.clone()), Vec::new())
        }
        BodyTarget::Whole => {
            let rec = Recording {
                all: false,
                watch: &watch,
            };
            let (msg, report) = decode_message(desc, parts.body, opts, &rec, "")?;
            (msg, report.watched)
        }
        BodyTarget::Field(target) => {
            let record_all = mask_field.is_some() && update_mask::collects_paths(target.last());
            let rec = Recording {
                all: record_all,
                watch: &watch,
            };
            let (value, report) =
                decode_field(target.last(), parts.body, opts, &rec, target.as_str())?;
            let mut msg = DynamicMessage::new(desc.clone());
            if let Some(value) = value {
                body_present = true;
                set_at(&mut msg, target.fields(), value, target.as_str())?;
            }
            if record_all {
                mask_paths = Some(report.leaves);
            }
            (msg, report.watched)
        }
    };

    for (((path, raw), value), place) in parts.path_bindings.iter().zip(bound).zip(in_body.iter()) {
        let present = match place {
            InBody::No => false,
            InBody::IsBodyField => body_present,
            InBody::Watch(i) => watched.get(*i) == Some(&Some(false)),
        };
        if present && !values_equal(&value_at(&msg, path.fields()), &value) {
            return Err(TranscodeError::with_field(
                K::Conflict,
                path.as_str(),
                format!(
                    "field \"{}\" is \"{raw}\" in the URL path but has a different value in the request body",
                    path.as_str()
                ),
            ));
        }
        set_at(&mut msg, path.fields(), value, path.as_str())?;
    }

    if let Some(query) = parts.query {
        query::apply_query(
            &mut msg,
            desc,
            query,
            parts.path_bindings,
            parts.body_target,
            opts,
        )?;
    }

    // Fields bound from the URL path identify the resource; they are not part of the update.
    let mask_paths = mask_paths.map(|mut p| {
        p.retain(|path| !watch.contains(path));
        p
    });
    if let (Some(mask_field), Some(paths)) = (mask_field, mask_paths)
        && !paths.is_empty()
        && !msg.has_field(&mask_field)
    {
        update_mask::set_mask(&mut msg, &mask_field, paths)?;
    }
    Ok(msg)
}

/// Builds the request message of type `desc` from the parts of an HTTP request, as
/// [`decode_request`] does, and returns its wire bytes: straight from the JSON with `plan`
/// (the type's [`direct::TypePlan`]) when the direct decoder can, otherwise through a decoded
/// message. Same result, same errors, word for word (the direct decoder's refusals are the
/// scan pass's and prost-reflect's).
///
/// The direct decoder writes the body's bytes, then those of the path variables and query
/// parameters (built as a small message and encoded), which the wire format merges into one
/// message. It leaves to [`decode_request`]: update masks to fill, a path variable also
/// present in the body (its values must be compared), a variable or parameter that sets a
/// oneof member (it may conflict with the body), and whatever the direct decoder refuses.
pub fn encode_request(
    desc: &MessageDescriptor,
    plan: Option<&direct::TypePlan>,
    parts: &HttpRequestParts<'_>,
    opts: &DecodeOptions,
) -> Result<EncodedRequest, TranscodeError> {
    use prost::Message as _;
    if let Some(plan) = plan
        && let Some(bytes) = encode_direct(desc, plan, parts, opts)?
    {
        return Ok(EncodedRequest {
            bytes,
            direct: true,
        });
    }
    decode_request(desc, parts, opts).map(|m| EncodedRequest {
        bytes: m.encode_to_vec(),
        direct: false,
    })
}

/// A request message's wire bytes, from [`encode_request`].
#[derive(Debug)]
pub struct EncodedRequest {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Whether the direct decoder wrote them (rather than a decoded message).
    pub direct: bool,
}

/// The direct half of [`encode_request`]: `Ok(None)` when it leaves the request to
/// [`decode_request`].
fn encode_direct(
    desc: &MessageDescriptor,
    plan: &direct::TypePlan,
    parts: &HttpRequestParts<'_>,
    opts: &DecodeOptions,
) -> Result<Option<Vec<u8>>, TranscodeError> {
    use prost::Message as _;
    if parts.fill_update_mask && update_mask::update_mask_field(desc).is_some() {
        return Ok(None);
    }
    let bound = convert_bindings(parts)?;
    let (watch, in_body) = watch_bindings(parts);
    let rec = Recording {
        all: false,
        watch: &watch,
    };
    let blank = is_blank(parts.body);
    // The direct decoder checks what the scan pass checks, and refuses where the scan would
    // fail; so the scan runs first only to watch the path variables in the body, and
    // otherwise only after a refusal, to name the problem as it always has (its error comes
    // first, as when it ran first).
    let scan_first = !watch.is_empty();
    let check = || match parts.body_target {
        BodyTarget::Field(target) => {
            body::check_field(target.last(), parts.body, opts, &rec, target.as_str())
        }
        _ => body::check_message(desc, parts.body, opts, &rec, ""),
    };
    let (bytes, shown) = match parts.body_target {
        BodyTarget::None if blank => (Ok(Vec::new()), ""),
        // Refused by `decode_request`, which says why.
        BodyTarget::None => return Ok(None),
        BodyTarget::Whole if blank => (Ok(Vec::new()), ""),
        BodyTarget::Whole => (plan.decode(parts.body, opts), ""),
        BodyTarget::Field(target) => (
            plan.decode_into_path(target.fields(), parts.body, opts),
            target.as_str(),
        ),
    };
    let report = if scan_first { Some(check()?) } else { None };
    let mut bytes = match bytes {
        Ok(bytes) => bytes,
        Err(refusal) => {
            if !scan_first {
                check()?;
            }
            match refusal {
                // prost-reflect's error, where prost-reflect would have found it; nothing
                // built.
                direct::Refusal::Invalid(e, path) => {
                    return Err(body::prost_error(&e, &path, 0, shown));
                }
                direct::Refusal::Unsupported(why) => {
                    tracing::debug!(reason = %why, "request body decoded by prost-reflect");
                    return Ok(None);
                }
            }
        }
    };
    // A path variable that the body also sets: the two values must agree.
    for place in &in_body {
        let present = match place {
            InBody::No => false,
            InBody::IsBodyField => !blank,
            InBody::Watch(i) => report
                .as_ref()
                .is_some_and(|r| r.watched.get(*i) == Some(&Some(false))),
        };
        if present {
            return Ok(None);
        }
    }
    if parts.path_bindings.is_empty() && parts.query.is_none() {
        return Ok(Some(bytes));
    }
    // The rest of the message; where it goes wrong, `decode_request` names the error as it
    // always has (some depend on what the body set).
    let mut rest = DynamicMessage::new(desc.clone());
    for ((path, _), value) in parts.path_bindings.iter().zip(bound) {
        if set_at(&mut rest, path.fields(), value, path.as_str()).is_err() {
            return Ok(None);
        }
    }
    if let Some(query) = parts.query
        && query::apply_query(
            &mut rest,
            desc,
            query,
            parts.path_bindings,
            parts.body_target,
            opts,
        )
        .is_err()
    {
        return Ok(None);
    }
    if sets_oneof_member(&rest) || rest.encode(&mut bytes).is_err() {
        return Ok(None);
    }
    Ok(Some(bytes))
}

/// Whether `msg` or a message inside it sets a member of a oneof.
fn sets_oneof_member(msg: &DynamicMessage) -> bool {
    msg.fields().any(|(field, value)| {
        field.containing_oneof().is_some()
            || matches!(value, Value::Message(m) if sets_oneof_member(m))
    })
}

/// The path variables checked and converted to their fields' values (cheap, and errors are
/// clearer first).
fn convert_bindings(parts: &HttpRequestParts<'_>) -> Result<Vec<Value>, TranscodeError> {
    use TranscodeErrorKind as K;
    let mut bound: Vec<Value> = Vec::with_capacity(parts.path_bindings.len());
    for (path, raw) in parts.path_bindings {
        let last = path.last();
        let kind = last.kind();
        if last.is_list() || last.is_map() || !is_text_settable(&kind) {
            return Err(TranscodeError::with_field(
                K::InvalidFieldPath,
                path.as_str(),
                format!(
                    "URL path variable \"{}\" must name a singular scalar field",
                    path.as_str()
                ),
            ));
        }
        let value = parse_text(&kind, raw).map_err(|why| {
            TranscodeError::with_field(
                K::InvalidValue,
                path.as_str(),
                format!(
                    "invalid value \"{raw}\" for field \"{}\": {why}",
                    path.as_str()
                ),
            )
        })?;
        bound.push(value);
    }
    Ok(bound)
}

/// For each path variable: where its presence in the body is reported.
enum InBody {
    /// Not under the body.
    No,
    /// At this index of the watched paths.
    Watch(usize),
    /// The variable is the body field itself.
    IsBodyField,
}

/// The paths (proto names, relative to the body) to watch in the body, and where each path
/// variable's presence will be reported.
fn watch_bindings(parts: &HttpRequestParts<'_>) -> (Vec<String>, Vec<InBody>) {
    let mut watch: Vec<String> = Vec::new();
    let mut in_body: Vec<InBody> = Vec::with_capacity(parts.path_bindings.len());
    let root_len = match parts.body_target {
        BodyTarget::None => None,
        BodyTarget::Whole => Some(0),
        BodyTarget::Field(target) => Some(target.fields().len()),
    };
    for (path, _) in parts.path_bindings {
        let under = match parts.body_target {
            BodyTarget::None => false,
            BodyTarget::Whole => true,
            BodyTarget::Field(target) => path.starts_with(target),
        };
        match root_len {
            Some(n) if under && path.fields().len() == n => in_body.push(InBody::IsBodyField),
            Some(n) if under => {
                watch.push(join_proto_names(&path.fields()[n..]));
                in_body.push(InBody::Watch(watch.len() - 1));
            }
            _ => in_body.push(InBody::No),
        }
    }
    (watch, in_body)
}

/// Decodes one JSON document as a message of type `desc` (used for `POST /pkg.Svc/Method`
/// and for each line of an NDJSON client stream). Same checks as a whole-message body; a
/// blank document is `{}`.
pub fn decode_json(
    desc: &MessageDescriptor,
    json: &[u8],
    opts: &DecodeOptions,
) -> Result<DynamicMessage, TranscodeError> {
    decode_message(desc, json, opts, &Recording::NONE, "").map(|(msg, _)| msg)
}

/// Equality of two field values, with NaN equal to NaN.
fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::F32(x), Value::F32(y)) => x == y || (x.is_nan() && y.is_nan()),
        (Value::F64(x), Value::F64(y)) => x == y || (x.is_nan() && y.is_nan()),
        _ => a == b,
    }
}
