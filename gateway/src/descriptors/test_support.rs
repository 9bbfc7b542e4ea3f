//! Test helpers for the registry: fixture paths, temp files, descriptor sets built with protox.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::{Registry, compile_protos};

/// A path under `gateway/tests/fixtures/descriptors/`.
pub(crate) fn fixture(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/descriptors")
        .join(relative)
}

/// A fresh path in a per-process temp directory (the caller removes the file).
pub(crate) fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("portico-registry-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// An encoded FileDescriptorSet of `fixture root` + `file`, like `protoc -o` (with
/// `--include_imports` when asked). googleapis comes from `gateway/proto`.
pub(crate) fn descriptor_set(root: &str, file: &str, include_imports: bool) -> Bytes {
    let googleapis = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
    let mut compiler = protox::Compiler::new([fixture(root), googleapis]).unwrap();
    compiler.include_imports(include_imports);
    compiler.open_file(file).unwrap();
    Bytes::from(compiler.encode_file_descriptor_set())
}

/// The shop fixture (`shop/v1/shop.proto` and its imports) as a descriptor set.
pub(crate) fn shop_set(include_imports: bool) -> Bytes {
    descriptor_set("shop", "shop/v1/shop.proto", include_imports)
}

/// A registry holding the shop fixture compiled from source.
pub(crate) fn shop_registry() -> Registry {
    Registry::build(vec![compile_protos(&fixture("shop"), &[]).unwrap()]).unwrap()
}
