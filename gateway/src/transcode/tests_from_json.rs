//! The direct JSON -> wire decoder against prost-reflect's deserializer: random messages of
//! every message type of the demo services, the transcoding fixture and the two descriptor
//! corpora, written as JSON by prost-reflect and then rewritten in the other forms clients
//! send (proto names, integers as strings and strings as integers, enums by number, `null`
//! for absent fields); random free-form JSON in `Struct` and `Value` fields; and the edge
//! cases named below. Every comparison is [`agree_with`]: the same message or the same error,
//! and for map-free types the very bytes prost-reflect writes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use prost_reflect::{DynamicMessage, Kind, MessageDescriptor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value as Json};

use super::direct::{Plans, TypePlan};
use super::test_support::{agree_with, decode, msg, plans, req};
use super::tests_direct::{OPTIONS, message_types, random_message};
use super::{BodyTarget, DecodeOptions, HttpRequestParts, encode_direct, encode_response};

/// Compares both paths on `json` as a whole body of `desc`; returns whether the direct
/// decoder answered (with bytes or with the error) rather than leaving it to the other path.
fn check(plan: &TypePlan, desc: &MessageDescriptor, json: &[u8], opts: &DecodeOptions) -> bool {
    let parts = HttpRequestParts {
        body: json,
        body_target: &BodyTarget::Whole,
        path_bindings: &[],
        query: None,
        fill_update_mask: false,
    };
    let reference = super::decode_json(desc, json, opts);
    agree_with(plan, desc, &reference, &parts, opts);
    !matches!(encode_direct(desc, plan, &parts, opts), Ok(None))
}

#[test]
fn random_messages_decode_as_prost_reflect_reads_them() {
    let mut rng = StdRng::seed_from_u64(0xdec0de);
    let types = message_types();
    assert!(types.len() > 100, "only {} message types", types.len());
    let (mut checked, mut refused) = (0, Vec::new());
    for desc in &types {
        let plans = Plans::new(desc);
        let plan = plans.type_plan(desc).unwrap();
        for _ in 0..6 {
            let msg = random_message(desc, &mut rng, 0);
            for eopts in &OPTIONS {
                // What prost-reflect cannot write (an empty Any) is not compared.
                let Ok(json) = encode_response(&msg, None, eopts) else {
                    continue;
                };
                checked += 1;
                let readable = super::decode_json(desc, &json, &DecodeOptions::default()).is_ok();
                // (A non-finite DoubleValue is written as `null`, which reads back as nothing.)
                if !check(&plan, desc, &json, &DecodeOptions::default()) && readable {
                    refused.push(format!(
                        "{}: {}",
                        desc.full_name(),
                        String::from_utf8_lossy(&json)
                    ));
                }
            }
        }
    }
    eprintln!("{} types, {checked} documents", types.len());
    // JSON as a serializer writes it is always taken by the direct decoder.
    assert!(
        refused.is_empty(),
        "{} refused: {:#?}",
        refused.len(),
        &refused[..refused.len().min(5)]
    );
    assert!(checked > types.len() * 6, "only {checked} compared");
}

/// Rewrites a document of `desc` into other forms the proto3 JSON mapping accepts (and some
/// it does not, which both paths must refuse alike).
fn mutate(v: &mut Json, desc: &MessageDescriptor, rng: &mut StdRng) {
    let Json::Object(obj) = v else {
        return;
    };
    let mut out = Map::new();
    for (key, mut value) in std::mem::take(obj) {
        let Some(field) = desc
            .get_field_by_json_name(&key)
            .or_else(|| desc.get_field_by_name(&key))
        else {
            out.insert(key, value);
            continue;
        };
        let kind = field.kind();
        if field.is_map() {
            if let (Json::Object(m), Kind::Message(entry)) = (&mut value, &kind)
                && let Kind::Message(vm) = entry.map_entry_value_field().kind()
            {
                for x in m.values_mut() {
                    mutate(x, &vm, rng);
                }
            }
        } else if field.is_list() {
            if let Json::Array(items) = &mut value {
                for x in items {
                    mutate_value(x, &kind, rng);
                }
            }
        } else {
            mutate_value(&mut value, &kind, rng);
        }
        let name = if rng.random_range(0..3) == 0 {
            field.name().to_string()
        } else {
            key
        };
        out.insert(name, value);
    }
    // `null` for some absent fields (unset, or a null Value / NULL_VALUE).
    for f in desc.fields() {
        if rng.random_range(0..6) == 0
            && !out.contains_key(f.json_name())
            && !out.contains_key(f.name())
        {
            out.insert(f.json_name().to_string(), Json::Null);
        }
    }
    *obj = out;
}

