//! The direct wire -> JSON path against prost-reflect's serializer, on every message type of
//! the demo services, the transcoding fixture and the two descriptor corpora (googleapis'
//! library example, grpc-gateway's test protos), filled with random values (seeded, so a
//! failure repeats), and on wire forms a serializer never writes itself (fields repeated,
//! concatenated messages, unknown fields, unpacked repeated scalars).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use prost::Message;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, Value,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::EncodeOptions;
use super::direct::{Plans, Unsupported, encode};
use super::scalar::is_well_known_type;

fn pools() -> Vec<DescriptorPool> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut pools: Vec<DescriptorPool> = [
        "descriptors/demo.binpb",
        "tests/corpus/googleapis-library.binpb",
        "tests/corpus/grpc-gateway.binpb",
    ]
    .iter()
    .map(|p| {
        let bytes = std::fs::read(format!("{root}/{p}")).unwrap();
        DescriptorPool::decode(bytes.as_slice()).unwrap()
    })
    .collect();
    pools.push(super::test_support::pool().clone());
    pools
}

/// Every non-map-entry message type of the pools.
pub(super) fn message_types() -> Vec<MessageDescriptor> {
    pools()
        .iter()
        .flat_map(|p| p.all_messages().collect::<Vec<_>>())
        .filter(|m| !m.is_map_entry())
        .collect()
}

const STRINGS: &[&str] = &[
    "",
    "plain",
    "quote \" backslash \\ slash /",
    "line\nbreak\ttab\r",
    "\u{1}\u{1f}control",
    "é ü ß 中文",
    "emoji 😀",
    "</script>",
];

const FLOATS: &[f64] = &[
    0.0,
    -0.0,
    1.0,
    -2.5,
    1e-7,
    123_456_789.125,
    1e300,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::MIN_POSITIVE,
];

fn random_scalar(kind: &Kind, rng: &mut StdRng) -> Value {
    let wide = |rng: &mut StdRng| -> i64 {
        match rng.random_range(0..4) {
            0 => 0,
            1 => rng.random_range(-100..100),
            2 => i64::MIN,
            _ => rng.random(),
        }
    };
    match kind {
        Kind::Double => Value::F64(FLOATS[rng.random_range(0..FLOATS.len())]),
        Kind::Float => Value::F32(FLOATS[rng.random_range(0..FLOATS.len())] as f32),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(wide(rng) as i32),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(wide(rng)),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(wide(rng) as u32),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(wide(rng) as u64),
        Kind::Bool => Value::Bool(rng.random()),
        Kind::String => Value::String(STRINGS[rng.random_range(0..STRINGS.len())].to_string()),
        Kind::Bytes => {
            let n = rng.random_range(0..6);
            Value::Bytes(
                (0..n)
                    .map(|_| rng.random::<u8>())
                    .collect::<Vec<u8>>()
                    .into(),
            )
        }
        Kind::Enum(e) => {
            let values: Vec<i32> = e.values().map(|v| v.number()).collect();
            // Open enums also carry numbers their descriptor does not name.
            if e.parent_file().syntax() == prost_reflect::Syntax::Proto3
                && rng.random_range(0..5) == 0
            {
                Value::EnumNumber(77)
            } else {
                Value::EnumNumber(values[rng.random_range(0..values.len())])
            }
        }
        Kind::Message(m) => Value::Message(random_message(m, rng, 9)),
    }
}

fn random_key(kind: &Kind, rng: &mut StdRng) -> MapKey {
    match random_scalar(kind, rng) {
        Value::Bool(b) => MapKey::Bool(b),
        Value::I32(v) => MapKey::I32(v),
        Value::I64(v) => MapKey::I64(v),
        Value::U32(v) => MapKey::U32(v),
        Value::U64(v) => MapKey::U64(v),
        Value::String(s) => MapKey::String(s),
        other => panic!("not a map key: {other:?}"),
    }
}

