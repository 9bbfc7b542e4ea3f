//! Tests of `Registry::build`: merging, built-ins, conflicts, missing imports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message;

use super::test_support::{fixture, shop_set, temp_path};
use super::*;

fn protos(dir: &str) -> SourceFiles {
    compile_protos(&fixture(dir), &[fixture("shop")]).unwrap()
}

fn set_source(origin: &str, set: Bytes) -> SourceFiles {
    SourceFiles {
        origin: origin.to_owned(),
        files: source::split_descriptor_set(set, origin).unwrap(),
    }
}

/// The http option of ShopService.GetOrder is readable from the registry's pool.
fn assert_http_option_survived(registry: &Registry) {
    let service = registry
        .pool()
        .get_service_by_name("shop.v1.ShopService")
        .unwrap();
    let method = service.methods().find(|m| m.name() == "GetOrder").unwrap();
    let bindings = http_bindings(&method);
    assert_eq!(bindings.len(), 3, "{bindings:?}");
    assert_eq!(bindings[0].path, "/v1/orders/{id}");
}

#[test]
fn http_option_survives_a_descriptor_set_file() {
    let path = temp_path("http-option.binpb");
    std::fs::write(&path, shop_set(true)).unwrap();
    let registry = Registry::build(vec![load_descriptor_set(&path).unwrap()]).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_http_option_survived(&registry);
}

#[test]
fn http_option_survives_proto_sources() {
    let registry = Registry::build(vec![protos("shop")]).unwrap();
    assert_http_option_survived(&registry);
}

#[test]
fn builtins_are_always_present() {
    let registry = Registry::build(Vec::new()).unwrap();
    for message in [
        "google.rpc.Status",
        "google.rpc.BadRequest",
        "google.rpc.RetryInfo",
        "google.protobuf.Timestamp",
        "google.protobuf.Any",
    ] {
        assert!(
            registry.pool().get_message_by_name(message).is_some(),
            "{message}"
        );
    }
    assert!(registry.services().is_empty());
    // The rest of googleapis is there when imported, not in every pool.
    assert!(
        registry
            .pool()
            .get_message_by_name("google.type.Money")
            .is_none()
    );
}

#[test]
fn the_whole_googleapis_common_set_is_built_in() {
    let dir = std::env::temp_dir().join(format!("portico-googleapis-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("uses.proto"),
        r#"syntax = "proto3";
package uses.v1;
import "google/api/annotations.proto";
import "google/api/visibility.proto";
import "google/api/field_info.proto";
import "google/api/routing.proto";
import "google/api/httpbody.proto";
import "google/longrunning/operations.proto";
import "google/rpc/context/attribute_context.proto";
import "google/type/date.proto";
import "google/type/money.proto";
import "google/type/latlng.proto";
import "google/type/postal_address.proto";
message Place {
  string id = 1 [(google.api.field_info).format = UUID4];
  google.type.LatLng where = 2;
  google.type.PostalAddress address = 3;
  google.type.Money price = 4;
  google.type.Date opened = 5;
}
service Places {
  option (google.api.api_visibility).restriction = "PREVIEW";
  rpc GetPlace(Place) returns (Place) {
    option (google.api.http) = { get: "/v1/places/{id}" };
    option (google.api.routing) = { routing_parameters { field: "id" } };
  }
  rpc Export(Place) returns (google.longrunning.Operation);
  rpc Photo(Place) returns (google.api.HttpBody);
}
"#,
    )
    .unwrap();
    let source = crate::descriptors::compile_protos(&dir.join("uses.proto"), &[]).unwrap();
    let registry = Registry::build(vec![source]).unwrap();
    let pool = registry.pool();
    for message in [
        "google.type.Money",
        "google.type.LatLng",
        "google.longrunning.Operation",
        "google.api.HttpBody",
        "google.rpc.context.AttributeContext",
    ] {
        assert!(pool.get_message_by_name(message).is_some(), "{message}");
    }
    assert_eq!(
        registry
            .services()
            .iter()
            .map(|s| s.full_name().to_string())
            .collect::<Vec<_>>(),
        ["uses.v1.Places"]
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_set_with_google_imports_is_fine_and_a_differing_copy_is_kept() {
    let set = shop_set(true);
    let mut source = set_source("descriptor set \"shop.binpb\"", set);
    // Make the user's google/api/http.proto differ from the built-in one (an unknown field,
    // like a newer googleapis version would have).
    let http = source
        .files
        .iter_mut()
        .find(|f| f.name == "google/api/http.proto")
        .unwrap();
    let mut bytes = BytesMut::from(http.bytes.as_ref());
    prost::encoding::encode_key(999, prost::encoding::WireType::Varint, &mut bytes);
    bytes.put_u8(1);
    http.bytes = bytes.freeze();

    // The user's copy is kept (the built-in one would have no origin). prost-reflect drops
    // unknown fields when it re-encodes, so compare origins rather than bytes.
    let registry = Registry::build(vec![source.clone()]).unwrap();
    assert_eq!(
        registry.file_origin("google/api/http.proto"),
        Some("descriptor set \"shop.binpb\"")
    );
    assert_http_option_survived(&registry);

    // Two user sources with different copies of a google file: no conflict, the first is kept.
    let plain = set_source("descriptor set \"plain.binpb\"", shop_set(true));
    let registry = Registry::build(vec![plain, source]).unwrap();
    assert_eq!(
        registry.file_origin("google/api/http.proto"),
        Some("descriptor set \"plain.binpb\"")
    );
    assert_http_option_survived(&registry);
}

#[test]
fn identical_files_from_two_sources_are_merged_once() {
    let shop = protos("shop");
    let other = protos("other");
    let shop_origin = shop.origin.clone();
    let other_origin = other.origin.clone();
    assert!(other.files.iter().any(|f| f.name == "shop/v1/common.proto"));

    let registry = Registry::build(vec![shop, other]).unwrap();
    let names: Vec<_> = registry
        .services()
        .iter()
        .map(|s| s.full_name().to_owned())
        .collect();
    assert_eq!(names, ["other.v1.OtherService", "shop.v1.ShopService"]);
    assert_eq!(
        registry.service_origin("shop.v1.ShopService"),
        Some(shop_origin.as_str())
    );
    assert_eq!(
        registry.service_origin("other.v1.OtherService"),
        Some(other_origin.as_str())
    );
    assert_eq!(
        registry.file_origin("shop/v1/common.proto"),
        Some(shop_origin.as_str())
    );
    assert_eq!(
        registry.service_origin("google.longrunning.Operations"),
        None
    );
    assert_eq!(registry.file_origin("google/rpc/status.proto"), None);
}

#[test]
fn same_file_name_with_different_content_names_both_origins() {
    let shop = protos("shop");
    let alt = protos("altshop");
    let (a, b) = (shop.origin.clone(), alt.origin.clone());
    let err = Registry::build(vec![shop, alt]).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "file \"shop/v1/common.proto\" is provided with different content by {a} and by {b}"
        )
    );
}

#[test]
fn same_symbol_in_two_files_names_symbol_files_and_origins() {
    let shop = protos("shop");
    let dup = protos("dupsym");
    let (a, b) = (shop.origin.clone(), dup.origin.clone());
    let err = Registry::build(vec![shop, dup]).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "message \"shop.v1.Money\" is defined twice: in file \"shop/v1/common.proto\" ({a}) and in file \"dup/money.proto\" ({b})"
        )
    );
}