fn mutate_value(v: &mut Json, kind: &Kind, rng: &mut StdRng) {
    let roll = rng.random_range(0..4);
    match (kind, &*v) {
        (Kind::Message(m), Json::Object(_)) => mutate(v, m, rng),
        (Kind::Enum(e), Json::String(name)) if roll == 0 => {
            if let Some(n) = e.get_value_by_name(name) {
                *v = Json::from(n.number());
            }
        }
        (Kind::Enum(_), Json::String(_)) if roll == 1 => *v = Json::from("NO_SUCH_VALUE"),
        // Integers: strings to numbers, numbers to strings and to `n.0`.
        (_, Json::String(s)) if roll == 0 => {
            if let Ok(n) = s.parse::<i64>() {
                *v = Json::from(n);
            } else if let Ok(n) = s.parse::<u64>() {
                *v = Json::from(n);
            }
        }
        (_, Json::Number(n)) if roll == 1 => *v = Json::from(n.to_string()),
        (_, Json::Number(n)) if roll == 2 => {
            if let Some(f) = n.as_f64() {
                *v = Json::from(f);
            }
        }
        (_, Json::Number(n)) if roll == 3 => {
            if let Some(f) = n.as_f64() {
                *v = Json::from(f + 0.5);
            }
        }
        _ => {}
    }
}

#[test]
fn rewritten_documents_decode_as_prost_reflect_reads_them() {
    let mut rng = StdRng::seed_from_u64(0xbeef);
    let types = message_types();
    let (mut checked, mut taken) = (0usize, 0usize);
    for desc in &types {
        let plans = Plans::new(desc);
        let plan = plans.type_plan(desc).unwrap();
        for _ in 0..6 {
            let msg = random_message(desc, &mut rng, 0);
            let Ok(json) = encode_response(&msg, None, &OPTIONS[rng.random_range(0..2)]) else {
                continue;
            };
            let mut v: Json = serde_json::from_slice(&json).unwrap();
            mutate(&mut v, desc, &mut rng);
            let text = serde_json::to_vec(&v).unwrap();
            for ignore in [false, true] {
                let opts = DecodeOptions {
                    ignore_unknown_fields: ignore,
                    ..DecodeOptions::default()
                };
                checked += 1;
                taken += usize::from(check(&plan, desc, &text, &opts));
            }
        }
    }
    eprintln!("{checked} documents, {taken} answered by the direct decoder");
    // Valid or not, the direct decoder answers them all (unknown fields, extensions and the
    // like are refused by the checking pass before).
    assert_eq!(taken, checked, "only {taken} of {checked} answered");
}

fn random_json(rng: &mut StdRng, depth: usize) -> Json {
    match rng.random_range(0..if depth > 3 { 5 } else { 7 }) {
        0 => Json::Null,
        1 => Json::Bool(rng.random()),
        2 => Json::from(rng.random_range(-1e6..1e6)),
        3 => Json::from(rng.random::<i64>()),
        4 => Json::from(["", "a", "é\"\\\n", "NaN", "1"][rng.random_range(0..5)]),
        5 => Json::Array(
            (0..rng.random_range(0..4))
                .map(|_| random_json(rng, depth + 1))
                .collect(),
        ),
        _ => Json::Object(
            (0..rng.random_range(0..4))
                .map(|i| (format!("k{i}"), random_json(rng, depth + 1)))
                .collect(),
        ),
    }
}

#[test]
fn free_form_json_in_struct_value_and_list_value() {
    let mut rng = StdRng::seed_from_u64(0x57);
    let desc = msg("Everything");
    let plan = plans().type_plan(&desc).unwrap();
    for _ in 0..400 {
        let meta = Json::Object(
            (0..rng.random_range(0..4))
                .map(|i| (format!("m{i}"), random_json(&mut rng, 0)))
                .collect(),
        );
        let body = serde_json::json!({ "meta": meta, "dyn": random_json(&mut rng, 0) });
        let text = serde_json::to_vec(&body).unwrap();
        assert!(
            check(&plan, &desc, &text, &DecodeOptions::default()),
            "refused: {body}"
        );
    }
}

