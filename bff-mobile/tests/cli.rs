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