#[test]
fn nested_symbols_are_checked_too() {
    let err = Registry::build(vec![protos("shop"), protos("nested")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"shop.v1.Order.Line\" is defined twice"),
        "{err}"
    );
    assert!(err.contains("shop/v1/shop.proto"), "{err}");
    assert!(err.contains("nested/line.proto"), "{err}");
}

#[test]
fn a_set_without_its_imports_names_file_import_and_origin() {
    let path = temp_path("no-imports.binpb");
    std::fs::write(&path, shop_set(false)).unwrap();
    let source = load_descriptor_set(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let err = Registry::build(vec![source]).unwrap_err().to_string();
    // google/api/annotations.proto is provided by the built-ins; common.proto is not.
    assert_eq!(
        err,
        format!(
            "descriptor set \"{}\": file \"shop/v1/shop.proto\" imports \"shop/v1/common.proto\", which no registered source provides",
            path.display()
        )
    );
}

#[test]
fn a_user_file_redefining_a_builtin_symbol_replaces_that_builtin() {
    let registry = Registry::build(vec![protos("shadow")]).unwrap();
    let status = registry
        .pool()
        .get_message_by_name("google.rpc.Status")
        .unwrap();
    assert_eq!(status.parent_file().name(), "mystatus.proto");
    assert!(
        registry
            .pool()
            .get_file_by_name("google/rpc/status.proto")
            .is_none()
    );
    // The other built-ins are still there.
    assert!(
        registry
            .pool()
            .get_message_by_name("google.rpc.BadRequest")
            .is_some()
    );
}

#[test]
fn pool_errors_name_the_origin_of_the_faulty_file() {
    let file = prost_types::FileDescriptorProto {
        name: Some("bad.proto".to_owned()),
        package: Some("bad".to_owned()),
        message_type: vec![prost_types::DescriptorProto {
            name: Some("Holder".to_owned()),
            field: vec![prost_types::FieldDescriptorProto {
                name: Some("value".to_owned()),
                number: Some(1),
                label: Some(prost_types::field_descriptor_proto::Label::Optional as i32),
                r#type: Some(prost_types::field_descriptor_proto::Type::Message as i32),
                type_name: Some(".bad.Nope".to_owned()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let source = SourceFiles {
        origin: "reflection from backend \"bad\" (http://x)".to_owned(),
        files: vec![RawFile::from_bytes(Bytes::from(file.encode_to_vec())).unwrap()],
    };
    let err = Registry::build(vec![source]).unwrap_err().to_string();
    assert!(
        err.starts_with(
            "reflection from backend \"bad\" (http://x): invalid descriptors: bad.proto"
        ),
        "{err}"
    );
    assert!(err.contains("bad.Nope"), "{err}");
}

#[test]
fn undecodable_file_bytes_are_rejected_with_the_origin() {
    let source = SourceFiles {
        origin: "test source".to_owned(),
        files: vec![RawFile {
            name: "x.proto".to_owned(),
            bytes: Bytes::from_static(b"\xff\xff\xff"),
        }],
    };
    let err = Registry::build(vec![source]).unwrap_err().to_string();
    assert!(
        err.starts_with("test source: not a valid protobuf descriptor: file \"x.proto\""),
        "{err}"
    );
}

#[test]
fn the_demo_protos_build() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../descriptors/proto");
    let source = compile_protos(&dir, &[]).unwrap();
    assert!(
        source.files.iter().any(|f| f.name == "demo/v1/users.proto"),
        "{:?}",
        source.files.iter().map(|f| &f.name).collect::<Vec<_>>()
    );
    let registry = Registry::build(vec![source]).unwrap();
    let services = registry.services();
    assert!(!services.is_empty());
    assert!(
        services
            .iter()
            .all(|s| s.full_name().starts_with("demo.v1."))
    );
    let with_http = services
        .iter()
        .flat_map(|s| s.methods())
        .filter(|m| !http_bindings(m).is_empty())
        .count();
    assert!(with_http > 0);
}
