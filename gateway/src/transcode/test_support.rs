//! Test helpers: the fixture descriptor pool and shorthand constructors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};

use super::{
    BodyTarget, DecodeOptions, FieldPath, HttpRequestParts, TranscodeError, TranscodeErrorKind,
    decode_request,
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

/// Decodes `body` as a whole `name` message with default options.
pub(crate) fn decode(name: &str, body: &str) -> Result<DynamicMessage, TranscodeError> {
    super::decode_json(&msg(name), body.as_bytes(), &DecodeOptions::default())
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
    decode_request(&msg(name), &parts, opts)
}