fn random_value(f: &FieldDescriptor, rng: &mut StdRng, depth: usize) -> Option<Value> {
    let kind = f.kind();
    let one = |rng: &mut StdRng| -> Option<Value> {
        match &kind {
            Kind::Message(m) if depth >= 3 => {
                // Deep enough: an empty message (or nothing for a well-known type).
                (!is_well_known_type(m.full_name()))
                    .then(|| Value::Message(DynamicMessage::new(m.clone())))
            }
            Kind::Message(m) => Some(Value::Message(random_message(m, rng, depth + 1))),
            k => Some(random_scalar(k, rng)),
        }
    };
    if f.is_map() {
        let Kind::Message(entry) = &kind else {
            return None;
        };
        let (k, v) = (entry.map_entry_key_field(), entry.map_entry_value_field());
        let mut map = std::collections::HashMap::new();
        for _ in 0..rng.random_range(0..4) {
            let value = match v.kind() {
                Kind::Message(m) if depth >= 3 || is_well_known_type(m.full_name()) => {
                    Value::Message(DynamicMessage::new(m))
                }
                Kind::Message(m) => Value::Message(random_message(&m, rng, depth + 1)),
                k => random_scalar(&k, rng),
            };
            map.insert(random_key(&k.kind(), rng), value);
        }
        return Some(Value::Map(map));
    }
    if f.is_list() {
        let n = rng.random_range(0..4);
        return Some(Value::List((0..n).filter_map(|_| one(rng)).collect()));
    }
    one(rng)
}

/// A message with about half of its fields set to random values. Well-known types get
/// values their JSON form can hold.
pub(super) fn random_message(
    desc: &MessageDescriptor,
    rng: &mut StdRng,
    depth: usize,
) -> DynamicMessage {
    let mut m = DynamicMessage::new(desc.clone());
    match desc.full_name() {
        "google.protobuf.Timestamp" => {
            m.set_field_by_name("seconds", Value::I64(rng.random_range(0..4_000_000_000)));
            m.set_field_by_name("nanos", Value::I32(rng.random_range(0..1_000_000_000)));
            return m;
        }
        "google.protobuf.Duration" => {
            m.set_field_by_name("seconds", Value::I64(rng.random_range(0..1_000_000)));
            m.set_field_by_name("nanos", Value::I32(rng.random_range(0..1_000_000_000)));
            return m;
        }
        "google.protobuf.FieldMask" => {
            m.set_field_by_name(
                "paths",
                Value::List(vec![Value::String("display_name".into())]),
            );
            return m;
        }
        // Any needs a resolvable type; Struct/Value/ListValue are left empty.
        "google.protobuf.Any"
        | "google.protobuf.Struct"
        | "google.protobuf.Value"
        | "google.protobuf.ListValue" => return m,
        _ => {}
    }
    if depth > 9 {
        return m;
    }
    for f in desc.fields() {
        if rng.random_range(0..2) == 0 {
            continue;
        }
        if let Some(v) = random_value(&f, rng, depth) {
            m.set_field(&f, v);
        }
    }
    m
}

/// prost-reflect's JSON of the message `bytes` decode to (`None` when it cannot write it:
/// then neither path is compared).
fn reference(desc: &MessageDescriptor, bytes: &[u8], opts: &EncodeOptions) -> Option<Vec<u8>> {
    let msg = DynamicMessage::decode(desc.clone(), bytes).ok()?;
    super::encode_response(&msg, None, opts).ok()
}

/// Whether a map field is reachable from `desc` (prost-reflect writes map entries in hash
/// order: such output is compared as values, the rest byte for byte).
fn reaches_a_map(desc: &MessageDescriptor, seen: &mut Vec<String>) -> bool {
    if seen.iter().any(|s| s == desc.full_name()) {
        return false;
    }
    seen.push(desc.full_name().to_string());
    desc.fields()
        .any(|f| f.is_map() || matches!(f.kind(), Kind::Message(m) if reaches_a_map(&m, seen)))
}

pub(super) const OPTIONS: [EncodeOptions; 2] = [
    EncodeOptions {
        use_proto_field_names: false,
        emit_unpopulated: false,
    },
    EncodeOptions {
        use_proto_field_names: true,
        emit_unpopulated: true,
    },
];

