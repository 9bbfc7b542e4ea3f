//! The `bff-mobile` binary validates its example config.

#![allow(clippy::unwrap_used)]

use std::process::Command;

#[test]
fn check_validates_the_example_config() {
    let out = Command::new(env!("CARGO_BIN_EXE_bff-mobile"))
        .arg("--check")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("bff-mobile/config.yaml: configuration OK"),
        "{stdout}"
    );
    assert!(stdout.contains("GET    /v1/users/{id}"), "{stdout}");
}

/// The committed SDL is what the BFF generates. Regenerate with
/// `UPDATE_SCHEMAS=1 cargo test -p bff-mobile --test cli`.
#[test]
fn the_committed_schema_matches_the_generated_one() {
    let out = Command::new(env!("CARGO_BIN_EXE_bff-mobile"))
        .arg("schema")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let generated = String::from_utf8(out.stdout).unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/mobile.graphql");
    if std::env::var_os("UPDATE_SCHEMAS").is_some() {
        std::fs::write(path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "schemas/mobile.graphql is not what bff-mobile generates; review the change and run \
         `UPDATE_SCHEMAS=1 cargo test -p bff-mobile --test cli`"
    );
}

/// `bff-mobile manifest` prints the trusted documents a frontend build persists, by id.
#[test]
fn manifest_lists_every_operation_by_its_sha256() {
    let out = Command::new(env!("CARGO_BIN_EXE_bff-mobile"))
        .arg("manifest")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let ids: Vec<&str> = text
        .split('"')
        .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .collect();
    assert!(ids.len() >= 3, "{text}");
    assert!(text.contains("query Home"), "{text}");
}
