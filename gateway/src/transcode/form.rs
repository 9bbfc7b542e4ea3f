//! Request bodies that are not JSON: a raw body as a `google.api.HttpBody`
//! ([`encode_raw_request`]), and the parts of a `multipart/form-data` body as fields
//! ([`encode_form_request`]). Path variables and query parameters are applied as for a JSON
//! body; the body's bytes become the request message's wire bytes. Pure functions, no I/O:
//! the REST door reads the body and splits the form.
//!
//! How parts map onto the body message (the whole request with `body: "*"`, or the message
//! field `body` names):
//! - A part is named after a field, by its proto or JSON name, dotted for a nested field
//!   (`address.city`). An unknown name is [`TranscodeErrorKind::UnknownField`] naming the part
//!   (skipped with `ignore_unknown_fields`), as an unknown JSON key is.
//! - `bytes` fields take the part's bytes as they are (a file or a text part alike);
//!   `google.api.HttpBody` fields take them with the part's content type.
//! - `string` fields take the part's text (UTF-8); other scalars, enums and the scalar-like
//!   well-known types parse it as a query parameter would be (`42`, `true`,
//!   `PRODUCT_STATUS_ACTIVE`, `2026-01-01T00:00:00Z`); other message fields, maps and
//!   repeated messages take it as JSON.
//! - A repeated scalar or bytes field takes one element per part; a singular field named twice
//!   is an error; a part that sets a field the URL path binds must agree with it.
//! - The file name and content type of a file part (one with a `filename`) filling the bytes
//!   field `photo` go into the string fields `photo_filename` / `photo_content_type` of the
//!   same message, or, without those, `filename` / `content_type` (the first file part wins),
//!   unless a part or the path sets them.

use std::collections::HashSet;

use bytes::Bytes;
use prost::Message as _;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, Value};

use super::body::{Recording, decode_field};
use super::field_path::{join_proto_names, message_at, message_at_mut, set_at, value_at};
use super::scalar::{is_text_settable, is_well_known_type, parse_text};
use super::{BodyTarget, DecodeOptions, FieldPath, HttpRequestParts, decode_request};
use super::{TranscodeError, TranscodeErrorKind as K};

/// The full name of `google.api.HttpBody`.
pub const HTTP_BODY: &str = "google.api.HttpBody";

/// Whether a message type is `google.api.HttpBody` (a raw body and its content type).
pub fn is_http_body(desc: &MessageDescriptor) -> bool {
    desc.full_name() == HTTP_BODY
}

/// Whether a field is a singular `google.api.HttpBody`.
pub fn is_http_body_field(field: &FieldDescriptor) -> bool {
    !field.is_list() && matches!(field.kind(), Kind::Message(m) if is_http_body(&m))
}

/// One part of a `multipart/form-data` body.
#[derive(Clone, Debug, Default)]
pub struct FormPart {
    /// Its `name` (the field it fills).
    pub name: String,
    /// Its `filename`, for a file part.
    pub filename: Option<String>,
    /// Its `Content-Type`, when it has one.
    pub content_type: Option<String>,
    /// Its content.
    pub data: Bytes,
}

/// The message with the path variables and query parameters of `parts` set, and no body.
fn without_body(
    desc: &MessageDescriptor,
    parts: &HttpRequestParts<'_>,
    opts: &DecodeOptions,
) -> Result<DynamicMessage, TranscodeError> {
    let base = HttpRequestParts {
        body: b"",
        fill_update_mask: false,
        ..*parts
    };
    decode_request(desc, &base, opts)
}

/// A `google.api.HttpBody` of type `desc` holding `data` and `content_type`.
fn http_body(desc: &MessageDescriptor, content_type: &str, data: Bytes) -> DynamicMessage {
    let mut msg = DynamicMessage::new(desc.clone());
    if let Some(f) = desc.get_field_by_name("content_type")
        && !content_type.is_empty()
    {
        msg.set_field(&f, Value::String(content_type.to_owned()));
    }
    if let Some(f) = desc.get_field_by_name("data")
        && !data.is_empty()
    {
        msg.set_field(&f, Value::Bytes(data));
    }
    msg
}

