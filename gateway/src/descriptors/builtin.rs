//! The google protos Portico always knows: embedded google/api + google/rpc and the well-known types.
//!
//! They serve twice: as import sources for protox (so users never ship them), and as files
//! that are always present in the final pool (so `google.rpc.Status`, `google.rpc.BadRequest`
//! and friends can be looked up even when no user file imports them).

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;
use prost_reflect::DescriptorPool;
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};

use super::error::RegistryError;
use super::source::{FileLite, RawFile};

/// The embedded googleapis sources, by import name.
const EMBEDDED: &[(&str, &str)] = &[
    (
        "google/api/annotations.proto",
        include_str!("../../proto/google/api/annotations.proto"),
    ),
    (
        "google/api/client.proto",
        include_str!("../../proto/google/api/client.proto"),
    ),
    (
        "google/api/field_behavior.proto",
        include_str!("../../proto/google/api/field_behavior.proto"),
    ),
    (
        "google/api/http.proto",
        include_str!("../../proto/google/api/http.proto"),
    ),
    (
        "google/api/httpbody.proto",
        include_str!("../../proto/google/api/httpbody.proto"),
    ),
    (
        "google/api/launch_stage.proto",
        include_str!("../../proto/google/api/launch_stage.proto"),
    ),
    (
        "google/api/resource.proto",
        include_str!("../../proto/google/api/resource.proto"),
    ),
    (
        "google/rpc/code.proto",
        include_str!("../../proto/google/rpc/code.proto"),
    ),
    (
        "google/rpc/error_details.proto",
        include_str!("../../proto/google/rpc/error_details.proto"),
    ),
    (
        "google/rpc/status.proto",
        include_str!("../../proto/google/rpc/status.proto"),
    ),
];

/// Whether a file name belongs to the families Portico ships itself (well-known types,
/// google/api, google/rpc). Different copies of these are not conflicts: descriptor sets built
/// from different googleapis/protobuf versions differ in comments and newer fields only.
pub(crate) fn is_google_family(name: &str) -> bool {
    name.starts_with("google/protobuf/")
        || name.starts_with("google/api/")
        || name.starts_with("google/rpc/")
}

/// A protox resolver serving the embedded google/api and google/rpc sources.
#[derive(Debug, Default, Clone, Copy)]
pub struct EmbeddedFileResolver;

impl FileResolver for EmbeddedFileResolver {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match EMBEDDED.iter().find(|(file, _)| *file == name) {
            Some((file, source)) => File::from_source(file, source),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// The resolver chain for the built-ins: embedded googleapis, then protox's well-known types.
pub(crate) fn add_builtin_resolvers(chain: &mut ChainFileResolver) {
    chain.add(EmbeddedFileResolver);
    chain.add(GoogleFileResolver::new());
}

/// The built-in files as raw bytes, dependencies first: the well-known types, then the
/// embedded google/api and google/rpc files. Compiled once per process.
pub(crate) fn builtin_files() -> Result<&'static [RawFile], RegistryError> {
    static BUILTINS: OnceLock<Result<Vec<RawFile>, String>> = OnceLock::new();
    match BUILTINS.get_or_init(compile_builtins) {
        Ok(files) => Ok(files),
        Err(message) => Err(RegistryError::Builtin(message.clone())),
    }
}

fn compile_builtins() -> Result<Vec<RawFile>, String> {
    // The well-known types straight from prost-reflect's global pool, as raw bytes.
    let mut files: Vec<RawFile> = DescriptorPool::global()
        .files()
        .map(|file| RawFile {
            name: file.name().to_owned(),
            bytes: Bytes::from(file.encode_to_vec()),
        })
        .collect();

    let mut chain = ChainFileResolver::new();
    add_builtin_resolvers(&mut chain);
    let mut compiler = protox::Compiler::with_file_resolver(chain);
    compiler.include_imports(true).include_source_info(true);
    compiler
        .open_files(EMBEDDED.iter().map(|(name, _)| *name))
        .map_err(|err| format!("{err:?}"))?;
    // Files come dependencies first; the WKTs are already taken from the global pool.
    files.extend(
        compiler
            .descriptor_pool()
            .files()
            .filter(|file| !file.name().starts_with("google/protobuf/"))
            .map(|file| RawFile {
                name: file.name().to_owned(),
                bytes: Bytes::from(file.encode_to_vec()),
            }),
    );
    Ok(dependencies_first(files))
}

/// Orders files so every file comes after the files it imports (imports outside the list are
/// ignored). The global pool does not promise that order for the well-known types.
fn dependencies_first(files: Vec<RawFile>) -> Vec<RawFile> {
    let deps: Vec<Vec<String>> = files
        .iter()
        .map(|f| {
            FileLite::decode_raw(&f.bytes)
                .map(|lite| lite.dependency)
                .unwrap_or_default()
        })
        .collect();
    let index: HashMap<&str, usize> = files
        .iter()
        .enumerate()
        .map(|(i, f)| (f.name.as_str(), i))
        .collect();
    let mut order = Vec::with_capacity(files.len());
    let mut state = vec![Visit::New; files.len()];
    for start in 0..files.len() {
        visit(start, &deps, &index, &mut state, &mut order);
    }
    let mut slots: Vec<Option<RawFile>> = files.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(|i| slots.get_mut(i).and_then(Option::take))
        .collect()
}

#[derive(Clone, Copy, PartialEq)]
enum Visit {
    New,
    Open,
    Done,
}

fn visit(
    at: usize,
    deps: &[Vec<String>],
    index: &HashMap<&str, usize>,
    state: &mut [Visit],
    order: &mut Vec<usize>,
) {
    if state[at] != Visit::New {
        return; // done, or an import cycle (invalid anyway; the pool build reports it)
    }
    state[at] = Visit::Open;
    for dep in &deps[at] {
        if let Some(&next) = index.get(dep.as_str()) {
            visit(next, deps, index, state, order);
        }
    }
    state[at] = Visit::Done;
    order.push(at);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::descriptors::source::encode_descriptor_set;

    #[test]
    fn builtins_hold_wkts_googleapis_and_rpc() {
        let files = builtin_files().unwrap();
        let names: Vec<_> = files.iter().map(|f| f.name.as_str()).collect();
        for expected in [
            "google/protobuf/descriptor.proto",
            "google/protobuf/timestamp.proto",
            "google/api/http.proto",
            "google/api/annotations.proto",
            "google/rpc/status.proto",
            "google/rpc/error_details.proto",
        ] {
            assert!(names.contains(&expected), "{expected} missing in {names:?}");
        }
        // Dependencies first.
        let position = |name: &str| names.iter().position(|n| *n == name).unwrap();
        assert!(position("google/protobuf/any.proto") < position("google/protobuf/type.proto"));
        assert!(position("google/protobuf/type.proto") < position("google/protobuf/api.proto"));
        assert!(position("google/api/http.proto") < position("google/api/annotations.proto"));
        let pool =
            DescriptorPool::decode(encode_descriptor_set(files.iter().map(|f| &f.bytes))).unwrap();
        assert!(pool.get_message_by_name("google.rpc.BadRequest").is_some());
        assert!(pool.get_extension_by_name("google.api.http").is_some());
    }

    #[test]
    fn embedded_resolver_serves_only_embedded_files() {
        assert!(
            EmbeddedFileResolver
                .open_file("google/api/http.proto")
                .is_ok()
        );
        assert!(
            EmbeddedFileResolver
                .open_file("google/protobuf/any.proto")
                .unwrap_err()
                .is_file_not_found()
        );
    }
}
