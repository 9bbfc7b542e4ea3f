//! Tests: field paths, path variables, body targets and path/body conflicts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::TranscodeErrorKind as K;
use super::test_support::{expect_err, fp, json, msg, req};
use super::{BodyTarget, FieldPath};

#[test]
fn field_path_resolution() {
    let p = fp("User", "address.geo.lat");
    assert_eq!(p.as_str(), "address.geo.lat");
    assert_eq!(p.last().name(), "lat");
    assert_eq!(p.fields().len(), 3);
    let q = fp("User", "address.zipCode");
    assert_eq!(q.proto_path(), "address.zip_code");
    assert_eq!(fp("User", "nickName"), fp("User", "nick"));
    assert!(fp("User", "address.city").starts_with(&fp("User", "address")));
    for bad in [
        "",
        "nope",
        "address.",
        ".address",
        "address.nope",
        "tags.x",
        "labels.k",
        "previous_addresses.city",
        "id.x",
    ] {
        let e = FieldPath::resolve(&msg("User"), bad).unwrap_err();
        assert_eq!(e.kind, K::InvalidFieldPath, "{bad}");
    }
}

#[test]
fn path_values_of_every_kind() {
    let cases: &[(&str, &str, &str)] = &[
        ("i32", "-5", r#""i32":-5"#),
        ("i64", "9007199254740993", r#""i64":"9007199254740993""#),
        (
            "u64",
            "18446744073709551615",
            r#""u64":"18446744073709551615""#,
        ),
        ("s32", "-2147483648", r#""s32":-2147483648"#),
        ("fx64", "7", r#""fx64":"7""#),
        ("flag", "true", r#""flag":true"#),
        ("text", "a b/c", r#""text":"a b/c""#),
        ("data", "-_8", r#""data":"+/8=""#),
        ("data", "+/8=", r#""data":"+/8=""#),
        ("dbl", "NaN", r#""dbl":"NaN""#),
        ("dbl", "-Infinity", r#""dbl":"-Infinity""#),
        ("dbl", "2.5e3", r#""dbl":2500.0"#),
        ("flt", "Infinity", r#""flt":"Infinity""#),
        ("role", "ROLE_ADMIN", r#""role":"ROLE_ADMIN""#),
        ("role", "1", r#""role":"ROLE_USER""#),
        (
            "ts",
            "2024-01-31T12:00:00Z",
            r#""ts":"2024-01-31T12:00:00Z""#,
        ),
        ("dur", "-1.5s", r#""dur":"-1.500s""#),
        ("optText", "", r#""optText":"""#),
        ("opt_i64", "-3", r#""optI64":"-3""#),
        ("optFlag", "false", r#""optFlag":false"#),
        (
            "mask",
            "displayName,address.zip_code",
            r#""mask":"displayName,address.zipCode""#,
        ),
        ("address.city", "Paris", r#""address":{"city":"Paris"}"#),
        ("place.geo.lat", "1.25", r#""place":{"geo":{"lat":1.25}}"#),
    ];
    for (path, raw, expected) in cases {
        let p = fp("Everything", path);
        let m = req(
            "Everything",
            "",
            &BodyTarget::None,
            &[(&p, raw)],
            None,
            false,
        )
        .unwrap_or_else(|e| panic!("{path}={raw}: {e}"));
        let out = json(&m);
        assert!(out.contains(expected), "{path}={raw}: {out}");
    }
}

#[test]
fn bad_path_values_name_the_field() {
    let cases: &[(&str, &str, &str)] = &[
        ("i64", "abc", "expected an integer (int64)"),
        ("i32", "2147483648", "out of range for int32"),
        ("u32", "-1", "non-negative"),
        ("i32", "1.0", "expected an integer"),
        ("flt", "1e39", "out of range for float"),
        ("dbl", "x", "expected a number"),
        ("flag", "yes", "expected a boolean"),
        ("role", "ROLE_NOPE", "ROLE_ADMIN"),
        ("data", "!!", "base64"),
        ("ts", "yesterday", "RFC 3339"),
        ("dur", "5 minutes", "duration"),
        ("opt_i64", "x", "int64"),
        ("optFlag", "1", "boolean"),
        ("mask", "a b", "field mask"),
    ];
    for (path, raw, needle) in cases {
        let p = fp("Everything", path);
        let e = expect_err(
            req(
                "Everything",
                "",
                &BodyTarget::None,
                &[(&p, raw)],
                None,
                false,
            ),
            K::InvalidValue,
        );
        assert_eq!(e.field.as_deref(), Some(*path));
        assert!(e.message.contains(needle), "{path}={raw}: {}", e.message);
        assert!(
            e.message
                .starts_with(&format!("invalid value \"{raw}\" for field \"{path}\": ")),
            "{}",
            e.message
        );
    }
    let p = fp("GetUserRequest", "id");
    let e = req(
        "GetUserRequest",
        "",
        &BodyTarget::None,
        &[(&p, "abc")],
        None,
        false,
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        r#"invalid value "abc" for field "id": expected an integer (int64)"#
    );
    // Path variables may not name repeated, map or message fields.
    for path in ["ids", "labels", "address", "meta"] {
        let p = fp("Everything", path);
        expect_err(
            req(
                "Everything",
                "",
                &BodyTarget::None,
                &[(&p, "1")],
                None,
                false,
            ),
            K::InvalidFieldPath,
        );
    }
}

#[test]
fn no_body_allowed_when_target_is_none() {
    let e = expect_err(
        req(
            "GetUserRequest",
            r#"{"id": 1}"#,
            &BodyTarget::None,
            &[],
            None,
            false,
        ),
        K::InvalidValue,
    );
    assert_eq!(e.message, "this method takes no request body");
    req("GetUserRequest", "  ", &BodyTarget::None, &[], None, false).unwrap();
}

#[test]
fn whole_body_with_path_binding_and_conflicts() {
    let id = fp("User", "id");
    let whole = BodyTarget::Whole;
    let m = req(
        "User",
        r#"{"displayName": "x"}"#,
        &whole,
        &[(&id, "7")],
        None,
        false,
    )
    .unwrap();
    assert_eq!(json(&m), r#"{"id":"7","displayName":"x"}"#);
    // Same value (after conversion) is fine, whatever its JSON form.
    for body in [
        r#"{"id": 7}"#,
        r#"{"id": "7"}"#,
        r#"{"id": 7.0}"#,
        r#"{"id": null}"#,
    ] {
        let m = req("User", body, &whole, &[(&id, "7")], None, false).unwrap();
        assert_eq!(json(&m), r#"{"id":"7"}"#, "{body}");
    }
    for body in [r#"{"id": 8}"#, r#"{"id": 0}"#] {
        let e = expect_err(
            req("User", body, &whole, &[(&id, "7")], None, false),
            K::Conflict,
        );
        assert_eq!(e.field.as_deref(), Some("id"));
    }
    // Nested binding inside the body.
    let city = fp("User", "address.city");
    let e = expect_err(
        req(
            "User",
            r#"{"address": {"city": "b"}}"#,
            &whole,
            &[(&city, "a")],
            None,
            false,
        ),
        K::Conflict,
    );
    assert_eq!(e.field.as_deref(), Some("address.city"));
    let m = req(
        "User",
        r#"{"address": {"zipCode": "z"}}"#,
        &whole,
        &[(&city, "a")],
        None,
        false,
    )
    .unwrap();
    assert_eq!(json(&m), r#"{"address":{"city":"a","zipCode":"z"}}"#);
    // NaN equals NaN; Timestamp compared after conversion.
    let dbl = fp("Everything", "dbl");
    req(
        "Everything",
        r#"{"dbl": "NaN"}"#,
        &whole,
        &[(&dbl, "NaN")],
        None,
        false,
    )
    .unwrap();
    let ts = fp("Everything", "ts");
    req(
        "Everything",
        r#"{"ts": "2024-01-31T13:00:00+01:00"}"#,
        &whole,
        &[(&ts, "2024-01-31T12:00:00Z")],
        None,
        false,
    )
    .unwrap();
    // A oneof member from the path, another from the body.
    let name = fp("Everything", "name");
    expect_err(
        req(
            "Everything",
            r#"{"number": 1}"#,
            &whole,
            &[(&name, "n")],
            None,
            false,
        ),
        K::Conflict,
    );
}

#[test]
fn field_body_target_message_repeated_and_scalar() {
    let target = BodyTarget::Field(fp("CreateUserRequest", "user"));
    let parent = fp("CreateUserRequest", "parent");
    let m = req(
        "CreateUserRequest",
        r#"{"displayName": "x", "address": {"city": "c"}}"#,
        &target,
        &[(&parent, "orgs/1")],
        Some("count=3"),
        false,
    )
    .unwrap();
    assert_eq!(
        json(&m),
        r#"{"parent":"orgs/1","user":{"displayName":"x","address":{"city":"c"}},"count":"3"}"#
    );
    // Empty body with a message target: `{}`.
    let m = req("CreateUserRequest", "", &target, &[], None, false).unwrap();
    assert_eq!(json(&m), r#"{"user":{}}"#);
    // Errors are named with the body field in front.
    let e = expect_err(
        req(
            "CreateUserRequest",
            r#"{"address": {"cty": 1}}"#,
            &target,
            &[],
            None,
            false,
        ),
        K::UnknownField,
    );
    assert_eq!(e.field.as_deref(), Some("user.address.cty"));
    let e = expect_err(
        req(
            "CreateUserRequest",
            r#"{"id": "x"}"#,
            &target,
            &[],
            None,
            false,
        ),
        K::InvalidValue,
    );
    assert_eq!(e.field.as_deref(), Some("user.id"));
    let e = expect_err(
        req("CreateUserRequest", "[1]", &target, &[], None, false),
        K::InvalidValue,
    );
    assert!(
        e.message.contains("expected a JSON object"),
        "{}",
        e.message
    );
    assert_eq!(e.field.as_deref(), Some("user"));

    // Repeated body field.
    let tags = BodyTarget::Field(fp("CreateUserRequest", "tags"));
    let m = req(
        "CreateUserRequest",
        r#"["a", "b"]"#,
        &tags,
        &[],
        None,
        false,
    )
    .unwrap();
    assert_eq!(json(&m), r#"{"tags":["a","b"]}"#);
    let e = expect_err(
        req("CreateUserRequest", r#"["a", 1]"#, &tags, &[], None, false),
        K::InvalidValue,
    );
    assert_eq!(e.field.as_deref(), Some("tags[1]"));
    let e = expect_err(
        req("CreateUserRequest", r#"["a", "b""#, &tags, &[], None, false),
        K::MalformedJson,
    );
    assert!(e.message.contains("line 1 column 9"), "{}", e.message);
    // Scalar body field.
    let count = BodyTarget::Field(fp("CreateUserRequest", "count"));
    let m = req("CreateUserRequest", r#""12""#, &count, &[], None, false).unwrap();
    assert_eq!(json(&m), r#"{"count":"12"}"#);
    let m = req("CreateUserRequest", "", &count, &[], None, false).unwrap();
    assert_eq!(json(&m), "{}");
    // Map body field with duplicate keys.
    let labels = BodyTarget::Field(fp("User", "labels"));
    let e = expect_err(
        req("User", r#"{"a": "1", "a": "2"}"#, &labels, &[], None, false),
        K::DuplicateKey,
    );
    assert_eq!(e.field.as_deref(), Some("labels.a"));
    // Nested message body field.
    let addr = BodyTarget::Field(fp("UpdateUserRequest", "user.address"));
    let m = req(
        "UpdateUserRequest",
        r#"{"city": "c"}"#,
        &addr,
        &[],
        None,
        false,
    )
    .unwrap();
    assert_eq!(json(&m), r#"{"user":{"address":{"city":"c"}}}"#);
}

#[test]
fn field_body_target_conflicts_with_path() {
    let target = BodyTarget::Field(fp("UpdateUserRequest", "user"));
    let uid = fp("UpdateUserRequest", "user.id");
    let m = req(
        "UpdateUserRequest",
        r#"{"id": "5", "nick": "n"}"#,
        &target,
        &[(&uid, "5")],
        None,
        false,
    )
    .unwrap();
    assert_eq!(json(&m), r#"{"user":{"id":"5","nickName":"n"}}"#);
    let e = expect_err(
        req(
            "UpdateUserRequest",
            r#"{"id": 6}"#,
            &target,
            &[(&uid, "5")],
            None,
            false,
        ),
        K::Conflict,
    );
    assert_eq!(e.field.as_deref(), Some("user.id"));
    // Path binding equal to the body field itself.
    let count_t = BodyTarget::Field(fp("CreateUserRequest", "count"));
    let count = fp("CreateUserRequest", "count");
    req(
        "CreateUserRequest",
        "4",
        &count_t,
        &[(&count, "4")],
        None,
        false,
    )
    .unwrap();
    expect_err(
        req(
            "CreateUserRequest",
            "5",
            &count_t,
            &[(&count, "4")],
            None,
            false,
        ),
        K::Conflict,
    );
}

#[test]
fn never_panics_on_nasty_path_and_query_values() {
    let nasty = [
        "",
        "%",
        "%%",
        "%0",
        "%zz",
        "%00",
        "\0",
        "+",
        "&",
        "=",
        "==",
        "a=b=c",
        "%ff",
        "%ed%a0%80",
        "99999999999999999999999999",
        "-99999999999999999999999",
        "1e99999",
        "NaN",
        "-0",
        "0x10",
        "9999-12-31T23:59:60Z",
        "0001-01-01T00:00:00Z",
        "315576000001s",
        "....",
        ",,,",
        "é",
    ];
    let paths = [
        "i32",
        "i64",
        "u32",
        "u64",
        "flt",
        "dbl",
        "flag",
        "data",
        "role",
        "ts",
        "dur",
        "mask",
        "opt_i64",
        "optText",
        "place.geo.lat",
    ];
    for path in paths {
        let p = fp("Everything", path);
        for v in nasty {
            let _ = req("Everything", "", &BodyTarget::None, &[(&p, v)], None, false);
            let _ = req(
                "Everything",
                "",
                &BodyTarget::None,
                &[],
                Some(&format!("{path}={v}")),
                false,
            );
            let _ = req("Everything", "", &BodyTarget::None, &[], Some(v), false);
            let _ = req(
                "Everything",
                "",
                &BodyTarget::None,
                &[],
                Some(&format!("{v}={v}&{v}")),
                false,
            );
        }
    }
}
