//! Tests: messages -> JSON (options, response_body of every shape).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use prost_reflect::DynamicMessage;

use super::test_support::{decode, fp};
use super::{EncodeOptions, FieldPath, TranscodeErrorKind, encode_response};

fn enc(m: &DynamicMessage, body: Option<&FieldPath>, opts: &EncodeOptions) -> String {
    String::from_utf8(encode_response(m, body, opts).unwrap()).unwrap()
}

fn sample() -> DynamicMessage {
    decode(
        "ListUsersResponse",
        r#"{"users": [{"id": 1, "displayName": "a", "role": "ROLE_ADMIN"}, {"id": "2"}],
            "nextPageToken": "t", "counts": {"x": 3}, "asOf": "2024-01-31T12:00:00Z",
            "first": {"display_name": "f", "address": {"zip_code": "z"}}}"#,
    )
    .unwrap()
}

#[test]
fn whole_message_canonical_and_options() {
    let m = sample();
    let d = EncodeOptions::default();
    let out = enc(&m, None, &d);
    assert!(out.starts_with(r#"{"users":[{"id":"1","displayName":"a","role":"ROLE_ADMIN"},{"id":"2"}],"nextPageToken":"t""#), "{out}");
    let proto = EncodeOptions {
        use_proto_field_names: true,
        emit_unpopulated: false,
    };
    let out = enc(&m, None, &proto);
    assert!(
        out.contains(r#""next_page_token":"t""#) && out.contains(r#""display_name":"a""#),
        "{out}"
    );
    assert!(out.contains(r#""address":{"zip_code":"z"}"#), "{out}");
    let all = EncodeOptions {
        use_proto_field_names: false,
        emit_unpopulated: true,
    };
    let empty = decode("ListUsersResponse", "{}").unwrap();
    assert_eq!(
        enc(&empty, None, &all),
        r#"{"users":[],"nextPageToken":"","total":0,"counts":{},"role":"ROLE_UNSPECIFIED"}"#
    );
    assert_eq!(enc(&empty, None, &d), "{}");
    // Non-finite floats and 64-bit integers.
    let e = decode(
        "Everything",
        r#"{"dbl": "Infinity", "flt": "NaN", "u64": "1", "opt_i64": 0}"#,
    )
    .unwrap();
    assert_eq!(
        enc(&e, None, &d),
        r#"{"u64":"1","dbl":"Infinity","flt":"NaN","optI64":"0"}"#
    );
}

#[test]
fn response_body_of_every_shape() {
    let m = sample();
    let d = EncodeOptions::default();
    let proto = EncodeOptions {
        use_proto_field_names: true,
        emit_unpopulated: false,
    };
    let p = |s: &str| fp("ListUsersResponse", s);
    // Repeated messages -> array.
    assert_eq!(
        enc(&m, Some(&p("users")), &d),
        r#"[{"id":"1","displayName":"a","role":"ROLE_ADMIN"},{"id":"2"}]"#
    );
    assert_eq!(
        enc(&m, Some(&p("users")), &proto),
        r#"[{"id":"1","display_name":"a","role":"ROLE_ADMIN"},{"id":"2"}]"#
    );
    // Message, nested message, scalar, map, WKT.
    assert_eq!(
        enc(&m, Some(&p("first")), &d),
        r#"{"displayName":"f","address":{"zipCode":"z"}}"#
    );
    assert_eq!(enc(&m, Some(&p("first.address")), &d), r#"{"zipCode":"z"}"#);
    assert_eq!(enc(&m, Some(&p("first.address.zip_code")), &d), r#""z""#);
    assert_eq!(enc(&m, Some(&p("nextPageToken")), &d), r#""t""#);
    assert_eq!(enc(&m, Some(&p("counts")), &d), r#"{"x":"3"}"#);
    assert_eq!(enc(&m, Some(&p("as_of")), &d), r#""2024-01-31T12:00:00Z""#);
    // Fields at their default value still produce a value.
    assert_eq!(enc(&m, Some(&p("total")), &d), "0");
    assert_eq!(enc(&m, Some(&p("role")), &d), r#""ROLE_UNSPECIFIED""#);
    let empty = decode("ListUsersResponse", "{}").unwrap();
    assert_eq!(enc(&empty, Some(&p("users")), &d), "[]");
    assert_eq!(enc(&empty, Some(&p("counts")), &d), "{}");
    assert_eq!(enc(&empty, Some(&p("first")), &d), "{}");
    assert_eq!(enc(&empty, Some(&p("first.display_name")), &d), r#""""#);
    assert_eq!(enc(&empty, Some(&p("as_of")), &d), "null");
    let all = EncodeOptions {
        use_proto_field_names: false,
        emit_unpopulated: true,
    };
    assert!(enc(&empty, Some(&p("first")), &all).starts_with(r#"{"id":"0","displayName":"""#));
    // Optional scalar unset -> null.
    let e = decode("Everything", "{}").unwrap();
    assert_eq!(enc(&e, Some(&fp("Everything", "maybe")), &d), "null");
    let e = decode(
        "Everything",
        r#"{"maybe": 0, "data": "AQI=", "ts": "1970-01-01T00:00:00Z"}"#,
    )
    .unwrap();
    assert_eq!(enc(&e, Some(&fp("Everything", "maybe")), &d), "0");
    assert_eq!(enc(&e, Some(&fp("Everything", "data")), &d), r#""AQI=""#);
    assert_eq!(
        enc(&e, Some(&fp("Everything", "ts")), &d),
        r#""1970-01-01T00:00:00Z""#
    );
}

#[test]
fn encode_errors_are_reported_not_panicked() {
    // An Any whose type is not in the pool cannot be written as JSON.
    let desc = super::test_support::msg("Everything");
    let extra = desc.get_field_by_name("extra").unwrap();
    let any_desc = extra.kind().as_message().unwrap().clone();
    let mut any = DynamicMessage::new(any_desc.clone());
    any.set_field_by_name(
        "type_url",
        prost_reflect::Value::String("type.googleapis.com/no.Such".into()),
    );
    let mut m = DynamicMessage::new(desc);
    m.set_field(&extra, prost_reflect::Value::Message(any));
    let e = encode_response(&m, None, &EncodeOptions::default()).unwrap_err();
    assert_eq!(e.kind, TranscodeErrorKind::Encode);
}
