//! Checks that the committed descriptors/demo.binpb matches the demo protos (or rewrites it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

include!("../proto_set.rs");

const REGENERATE: &str = "UPDATE_DESCRIPTORS=1 cargo test -p portico-demo --test descriptor_set";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn compiled() -> Vec<u8> {
    compile_demo_protos(&workspace_root())
        .expect("the demo protos compile")
        .encode_file_descriptor_set()
}

#[test]
fn committed_descriptor_set_is_up_to_date() {
    let path = workspace_root().join("descriptors/demo.binpb");
    let fresh = compiled();
    if std::env::var_os("UPDATE_DESCRIPTORS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &fresh).expect("write descriptors/demo.binpb");
        eprintln!("rewrote {} ({} bytes)", path.display(), fresh.len());
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_else(|err| {
        panic!(
            "cannot read {}: {err}; regenerate it with `{REGENERATE}`",
            path.display()
        )
    });
    assert!(
        committed == fresh,
        "descriptors/demo.binpb is out of date with descriptors/proto/demo/v1/*.proto \
         ({} bytes committed, {} bytes compiled); regenerate it with `{REGENERATE}`",
        committed.len(),
        fresh.len()
    );
    assert!(
        portico_demo::DESCRIPTOR_SET == fresh.as_slice(),
        "the library's DESCRIPTOR_SET differs from a fresh compile; rebuild the crate"
    );
}

#[test]
fn compilation_is_deterministic() {
    assert_eq!(compiled(), compiled());
}

#[test]
fn descriptor_set_has_imports_and_http_options() {
    let pool = prost_reflect::DescriptorPool::decode(portico_demo::DESCRIPTOR_SET).unwrap();
    for file in [
        "demo/v1/users.proto",
        "google/api/annotations.proto",
        "google/api/http.proto",
        "google/protobuf/timestamp.proto",
        "google/protobuf/descriptor.proto",
    ] {
        assert!(pool.get_file_by_name(file).is_some(), "{file} missing");
    }
    let http = pool.get_extension_by_name("google.api.http").unwrap();
    let service = pool.get_service_by_name("demo.v1.UserService").unwrap();
    let get_user = service.methods().find(|m| m.name() == "GetUser").unwrap();
    let options = get_user.options();
    assert!(options.has_extension(&http));
    let rule = options.get_extension(&http);
    let rule = rule.as_message().unwrap();
    assert_eq!(
        rule.get_field_by_name("get").unwrap().as_str(),
        Some("/v1/users/{id}")
    );
}