static COMPARED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Checks one wire form of `desc` under both option sets; returns whether the direct path
/// refused it.
fn check(desc: &MessageDescriptor, plans: &Plans, bytes: &[u8], what: &str) -> bool {
    let mut refused = false;
    for opts in &OPTIONS {
        let Some(want_bytes) = reference(desc, bytes, opts) else {
            continue;
        };
        let want: serde_json::Value = serde_json::from_slice(&want_bytes).unwrap();
        COMPARED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match encode(plans, bytes, opts) {
            Ok(json) => {
                if !reaches_a_map(desc, &mut Vec::new()) {
                    assert_eq!(
                        String::from_utf8_lossy(&json),
                        String::from_utf8_lossy(&want_bytes),
                        "{} ({what}, {opts:?}): not the same bytes",
                        desc.full_name()
                    );
                }
                let got: serde_json::Value = serde_json::from_slice(&json).unwrap_or_else(|e| {
                    panic!(
                        "{} ({what}): invalid JSON ({e}): {}",
                        desc.full_name(),
                        String::from_utf8_lossy(&json)
                    )
                });
                assert_eq!(
                    got,
                    want,
                    "{} ({what}, {opts:?})\n direct: {}",
                    desc.full_name(),
                    String::from_utf8_lossy(&json)
                );
            }
            Err(Unsupported(_)) => refused = true,
        }
    }
    refused
}

#[test]
fn random_messages_encode_as_prost_reflect_writes_them() {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let types = message_types();
    assert!(types.len() > 100, "only {} message types", types.len());
    let (mut checked, mut refused) = (0, 0);
    for desc in &types {
        let plans = Plans::new(desc);
        for _ in 0..8 {
            let msg = random_message(desc, &mut rng, 0);
            let bytes = msg.encode_to_vec();
            checked += 1;
            if check(desc, &plans, &bytes, "one message") {
                refused += 1;
            }
        }
    }
    // A message as a serializer writes it is always handled by the direct path.
    assert_eq!(refused, 0, "{refused} of {checked} refused");
    let compared = COMPARED.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "{} types, {checked} messages, {compared} comparisons",
        types.len()
    );
    assert!(compared > checked, "only {compared} of {checked} compared");
}

#[test]
fn wire_forms_a_serializer_does_not_write_are_handled_or_refused() {
    let mut rng = StdRng::seed_from_u64(0xfeed);
    let (mut checked, mut refused) = (0, 0);
    for desc in &message_types() {
        let plans = Plans::new(desc);
        for _ in 0..4 {
            // Two messages back to back: the decoder merges them (last scalar wins, lists
            // append, messages merge, oneofs keep the last member).
            let mut bytes = random_message(desc, &mut rng, 0).encode_to_vec();
            bytes.extend(random_message(desc, &mut rng, 0).encode_to_vec());
            // An unknown field (number 536870911, the largest), skipped by both.
            bytes.extend([0xf8, 0xff, 0xff, 0xff, 0x0f, 0x01]);
            checked += 1;
            if check(desc, &plans, &bytes, "concatenated") {
                refused += 1;
            }
        }
    }
    // Most merges need no refusal (only singular messages and map keys sent twice do).
    assert!(refused * 2 < checked, "{refused} of {checked} refused");
}

#[test]
fn unpacked_repeated_scalars_and_bad_bytes() {
    let pool = super::test_support::pool();
    let Some(desc) = pool.all_messages().find(|m| {
        m.fields().any(|f| {
            f.is_list() && f.number() < 16 && matches!(f.kind(), Kind::Int32 | Kind::Int64)
        })
    }) else {
        panic!("the fixture has a repeated integer field");
    };
    let f = desc
        .fields()
        .find(|f| f.is_list() && f.number() < 16 && matches!(f.kind(), Kind::Int32 | Kind::Int64))
        .unwrap();
    // Each element as its own varint field (the unpacked form), then one packed run.
    let tag = |wire: u32| -> u8 { u8::try_from((f.number() << 3) | wire).unwrap() };
    let bytes = vec![tag(0), 1, tag(0), 2, tag(2), 2, 3, 4];
    let plans = Plans::new(&desc);
    assert!(!check(&desc, &plans, &bytes, "unpacked"));
    let json = encode(&plans, &bytes, &OPTIONS[0]).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let list: Vec<String> = v[f.json_name()]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.to_string().trim_matches('"').to_string())
        .collect();
    assert_eq!(list, ["1", "2", "3", "4"]);
    // Truncated input is refused, never a panic.
    for cut in 0..bytes.len() {
        let _ = encode(&plans, &bytes[..cut], &OPTIONS[0]);
    }
    assert!(encode(&plans, &[tag(2), 9, 1], &OPTIONS[0]).is_err());
}

