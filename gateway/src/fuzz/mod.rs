//! Fuzz entry points: one function per surface an attacker reaches, each taking arbitrary bytes
//! and checking invariants, not only that nothing panics (a violated invariant panics, which is
//! what fuzzers and property tests catch).
//!
//! Driven two ways: bounded proptest runs beside this file ([`tests`], stable Rust, part of
//! `cargo test`), and cargo-fuzz targets in `fuzz/` at the repository root (nightly, for long
//! runs; see the README, "Hardening"). Compiled for tests and with the `fuzzing` feature only.
//!
//! | entry point | surface | invariants |
//! |---|---|---|
//! | [`json_to_proto`] | a JSON request body | the direct decoder gives prost-reflect's message or its very error; decode(encode(m)) == m; the canonical JSON of m reads back as m and writes the same JSON; the direct writer writes the same JSON as prost-reflect |
//! | [`proto_to_json`] | a backend's reply bytes | the direct writer and prost-reflect agree (the direct one may refuse, never differ); decode(encode(m)) == m |
//! | [`query_binding`] | a URL query string | a bound message survives decode(encode(m)); the direct path gives the same message or error |
//! | [`path`] | a request path; a `google.api.http` template | normalising is idempotent; a template parses back from its own text; a path written from a template matches it and binds its values |
//! | [`graphql_limits`] | a GraphQL document | the analysis ends without overflowing the stack, and what it passes is within the limits |
//! | [`jwt`] | an `Authorization: Bearer` token | only the signed token verifies; any change to it is refused |
//! | [`config_yaml`] | a config file | no panic; a config that loads writes back to YAML that loads to the same config |
//! | [`http1_framing`] | the bytes of an HTTP/1 connection | the framing watch's verdict does not depend on how reads split the bytes |
//! | [`grpc_web_body`] | a gRPC-Web request body | no panic; the text form (base64, whole or in chunks) reads as the binary form does; an accepted message framed again is the body |
//!
//! The first byte of the input picks the message type where one is needed, among the demo
//! services' types and grpc-gateway's test types (well-known types, maps, oneofs, enums of
//! every kind).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, OnceLock};

use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, ReflectMessage};

use crate::transcode::direct::Plans;
use crate::transcode::{
    BodyTarget, DecodeOptions, EncodeOptions, HttpRequestParts, decode_json, decode_request,
    encode_request, encode_response,
};

#[cfg(test)]
mod tests;

/// The message types inputs choose from, and one set of direct-writer plans for all of them.
struct Types {
    all: Vec<MessageDescriptor>,
    plans: Arc<Plans>,
}

fn types() -> &'static Types {
    static TYPES: OnceLock<Types> = OnceLock::new();
    TYPES.get_or_init(|| {
        let mut all: Vec<MessageDescriptor> = [
            &include_bytes!("../../../descriptors/demo.binpb")[..],
            &include_bytes!("../../../tests/corpus/grpc-gateway.binpb")[..],
        ]
        .iter()
        .flat_map(|bytes| {
            let pool = DescriptorPool::decode(*bytes).expect("a bundled descriptor set");
            pool.all_messages().collect::<Vec<_>>()
        })
        .filter(|m| !m.is_map_entry())
        .collect();
        all.sort_by(|a, b| a.full_name().cmp(b.full_name()));
        all.dedup_by(|a, b| a.full_name() == b.full_name());
        let plans = Plans::for_types(all.iter().cloned());
        Types { all, plans }
    })
}

/// The message type the first byte picks, and the rest of the input.
fn pick(data: &[u8]) -> Option<(&'static MessageDescriptor, &[u8])> {
    let (&first, rest) = data.split_first()?;
    let all = &types().all;
    Some((&all[usize::from(first) % all.len()], rest))
}

/// Both option sets of the REST encoder.
const ENCODINGS: [EncodeOptions; 2] = [
    EncodeOptions {
        use_proto_field_names: false,
        emit_unpopulated: false,
    },
    EncodeOptions {
        use_proto_field_names: true,
        emit_unpopulated: true,
    },
];

/// The message as bytes that are equal exactly when the messages are (map entries sorted).
fn canonical(m: &DynamicMessage) -> Vec<u8> {
    crate::cache::key::request_bytes(m, true)
}