/// The request of a method whose body is a `google.api.HttpBody` (the whole request with
/// `body: "*"`, or the field `body` names): the raw body becomes its `data`, the request's
/// `Content-Type` its `content_type`; path variables and query parameters set the other
/// fields. Returns the message's wire bytes.
pub fn encode_raw_request(
    desc: &MessageDescriptor,
    parts: &HttpRequestParts<'_>,
    content_type: &str,
    data: Bytes,
    opts: &DecodeOptions,
) -> Result<Vec<u8>, TranscodeError> {
    let mut msg = without_body(desc, parts, opts)?;
    match parts.body_target {
        BodyTarget::Whole if is_http_body(desc) => {
            let body = http_body(desc, content_type, data);
            for (field, value) in body.fields() {
                msg.set_field(&field, value.clone());
            }
        }
        BodyTarget::Field(target) if is_http_body_field(target.last()) => {
            let Kind::Message(hb) = target.last().kind() else {
                return Err(not_raw());
            };
            let body = http_body(&hb, content_type, data);
            set_at(
                &mut msg,
                target.fields(),
                Value::Message(body),
                target.as_str(),
            )?;
        }
        _ => return Err(not_raw()),
    }
    Ok(msg.encode_to_vec())
}

fn not_raw() -> TranscodeError {
    TranscodeError::new(
        K::InvalidValue,
        "this method's request body is not a google.api.HttpBody",
    )
}

/// The request built from the parts of a `multipart/form-data` body (see the module docs for
/// the mapping), with path variables and query parameters as for a JSON body. Returns the
/// message's wire bytes.
pub fn encode_form_request(
    desc: &MessageDescriptor,
    parts: &HttpRequestParts<'_>,
    form: &[FormPart],
    opts: &DecodeOptions,
) -> Result<Vec<u8>, TranscodeError> {
    let mut msg = without_body(desc, parts, opts)?;
    let (root_desc, prefix): (MessageDescriptor, &[FieldDescriptor]) = match parts.body_target {
        BodyTarget::None => {
            return Err(TranscodeError::new(
                K::InvalidValue,
                "this method takes no request body",
            ));
        }
        BodyTarget::Whole => (desc.clone(), &[]),
        BodyTarget::Field(target) => match target.last().kind() {
            Kind::Message(m)
                if !target.last().is_list()
                    && !target.last().is_map()
                    && !is_well_known_type(m.full_name())
                    && !is_http_body(&m) =>
            {
                (m, target.fields())
            }
            _ => {
                return Err(TranscodeError::with_field(
                    K::InvalidValue,
                    target.as_str(),
                    format!(
                        "this method's request body is the field \"{}\", which a multipart form cannot fill: send it as JSON",
                        target.as_str()
                    ),
                ));
            }
        },
    };
    let mut root = message_at(&msg, prefix).into_owned();
    // Fields the URL path binds, relative to the body message.
    let bound: Vec<String> = parts
        .path_bindings
        .iter()
        .filter(|(p, _)| p.fields().len() > prefix.len() && p.fields().starts_with(prefix))
        .map(|(p, _)| join_proto_names(&p.fields()[prefix.len()..]))
        .collect();
    let mut seen: HashSet<String> = HashSet::new();
    let mut files: Vec<(FieldPath, &FormPart)> = Vec::new();
    for part in form {
        let name = part.name.as_str();
        let path = match FieldPath::resolve(&root_desc, name) {
            Ok(path) => path,
            Err(_) if opts.ignore_unknown_fields => continue,
            Err(e) => {
                return Err(TranscodeError::with_field(
                    K::UnknownField,
                    name,
                    format!("unknown multipart part \"{name}\": {}", e.message),
                ));
            }
        };
        let proto = path.proto_path();
        let last = path.last();
        let Some(value) = part_value(last, part, opts)? else {
            continue;
        };
        if bound.contains(&proto) {
            if !super::values_equal(&value_at(&root, path.fields()), &value) {
                return Err(TranscodeError::with_field(
                    K::Conflict,
                    name,
                    format!(
                        "multipart part \"{name}\" has a different value from the one the URL path gives field \"{proto}\""
                    ),
                ));
            }
            continue;
        }
        let element = last.is_list() && !matches!(value, Value::List(_));
        if element {
            let fields = path.fields();
            let parent = message_at_mut(&mut root, &fields[..fields.len() - 1], name)?;
            if let Some(list) = parent.get_field_mut(last).as_list_mut() {
                list.push(value);
            }
        } else {
            if !seen.insert(proto) {
                return Err(TranscodeError::with_field(
                    K::DuplicateKey,
                    name,
                    format!(
                        "multipart part \"{name}\" is given more than once but its field is not repeated"
                    ),
                ));
            }
            set_at(&mut root, path.fields(), value, name)?;
        }
        if part.filename.is_some() && last.kind() == Kind::Bytes {
            files.push((path, part));
        }
    }
    for (path, part) in files {
        capture(&mut root, &path, part, &bound, &mut seen)?;
    }
    match parts.body_target {
        BodyTarget::Field(target) => {
            set_at(
                &mut msg,
                target.fields(),
                Value::Message(root),
                target.as_str(),
            )?;
        }
        _ => msg = root,
    }
    Ok(msg.encode_to_vec())
}

