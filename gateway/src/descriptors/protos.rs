//! Compiling .proto sources at runtime with protox into raw descriptor files.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use protox::file::{ChainFileResolver, IncludeFileResolver};

use super::builtin::add_builtin_resolvers;
use super::error::RegistryError;
use super::source::{RawFile, SourceFiles};

/// Compiles a .proto file, or every `*.proto` below a directory (recursively, sorted).
///
/// Import roots, in lookup order: for a directory, the directory itself then `imports`; for a
/// file, `imports` then the file's parent directory. After them come the embedded google/api and
/// google/rpc protos and protox's well-known types, so users never ship those.
///
/// File names are relative to their import root: the files of directory `descriptors/proto`
/// are named like `demo/v1/users.proto`; a single file is named relative to the first import
/// root that holds it (its parent directory if none does).
///
/// Only files read from disk are returned; the built-ins that were imported are left out, since
/// the [`Registry`](super::Registry) always adds them.
pub fn compile_protos(path: &Path, imports: &[PathBuf]) -> Result<SourceFiles, RegistryError> {
    let origin = format!("proto sources \"{}\"", path.display());
    let path_error = |reason: String| RegistryError::ProtoPath {
        path: path.to_owned(),
        reason,
    };
    let metadata = std::fs::metadata(path).map_err(|err| path_error(err.to_string()))?;

    let mut roots: Vec<PathBuf> = Vec::with_capacity(imports.len() + 1);
    let inputs = if metadata.is_dir() {
        let mut inputs = Vec::new();
        collect_protos(path, &mut inputs).map_err(|err| path_error(err.to_string()))?;
        if inputs.is_empty() {
            return Err(path_error("the directory holds no .proto files".to_owned()));
        }
        inputs.sort();
        roots.push(path.to_owned());
        roots.extend(imports.iter().cloned());
        inputs
    } else {
        roots.extend(imports.iter().cloned());
        roots.push(match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
            _ => PathBuf::from("."),
        });
        vec![path.to_owned()]
    };

    let mut chain = ChainFileResolver::new();
    for root in roots {
        chain.add(IncludeFileResolver::new(root));
    }
    add_builtin_resolvers(&mut chain);

    let mut compiler = protox::Compiler::with_file_resolver(chain);
    compiler.include_imports(true).include_source_info(true);
    // The compiler runs under a panic guard: a bug of it on some input is a load error.
    let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        compiler.open_files(&inputs).map(|_| ())
    }))
    .map_err(|_| RegistryError::Compile {
        origin: origin.clone(),
        message: "the .proto compiler (protox) failed on these sources; compile them with \
                  protoc or buf into a descriptor set instead, and please report it"
            .to_owned(),
    })?;
    opened
        .map_err(|err| {
            // protox's Debug output is the one with `file:line:column:`.
            let mut message = format!("{err:?}");
            if message.contains("found 'edition'") {
                message.push_str(
                    " (this file is written in protobuf editions, which the in-process compiler \
                     cannot parse: compile it with protoc 27+ or buf into a descriptor set, e.g. \
                     `protoc --include_imports -o api.binpb api.proto`, and register it with `file:`)",
                );
            }
            RegistryError::Compile {
                origin: origin.clone(),
                message,
            }
        })?;

    let pool = compiler.descriptor_pool();
    // `files()` and the pool list the same files in the same (dependency-first) order.
    let files = compiler
        .files()
        .zip(pool.files())
        .filter(|(meta, _)| meta.path().is_some())
        .map(|(meta, file)| RawFile {
            name: meta.name().to_owned(),
            bytes: Bytes::from(file.encode_to_vec()),
        })
        .collect();
    Ok(SourceFiles { origin, files })
}

/// Appends every `*.proto` file below `dir` (recursively) to `out`.
fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::descriptors::test_support::fixture;

    fn names(source: &SourceFiles) -> Vec<&str> {
        source.files.iter().map(|f| f.name.as_str()).collect()
    }

    #[test]
    fn a_directory_compiles_every_proto_below_it_with_relative_names() {
        let source = compile_protos(&fixture("shop"), &[]).unwrap();
        assert_eq!(
            source.origin,
            format!("proto sources \"{}\"", fixture("shop").display())
        );
        // Dependencies first; the built-in google imports are not part of the source.
        assert_eq!(
            names(&source),
            ["shop/v1/common.proto", "shop/v1/shop.proto"]
        );
    }

    #[test]
    fn a_single_file_is_named_relative_to_the_import_root_holding_it() {
        let shop = fixture("shop");
        let source = compile_protos(&fixture("shop/shop/v1/shop.proto"), &[shop]).unwrap();
        assert_eq!(
            names(&source),
            ["shop/v1/common.proto", "shop/v1/shop.proto"]
        );
        // Without an import root, the parent directory is the root.
        let alone = compile_protos(&fixture("shop/shop/v1/common.proto"), &[]).unwrap();
        assert_eq!(names(&alone), ["common.proto"]);
    }

    #[test]
    fn import_dirs_are_searched_and_files_from_them_are_kept() {
        let source = compile_protos(&fixture("other"), &[fixture("shop")]).unwrap();
        assert_eq!(
            names(&source),
            ["shop/v1/common.proto", "other/v1/other.proto"]
        );
    }

    #[test]
    fn syntax_errors_carry_file_line_and_column() {
        let err = compile_protos(&fixture("broken"), &[])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("proto sources \""), "{err}");
        assert!(err.contains("bad.proto:6:"), "{err}");
    }

    #[test]
    fn unresolved_types_carry_file_line_and_column() {
        let err = compile_protos(&fixture("unresolved"), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("unresolved.proto:7:"), "{err}");
        assert!(err.contains("Nope"), "{err}");
    }

    #[test]
    fn an_empty_directory_is_an_error() {
        let err = compile_protos(&fixture("empty"), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("no .proto files"), "{err}");
    }

    #[test]
    fn a_missing_path_is_named() {
        let err = compile_protos(&fixture("nowhere"), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("nowhere"), "{err}");
        assert!(err.contains("No such file"), "{err}");
    }
}
