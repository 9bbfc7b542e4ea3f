//! Tests: query strings and update-mask filling.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::TranscodeErrorKind as K;
use super::test_support::{expect_err, fp, json, req, req_with};
use super::{BodyTarget, DecodeOptions};

#[test]
fn query_parameters() {
    let none = BodyTarget::None;
    let parent = fp("ListUsersRequest", "parent");
    let m = req(
        "ListUsersRequest",
        "",
        &none,
        &[(&parent, "orgs/1")],
        Some(
            "page_size=5&filter.role=ROLE_ADMIN&filter.namePrefix=a%20b+c&ids=1&ids=2,3&since=2024-01-31T12%3A00%3A00Z&&pageToken=",
        ),
        false,
    );
    let e = expect_err(m, K::InvalidValue);
    assert_eq!(e.field.as_deref(), Some("ids"), "commas are not split");
    let m = req(
        "ListUsersRequest",
        "",
        &none,
        &[(&parent, "orgs/1")],
        Some("page_size=5&filter.role=ROLE_ADMIN&filter.namePrefix=a%20b+c&ids=1&ids=2&since=2024-01-31T12%3A00%3A00Z&&pageToken=&byId=9"),
        false,
    )
    .unwrap();
    assert_eq!(
        json(&m),
        r#"{"parent":"orgs/1","pageSize":5,"filter":{"role":"ROLE_ADMIN","namePrefix":"a b+c"},"ids":["1","2"],"since":"2024-01-31T12:00:00Z","byId":"9"}"#
    );
    // '+' as space on request.
    let opts = DecodeOptions {
        query_plus_is_space: true,
        ignored_query_params: vec!["access_token".into(), "callback".into()],
        ..Default::default()
    };
    let m = req_with(
        "ListUsersRequest",
        "",
        &none,
        &[],
        Some("filter.name_prefix=a+b&access_token=xyz&callback=f"),
        false,
        &opts,
    )
    .unwrap();
    assert_eq!(json(&m), r#"{"filter":{"namePrefix":"a b"}}"#);

    let q = |query: &str| {
        req(
            "ListUsersRequest",
            "",
            &none,
            &[(&parent, "p")],
            Some(query),
            false,
        )
    };
    let e = expect_err(q("page_size=1&pageSize=2"), K::RepeatedQueryParameter);
    assert_eq!(e.field.as_deref(), Some("pageSize"));
    let e = expect_err(q("nope=1"), K::UnknownQueryParameter);
    assert_eq!(e.field.as_deref(), Some("nope"));
    expect_err(q("access_token=1"), K::UnknownQueryParameter);
    expect_err(q("filter.nope=1"), K::UnknownQueryParameter);
    let e = expect_err(q("parent=x"), K::Conflict);
    assert_eq!(e.field.as_deref(), Some("parent"));
    let e = expect_err(q("filter=x"), K::InvalidValue);
    assert!(e.message.contains("filter.<field>"), "{}", e.message);
    let e = expect_err(q("labels=x"), K::InvalidValue);
    assert!(e.message.contains("map field"), "{}", e.message);
    expect_err(q("labels.k=x"), K::UnknownQueryParameter);
    let e = expect_err(q("page_size=abc"), K::InvalidValue);
    assert_eq!(
        e.message,
        r#"invalid value "abc" for field "page_size": expected an integer (int32)"#
    );
    expect_err(q("page_size=%zz"), K::InvalidValue);
    expect_err(q("page_size=%4"), K::InvalidValue);
    expect_err(q("page_%"), K::InvalidValue);
    expect_err(q("page_token=%ff%fe"), K::InvalidValue);
    expect_err(q("byName=a&byId=1"), K::Conflict);
    // Percent-encoded key.
    let m = q("filter%2Erole=1").unwrap();
    assert_eq!(json(&m), r#"{"parent":"p","filter":{"role":"ROLE_USER"}}"#);
    // Body "*": no query parameters except ignored ones.
    let opts = DecodeOptions {
        ignored_query_params: vec!["access_token".into()],
        ..Default::default()
    };
    let whole = BodyTarget::Whole;
    req_with(
        "ListUsersRequest",
        "{}",
        &whole,
        &[],
        Some("access_token=1"),
        false,
        &opts,
    )
    .unwrap();
    let e = expect_err(
        req_with(
            "ListUsersRequest",
            "{}",
            &whole,
            &[],
            Some("page_size=1"),
            false,
            &opts,
        ),
        K::UnknownQueryParameter,
    );
    assert_eq!(e.field.as_deref(), Some("page_size"));
    // Body field: its fields are not settable from the query.
    let target = BodyTarget::Field(fp("ListUsersRequest", "filter"));
    let e = expect_err(
        req(
            "ListUsersRequest",
            "{}",
            &target,
            &[],
            Some("filter.role=1"),
            false,
        ),
        K::UnknownQueryParameter,
    );
    assert_eq!(e.field.as_deref(), Some("filter.role"));
    req(
        "ListUsersRequest",
        "{}",
        &target,
        &[],
        Some("page_size=1"),
        false,
    )
    .unwrap();
}

#[test]
fn query_repeated_wkt_and_enum_values() {
    let none = BodyTarget::None;
    let m = req(
        "Everything",
        "",
        &none,
        &[],
        Some("times=2024-01-01T00:00:00Z&times=2024-01-02T00:00:00Z&roles=ROLE_USER&roles=2&optI64=5&tags=a,b&tags="),
        false,
    )
    .unwrap();
    assert_eq!(
        json(&m),
        r#"{"roles":["ROLE_USER","ROLE_ADMIN"],"optI64":"5","times":["2024-01-01T00:00:00Z","2024-01-02T00:00:00Z"],"tags":["a,b",""]}"#
    );
    for key in ["meta", "extra", "nothing", "dyn", "addresses", "address"] {
        let e = expect_err(
            req(
                "Everything",
                "",
                &none,
                &[],
                Some(&format!("{key}=1")),
                false,
            ),
            K::InvalidValue,
        );
        assert_eq!(e.field.as_deref(), Some(key));
    }
}

#[test]
fn update_mask_filled_from_patch_body() {
    let target = BodyTarget::Field(fp("UpdateUserRequest", "user"));
    let uid = fp("UpdateUserRequest", "user.id");
    let body = r#"{"displayName": "x", "address": {"city": "y", "geo": {"lat": 1}}, "labels": {"a": "b"},
                   "tags": [], "createdAt": "2024-01-01T00:00:00Z", "metadata": {"k": 1}, "nick": null,
                   "previousAddresses": [{"city": "z"}]}"#;
    let m = req(
        "UpdateUserRequest",
        body,
        &target,
        &[(&uid, "1")],
        None,
        true,
    )
    .unwrap();
    let mask = json(&m);
    assert!(
        mask.contains(r#""updateMask":"displayName,address.city,address.geo.lat,labels,tags,createdAt,metadata,nick,previousAddresses""#),
        "{mask}"
    );
    // Empty nested object is one path; unknown fields (ignored) are not paths.
    let opts = DecodeOptions {
        ignore_unknown_fields: true,
        ..Default::default()
    };
    let m = req_with(
        "UpdateUserRequest",
        r#"{"address": {}, "bogus": 1}"#,
        &target,
        &[],
        None,
        true,
        &opts,
    )
    .unwrap();
    assert!(
        json(&m).ends_with(r#""updateMask":"address"}"#),
        "{}",
        json(&m)
    );
    // Not filled when given in the query, when not PATCH, or when the body is empty.
    let m = req(
        "UpdateUserRequest",
        r#"{"id": 1}"#,
        &target,
        &[],
        Some("update_mask=display_name"),
        true,
    )
    .unwrap();
    assert!(
        json(&m).contains(r#""updateMask":"displayName""#),
        "{}",
        json(&m)
    );
    let m = req(
        "UpdateUserRequest",
        r#"{"id": 1}"#,
        &target,
        &[],
        None,
        false,
    )
    .unwrap();
    assert!(!json(&m).contains("updateMask"));
    let m = req("UpdateUserRequest", "", &target, &[], None, true).unwrap();
    assert_eq!(json(&m), r#"{"user":{}}"#);
    // Whole body: the mask is not computed (it is a field of the body).
    let m = req(
        "UpdateUserRequest",
        r#"{"user": {"id": 1}}"#,
        &BodyTarget::Whole,
        &[],
        None,
        true,
    )
    .unwrap();
    assert!(!json(&m).contains("updateMask"));
}

#[test]
fn update_mask_leaves_out_fields_bound_from_the_path() {
    let target = BodyTarget::Field(fp("UpdateUserRequest", "user"));
    let uid = fp("UpdateUserRequest", "user.id");
    let m = req(
        "UpdateUserRequest",
        r#"{"id": 1, "displayName": "x"}"#,
        &target,
        &[(&uid, "1")],
        None,
        true,
    )
    .unwrap();
    let out = json(&m);
    assert!(out.contains(r#""updateMask":"displayName""#), "{out}");
}