/// The value a part gives its field: `None` for a blank JSON part (the field stays unset).
fn part_value(
    field: &FieldDescriptor,
    part: &FormPart,
    opts: &DecodeOptions,
) -> Result<Option<Value>, TranscodeError> {
    let name = part.name.as_str();
    let kind = field.kind();
    if let Kind::Message(m) = &kind
        && is_http_body(m)
    {
        let ct = part.content_type.as_deref().unwrap_or("");
        return Ok(Some(Value::Message(http_body(m, ct, part.data.clone()))));
    }
    if field.is_map() || !is_text_settable(&kind) {
        let (value, _) = decode_field(field, &part.data, opts, &Recording::NONE, name)?;
        return Ok(value);
    }
    if kind == Kind::Bytes {
        return Ok(Some(Value::Bytes(part.data.clone())));
    }
    let text = std::str::from_utf8(&part.data).map_err(|_| {
        TranscodeError::with_field(
            K::InvalidValue,
            name,
            format!("multipart part \"{name}\" is not UTF-8 text"),
        )
    })?;
    parse_text(&kind, text).map(Some).map_err(|why| {
        TranscodeError::with_field(
            K::InvalidValue,
            name,
            format!("invalid value \"{text}\" for multipart part \"{name}\": {why}"),
        )
    })
}

