//! Unit tests of the schema builder over small fixture protos: naming collisions across
//! packages, root kinds and overrides, descriptions, deprecation, and link validation.

use std::path::Path;

use prost_reflect::ServiceDescriptor;

use super::build;
use crate::config::{GraphqlConfig, GraphqlMethodConfig, LinkConfig, OperationKind};
use crate::descriptors::{Registry, compile_protos};

fn services() -> Vec<(ServiceDescriptor, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/graphql");
    let src = compile_protos(&dir, &[]).unwrap();
    let reg = Registry::build(vec![src]).unwrap();
    reg.services()
        .into_iter()
        .map(|s| (s, "b".to_string()))
        .collect()
}

fn sdl(cfg: &GraphqlConfig) -> String {
    build(&services(), cfg).unwrap().sdl()
}

#[test]
fn same_message_names_in_two_packages_get_qualified_names() {
    let s = sdl(&GraphqlConfig::default());
    assert!(s.contains("type ShopV1Product {"), "{s}");
    assert!(s.contains("type OtherV1Product {"), "{s}");
    assert!(!s.contains("type Product {"), "{s}");
    // and the two GetProduct methods get their service in front
    assert!(
        s.contains("shopGetProduct(id: String): ShopV1Product"),
        "{s}"
    );
    assert!(
        s.contains("otherGetProduct(id: String): OtherV1Product"),
        "{s}"
    );
}

#[test]
fn root_kinds_follow_the_descriptors() {
    let s = sdl(&GraphqlConfig::default());
    let mutation = s.split("type Mutation {").nth(1).unwrap();
    assert!(mutation.contains("putProduct("), "{s}");
    let sub = s.split("type Subscription {").nth(1).unwrap();
    assert!(sub.contains("watch(id: String): ShopV1Product"), "{s}");
    assert!(
        !s.contains("upload"),
        "client streaming is not exposed: {s}"
    );
    assert!(s.contains("@deprecated"), "{s}");
    assert!(
        s.contains("Reads a product."),
        "comments become descriptions: {s}"
    );
}

#[test]
fn config_overrides_names_and_kinds() {
    let mut cfg = GraphqlConfig::default();
    cfg.methods.insert(
        "shop.v1.ShopService.PutProduct".into(),
        GraphqlMethodConfig {
            field: Some("saveProduct".into()),
            kind: None,
        },
    );
    cfg.methods.insert(
        "shop.v1.ShopService.Audit".into(),
        GraphqlMethodConfig {
            field: None,
            kind: Some(OperationKind::Hidden),
        },
    );
    cfg.methods.insert(
        "other.v1.OtherService.GetProduct".into(),
        GraphqlMethodConfig {
            field: None,
            kind: Some(OperationKind::Mutation),
        },
    );
    let s = sdl(&cfg);
    assert!(s.contains("saveProduct("), "{s}");
    assert!(!s.contains("audit("), "{s}");
    // names only need to be unique within one root type
    let mutation = s.split("type Mutation {").nth(1).unwrap();
    assert!(
        mutation.contains("product(id: String): OtherV1Product"),
        "{s}"
    );

    cfg.methods.insert(
        "shop.v1.ShopService.Nope".into(),
        GraphqlMethodConfig::default(),
    );
    let e = build(&services(), &cfg).unwrap_err().to_string();
    assert!(
        e.contains("graphql.methods.shop.v1.ShopService.Nope"),
        "{e}"
    );
}

#[test]
fn two_methods_forced_onto_one_name_is_an_error_naming_both() {
    let mut cfg = GraphqlConfig::default();
    for m in [
        "shop.v1.ShopService.GetProduct",
        "other.v1.OtherService.GetProduct",
    ] {
        cfg.methods.insert(
            m.into(),
            GraphqlMethodConfig {
                field: Some("product".into()),
                kind: Some(OperationKind::Query),
            },
        );
    }
    let e = build(&services(), &cfg).unwrap_err().to_string();
    assert!(
        e.contains("shop.v1.ShopService.GetProduct")
            && e.contains("other.v1.OtherService.GetProduct"),
        "{e}"
    );
}

#[test]
fn links_are_checked_at_build() {
    let link = |on: &str, args: &[(&str, &str)], call: &str| LinkConfig {
        on: on.into(),
        field: "sibling".into(),
        call: call.into(),
        args: args
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        result: None,
        batch: None,
        description: None,
    };
    let mut cfg = GraphqlConfig {
        links: vec![link(
            "shop.v1.Product",
            &[("id", "id")],
            "shop.v1.ShopService.GetProduct",
        )],
        ..Default::default()
    };
    let s = sdl(&cfg);
    assert!(s.contains("sibling: ShopV1Product"), "{s}");

    for (l, fragment) in [
        (
            link(
                "shop.v1.Product",
                &[("id", "nope")],
                "shop.v1.ShopService.GetProduct",
            ),
            "nope",
        ),
        (
            link(
                "shop.v1.Product",
                &[("id", "id")],
                "shop.v1.ShopService.Missing",
            ),
            "Missing",
        ),
        (
            link(
                "shop.v1.Nothing",
                &[("id", "id")],
                "shop.v1.ShopService.GetProduct",
            ),
            "shop.v1.Nothing",
        ),
        (
            link(
                "shop.v1.Product",
                &[("id", "twin")],
                "shop.v1.ShopService.GetProduct",
            ),
            "cannot take",
        ),
        (
            link(
                "shop.v1.Product",
                &[("id", "id")],
                "shop.v1.ShopService.Watch",
            ),
            "streaming",
        ),
    ] {
        cfg.links = vec![l];
        let e = build(&services(), &cfg).unwrap_err().to_string();
        assert!(
            e.contains("graphql.links[0]") && e.contains(fragment),
            "{e}"
        );
    }
}

#[test]
fn fields_carry_the_configured_size_args() {
    use crate::graphql::engine::limits::{DEFAULT_SIZE_ARGS, SchemaInfo};
    let schema = build(&services(), &GraphqlConfig::default()).unwrap();
    let info = schema.field("Query", "shopGetProduct").unwrap();
    assert_eq!(info.type_name, "ShopV1Product");
    assert_eq!(info.size_args.as_ref(), DEFAULT_SIZE_ARGS);
    let mut cfg = GraphqlConfig::default();
    cfg.limits.size_args = vec!["pageSize".into(), "ids".into()];
    let schema = build(&services(), &cfg).unwrap();
    let info = schema.field("Query", "shopGetProduct").unwrap();
    assert_eq!(info.size_args.as_ref(), ["pageSize", "ids"]);
}