/// decode(encode(m)) == m, compared on canonical bytes (NaN-safe, map-order-free).
fn assert_wire_round_trip(m: &DynamicMessage) {
    let bytes = m.encode_to_vec();
    let back = DynamicMessage::decode(m.descriptor(), bytes.as_slice()).unwrap_or_else(|e| {
        panic!(
            "{}: its own encoding does not decode: {e}",
            m.descriptor().full_name()
        )
    });
    assert_eq!(
        canonical(&back),
        canonical(m),
        "{}: decode(encode(m)) != m",
        m.descriptor().full_name()
    );
}

/// prost-reflect's JSON of `m` and the direct writer's of its bytes agree: same JSON value,
/// or the direct writer refuses. Returns prost-reflect's JSON (`None` when it cannot write it:
/// then the direct writer must not either).
fn assert_writers_agree(m: &DynamicMessage, opts: &EncodeOptions) -> Option<serde_json::Value> {
    let bytes = m.encode_to_vec();
    let reflect = encode_response(m, None, opts).ok();
    let direct = types()
        .plans
        .type_plan(&m.descriptor())
        .map(|plan| plan.encode(&bytes, opts));
    let reflect_value = reflect.as_ref().map(|j| {
        serde_json::from_slice::<serde_json::Value>(j).expect("prost-reflect writes JSON")
    });
    if let Some(Ok(direct)) = direct {
        let direct_value: serde_json::Value = serde_json::from_slice(&direct).unwrap_or_else(|e| {
            panic!(
                "{}: the direct writer wrote invalid JSON ({e}): {}",
                m.descriptor().full_name(),
                String::from_utf8_lossy(&direct)
            )
        });
        assert_eq!(
            Some(&direct_value),
            reflect_value.as_ref(),
            "{} ({opts:?}): the direct writer and prost-reflect disagree",
            m.descriptor().full_name()
        );
    }
    reflect_value
}

/// The direct decoder (JSON -> wire bytes, no message built) answers as prost-reflect does:
/// the same message (compared on canonical bytes), or the same error (kind, field, words).
fn assert_decoders_agree(
    desc: &MessageDescriptor,
    parts: &HttpRequestParts<'_>,
    opts: &DecodeOptions,
    reference: &Result<DynamicMessage, crate::transcode::TranscodeError>,
) {
    let Some(plan) = types().plans.type_plan(desc) else {
        return;
    };
    let direct = encode_request(desc, Some(&plan), parts, opts);
    let body = format!(
        "{} ? {}",
        String::from_utf8_lossy(parts.body),
        parts.query.unwrap_or_default()
    );
    match (reference, direct) {
        (Ok(want), Ok(got)) => {
            let back =
                DynamicMessage::decode(desc.clone(), got.bytes.as_slice()).unwrap_or_else(|e| {
                    panic!(
                        "{}: direct bytes do not decode ({e}): {body}",
                        desc.full_name()
                    )
                });
            assert_eq!(
                canonical(&back),
                canonical(want),
                "{}: the direct decoder and prost-reflect disagree on {body}",
                desc.full_name()
            );
        }
        (Err(want), Err(got)) => assert_eq!(
            (&got.kind, &got.field, &got.message),
            (&want.kind, &want.field, &want.message),
            "{}: the decoders refuse differently: {body}",
            desc.full_name()
        ),
        (want, got) => panic!(
            "{}: direct decoder {got:?}, prost-reflect {want:?}: {body}",
            desc.full_name()
        ),
    }
}