/// Puts a file part's file name and content type into their sibling string fields (see the
/// module docs).
fn capture(
    root: &mut DynamicMessage,
    path: &FieldPath,
    part: &FormPart,
    bound: &[String],
    seen: &mut HashSet<String>,
) -> Result<(), TranscodeError> {
    let fields = path.fields();
    let last = path.last();
    let parents = &fields[..fields.len() - 1];
    let parent_desc = last.parent_message().clone();
    for (suffix, value) in [
        ("filename", part.filename.as_deref()),
        ("content_type", part.content_type.as_deref()),
    ] {
        let Some(value) = value else { continue };
        for candidate in [format!("{}_{suffix}", last.name()), suffix.to_owned()] {
            let Some(field) = parent_desc.get_field_by_name(&candidate) else {
                continue;
            };
            if field.kind() != Kind::String || field.is_list() {
                continue;
            }
            let mut full = join_proto_names(parents);
            if !full.is_empty() {
                full.push('.');
            }
            full.push_str(&candidate);
            if !bound.contains(&full) && seen.insert(full.clone()) {
                let target = message_at_mut(root, parents, &full)?;
                target.set_field(&field, Value::String(value.to_owned()));
            }
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::OnceLock;

    use prost_reflect::DescriptorPool;

    use super::*;

    fn pool() -> &'static DescriptorPool {
        static POOL: OnceLock<DescriptorPool> = OnceLock::new();
        POOL.get_or_init(|| DescriptorPool::decode(portico_demo::DESCRIPTOR_SET).unwrap())
    }

    fn msg(name: &str) -> MessageDescriptor {
        pool().get_message_by_name(name).unwrap()
    }

    fn part(name: &str, data: &[u8]) -> FormPart {
        FormPart {
            name: name.into(),
            data: Bytes::copy_from_slice(data),
            ..FormPart::default()
        }
    }

    fn file(name: &str, filename: &str, ct: &str, data: &[u8]) -> FormPart {
        FormPart {
            filename: Some(filename.into()),
            content_type: Some(ct.into()),
            ..part(name, data)
        }
    }

    fn form(
        desc: &str,
        body: &BodyTarget,
        bindings: &[(&FieldPath, &str)],
        query: Option<&str>,
        parts: &[FormPart],
    ) -> Result<DynamicMessage, TranscodeError> {
        let desc = msg(desc);
        let http = HttpRequestParts {
            body: b"",
            body_target: body,
            path_bindings: bindings,
            query,
            fill_update_mask: false,
        };
        let bytes = encode_form_request(&desc, &http, parts, &DecodeOptions::default())?;
        Ok(DynamicMessage::decode(desc, bytes.as_slice()).unwrap())
    }

    fn get<'a>(m: &'a DynamicMessage, field: &str) -> std::borrow::Cow<'a, Value> {
        m.get_field_by_name(field).unwrap()
    }

    #[test]
    fn http_body_is_recognised_by_name() {
        assert!(is_http_body(&msg("google.api.HttpBody")));
        assert!(!is_http_body(&msg("demo.v1.ProductImage")));
        let import = msg("demo.v1.ImportCatalogCsvRequest");
        assert!(is_http_body_field(
            &import.get_field_by_name("csv").unwrap()
        ));
        assert!(!is_http_body_field(
            &import.get_field_by_name("dry_run").unwrap()
        ));
    }

    #[test]
    fn a_file_fills_bytes_and_its_name_and_type_are_captured() {
        let desc = msg("demo.v1.UploadProductPhotoRequest");
        let id = FieldPath::resolve(&desc, "product_id").unwrap();
        let png = [0x89, b'P', b'N', b'G', 0xFF, 0x00, 0xFE];
        let m = form(
            "demo.v1.UploadProductPhotoRequest",
            &BodyTarget::Whole,
            &[(&id, "p-1")],
            None,
            &[file("photo", "cup.png", "image/png", &png)],
        )
        .unwrap();
        assert_eq!(get(&m, "product_id").as_str(), Some("p-1"));
        assert_eq!(get(&m, "photo").as_bytes().unwrap().as_ref(), &png);
        assert_eq!(get(&m, "filename").as_str(), Some("cup.png"));
        assert_eq!(get(&m, "content_type").as_str(), Some("image/png"));
        // A text part wins over the captured value, whatever the order; JSON names work.
        let m = form(
            "demo.v1.UploadProductPhotoRequest",
            &BodyTarget::Whole,
            &[],
            None,
            &[
                file("photo", "cup.png", "image/png", &png),
                part("contentType", b"image/x-custom"),
            ],
        )
        .unwrap();
        assert_eq!(get(&m, "content_type").as_str(), Some("image/x-custom"));
        assert_eq!(get(&m, "filename").as_str(), Some("cup.png"));
    }

    #[test]
    fn text_parts_parse_like_query_values() {
        let m = form(
            "demo.v1.SearchProductsRequest",
            &BodyTarget::Whole,
            &[],
            None,
            &[
                part("query", "tasse à café".as_bytes()),
                part("page_size", b"7"),
                part("maxPriceUnits", b"12"),
            ],
        )
        .unwrap();
        assert_eq!(get(&m, "query").as_str(), Some("tasse à café"));
        assert_eq!(get(&m, "page_size").as_i32(), Some(7));
        assert!(m.has_field_by_name("max_price_units"));
        let repeated = form(
            "demo.v1.BatchGetProductsRequest",
            &BodyTarget::Whole,
            &[],
            None,
            &[part("ids", b"p-1"), part("ids", b"p-2")],
        )
        .unwrap();
        assert_eq!(get(&repeated, "ids").as_list().unwrap().len(), 2);
        // A message field and a map take JSON.
        let product = form(
            "demo.v1.Product",
            &BodyTarget::Whole,
            &[],
            None,
            &[
                part("price", br#"{"currencyCode":"EUR","units":"3"}"#),
                part("attributes", br#"{"color":"red"}"#),
                part("status", b"PRODUCT_STATUS_ACTIVE"),
            ],
        )
        .unwrap();
        assert!(product.has_field_by_name("price"));
        assert_eq!(get(&product, "status").as_enum_number(), Some(1));
    }

    #[test]
    fn bad_parts_are_named() {
        let err = |parts: &[FormPart]| {
            form(
                "demo.v1.SearchProductsRequest",
                &BodyTarget::Whole,
                &[],
                None,
                parts,
            )
            .unwrap_err()
        };
        let unknown = err(&[part("nope", b"x")]);
        assert_eq!(unknown.kind, K::UnknownField);
        assert_eq!(unknown.field.as_deref(), Some("nope"));
        assert!(unknown.message.contains("unknown multipart part \"nope\""));
        let twice = err(&[part("query", b"a"), part("query", b"b")]);
        assert_eq!(twice.kind, K::DuplicateKey);
        let number = err(&[part("page_size", b"many")]);
        assert_eq!(
            (number.kind, number.field.as_deref()),
            (K::InvalidValue, Some("page_size"))
        );
        let not_text = err(&[part("query", &[0xFF, 0xFE])]);
        assert!(not_text.message.contains("not UTF-8"), "{not_text}");
        // A part must agree with the path.
        let desc = msg("demo.v1.UploadProductPhotoRequest");
        let id = FieldPath::resolve(&desc, "product_id").unwrap();
        let conflict = form(
            "demo.v1.UploadProductPhotoRequest",
            &BodyTarget::Whole,
            &[(&id, "p-1")],
            None,
            &[part("product_id", b"p-2")],
        )
        .unwrap_err();
        assert_eq!(conflict.kind, K::Conflict);
    }

    #[test]
    fn a_raw_body_fills_the_http_body_field_and_the_query_the_rest() {
        let desc = msg("demo.v1.ImportCatalogCsvRequest");
        let target = BodyTarget::Field(FieldPath::resolve(&desc, "csv").unwrap());
        let http = HttpRequestParts {
            body: b"",
            body_target: &target,
            path_bindings: &[],
            query: Some("dryRun=true"),
            fill_update_mask: false,
        };
        let bytes = encode_raw_request(
            &desc,
            &http,
            "text/csv",
            Bytes::from_static(b"id,price_units\n\xFF"),
            &DecodeOptions::default(),
        )
        .unwrap();
        let m = DynamicMessage::decode(desc, bytes.as_slice()).unwrap();
        assert_eq!(get(&m, "dry_run").as_bool(), Some(true));
        let csv = get(&m, "csv");
        let csv = csv.as_message().unwrap();
        assert_eq!(
            csv.get_field_by_name("data")
                .unwrap()
                .as_bytes()
                .unwrap()
                .as_ref(),
            b"id,price_units\n\xFF"
        );
        assert_eq!(
            csv.get_field_by_name("content_type").unwrap().as_str(),
            Some("text/csv")
        );
        // The whole request an HttpBody.
        let hb = msg(HTTP_BODY);
        let whole = HttpRequestParts {
            body_target: &BodyTarget::Whole,
            query: None,
            ..http
        };
        let bytes = encode_raw_request(
            &hb,
            &whole,
            "application/pdf",
            Bytes::from_static(b"%PDF"),
            &DecodeOptions::default(),
        )
        .unwrap();
        let m = DynamicMessage::decode(hb, bytes.as_slice()).unwrap();
        assert_eq!(get(&m, "content_type").as_str(), Some("application/pdf"));
        assert_eq!(get(&m, "data").as_bytes().unwrap().as_ref(), b"%PDF");
    }
}
