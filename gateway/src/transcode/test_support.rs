//! Test helpers: the fixture descriptor pool and shorthand constructors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, OnceLock};

use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};

use super::direct::{Plans, TypePlan};
use super::{
    BodyTarget, DecodeOptions, FieldPath, HttpRequestParts, TranscodeError, TranscodeErrorKind,
    decode_request, encode_request,
};

/// The pool compiled from `tests/fixtures/transcode/transcode_test.proto`.
pub(crate) fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/transcode");
        let mut compiler = protox::Compiler::new([dir]).expect("compiler");
        compiler.include_imports(true);
        compiler
            .open_file("transcode_test.proto")
            .expect("fixture compiles");
        compiler.descriptor_pool()
    })
}

/// A message type of the fixture, by short name.
pub(crate) fn msg(name: &str) -> MessageDescriptor {
    pool()
        .get_message_by_name(&format!("transcode.test.v1.{name}"))
        .unwrap_or_else(|| panic!("no message {name}"))
}

/// A resolved field path on a fixture message.
pub(crate) fn fp(message: &str, path: &str) -> FieldPath {
    FieldPath::resolve(&msg(message), path).unwrap()
}

/// The message as compact JSON (default encode options).
pub(crate) fn json(m: &DynamicMessage) -> String {
    let bytes = super::encode_response(m, None, &Default::default()).unwrap();
    String::from_utf8(bytes).unwrap()
}

/// Whether a map field is reachable from `desc`.
pub(crate) fn reaches_a_map(desc: &MessageDescriptor, seen: &mut Vec<String>) -> bool {
    if seen.iter().any(|s| s == desc.full_name()) {
        return false;
    }
    seen.push(desc.full_name().to_string());
    desc.fields().any(|f| {
        f.is_map() || matches!(f.kind(), prost_reflect::Kind::Message(m) if reaches_a_map(&m, seen))
    })
}

/// Plans of every message type of the fixture, for the direct decoder.
pub(crate) fn plans() -> &'static Arc<Plans> {
    static PLANS: OnceLock<Arc<Plans>> = OnceLock::new();
    PLANS.get_or_init(|| Plans::for_types(pool().all_messages()))
}

/// Decodes `body` as a whole `name` message with default options (and checks that the
/// direct decoder agrees).
pub(crate) fn decode(name: &str, body: &str) -> Result<DynamicMessage, TranscodeError> {
    let got = super::decode_json(&msg(name), body.as_bytes(), &DecodeOptions::default());
    let parts = HttpRequestParts {
        body: body.as_bytes(),
        body_target: &BodyTarget::Whole,
        path_bindings: &[],
        query: None,
        fill_update_mask: false,
    };
    agree(&msg(name), &got, &parts, &DecodeOptions::default());
    got
}

/// Asserts that [`encode_request`] with the direct decoder gives what `reference` (the
/// `DynamicMessage` path's result for the same parts) says: the same message or the same
/// error.
pub(crate) fn agree(
    desc: &MessageDescriptor,
    reference: &Result<DynamicMessage, TranscodeError>,
    parts: &HttpRequestParts<'_>,
    opts: &DecodeOptions,
) {
    let plan = plans().type_plan(desc).expect("a plan");
    agree_with(&plan, desc, reference, parts, opts);
}

/// [`agree`] with the plan given (for types outside the fixture).
pub(crate) fn agree_with(
    plan: &TypePlan,
    desc: &MessageDescriptor,
    reference: &Result<DynamicMessage, TranscodeError>,
    parts: &HttpRequestParts<'_>,
    opts: &DecodeOptions,
) {
    let direct = encode_request(desc, Some(plan), parts, opts).map(|e| e.bytes);
    let body = String::from_utf8_lossy(parts.body);
    match (reference, direct) {
        (Ok(want), Ok(bytes)) => {
            let got = DynamicMessage::decode(desc.clone(), bytes.as_slice())
                .unwrap_or_else(|e| panic!("direct bytes for {body} do not decode: {e}"));
            // Compared as JSON values: NaN equals NaN, map order does not count.
            let as_value = |m: &DynamicMessage| -> serde_json::Value {
                serde_json::from_str(&json(m)).unwrap()
            };
            assert_eq!(
                as_value(&got),
                as_value(want),
                "direct decoder differs on {body}"
            );
            // The body alone: the very bytes prost-reflect writes (maps aside, which it
            // writes in hash order).
            if parts.path_bindings.is_empty()
                && parts.query.is_none()
                && !reaches_a_map(desc, &mut Vec::new())
            {
                assert_eq!(bytes, want.encode_to_vec(), "other bytes for {body}");
            }
        }
        (Err(want), Err(got)) => {
            assert_eq!(
                (&got.kind, &got.field, &got.message),
                (&want.kind, &want.field, &want.message),
                "direct decoder errs differently on {body}"
            );
        }
        (want, got) => panic!("direct decoder on {body}: {got:?}, reference {want:?}"),
    }
}

/// Asserts the error kind and returns the error.
pub(crate) fn expect_err(
    r: Result<DynamicMessage, TranscodeError>,
    kind: TranscodeErrorKind,
) -> TranscodeError {
    match r {
        Ok(m) => panic!("expected {kind:?}, got Ok({})", json(&m)),
        Err(e) => {
            assert_eq!(e.kind, kind, "wrong kind: {e:?}");
            e
        }
    }
}

/// Decodes a request for message `name` with default options.
pub(crate) fn req(
    name: &str,
    body: &str,
    target: &BodyTarget,
    bindings: &[(&FieldPath, &str)],
    query: Option<&str>,
    patch: bool,
) -> Result<DynamicMessage, TranscodeError> {
    req_with(
        name,
        body,
        target,
        bindings,
        query,
        patch,
        &DecodeOptions::default(),
    )
}

/// Decodes a request for message `name` with `opts`.
pub(crate) fn req_with(
    name: &str,
    body: &str,
    target: &BodyTarget,
    bindings: &[(&FieldPath, &str)],
    query: Option<&str>,
    patch: bool,
    opts: &DecodeOptions,
) -> Result<DynamicMessage, TranscodeError> {
    let parts = HttpRequestParts {
        body: body.as_bytes(),
        body_target: target,
        path_bindings: bindings,
        query,
        fill_update_mask: patch,
    };
    let got = decode_request(&msg(name), &parts, opts);
    agree(&msg(name), &got, &parts, opts);
    got
}