/// A JSON request body, as `POST /pkg.Service/Method` reads it.
pub fn json_to_proto(data: &[u8]) {
    let Some((desc, json)) = pick(data) else {
        return;
    };
    let reference = decode_json(desc, json, &DecodeOptions::default());
    let parts = HttpRequestParts {
        body: json,
        body_target: &BodyTarget::Whole,
        path_bindings: &[],
        query: None,
        fill_update_mask: false,
    };
    assert_decoders_agree(desc, &parts, &DecodeOptions::default(), &reference);
    let Ok(m) = reference else {
        return;
    };
    assert_wire_round_trip(&m);
    for opts in &ENCODINGS {
        let Some(written) = assert_writers_agree(&m, opts) else {
            continue;
        };
        if non_finite_wrapper(&m) {
            // Known: prost-reflect writes a `FloatValue`/`DoubleValue` holding an infinity or
            // NaN as `null` (through serde), which reads back as no value (both writers agree;
            // see the README, "Under attack").
            continue;
        }
        // Canonical JSON is stable: it reads back as the same message, which writes the same.
        let text = written.to_string();
        let again =
            decode_json(desc, text.as_bytes(), &DecodeOptions::default()).unwrap_or_else(|e| {
                panic!(
                    "{}: its own JSON does not read back ({e}): {text}",
                    desc.full_name()
                )
            });
        // One exception: a `google.protobuf.Value` with no kind set (a blank body) writes as
        // `null`, which reads back as `null_value` set: the same JSON, another message.
        let unset_value =
            desc.full_name() == "google.protobuf.Value" && m.fields().next().is_none();
        if !unset_value {
            assert_eq!(
                canonical(&again),
                canonical(&m),
                "{}: JSON round trip changed the message: {text}",
                desc.full_name()
            );
        }
        let rewritten: serde_json::Value =
            serde_json::from_slice(&encode_response(&again, None, opts).expect("written once"))
                .expect("JSON");
        assert_eq!(
            rewritten,
            written,
            "{}: canonical JSON is not stable",
            desc.full_name()
        );
    }
}

/// Whether `m` holds, at any depth, a `FloatValue` or `DoubleValue` that is not finite.
fn non_finite_wrapper(m: &DynamicMessage) -> bool {
    use prost_reflect::Value;
    fn value(v: &Value) -> bool {
        match v {
            Value::Message(m) => non_finite_wrapper(m),
            Value::List(items) => items.iter().any(value),
            Value::Map(entries) => entries.values().any(value),
            _ => false,
        }
    }
    let name = m.descriptor().full_name().to_owned();
    if name == "google.protobuf.FloatValue" || name == "google.protobuf.DoubleValue" {
        return match m.get_field_by_name("value").as_deref() {
            Some(Value::F32(x)) => !x.is_finite(),
            Some(Value::F64(x)) => !x.is_finite(),
            _ => false,
        };
    }
    m.fields().any(|(_, v)| value(v))
}

/// A backend's reply bytes, as the REST door writes them (both writers).
pub fn proto_to_json(data: &[u8]) {
    let Some((desc, bytes)) = pick(data) else {
        return;
    };
    let decoded = DynamicMessage::decode(desc.clone(), bytes);
    for opts in &ENCODINGS {
        let reflect = decoded
            .as_ref()
            .ok()
            .and_then(|m| encode_response(m, None, opts).ok())
            .map(|j| serde_json::from_slice::<serde_json::Value>(&j).expect("JSON"));
        let Some(plan) = types().plans.type_plan(desc) else {
            continue;
        };
        if let Ok(direct) = plan.encode(bytes, opts) {
            let direct: serde_json::Value = serde_json::from_slice(&direct).unwrap_or_else(|e| {
                panic!(
                    "{}: the direct writer wrote invalid JSON ({e}): {}",
                    desc.full_name(),
                    String::from_utf8_lossy(&direct)
                )
            });
            assert_eq!(
                Some(&direct),
                reflect.as_ref(),
                "{} ({opts:?}): the direct writer wrote what prost-reflect would not",
                desc.full_name()
            );
        }
    }
    if let Ok(m) = decoded {
        assert_wire_round_trip(&m);
    }
}

/// A URL query string bound onto a message (no body, no path variables).
pub fn query_binding(data: &[u8]) {
    let Some((desc, query)) = pick(data) else {
        return;
    };
    let Ok(query) = std::str::from_utf8(query) else {
        return;
    };
    for plus_is_space in [false, true] {
        let opts = DecodeOptions {
            query_plus_is_space: plus_is_space,
            ..DecodeOptions::default()
        };
        let parts = HttpRequestParts {
            body: &[],
            body_target: &BodyTarget::None,
            path_bindings: &[],
            query: Some(query),
            fill_update_mask: false,
        };
        let reference = decode_request(desc, &parts, &opts);
        assert_decoders_agree(desc, &parts, &opts, &reference);
        if let Ok(m) = reference {
            assert_wire_round_trip(&m);
        }
    }
}

