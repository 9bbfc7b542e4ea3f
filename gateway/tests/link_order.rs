//! The link order of the shipped binaries (`link/order.txt`, written by
//! `bench/link-order.sh`, handed to the linker by `link/build.rs`), checked as the linker will
//! read it. lld skips names it does not find without a word (the build passes
//! `--no-warn-symbol-ordering`, since a file recorded before a change is expected to miss a
//! few), so a file of demangled names, or one recorded from a BFF that served nothing, would
//! fail silently: no error, only the resident memory of a scattered layout. These checks make
//! that fail here instead.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashSet;
use std::path::Path;

fn order() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("link/order.txt");
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// A legacy-mangled Rust symbol, as rustc names functions and the linker matches them:
/// `_ZN` ... `17h` + 16 hex digits + `E`.
fn is_rust_symbol(name: &str) -> bool {
    let Some(body) = name.strip_prefix("_ZN").and_then(|n| n.strip_suffix('E')) else {
        return false;
    };
    body.len() > 19
        && body[body.len() - 19..].starts_with("17h")
        && body[body.len() - 16..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit())
}

#[test]
fn the_order_names_one_linker_symbol_per_line_once() {
    let text = order();
    let mut seen = HashSet::new();
    for (line, name) in text.lines().enumerate() {
        assert!(
            !name.is_empty() && !name.contains(char::is_whitespace),
            "line {}: {name:?} is not a symbol name",
            line + 1
        );
        assert!(seen.insert(name), "line {}: {name} twice", line + 1);
    }
    let rust = text.lines().filter(|n| is_rust_symbol(n)).count();
    assert!(
        seen.len() >= 1000 && rust * 10 >= seen.len() * 8,
        "{} names, {rust} of them mangled Rust symbols: rerun bench/link-order.sh",
        seen.len()
    );
}

#[test]
fn the_order_holds_the_code_of_every_door_the_recording_ran() {
    let text = order();
    // Mangled module paths: each length-prefixed segment, as rustc writes them.
    for (door, path) in [
        ("start-up: the config", "7portico6config"),
        ("the REST door", "7portico4rest"),
        ("the GraphQL door's compiled plans", "7portico7graphql3run"),
        ("JSON written from the wire", "7portico9transcode"),
        ("gRPC-Web", "7portico7grpcweb"),
        ("the OpenAPI document", "7portico7openapi"),
        ("the upstream calls", "7portico8upstream"),
    ] {
        assert!(
            text.lines().any(|n| n.starts_with(&format!("_ZN{path}"))),
            "no function of {door} ({path}) in link/order.txt: rerun bench/link-order.sh"
        );
    }
}

#[test]
fn both_bffs_link_with_the_order() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for bff in ["bff-web", "bff-mobile"] {
        let manifest = std::fs::read_to_string(root.join(bff).join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains("build = \"../gateway/link/build.rs\""),
            "{bff}/Cargo.toml does not use gateway/link/build.rs as its build script"
        );
    }
}

#[test]
fn the_mangled_symbol_check_knows_one_when_it_sees_one() {
    assert!(is_rust_symbol(
        "_ZN7portico4rest4door4call17h0123456789abcdefE"
    ));
    assert!(!is_rust_symbol("portico::rest::door::call"));
    assert!(!is_rust_symbol("_ZN7portico4rest4door4callE"));
    assert!(!is_rust_symbol(
        "_ZN7portico4rest4door4call17h0123456789abcdegE"
    ));
}
