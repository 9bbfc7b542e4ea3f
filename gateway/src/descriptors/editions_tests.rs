//! Editions files, made by a current protoc (`gateway/tests/fixtures/editions/`), loaded as a
//! backend team would register them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use prost::Message;
use prost_reflect::{DynamicMessage, Value};

use crate::descriptors::{Registry, RegistryError, http_bindings, load_descriptor_set};
use crate::transcode::{self, DecodeOptions, EncodeOptions};

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/editions")
        .join(name)
}

fn registry(name: &str) -> Result<Registry, RegistryError> {
    Registry::build(vec![load_descriptor_set(&fixture(name))?])
}

#[test]
fn a_proto3_compatible_edition_loads_with_the_features_it_says() {
    let reg = registry("items.binpb").unwrap();
    let pool = reg.pool();
    let item = pool.get_message_by_name("ed.v1.Item").unwrap();
    let field = |n: &str| item.get_field_by_name(n).unwrap();
    // Explicit presence (the edition's default) on a scalar, implicit where the field says so.
    assert!(field("count").supports_presence());
    assert!(!field("implicit_count").supports_presence());
    assert!(field("parent").supports_presence());
    assert!(field("packed").is_packed());
    assert!(!field("expanded").is_packed());
    assert_eq!(field("named").json_name(), "renamed");
    // The real oneof is kept, the synthetic ones are not real.
    let real: Vec<String> = item
        .oneofs()
        .filter(|o| !o.is_synthetic())
        .map(|o| o.name().to_string())
        .collect();
    assert_eq!(real, ["choice"]);
    // Custom options survive the rewrite.
    let get = pool.get_service_by_name("ed.v1.ItemService").unwrap();
    let method = get.methods().next().unwrap();
    let rules = http_bindings(&method);
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert_eq!(rules[0].path, "/v1/items/{id}");
}

#[test]
fn an_editions_message_transcodes_both_ways_with_its_presence() {
    let reg = registry("items.binpb").unwrap();
    let item = reg.pool().get_message_by_name("ed.v1.Item").unwrap();
    let json = br#"{"id":"a","count":0,"implicitCount":0,"packed":[1,2],"expanded":[3],"color":"COLOR_RED","renamed":"n","number":"5"}"#;
    let msg = transcode::decode_json(&item, json, &DecodeOptions::default()).unwrap();
    // An explicit zero is present; an implicit zero is not.
    assert!(msg.has_field_by_name("count"));
    assert!(!msg.has_field_by_name("implicit_count"));
    // Through the wire format and back.
    let wire = msg.encode_to_vec();
    let back = DynamicMessage::decode(item.clone(), wire.as_slice()).unwrap();
    assert_eq!(back.encode_to_vec(), wire);
    let out = transcode::encode_response(&back, None, &EncodeOptions::default()).unwrap();
    let out: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        out,
        serde_json::json!({"id":"a","count":0,"packed":[1,2],"expanded":[3],"color":"COLOR_RED","renamed":"n","number":"5"})
    );
    // Packed on the wire: field 4 as one length-delimited record (tag 0x22).
    let packed_only = {
        let mut m = DynamicMessage::new(item.clone());
        m.set_field_by_name("packed", Value::List(vec![Value::I32(1), Value::I32(2)]));
        m.encode_to_vec()
    };
    assert_eq!(packed_only, [0x22, 2, 1, 2]);
    let expanded_only = {
        let mut m = DynamicMessage::new(item);
        m.set_field_by_name("expanded", Value::List(vec![Value::I32(1), Value::I32(2)]));
        m.encode_to_vec()
    };
    assert_eq!(expanded_only, [0x28, 1, 0x28, 2]);
}