/// A request path and a path template (the input split at its first `\n`: template, path).
pub fn path(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (template, path) = text.split_once('\n').unwrap_or((&text, &text));
    // Normalising is idempotent.
    if let Ok(once) = crate::ingress::path::normalize(path) {
        let twice = crate::ingress::path::normalize(&once)
            .unwrap_or_else(|e| panic!("{path:?} normalised to {once:?}, which is refused: {e}"));
        assert_eq!(twice, once, "normalising {path:?} twice changed it");
    }
    let Ok(parsed) = crate::rest::template::PathTemplate::parse(template) else {
        return;
    };
    // A template parses back from its own text, to the same shape and variables.
    let again = crate::rest::template::PathTemplate::parse(parsed.as_str()).unwrap_or_else(|e| {
        panic!(
            "{template:?}: its text {:?} does not parse: {e}",
            parsed.as_str()
        )
    });
    assert_eq!(again.segments(), parsed.segments(), "{template:?}");
    assert_eq!(again.variables(), parsed.variables(), "{template:?}");
    assert_eq!(again.verb(), parsed.verb(), "{template:?}");
    // A path written from the template matches it, binding what was written.
    let (written, want) = crate::rest::template::example_path(&parsed);
    let mut router = crate::rest::router::Router::new();
    let get = http::Method::GET;
    if router.insert(get.clone(), parsed.clone(), ()).is_err() {
        return;
    }
    match router.lookup(&get, &written) {
        crate::rest::router::Lookup::Matched { bindings, .. } => {
            let got: Vec<(String, String)> = bindings
                .into_iter()
                .map(|b| (b.field_path.join("."), b.value))
                .collect();
            assert_eq!(got, want, "{template:?}: {written:?} bound other values");
        }
        _ => panic!("{template:?}: the path {written:?} written from it does not match it"),
    }
    // Any other path: no panic.
    let _ = router.lookup(&get, path);
}

/// A GraphQL document checked against the query limits, over a schema where every field is a
/// list of the same object type (so sizes multiply at each level).
pub fn graphql_limits(data: &[u8]) {
    use crate::graphql::engine::limits::{
        FieldInfo, OperationKind, QueryLimits, SchemaInfo, check,
    };
    struct Lists;
    impl SchemaInfo for Lists {
        fn field(&self, _type_name: &str, field: &str) -> Option<FieldInfo<'_>> {
            (!field.starts_with("__")).then(|| FieldInfo {
                type_name: "T",
                is_list: field.len().is_multiple_of(2),
                call_cost: u32::try_from(field.len() % 3).unwrap_or(0),
                size_args: std::borrow::Cow::Owned(vec!["first".into(), "ids".into()]),
            })
        }
        fn root_type(&self, op: OperationKind) -> Option<&str> {
            match op {
                OperationKind::Query | OperationKind::Mutation => Some("T"),
                OperationKind::Subscription => None,
            }
        }
    }
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let limits = QueryLimits::default();
    let variables = serde_json::json!({"n": 3, "ids": ["a", "b"]});
    if let Ok(stats) = check(query, None, &variables, &limits, &Lists) {
        assert!(stats.tokens <= limits.max_tokens, "{stats:?}");
        assert!(stats.depth <= limits.max_depth, "{stats:?}");
        assert!(stats.aliases <= limits.max_aliases, "{stats:?}");
        assert!(stats.root_fields <= limits.max_root_fields, "{stats:?}");
        assert!(stats.cost <= limits.max_cost, "{stats:?}");
    }
}

/// A bearer token: arbitrary input is refused; see [`jwt_signed`] for changes to a good one.
pub fn jwt(data: &[u8]) {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let fixture = jwt_fixture();
    let verified = fixture.runtime.block_on(fixture.verifier.verify(token));
    assert!(verified.is_err(), "an unsigned token verified: {token:?}");
}

