//! Tests: JSON documents -> messages (mapping, duplicate keys, depth, errors, nasty input).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::TranscodeErrorKind as K;
use super::test_support::{decode, expect_err, json, msg};
use super::{DecodeOptions, decode_json};

#[test]
fn canonical_mapping_of_all_scalar_kinds() {
    let m = decode(
        "Everything",
        r#"{"i32": 1e2, "i64": "-9007199254740993", "u32": 7, "u64": 18446744073709551615,
            "s32": -3, "s64": "-4", "fx32": 5, "fx64": "6", "sfx32": -7, "sfx64": -8,
            "flag": true, "text": "héllo", "data": "AQID", "dbl": "NaN", "flt": 1.5,
            "role": "ROLE_ADMIN", "ids": [1, "2"], "roles": ["ROLE_USER", 2]}"#,
    )
    .unwrap();
    assert_eq!(
        json(&m),
        r#"{"i32":100,"i64":"-9007199254740993","u32":7,"u64":"18446744073709551615","s32":-3,"s64":"-4","fx32":5,"fx64":"6","sfx32":-7,"sfx64":"-8","flag":true,"text":"héllo","data":"AQID","dbl":"NaN","flt":1.5,"role":"ROLE_ADMIN","ids":["1","2"],"roles":["ROLE_USER","ROLE_ADMIN"]}"#
    );
}