#[test]
fn free_form_content_is_written_as_prost_reflect_writes_it() {
    // Struct, Value and ListValue with content (random messages leave them empty), from
    // JSON read by prost-reflect; then wire forms only a backend writes: keys out of order
    // and given twice, a Value with no kind, a map entry without its value.
    let desc = super::test_support::msg("Everything");
    let plans = Plans::new(&desc);
    let mut rng = StdRng::seed_from_u64(0x5747);
    fn random_json(rng: &mut StdRng, depth: usize) -> serde_json::Value {
        match rng.random_range(0..if depth > 3 { 5 } else { 7 }) {
            0 => serde_json::Value::Null,
            1 => serde_json::Value::Bool(rng.random()),
            2 => serde_json::json!(rng.random_range(-1e6..1e6)),
            3 => serde_json::json!(rng.random_range(-1000..1000)),
            4 => serde_json::json!(["", "a", "é\"\\\n", "NaN"][rng.random_range(0..4)]),
            5 => serde_json::Value::Array(
                (0..rng.random_range(0..4))
                    .map(|_| random_json(rng, depth + 1))
                    .collect(),
            ),
            _ => serde_json::Value::Object(
                (0..rng.random_range(0..4))
                    .map(|_| {
                        (
                            format!("k{}", rng.random_range(0..9)),
                            random_json(rng, depth + 1),
                        )
                    })
                    .collect(),
            ),
        }
    }
    let mut refused = 0;
    for _ in 0..300 {
        let body = serde_json::json!({"meta": random_json(&mut rng, 0).as_object().cloned().unwrap_or_default(), "dyn": random_json(&mut rng, 0)});
        let msg =
            super::decode_json(&desc, body.to_string().as_bytes(), &Default::default()).unwrap();
        if check(&desc, &plans, &msg.encode_to_vec(), "free-form") {
            refused += 1;
        }
    }
    assert_eq!(refused, 0);
    // meta (31) = Struct {"b": 1.5, "a": (Value with no kind), "b": "x"} as a backend may
    // write it: keys out of order, "b" twice (the last one counts); dyn (37) = a Value
    // holding an entry without a value inside a struct_value.
    let entry = |key: &str, value: &[u8]| -> Vec<u8> {
        let mut e = vec![0x0a, u8::try_from(key.len()).unwrap()];
        e.extend_from_slice(key.as_bytes());
        if !value.is_empty() || key == "a" {
            e.push(0x12);
            e.push(u8::try_from(value.len()).unwrap());
            e.extend_from_slice(value);
        }
        let mut out = vec![0x0a, u8::try_from(e.len()).unwrap()];
        out.extend(e);
        out
    };
    let mut number = vec![0x11];
    number.extend(1.5f64.to_le_bytes());
    let mut meta = entry("b", &number);
    meta.extend(entry("a", &[]));
    meta.extend(entry("b", &[0x1a, 0x01, b'x']));
    let mut bytes = vec![0xfa, 0x01, u8::try_from(meta.len()).unwrap()];
    bytes.extend(&meta);
    let inner = entry("z", &[]);
    let mut dyn_value = vec![0x2a, u8::try_from(inner.len()).unwrap()];
    dyn_value.extend(inner);
    bytes.extend([0xaa, 0x02, u8::try_from(dyn_value.len()).unwrap()]);
    bytes.extend(dyn_value);
    assert!(!check(&desc, &plans, &bytes, "backend forms"));
    let json = encode(&plans, &bytes, &OPTIONS[0]).unwrap();
    assert_eq!(
        String::from_utf8(json).unwrap(),
        r#"{"meta":{"a":null,"b":"x"},"dyn":{"z":null}}"#
    );
}