/// A signed token with the byte at `at` replaced by `with`: verified only when unchanged.
pub fn jwt_signed(at: usize, with: u8) {
    let fixture = jwt_fixture();
    let mut token = fixture.token.clone().into_bytes();
    let i = at % token.len();
    let changed = token[i] != with;
    token[i] = with;
    let Ok(token) = String::from_utf8(token) else {
        return;
    };
    let verified = fixture.runtime.block_on(fixture.verifier.verify(&token));
    assert_eq!(
        verified.is_ok(),
        !changed,
        "byte {i} set to {with:#x}: verified {verified:?}"
    );
}

struct JwtFixture {
    runtime: tokio::runtime::Runtime,
    verifier: Arc<crate::auth::jwt::JwtVerifier>,
    token: String,
}

fn jwt_fixture() -> &'static JwtFixture {
    static FIXTURE: OnceLock<JwtFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        use jsonwebtoken::jwk::{Jwk, JwkSet};
        use jsonwebtoken::{Algorithm, EncodingKey, Header};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("a key");
        let key = EncodingKey::from_ec_der(&pair.serialize_der());
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).expect("a JWK");
        jwk.common.key_id = Some("k".into());
        let dir = std::env::temp_dir().join(format!("portico-fuzz-jwt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        std::fs::write(
            dir.join("jwks.json"),
            serde_json::to_vec(&JwkSet { keys: vec![jwk] }).expect("JSON"),
        )
        .expect("written");
        let cfg: crate::config::JwtConfig = yaml_serde::from_str(
            "{ issuer: i, audiences: [a], algorithms: [ES256], jwks_file: jwks.json, cache_size: 0 }",
        )
        .expect("config");
        let verifier = runtime
            .block_on(crate::auth::jwt::JwtVerifier::new(&cfg, &dir))
            .expect("a verifier");
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("k".into());
        let claims = serde_json::json!({"iss": "i", "aud": "a", "sub": "s", "exp": 4_000_000_000u64});
        let token = jsonwebtoken::encode(&header, &claims, &key).expect("signed");
        JwtFixture {
            runtime,
            verifier,
            token,
        }
    })
}

/// A config file: never a panic; what loads writes back as YAML that loads to the same.
pub fn config_yaml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let base = std::path::Path::new("/nonexistent");
    let Ok(cfg) = crate::config::parse(text, "fuzz.yaml", base) else {
        return;
    };
    let written = yaml_serde::to_string(&cfg).expect("a config writes as YAML");
    let again = crate::config::parse(&written, "fuzz.yaml", base).unwrap_or_else(|e| {
        panic!("a loaded config wrote YAML that does not load ({e}):\n{written}")
    });
    let rewritten = yaml_serde::to_string(&again).expect("YAML");
    assert_eq!(rewritten, written, "the config changed through YAML");
}

/// The bytes of an HTTP/1 connection: the framing watch finds the same ambiguous request
/// whether the bytes come in one read or byte by byte (the first byte picks a split).
pub fn http1_framing(data: &[u8]) {
    crate::server::fuzz_framing(data);
}

/// A gRPC-Web request body (the first byte picks the limit): read in binary, and in text as
/// one base64 chunk and as a chunk per byte of the body, with the same answer; a message it
/// accepts is the body's only frame, and a body that is one frame of a message within the
/// limit is accepted.
pub fn grpc_web_body(data: &[u8]) {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    use crate::grpcweb::Mode;
    use crate::grpcweb::frame::{DATA, frame, request_message};

    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let limit = usize::from(pick);
    let binary = request_message(body, Mode::Binary, limit);
    let text = request_message(STANDARD.encode(body).as_bytes(), Mode::Text, limit);
    assert_eq!(binary, text, "binary and text disagree on {body:?}");
    let chunks: String = body.iter().map(|b| STANDARD.encode([*b])).collect();
    let chunked = request_message(chunks.as_bytes(), Mode::Text, limit);
    assert_eq!(binary, chunked, "padded chunks read differently: {body:?}");
    if let Ok(message) = &binary {
        let again = frame(DATA, message, Mode::Binary).expect("a small frame");
        assert_eq!(
            &again[..],
            body,
            "the accepted body is not one frame of its message"
        );
    }
    if body.len() <= limit {
        let one = frame(DATA, body, Mode::Binary).expect("a small frame");
        assert_eq!(
            request_message(&one, Mode::Binary, limit).as_deref(),
            Ok(body),
            "one frame of a message within the limit is refused"
        );
    }
}