#[test]
fn an_edition_needing_proto2_becomes_proto2() {
    let source = load_descriptor_set(&fixture("legacy.binpb")).unwrap();
    let classic = super::to_classic(&source.files[0].bytes).unwrap();
    assert_eq!(classic.syntax, "proto2");
    let reg = registry("legacy.binpb").unwrap();
    let record = reg
        .pool()
        .get_message_by_name("ed.legacy.v1.Record")
        .unwrap();
    let key = record.get_field_by_name("key").unwrap();
    assert_eq!(key.cardinality(), prost_reflect::Cardinality::Required);
    let size = record.get_field_by_name("size").unwrap();
    assert_eq!(size.default_value(), Value::I32(7));
    // A closed enum: prost-reflect keeps an unknown number as the value (open semantics).
    let mut wire = Vec::new();
    wire.extend_from_slice(&[0x0a, 1, b'k']); // key = "k"
    wire.extend_from_slice(&[0x18, 9]); // level = 9
    let msg = DynamicMessage::decode(record.clone(), wire.as_slice()).unwrap();
    assert_eq!(
        msg.get_field_by_name("level").unwrap().as_enum_number(),
        Some(9)
    );
    // Packed, as editions say by default (proto2 would not).
    assert!(record.get_field_by_name("samples").unwrap().is_packed());
}

#[test]
fn edition_2024_loads() {
    let reg = registry("newer.binpb").unwrap();
    let thing = reg.pool().get_message_by_name("ed.newer.v1.Thing").unwrap();
    assert!(!thing.get_field_by_name("size").unwrap().supports_presence());
}

#[test]
fn a_group_is_refused_with_the_file_and_the_reason() {
    let err = registry("groups.binpb").unwrap_err().to_string();
    assert!(err.contains("groups.proto"), "{err}");
    assert!(err.contains("DELIMITED"), "{err}");
}

#[test]
fn an_unknown_syntax_is_an_error_not_a_panic() {
    // The file that made prost-reflect panic (index out of bounds building an error label):
    // any syntax it does not know. Rewritten here to a syntax nobody knows.
    let set = std::fs::read(fixture("newer.binpb")).unwrap();
    let mut set = prost_types::FileDescriptorSet::decode(set.as_slice()).unwrap();
    set.file[0].syntax = Some("proto4".into());
    let dir = std::env::temp_dir().join(format!("portico-editions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("proto4.binpb");
    std::fs::write(&path, set.encode_to_vec()).unwrap();
    let err = Registry::build(vec![load_descriptor_set(&path).unwrap()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("syntax \"proto4\""), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn editions_sources_are_refused_with_what_to_do() {
    let err = crate::descriptors::compile_protos(&fixture("items.proto"), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("items.proto:"), "{err}");
    assert!(err.contains("protobuf editions"), "{err}");
    assert!(err.contains("descriptor set"), "{err}");
}

/// A descriptor set, mutated at random (seeded: the same inputs every run), never makes
/// loading panic: every outcome is a pool or an error. The panic guard around the descriptor
/// library counts as a failure here too, so a library panic on some input shows up.
#[test]
fn mutated_descriptor_sets_never_panic() {
    use rand::{Rng, SeedableRng};
    let inputs = [
        std::fs::read(fixture("items.binpb")).unwrap(),
        std::fs::read(fixture("legacy.binpb")).unwrap(),
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../descriptors/demo.binpb"))
            .unwrap(),
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let mut loaded = 0;
    let mut refused = 0;
    for round in 0..400 {
        let mut bytes = inputs[round % inputs.len()].clone();
        for _ in 0..rng.random_range(1..4) {
            if bytes.is_empty() {
                break;
            }
            let at = rng.random_range(0..bytes.len());
            match rng.random_range(0..4) {
                0 => bytes[at] ^= 1 << rng.random_range(0..8),
                1 => bytes[at] = rng.random(),
                2 => bytes.truncate(at),
                _ => bytes.insert(at, rng.random()),
            }
        }
        let outcome = std::panic::catch_unwind(|| {
            let files = crate::descriptors::source::split_descriptor_set(
                bytes::Bytes::from(bytes.clone()),
                "mutated",
            )?;
            Registry::build(vec![crate::descriptors::SourceFiles {
                origin: "mutated".into(),
                files,
            }])
            .map(|_| ())
        });
        match outcome {
            Err(_) => panic!("round {round}: loading panicked"),
            Ok(Ok(())) => loaded += 1,
            Ok(Err(e)) => {
                let e = e.to_string();
                assert!(
                    !e.contains("failed on these descriptors"),
                    "round {round}: {e}"
                );
                refused += 1;
            }
        }
    }
    assert!(
        loaded > 0 && refused > 0,
        "{loaded} loaded, {refused} refused"
    );
}
