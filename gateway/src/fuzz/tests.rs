//! Bounded property runs of the fuzz entry points (stable Rust, part of `cargo test`): inputs
//! generated from each surface's grammar (JSON from the real field names, wire bytes field by
//! field, query strings, path templates, GraphQL tokens, tokens, config keys, pipelined HTTP/1
//! requests), and raw bytes for each. `PROPTEST_CASES=N` runs N cases per property instead of
//! the CI default; a failing case is saved under `gateway/proptest-regressions/` and replayed
//! first on every later run, and crashes found become named regression tests below.

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Map, Value};

use super::*;

/// `cases` per property, or `PROPTEST_CASES` when set.
fn config(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        max_shrink_iters: 2_000,
        ..Config::default()
    }
}

/// Field names (JSON and proto spellings) and enum value names of the bundled types.
fn names() -> &'static (Vec<String>, Vec<String>) {
    static NAMES: OnceLock<(Vec<String>, Vec<String>)> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut fields = Vec::new();
        let mut enums = Vec::new();
        for m in &types().all {
            for f in m.fields() {
                fields.push(f.json_name().to_owned());
                fields.push(f.name().to_owned());
                if let prost_reflect::Kind::Enum(e) = f.kind() {
                    enums.extend(e.values().map(|v| v.name().to_owned()));
                }
            }
        }
        for extra in [
            "@type", "value", "paths", "seconds", "nanos", "fields", "zzz", "",
        ] {
            fields.push(extra.to_owned());
        }
        fields.sort();
        fields.dedup();
        enums.sort();
        enums.dedup();
        (fields, enums)
    })
}

const TEXTS: &[&str] = &[
    "",
    "x",
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "-0",
    "0x10",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "1.5s",
    "-1.000000001s",
    "315576000001s",
    "1970-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999999Z",
    "0001-01-01T00:00:00Z",
    "2017-01-15T01:30:15.01-08:00",
    "AQID",
    "_-8=",
    "a,b",
    "users.name,fooBar",
    "type.googleapis.com/google.protobuf.Duration",
    "type.googleapis.com/demo.v1.User",
    "\u{0}",
    "é😀",
];

fn json_leaf() -> impl Strategy<Value = Value> {
    let enums = names().1.clone();
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop_oneof![
            any::<i64>(),
            -3i64..3,
            Just(i64::MAX),
            Just(i64::MIN),
            Just(i64::from(i32::MAX) + 1)
        ]
        .prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop_oneof![
            any::<f64>(),
            Just(1.5f64),
            Just(1e300),
            Just(-0.0),
            Just(2.5e-8)
        ]
        .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(TEXTS).prop_map(|s| Value::String(s.to_owned())),
        prop::sample::select(enums).prop_map(Value::String),
        ".{0,12}".prop_map(Value::String),
    ]
}

/// JSON documents whose keys are mostly real field names, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let fields = names().0.clone();
    json_leaf().prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(fields.clone()), inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = Value> {
    let fields = names().0.clone();
    prop::collection::vec((prop::sample::select(fields), json_value()), 0..8)
        .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>()))
}

/// One wire-format field: a number (mostly small, where the real fields are), a wire type
/// (right or wrong) and a payload.
#[derive(Clone, Debug)]
enum Wire {
    Varint(u32, u64),
    Fixed64(u32, u64),
    Fixed32(u32, u32),
    Bytes(u32, Vec<u8>),
    Nested(u32, Vec<Wire>),
    /// A raw byte, to break the framing.
    Raw(u8),
}

fn field_number() -> impl Strategy<Value = u32> {
    prop_oneof![8 => 1u32..24, 1 => 1u32..(1 << 29)]
}

fn wire_fields() -> impl Strategy<Value = Vec<Wire>> {
    let leaf = prop_oneof![
        3 => (field_number(), prop_oneof![any::<u64>(), 0u64..300]).prop_map(|(n, v)| Wire::Varint(n, v)),
        2 => (field_number(), any::<u64>()).prop_map(|(n, v)| Wire::Fixed64(n, v)),
        2 => (field_number(), any::<u32>()).prop_map(|(n, v)| Wire::Fixed32(n, v)),
        3 => (
            field_number(),
            prop_oneof![
                prop::collection::vec(any::<u8>(), 0..12),
                prop::sample::select(TEXTS).prop_map(|s| s.as_bytes().to_vec())
            ]
        )
            .prop_map(|(n, b)| Wire::Bytes(n, b)),
        1 => any::<u8>().prop_map(Wire::Raw),
    ];
    let field = leaf.prop_recursive(3, 32, 5, |inner| {
        (field_number(), prop::collection::vec(inner, 0..5)).prop_map(|(n, f)| Wire::Nested(n, f))
    });
    prop::collection::vec(field, 0..10)
}