/// Bodies the direct decoder takes, each compared with prost-reflect.
const TAKEN: &[(&str, &str)] = &[
    ("Everything", "{}"),
    ("Everything", " { } "),
    // Integers as strings, numbers with a zero fraction or an exponent, the extremes.
    (
        "Everything",
        r#"{"i32": "-5", "i64": 9007199254740993, "u32": 4294967295, "u64": "18446744073709551615", "s32": -2147483648, "s64": "-9223372036854775808", "fx32": 5.0, "fx64": 1e3, "sfx32": "-7", "sfx64": -8}"#,
    ),
    ("Everything", r#"{"i32": "+5", "u32": "007", "i64": -0}"#),
    // Floats: strings, special values, out of f32's precision but in range.
    ("Everything", r#"{"dbl": "1.5", "flt": "NaN", "i32": 0}"#),
    (
        "Everything",
        r#"{"dbl": "-Infinity", "flt": 3.4028234663852886e38}"#,
    ),
    ("Everything", r#"{"dbl": 1e308, "flt": "inf"}"#),
    ("Everything", r#"{"dbl": -0.0, "flt": -0.0}"#),
    // Enums by name and number (also numbers no value names), proto and JSON names.
    (
        "Everything",
        r#"{"role": 2, "roles": ["ROLE_ADMIN", 1, 77]}"#,
    ),
    (
        "Everything",
        r#"{"opt_text": "x", "optI64": "5", "opt_flag": false}"#,
    ),
    // Keys out of field-number order; a message field between scalars.
    (
        "Everything",
        r#"{"text": "t", "address": {"zipCode": "z", "city": "c"}, "i32": 1, "ids": [3, "2", 1]}"#,
    ),
    // Defaults are left out, as prost-reflect leaves them out; `optional` keeps them.
    (
        "Everything",
        r#"{"i32": 0, "text": "", "flag": false, "data": "", "dbl": 0, "maybe": 0, "ids": []}"#,
    ),
    // null: unset, except for Value (a null Value) and wrappers (unset).
    (
        "Everything",
        r#"{"i32": null, "address": null, "ids": null, "counters": null, "dyn": null, "optText": null}"#,
    ),
    // Bytes: standard and URL-safe base64, with and without padding.
    ("Everything", r#"{"data": "AQID"}"#),
    ("Everything", r#"{"data": "-_8"}"#),
    ("Everything", r#"{"data": "+/8="}"#),
    // Maps with their keys converted; values of every kind.
    (
        "Everything",
        r#"{"counters": {"a": "1", "b": 2, "": 0}, "labels": {"k": "v", "é": ""}}"#,
    ),
    // Oneof: one member, given by either name; an empty message is still a member.
    ("Everything", r#"{"place": {}}"#),
    ("Everything", r#"{"number": 0}"#),
    ("Everything", r#"{"name": null, "number": 4}"#),
    // Well-known types read by prost-reflect.
    (
        "Everything",
        r#"{"ts": "1972-01-01T10:00:20.021Z", "dur": "1.5s", "mask": "displayName,address.city", "nothing": {}, "times": ["2020-01-01T00:00:00Z"]}"#,
    ),
    // Struct, Value, ListValue.
    (
        "Everything",
        r#"{"meta": {"a": [1, "two", null, true, {"b": {}}], "": -0.5}, "dyn": [[]]}"#,
    ),
    ("Everything", r#"{"dyn": {"x": null}}"#),
    ("Everything", r#"{"dyn": "s"}"#),
    ("Everything", r#"{"dyn": 0}"#),
    // Escaped keys and strings.
    (
        "Everything",
        r#"{"t\u0065xt": "a\"b\\c\u00e9\ud83d\ude00"}"#,
    ),
    // Long content: lengths over one byte, nested.
    (
        "User",
        r#"{"id": "1", "displayName": "Ada", "previousAddresses": [{"city": "London", "geo": {"lat": 51.5, "lng": -0.12}}], "tags": ["a", "b"], "labels": {"x": "y"}, "createdAt": "2024-02-29T12:00:00Z", "metadata": {"k": "v"}, "nickName": "ada"}"#,
    ),
];

/// Bodies prost-reflect refuses: the direct decoder leaves them to it (the error is its).
const REFUSED: &[(&str, &str)] = &[
    ("Everything", r#"{"i32": 1.5}"#),
    ("Everything", r#"{"i32": 2147483648}"#),
    ("Everything", r#"{"i32": "1.0"}"#),
    ("Everything", r#"{"u32": -1}"#),
    ("Everything", r#"{"u64": "-0"}"#),
    ("Everything", r#"{"i64": 1e19}"#),
    ("Everything", r#"{"flt": 1e39}"#),
    ("Everything", r#"{"dbl": "one"}"#),
    ("Everything", r#"{"flag": "true"}"#),
    ("Everything", r#"{"flag": 1}"#),
    ("Everything", r#"{"text": 5}"#),
    ("Everything", r#"{"data": "not base64!"}"#),
    ("Everything", r#"{"role": "NO_SUCH_ROLE"}"#),
    ("Everything", r#"{"role": 1.0}"#),
    ("Everything", r#"{"role": 2147483648}"#),
    ("Everything", r#"{"ids": [1, null]}"#),
    ("Everything", r#"{"ids": 1}"#),
    ("Everything", r#"{"counters": {"a": null}}"#),
    ("Everything", r#"{"counters": []}"#),
    ("Everything", r#"{"address": []}"#),
    ("Everything", r#"{"address": "x"}"#),
    ("Everything", r#"{"name": "a", "number": 1}"#),
    ("Everything", r#"{"place": {}, "name": ""}"#),
    ("Everything", r#"{"ts": "yesterday"}"#),
    ("Everything", r#"{"ts": 5}"#),
    ("Everything", r#"{"optI64": 1.5}"#),
    ("Everything", r#"{"optText": 5}"#),
    ("Everything", r#"{"nothing": {"a": 1}}"#),
    ("Everything", r#"{"meta": []}"#),
    ("Everything", r#"{"no_such_field": 1}"#),
    ("Everything", r#"{"[some.extension]": 1}"#),
    ("Everything", r#"{"text": "a", "text": "b"}"#),
    ("Everything", r#"{"text": "a", "text": "a"}"#),
    ("Everything", r#"{"i32": 1} x"#),
    ("Everything", r#"{"i32": 1"#),
    ("Everything", r#"[]"#),
    ("Everything", r#"null"#),
    ("Everything", r#""text""#),
];

#[test]
fn edge_cases_agree_and_common_forms_are_taken() {
    for (ty, body) in TAKEN {
        let desc = msg(ty);
        let plan = plans().type_plan(&desc).unwrap();
        assert!(decode(ty, body).is_ok(), "{ty} {body} should decode");
        assert!(
            check(&plan, &desc, body.as_bytes(), &DecodeOptions::default()),
            "{ty} {body}: not answered by the direct decoder"
        );
    }
    for (ty, body) in REFUSED {
        assert!(decode(ty, body).is_err(), "{ty} {body} should be refused");
        // Refused by the checking pass or by the direct decoder itself, in prost-reflect's
        // words (compared by `decode`): nothing is left to the decoded way.
        let desc = msg(ty);
        let plan = plans().type_plan(&desc).unwrap();
        assert!(
            check(&plan, &desc, body.as_bytes(), &DecodeOptions::default()),
            "{ty} {body}: left to the decoded way"
        );
    }
}

#[test]
fn unknown_fields_and_enum_names_when_ignored() {
    let desc = msg("Everything");
    let plan = plans().type_plan(&desc).unwrap();
    let opts = DecodeOptions {
        ignore_unknown_fields: true,
        ..DecodeOptions::default()
    };
    for body in [
        r#"{"no_such_field": {"deep": [1, 2]}, "i32": 3}"#,
        r#"{"role": "NO_SUCH_ROLE", "roles": ["NO", "ROLE_ADMIN"], "i32": 1}"#,
        r#"{"dyn": {"x": "NO_SUCH"}}"#,
    ] {
        assert!(check(&plan, &desc, body.as_bytes(), &opts), "{body}");
    }
}

#[test]
fn field_bodies_bindings_and_query_take_the_direct_path() {
    use super::test_support::fp;
    let desc = msg("UpdateUserRequest");
    let plan = plans().type_plan(&desc).unwrap();
    let target = BodyTarget::Field(fp("UpdateUserRequest", "user"));
    let id = fp("UpdateUserRequest", "user.id");
    let bindings = [(&id, "7")];
    let body = r#"{"displayName": "Ada", "tags": ["x"], "labels": {"a": "b"}}"#;
    let parts = HttpRequestParts {
        body: body.as_bytes(),
        body_target: &target,
        path_bindings: &bindings,
        query: Some("allow_missing=true"),
        fill_update_mask: false,
    };
    let opts = DecodeOptions::default();
    assert!(matches!(
        encode_direct(&desc, &plan, &parts, &opts),
        Ok(Some(_))
    ));
    // Same message as the other path (checked by `req`).
    let m = req(
        "UpdateUserRequest",
        body,
        &target,
        &bindings,
        Some("allow_missing=true"),
        false,
    )
    .unwrap();
    assert_eq!(
        super::test_support::json(&m),
        r#"{"user":{"id":"7","displayName":"Ada","tags":["x"],"labels":{"a":"b"}},"allowMissing":true}"#
    );
    // The variable also in the body: compared by the other path.
    let both = r#"{"id": "7"}"#;
    let parts = HttpRequestParts {
        body: both.as_bytes(),
        ..parts
    };
    assert!(matches!(
        encode_direct(&desc, &plan, &parts, &opts),
        Ok(None)
    ));
}

#[test]
fn nothing_panics_on_truncated_or_garbled_bodies() {
    let desc = msg("Everything");
    let plan = plans().type_plan(&desc).unwrap();
    let (body, _) = TAKEN[20];
    for cut in 0..body.len() {
        let _ = plan.decode(&body.as_bytes()[..cut], &DecodeOptions::default());
    }
    for (_, body) in TAKEN {
        let mut bytes = body.as_bytes().to_vec();
        for i in 0..bytes.len() {
            let saved = bytes[i];
            bytes[i] = b'"';
            let _ = check(&plan, &desc, &bytes, &DecodeOptions::default());
            bytes[i] = saved;
        }
    }
    let _ = DynamicMessage::new(desc);
}

/// The scan pass's checks, which the direct decoder mirrors (it runs alone on valid bodies):
/// on each side of every limit, the same answer as the scan followed by prost-reflect.
#[test]
fn the_scan_pass_checks_hold_without_the_scan() {
    let desc = msg("Everything");
    let plan = plans().type_plan(&desc).unwrap();
    let tight = |ignore: bool| DecodeOptions {
        ignore_unknown_fields: ignore,
        max_depth: 4,
        max_struct_values: 6,
        ..DecodeOptions::default()
    };
    let bodies = [
        // Depth: 4 levels pass, 5 do not (objects and arrays alike).
        r#"{"address": {"geo": {"lat": 1}}}"#,
        r#"{"meta": {"a": {"b": {}}}}"#,
        r#"{"meta": {"a": {"b": {"c": {}}}}}"#,
        r#"{"meta": {"a": [[1]]}}"#,
        r#"{"meta": {"a": [[[1]]]}}"#,
        r#"{"addresses": [{"geo": {"lat": 1}}]}"#,
        r#"{"times": ["2020-01-01T00:00:00Z"], "nothing": {}}"#,
        // Free-form values: 6 pass, 7 do not (the Struct itself counts).
        r#"{"meta": {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}}"#,
        r#"{"meta": {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6}}"#,
        r#"{"dyn": [1, 2, 3, 4, 5]}"#,
        r#"{"dyn": [1, 2, 3, 4, 5, 6]}"#,
        // A key twice: in a map, in a Struct, in a skipped unknown value.
        r#"{"labels": {"a": "x", "a": "y"}}"#,
        r#"{"counters": {"1": 1, "1": 2}}"#,
        r#"{"meta": {"k": 1, "k": 1}}"#,
        r#"{"dyn": {"k": {"j": 1, "j": 2}}}"#,
        r#"{"unknown": {"x": 1, "x": 2}}"#,
        r#"{"unknown": 1, "unknown": 2}"#,
        r#"{"unknown": [[[[[1]]]]]}"#,
        r#"{"unknown": {"x": [1, {"y": null}]}, "i32": 5}"#,
        // Not an object where a message goes; a field by both its names.
        r#"{"address": [1]}"#,
        r#"{"address": 5}"#,
        r#"{"opt_text": "a", "optText": "b"}"#,
        r#"{"extension": 1, "[ext]": 2}"#,
        // Both kinds of error at once: the scan's is the one named.
        r#"{"i32": "x", "labels": {"a": "1", "a": "2"}}"#,
        r#"{"i32": "x", "meta": {"a": {"b": {"c": {"d": 1}}}}}"#,
    ];
    let mut answered = 0;
    for body in bodies {
        for ignore in [false, true] {
            let took = check(&plan, &desc, body.as_bytes(), &tight(ignore));
            if !took {
                eprintln!("left to the decoded way: {body} (ignore_unknown: {ignore})");
            }
            answered += usize::from(took);
        }
    }
    // Everything but the extension key (the decoded way sets extensions) is answered here.
    assert!(answered >= bodies.len() * 2 - 2, "{answered} answered");
}
