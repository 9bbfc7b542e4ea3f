//! Compiles the demo protos (protox, no protoc), generates tonic code and writes the encoded descriptor set.

use std::path::PathBuf;

include!("proto_set.rs");

/// File name of the encoded descriptor set inside OUT_DIR (read by `src/lib.rs`).
const DESCRIPTOR_FILE: &str = "demo_descriptor_set.binpb";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest_dir.join("..");
    println!("cargo:rerun-if-changed=proto_set.rs");
    println!("cargo:rerun-if-changed=../descriptors/proto");
    println!("cargo:rerun-if-changed=../gateway/proto");

    let compiler = compile_demo_protos(&root)?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    // Raw bytes straight from protox, so custom options (google.api.http) survive.
    std::fs::write(
        out_dir.join(DESCRIPTOR_FILE),
        compiler.encode_file_descriptor_set(),
    )?;

    // prost-build needs the imported files too (to resolve types); it writes one .rs file per
    // package, of which only demo.v1.rs is included by the library.
    let fds = compiler.file_descriptor_set();
    tonic_prost_build::configure()
        // google.api.HttpBody is written by hand in src/lib.rs (`pb` cannot reach a sibling
        // package's generated module).
        .extern_path(".google.api.HttpBody", "crate::HttpBody")
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;

    // Version 2 of the user service (descriptors/versions/), kept out of the demo set: only
    // the API-versions tests serve it, from a .proto source of their own.
    println!("cargo:rerun-if-changed=../descriptors/versions");
    let mut v2 = protox::Compiler::new([
        root.join("descriptors/versions"),
        root.join("gateway/proto"),
    ])?;
    v2.include_imports(true);
    v2.open_files(["demo/v2/users.proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(v2.file_descriptor_set())?;
    Ok(())
}