fn encode_wire(fields: &[Wire], out: &mut Vec<u8>) {
    use prost::encoding::{WireType, encode_key, encode_varint};
    for f in fields {
        match f {
            Wire::Varint(n, v) => {
                encode_key(*n, WireType::Varint, out);
                encode_varint(*v, out);
            }
            Wire::Fixed64(n, v) => {
                encode_key(*n, WireType::SixtyFourBit, out);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Wire::Fixed32(n, v) => {
                encode_key(*n, WireType::ThirtyTwoBit, out);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Wire::Bytes(n, b) => {
                encode_key(*n, WireType::LengthDelimited, out);
                encode_varint(b.len() as u64, out);
                out.extend_from_slice(b);
            }
            Wire::Nested(n, inner) => {
                let mut body = Vec::new();
                encode_wire(inner, &mut body);
                encode_key(*n, WireType::LengthDelimited, out);
                encode_varint(body.len() as u64, out);
                out.extend_from_slice(&body);
            }
            Wire::Raw(b) => out.push(*b),
        }
    }
}

fn with_type(t: u8, rest: &[u8]) -> Vec<u8> {
    let mut data = vec![t];
    data.extend_from_slice(rest);
    data
}

proptest! {
    #![proptest_config(config(400))]

    #[test]
    fn json_bodies(t in any::<u8>(), body in json_object()) {
        json_to_proto(&with_type(t, body.to_string().as_bytes()));
    }

    #[test]
    fn json_bodies_as_raw_bytes(data in prop::collection::vec(any::<u8>(), 0..64)) {
        json_to_proto(&data);
    }

    /// A message decoded from generated JSON, re-encoded, then one byte changed or the bytes
    /// cut short: what a backend gone wrong might send.
    #[test]
    fn damaged_messages(t in any::<u8>(), body in json_object(), at in any::<usize>(), byte in any::<u8>(), cut in any::<bool>()) {
        let (desc, _) = pick(&[t]).unwrap();
        if let Ok(m) = decode_json(desc, body.to_string().as_bytes(), &DecodeOptions { ignore_unknown_fields: true, ..DecodeOptions::default() }) {
            let mut bytes = m.encode_to_vec();
            if !bytes.is_empty() {
                let i = at % bytes.len();
                if cut { bytes.truncate(i) } else { bytes[i] = byte }
            }
            proto_to_json(&with_type(t, &bytes));
        }
    }

    #[test]
    fn wire_bytes(t in any::<u8>(), fields in wire_fields()) {
        let mut bytes = Vec::new();
        encode_wire(&fields, &mut bytes);
        proto_to_json(&with_type(t, &bytes));
    }

    #[test]
    fn query_strings(
        t in any::<u8>(),
        pairs in prop::collection::vec((
            prop::collection::vec(prop::sample::select(names().0.clone()), 1..3),
            prop_oneof![prop::sample::select(TEXTS).prop_map(str::to_owned), "[a-zA-Z0-9%+=&_.~-]{0,8}"],
        ), 0..6),
        raw in "[a-zA-Z0-9%+=&_.~-]{0,24}",
    ) {
        let mut query: Vec<String> = pairs
            .iter()
            .map(|(path, value)| format!("{}={}", path.join("."), percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC)))
            .collect();
        query.push(raw);
        query_binding(&with_type(t, query.join("&").as_bytes()));
    }

    #[test]
    fn path_templates(
        segments in prop::collection::vec(prop::sample::select(&[
            "v1", "users", "*", "**", "{id}", "{name=shelves/*}", "{a.b=**}", "{x=lit/*/y}",
            "%41b", "a%2Fb", "a%3Ab", "it's", "a+b", "@me", "{c}", "-", "~x", "",
        ][..]), 0..6),
        verb in prop::option::of(prop::sample::select(&["get", "batchGet", "a:b", "x%2Fy", ""][..])),
        path in "(/[a-zA-Z0-9%.:~+-]{0,6}){0,5}",
    ) {
        let mut template = format!("/{}", segments.join("/"));
        if let Some(verb) = verb {
            template.push(':');
            template.push_str(verb);
        }
        self::path(format!("{template}\n{path}").as_bytes());
    }

    #[test]
    fn paths_and_templates_as_raw_text(text in "[/a-z{}=*.:%0-9A-F~+\n-]{0,40}") {
        self::path(text.as_bytes());
    }

    #[test]
    fn graphql_documents(tokens in prop::collection::vec(prop::sample::select(&[
        "{", "}", "(", ")", "[", "]", "a", "bb", "ccc", "x:", "...F", "... on T", "fragment F on T",
        "query", "mutation", "subscription", "$n", "$ids", ":", "\"s\"", "\"\"\"b\"\"\"", "1", "-2.5e3",
        "@skip(if: true)", "first: 100", "first: $n", "ids: $ids", "ids: [1, 2, 3]", "__typename",
        "__schema", "#c\n", ",", "=", "!", "&", "|", "\u{feff}", "\\",
    ][..]), 0..200)) {
        graphql_limits(tokens.join(" ").as_bytes());
    }

    #[test]
    fn graphql_documents_as_raw_bytes(data in prop::collection::vec(any::<u8>(), 0..128)) {
        graphql_limits(&data);
    }

    #[test]
    fn arbitrary_tokens_are_refused(parts in prop::collection::vec("[A-Za-z0-9_-]{0,40}", 0..5)) {
        jwt(parts.join(".").as_bytes());
    }

    #[test]
    fn a_changed_byte_of_a_signed_token_is_refused(at in any::<usize>(), with in prop_oneof![any::<u8>(), prop::sample::select(&b"._-AaZz09="[..])]) {
        jwt_signed(at, with);
    }

    #[test]
    fn http1_byte_streams(step in any::<u8>(), pieces in prop::collection::vec(http1_piece(), 0..8)) {
        let mut data = vec![step];
        for p in &pieces {
            data.extend_from_slice(p);
        }
        http1_framing(&data);
    }

    #[test]
    fn http1_raw_bytes(data in prop::collection::vec(any::<u8>(), 0..200)) {
        http1_framing(&data);
    }

    #[test]
    fn grpc_web_bodies_as_raw_bytes(data in prop::collection::vec(any::<u8>(), 0..64)) {
        grpc_web_body(&data);
    }

    #[test]
    fn grpc_web_bodies_of_frames(limit in any::<u8>(), frames in prop::collection::vec((prop::sample::select(&[0u8, 0, 0, 1, 0x80, 2][..]), prop::collection::vec(any::<u8>(), 0..12), any::<bool>()), 0..3)) {
        // Well-formed frames, some with other flags, the last one maybe cut short.
        let mut data = vec![limit];
        for (flag, payload, cut) in &frames {
            data.push(*flag);
            data.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            let keep = if *cut { payload.len() / 2 } else { payload.len() };
            data.extend_from_slice(&payload[..keep]);
        }
        grpc_web_body(&data);
    }
}

proptest! {
    #![proptest_config(config(150))]

    /// The example configs with lines dropped and values swapped: most still load, many in
    /// unusual combinations.
    #[test]
    fn config_files(
        which in any::<bool>(),
        drop in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        swap in prop::collection::vec((any::<prop::sample::Index>(), prop::sample::select(&[
            "0", "-1", "1s", "0s", "999999999999", "null", "[]", "{}", "\"\"", "true", "1KiB", "x",
        ][..])), 0..3),
    ) {
        let text = example_config(which);
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        for i in &drop {
            if !lines.is_empty() {
                let at = i.index(lines.len());
                lines.remove(at);
            }
        }
        for (i, value) in &swap {
            if !lines.is_empty() {
                let at = i.index(lines.len());
                if let Some((key, _)) = lines[at].split_once(": ") {
                    lines[at] = format!("{key}: {value}");
                }
            }
        }
        config_yaml(lines.join("\n").as_bytes());
    }

    #[test]
    fn config_files_as_raw_text(text in "([a-z_]{1,8}: ?[a-z0-9\\[\\]{}]{0,6}\n {0,4}){0,8}") {
        config_yaml(text.as_bytes());
    }
}

fn example_config(web: bool) -> String {
    let file = if web { "bff-web" } else { "bff-mobile" };
    std::fs::read_to_string(format!(
        "{}/../{file}/config.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("the example config")
}

/// One piece of an HTTP/1 byte stream: a request framed one way or another, or noise.
fn http1_piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"GET /a HTTP/1.1\r\nhost: x\r\n\r\n".to_vec()),
        "[a-z{}\":, \r\n]{0,30}".prop_map(|body| {
            format!(
                "POST /a HTTP/1.1\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        }),
        prop::collection::vec("[a-z\r\n0-9]{0,20}", 0..4).prop_map(|chunks| {
            let mut s = String::from("POST /a HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n");
            for c in &chunks {
                s.push_str(&format!("{:x};e=1\r\n{c}\r\n", c.len()));
            }
            s.push_str("0\r\nx-t: 1\r\n\r\n");
            s.into_bytes()
        }),
        Just(
            b"POST /a HTTP/1.1\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n"
                .to_vec()
        ),
        Just(b"\r\n".to_vec()),
        prop::collection::vec(any::<u8>(), 0..8),
    ]
}

/// Deep nesting within the token limit must not overflow the parser's or the analysis's stack.
#[test]
fn deeply_nested_documents_within_the_token_limit_do_not_overflow_the_stack() {
    for depth in [100, 1_000, 2_400] {
        let query = format!("{}{}", "{ a ".repeat(depth), "}".repeat(depth));
        graphql_limits(query.as_bytes());
        let list = format!("{{ a(ids: {}1{}) }}", "[".repeat(depth), "]".repeat(depth));
        graphql_limits(list.as_bytes());
    }
}

/// The example configs load and survive the YAML round trip unchanged.
#[test]
fn the_example_configs_round_trip() {
    for web in [true, false] {
        let text = example_config(web);
        assert!(
            crate::config::parse(&text, "x.yaml", std::path::Path::new("/nonexistent")).is_ok()
        );
        config_yaml(text.as_bytes());
    }
}

/// The signed token itself verifies (so the changed-byte property is not vacuous).
#[test]
fn the_unchanged_token_verifies() {
    let fixture = jwt_fixture();
    let token = fixture.token.as_bytes();
    jwt_signed(0, token[0]);
}

/// Found by `json_bodies`: serde_json's default float parser is off by one ulp on some inputs
/// (`9.01522605637446e+17` read as the next double), so a double the gateway wrote read back
/// as another number. The workspace turns on serde_json's `float_roundtrip` (correctly rounded
/// parsing).
#[test]
fn a_double_reads_back_as_the_same_double() {
    let desc = types()
        .all
        .iter()
        .find(|m| m.full_name() == "google.protobuf.Value")
        .expect("google.protobuf.Value");
    for text in [
        "9.01522605637446e+17",
        "901522605637446080",
        "2.2250738585072014e-308",
    ] {
        let m = decode_json(desc, text.as_bytes(), &DecodeOptions::default()).unwrap();
        let Some(prost_reflect::Value::F64(got)) =
            m.get_field_by_name("number_value").map(|v| v.into_owned())
        else {
            panic!("{text}: not a number value");
        };
        assert_eq!(got, text.parse::<f64>().unwrap(), "{text}");
    }
    json_to_proto(&with_type(
        t_of("google.protobuf.Struct"),
        br#"{"":{"":901522605637446080}}"#,
    ));
}

/// The first byte that picks the type `name`.
fn t_of(name: &str) -> u8 {
    u8::try_from(
        types()
            .all
            .iter()
            .position(|m| m.full_name() == name)
            .unwrap(),
    )
    .unwrap()
}

/// Found by `wire_bytes`: a string sent twice, the first time not UTF-8. Decoding fails on the
/// first; the direct writer only looked at the last and wrote `{}`. It now checks every
/// occurrence of a scalar field, and of an overwritten oneof member.
#[test]
fn an_earlier_invalid_occurrence_of_a_field_fails_both_writers() {
    let t = t_of("grpc.gateway.examples.examplepb.Body");
    // name (1) = "\x08\xf5..." (not UTF-8), then name = "".
    let bytes = [0x0a, 0x02, 0x08, 0xf5, 0x0a, 0x00];
    let desc = pick(&[t]).unwrap().0;
    assert!(DynamicMessage::decode(desc.clone(), &bytes[..]).is_err());
    for opts in &ENCODINGS {
        assert!(
            types()
                .plans
                .type_plan(desc)
                .unwrap()
                .encode(&bytes, opts)
                .is_err()
        );
    }
    proto_to_json(&with_type(t, &bytes));
}

/// Found by `wire_bytes`: an empty packed run of a repeated field sets no element; the direct
/// writer wrote `"publicDependency": []` where prost-reflect leaves the field out.
#[test]
fn an_empty_packed_run_is_no_element() {
    // FileDescriptorSet { file: [FileDescriptorProto { public_dependency: packed [] }] }
    let bytes = [0x0a, 0x02, 0x52, 0x00];
    let desc = pick(&[t_of("google.protobuf.FileDescriptorSet")])
        .unwrap()
        .0;
    let json = types()
        .plans
        .type_plan(desc)
        .unwrap()
        .encode(&bytes, &ENCODINGS[0])
        .unwrap();
    assert_eq!(String::from_utf8(json).unwrap(), r#"{"file":[{}]}"#);
    proto_to_json(&with_type(
        t_of("google.protobuf.FileDescriptorSet"),
        &bytes,
    ));
}

/// Found by `wire_bytes` (40,000 cases): a key of more than 32 bits, or of field number 0,
/// inside a wrapper type. Decoding refuses it; the direct writer read past it as field 0.
#[test]
fn a_bad_key_inside_a_well_known_type_fails_both_writers() {
    let t = t_of("google.protobuf.UInt32Value");
    let desc = pick(&[t]).unwrap().0;
    let mut too_long = vec![0x80];
    prost::encoding::encode_key(
        4_194_304,
        prost::encoding::WireType::LengthDelimited,
        &mut too_long,
    );
    too_long.push(0);
    for bytes in [too_long, vec![0x02, 0x00]] {
        assert!(
            DynamicMessage::decode(desc.clone(), bytes.as_slice()).is_err(),
            "{bytes:?}"
        );
        assert!(
            types()
                .plans
                .type_plan(desc)
                .unwrap()
                .encode(&bytes, &ENCODINGS[0])
                .is_err(),
            "{bytes:?}"
        );
        proto_to_json(&with_type(t, &bytes));
    }
}

/// Found by cargo-fuzz (`json_to_proto`): `"888...881"` (out of a float's range) as a
/// `FloatValue` reads as infinity, which prost-reflect writes as `null` (wrappers go through
/// serde), which reads back as no value. Known and left as is (both writers write `null`);
/// the invariant skips non-finite wrappers.
#[test]
fn a_non_finite_wrapper_is_written_as_null_by_both_writers() {
    let t = t_of("google.protobuf.FloatValue");
    let body = format!("\"{}1\"", "8".repeat(50));
    let desc = pick(&[t]).unwrap().0;
    let m = decode_json(desc, body.as_bytes(), &DecodeOptions::default()).unwrap();
    assert!(non_finite_wrapper(&m));
    assert_eq!(
        assert_writers_agree(&m, &ENCODINGS[0]),
        Some(serde_json::Value::Null)
    );
    json_to_proto(&with_type(t, body.as_bytes()));
}

/// Found by cargo-fuzz (`proto_to_json`): a key of field number 0 inside a `Timestamp`; the
/// direct writer's own reader of `Timestamp`/`Duration` did not check keys and wrote the epoch.
#[test]
fn a_bad_key_inside_a_timestamp_fails_both_writers() {
    for name in ["google.protobuf.Timestamp", "google.protobuf.Duration"] {
        let t = t_of(name);
        let desc = pick(&[t]).unwrap().0;
        let bytes = [0x00, 0x25];
        assert!(DynamicMessage::decode(desc.clone(), &bytes[..]).is_err());
        assert!(
            types()
                .plans
                .type_plan(desc)
                .unwrap()
                .encode(&bytes, &ENCODINGS[0])
                .is_err()
        );
        proto_to_json(&with_type(t, &bytes));
        // An unknown field of another wire type is skipped by both.
        let unknown = [0x08, 0x01, 0x1a, 0x01, 0x00];
        proto_to_json(&with_type(t, &unknown));
    }
}

/// Found by cargo-fuzz (`proto_to_json`): a ten-byte varint whose last byte carries more than
/// the 64th bit. prost refuses it; the direct writer dropped the extra bits and wrote a number.
#[test]
fn a_varint_over_64_bits_fails_both_writers() {
    let t = t_of("demo.v1.ListUsersResponse");
    let desc = pick(&[t]).unwrap().0;
    let bytes = [
        0x18, 0xff, 0xff, 0x9a, 0xff, 0x9a, 0xff, 0x9a, 0x9a, 0xff, 0x63,
    ];
    assert!(DynamicMessage::decode(desc.clone(), &bytes[..]).is_err());
    assert!(
        types()
            .plans
            .type_plan(desc)
            .unwrap()
            .encode(&bytes, &ENCODINGS[0])
            .is_err()
    );
    proto_to_json(&with_type(t, &bytes));
    // The largest valid one (u64::MAX) is read by both.
    let max = [
        0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
    ];
    assert!(DynamicMessage::decode(desc.clone(), &max[..]).is_ok());
    proto_to_json(&with_type(t, &max));
}

/// Found by cargo-fuzz (`proto_to_json`, input kept as found): a map entry whose key was sent
/// twice, the first one not valid; decoding reads every occurrence, the direct writer read the
/// last only. Every occurrence of a map entry's scalar key and value is checked now.
#[test]
fn an_earlier_invalid_map_key_fails_both_writers() {
    proto_to_json(&[
        0x6e, 0x61, 0x0f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x58, 0x58, 0x2a, 0x58,
        0x58, 0x58, 0x0a, 0x0a, 0x01, 0x0a, 0x0a, 0x0a, 0xc8, 0x64, 0x0a, 0x00, 0x00, 0x00, 0x0a,
        0x58, 0x58, 0x58, 0x58, 0x58, 0x58, 0x0a, 0x0a, 0x01, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a,
        0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x1d, 0x0a, 0x0a,
        0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a,
        0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x08, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a,
        0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x25, 0x0a, 0xff, 0xff, 0x30,
        0xd8, 0xff, 0x49, 0xff, 0xff, 0x00,
    ]);
}

/// Found by cargo-fuzz (`proto_to_json`, input kept as found): a `Struct` with the key `""`
/// twice, the first entry's value not a valid `Value` (wire type 7). Decoding reads both and
/// fails; the native Struct writer kept the last entry only and wrote `{"":null}`. A shadowed
/// entry's value is decoded all the same now.
#[test]
fn a_shadowed_struct_entry_that_does_not_decode_fails_both_writers() {
    proto_to_json(&[73, 50, 3, 10, 1, 105, 10, 3, 18, 1, 47, 10, 3, 82, 1, 47]);
}

/// Found by cargo-fuzz (`proto_to_json`, input kept as found): a map entry whose message value
/// came once as a fixed32 field, then length-delimited; decoding refuses the first, the direct
/// writer kept the last. Every occurrence of a message value must be length-delimited now.
#[test]
fn a_map_message_value_of_another_wire_type_fails_both_writers() {
    proto_to_json(&[
        227, 10, 123, 10, 0, 24, 24, 240, 88, 24, 24, 24, 10, 0, 24, 24, 10, 0, 24, 24, 24, 24, 24,
        24, 24, 24, 240, 88, 24, 120, 120, 120, 65, 64, 64, 24, 21, 24, 103, 21, 24, 24, 24, 21,
        24, 24, 24, 24, 24, 120, 120, 131, 120, 120, 120, 120, 120, 120, 24, 24, 24, 120, 120, 120,
        120, 65, 64, 64, 24, 21, 24, 21, 24, 24, 24, 21, 24, 24, 24, 24, 24, 120, 120, 120, 120,
        120, 120, 120, 10, 0, 18, 0, 10, 0, 50, 0, 24, 64, 65, 64, 64, 49, 120, 120, 120, 36, 24,
        21, 120, 120, 120, 120, 10, 0, 120, 120, 120, 120, 10, 0, 18, 0, 10, 0, 24, 64, 65, 64, 64,
        24, 21, 24, 24, 120, 120, 24, 24, 120, 0, 24, 24, 24, 24, 24, 24, 24, 24, 240, 88, 24, 120,
        120, 120, 46,
    ]);
}