#[test]
fn proto_and_json_names_and_enum_numbers_accepted() {
    let a = decode("User", r#"{"display_name":"x","nickName":"n","role":1}"#).unwrap();
    let b = decode(
        "User",
        r#"{"displayName":"x","nick":"n","role":"ROLE_USER"}"#,
    )
    .unwrap();
    assert_eq!(a, b);
    assert_eq!(
        json(&a),
        r#"{"displayName":"x","role":"ROLE_USER","nickName":"n"}"#
    );
}

#[test]
fn bytes_accept_standard_and_url_safe_base64_with_or_without_padding() {
    for b64 in ["+/+/", "-_-_", "+/8", "-_8", "+/8="] {
        let m = decode("Everything", &format!(r#"{{"data":"{b64}"}}"#)).unwrap();
        assert!(
            json(&m).starts_with(r#"{"data":"+/"#),
            "{b64}: {}",
            json(&m)
        );
    }
    let e = expect_err(decode("Everything", r#"{"data":"!!"}"#), K::InvalidValue);
    assert_eq!(e.field.as_deref(), Some("data"));
}

#[test]
fn nested_repeated_map_oneof_and_well_known_types() {
    let body = r#"{
        "addresses": [{"city": "a"}, {"city": "b", "geo": {"lat": 1.5}}],
        "counters": {"x": "5", "y": 6}, "labels": {"k": "v"},
        "place": {"zipCode": "123"},
        "ts": "2024-01-31T12:00:00.5Z", "dur": "1.5s",
        "optText": "", "optI64": "12", "optFlag": false,
        "mask": "displayName,address.city",
        "meta": {"a": [1, "x", null, {"b": true}]},
        "extra": {"@type": "type.googleapis.com/transcode.test.v1.Geo", "lat": 2},
        "nothing": {}, "maybe": 0, "dyn": "s"
    }"#;
    let m = decode("Everything", body).unwrap();
    let out = json(&m);
    for part in [
        r#""addresses":[{"city":"a"},{"city":"b","geo":{"lat":1.5}}]"#,
        r#""place":{"zipCode":"123"}"#,
        r#""ts":"2024-01-31T12:00:00.500Z""#,
        r#""dur":"1.500s""#,
        r#""optText":"""#,
        r#""optI64":"12""#,
        r#""optFlag":false"#,
        r#""mask":"displayName,address.city""#,
        r#""meta":{"a":[1.0,"x",null,{"b":true}]}"#,
        r#""extra":{"@type":"type.googleapis.com/transcode.test.v1.Geo","lat":2.0}"#,
        r#""nothing":{}"#,
        r#""maybe":0"#,
        r#""dyn":"s""#,
    ] {
        assert!(out.contains(part), "{part} missing in {out}");
    }
    assert!(
        out.contains(r#""x":"5""#) && out.contains(r#""y":"6""#),
        "{out}"
    );
    // Two members of one oneof.
    expect_err(
        decode("Everything", r#"{"name":"a","number":1}"#),
        K::InvalidValue,
    );
}

#[test]
fn malformed_json_reports_line_and_column() {
    let e = expect_err(
        decode("User", "{\n  \"id\": 1,\n  oops\n}"),
        K::MalformedJson,
    );
    assert!(e.message.contains("line 3 column"), "{}", e.message);
    let e = expect_err(decode("User", r#"{"id": 1} {"id": 2}"#), K::MalformedJson);
    assert!(e.message.contains("trailing"), "{}", e.message);
    expect_err(decode("User", r#"{"id": 1"#), K::MalformedJson);
}

#[test]
fn body_must_be_an_object_for_a_message() {
    for body in ["[]", "\"x\"", "1", "null", "true"] {
        let e = expect_err(decode("User", body), K::InvalidValue);
        assert!(e.message.contains("must be a JSON object"), "{}", e.message);
    }
    let e = expect_err(decode("User", r#"{"address": "x"}"#), K::InvalidValue);
    assert_eq!(e.field.as_deref(), Some("address"));
    assert!(
        e.message.contains("expected a JSON object"),
        "{}",
        e.message
    );
}

#[test]
fn blank_document_is_empty_message() {
    assert_eq!(json(&decode("User", "").unwrap()), "{}");
    assert_eq!(json(&decode("User", " \n\t").unwrap()), "{}");
}

#[test]
fn unknown_field_named_with_its_json_path() {
    let e = expect_err(
        decode("User", r#"{"address": {"cty": "x"}}"#),
        K::UnknownField,
    );
    assert_eq!(e.field.as_deref(), Some("address.cty"));
    let e = expect_err(
        decode("User", r#"{"previous_addresses": [{}, {"zip": 1}]}"#),
        K::UnknownField,
    );
    assert_eq!(e.field.as_deref(), Some("previous_addresses[1].zip"));
    let opts = DecodeOptions {
        ignore_unknown_fields: true,
        ..Default::default()
    };
    let m = decode_json(
        &msg("User"),
        br#"{"address": {"cty": {"deep": [1]}, "city": "c"}, "x": 1}"#,
        &opts,
    )
    .unwrap();
    assert_eq!(json(&m), r#"{"address":{"city":"c"}}"#);
}

#[test]
fn wrong_type_names_the_field_path() {
    let e = expect_err(
        decode("User", r#"{"address": {"geo": {"lat": true}}}"#),
        K::InvalidValue,
    );
    assert_eq!(e.field.as_deref(), Some("address.geo.lat"));
    let e = expect_err(decode("User", r#"{"display_name": 5}"#), K::InvalidValue);
    assert_eq!(e.field.as_deref(), Some("display_name"));
    let e = expect_err(
        decode("Everything", r#"{"ids": [1, "x"]}"#),
        K::InvalidValue,
    );
    assert_eq!(e.field.as_deref(), Some("ids[1]"));
    let e = expect_err(
        decode("Everything", r#"{"i32": 3000000000}"#),
        K::InvalidValue,
    );
    assert_eq!(e.field.as_deref(), Some("i32"));
    let e = expect_err(decode("Everything", r#"{"role": "NOPE"}"#), K::InvalidValue);
    assert_eq!(e.field.as_deref(), Some("role"));
    assert!(!e.message.contains("line "), "{}", e.message);
}

#[test]
fn duplicate_keys_rejected_at_every_level() {
    let cases = [
        (r#"{"id": 1, "id": 2}"#, "id"),
        (
            r#"{"displayName": "a", "display_name": "b"}"#,
            "display_name",
        ),
        (r#"{"nick": "a", "nickName": "b"}"#, "nickName"),
        (r#"{"address": {"city": "a", "city": "a"}}"#, "address.city"),
        (r#"{"labels": {"k": "a", "k": "b"}}"#, "labels.k"),
        (r#"{"metadata": {"x": {"y": 1, "y": 2}}}"#, "metadata.x.y"),
        (
            r#"{"previous_addresses": [{"geo": {"lat": 1, "lat": 1}}]}"#,
            "previous_addresses[0].geo.lat",
        ),
        (r#"{"metadata": {"a\u0062": 1, "ab": 2}}"#, "metadata.ab"),
    ];
    for (body, field) in cases {
        let e = expect_err(decode("User", body), K::DuplicateKey);
        assert_eq!(e.field.as_deref(), Some(field), "{body}");
    }
    let e = expect_err(
        decode("User", r#"{"displayName": "a", "display_name": "b"}"#),
        K::DuplicateKey,
    );
    assert!(e.message.contains("displayName"), "{}", e.message);
    // Unknown keys are deduplicated too when ignored.
    let opts = DecodeOptions {
        ignore_unknown_fields: true,
        ..Default::default()
    };
    let r = decode_json(&msg("User"), br#"{"zz": 1, "zz": 2}"#, &opts);
    expect_err(r, K::DuplicateKey);
    // Many distinct keys (hash map path) are fine, a late duplicate is caught.
    let mut big: Vec<String> = (0..100).map(|i| format!("\"k{i}\": {i}")).collect();
    let ok = format!(r#"{{"metadata": {{{}}}}}"#, big.join(","));
    decode("User", &ok).unwrap();
    big.push("\"k7\": 0".to_owned());
    let dup = format!(r#"{{"metadata": {{{}}}}}"#, big.join(","));
    let e = expect_err(decode("User", &dup), K::DuplicateKey);
    assert_eq!(e.field.as_deref(), Some("metadata.k7"));
}

#[test]
fn depth_limit() {
    let opts = DecodeOptions {
        max_depth: 4,
        ..Default::default()
    };
    let ok = br#"{"address": {"geo": {}}, "metadata": {"a": [1]}}"#;
    decode_json(&msg("User"), ok, &opts).unwrap();
    let deep = br#"{"metadata": {"a": [[[1]]]}}"#;
    let e = expect_err(decode_json(&msg("User"), deep, &opts), K::TooDeep);
    assert_eq!(e.field.as_deref(), Some("metadata.a[0][0]"));
    // Default limit 32.
    let n = 40;
    let body = format!(
        r#"{{"metadata": {{"a": {}{}}}}}"#,
        "[".repeat(n),
        "]".repeat(n)
    );
    expect_err(decode("User", &body), K::TooDeep);
    // A large limit hits serde_json's own limit: still TooDeep.
    let opts = DecodeOptions {
        max_depth: 10_000,
        ..Default::default()
    };
    let body = format!(r#"{{"metadata": {{"a": {}"#, "[".repeat(500));
    expect_err(
        decode_json(&msg("User"), body.as_bytes(), &opts),
        K::TooDeep,
    );
}

#[test]
fn never_panics_on_nasty_input() {
    let mut inputs: Vec<Vec<u8>> = vec![
        "[".repeat(10_000).into_bytes(),
        "{\"metadata\":".repeat(10_000).into_bytes(),
        format!(r#"{{"metadata": {{"a": {}}}}}"#, "[".repeat(10_000)).into_bytes(),
        br#"{"id": 123456789012345678901234567890}"#.to_vec(),
        br#"{"dbl": 1e999}"#.to_vec(),
        br#"{"flt": 1e39}"#.to_vec(),
        br#"{"i64": "99999999999999999999"}"#.to_vec(),
        br#"{"u64": -1}"#.to_vec(),
        b"{\"text\": \"\xff\xfe\"}".to_vec(),
        b"\xff\xfe\xfd".to_vec(),
        br#"{"text": "\ud800"}"#.to_vec(),
        br#"{"text": "\udc00\ud800"}"#.to_vec(),
        b"{\"text\": \"a\0b\"}".to_vec(),
        b"{\"te\0xt\": 1}".to_vec(),
        b"\0".to_vec(),
        br#"{"ts": "9999-99-99T99:99:99Z"}"#.to_vec(),
        br#"{"ts": "10000-01-01T00:00:00Z"}"#.to_vec(),
        br#"{"dur": "999999999999999999999s"}"#.to_vec(),
        br#"{"extra": {"@type": "nope"}}"#.to_vec(),
        br#"{"extra": {"@type": "type.googleapis.com/google.protobuf.Duration", "value": 5}}"#
            .to_vec(),
        br#"{"extra": {"value": 5}}"#.to_vec(),
        br#"{"mask": "a_b"}"#.to_vec(),
        br#"{"counters": {"": "1"}}"#.to_vec(),
        br#"{"dyn": {"a": {"b": {"c": []}}}}"#.to_vec(),
        br#"{"nothing": {"a": 1}}"#.to_vec(),
        br#"{"roles": [99999999999]}"#.to_vec(),
        br#"{"name": null, "number": null, "place": null}"#.to_vec(),
        b"{\"a\":".to_vec(),
        b"\"".to_vec(),
        b"{}}".to_vec(),
    ];
    for depth in [31, 32, 33, 60, 127, 128, 129] {
        inputs.push(
            format!(
                r#"{{"meta": {{"a": {}{}}}}}"#,
                "[".repeat(depth),
                "]".repeat(depth)
            )
            .into_bytes(),
        );
    }
    for max_depth in [0, 1, 32, 200, usize::MAX] {
        let opts = DecodeOptions {
            max_depth,
            ..Default::default()
        };
        for input in &inputs {
            let _ = decode_json(&msg("Everything"), input, &opts);
            let _ = decode_json(&msg("User"), input, &opts);
        }
    }
    // Lone surrogates and invalid UTF-8 are malformed JSON.
    expect_err(
        decode("Everything", r#"{"text": "\ud800"}"#),
        K::MalformedJson,
    );
    let r = decode_json(
        &msg("Everything"),
        b"{\"text\": \"\xff\"}",
        &DecodeOptions::default(),
    );
    expect_err(r, K::MalformedJson);
}
