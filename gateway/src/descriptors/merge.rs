//! Merging the raw files of every source (plus the built-ins) into one pool, catching conflicts.
//!
//! Rules, in the order they are applied (all lookups are hash maps, so the merge is linear in
//! the number of files and symbols):
//! 1. User sources, in order. A file name seen before with identical bytes is dropped (e.g. two
//!    backends sharing `common.proto`). With different bytes it is a conflict, except for the
//!    google families (`google/protobuf/*`, `google/api/*`, `google/rpc/*`): copies of those
//!    from different protobuf/googleapis versions differ only in comments and newer fields, so
//!    the first copy is kept silently.
//! 2. Every symbol (message, enum, enum value, service, extension, nested ones included) must be
//!    defined by one file only.
//! 3. The built-ins are added for every name no user source provides, when the pool needs them:
//!    the well-known types, `google/api/{annotations,http}`, `google/rpc/{code,status,
//!    error_details}` always, the others when a user file imports them (directly or through
//!    another built-in). A built-in is left out if one of its symbols is already defined by a
//!    user file (e.g. googleapis vendored under another path) or if it imports a built-in that
//!    was left out. So a user's copy always wins.
//! 4. Every import of a user file must be provided.
//! 5. The pool is decoded from the re-assembled raw bytes, so custom options survive. A file in
//!    protobuf editions is rewritten into proto2 or proto3 first (see `editions.rs`); a file
//!    of any other unknown syntax is refused. The decoding runs under a panic guard: a bug of
//!    the descriptor library on some input is a load error naming the source, never a crash.

use std::collections::HashMap;
use std::collections::hash_map::Entry as MapEntry;
use std::sync::Arc;

use bytes::Bytes;
use prost_reflect::DescriptorPool;

use super::builtin::{builtin_files, is_google_family};
use super::editions;
use super::error::{RegistryError, SymbolConflict};
use super::source::{FileLite, SourceFiles, encode_descriptor_set};

/// The result of a merge: the pool and where each user file came from.
#[derive(Debug)]
pub(crate) struct Merged {
    /// Every file: user files and built-ins.
    pub pool: DescriptorPool,
    /// The origin of each file a user source provided (built-ins are absent).
    pub file_origins: HashMap<String, Arc<str>>,
}

/// One file retained for the pool.
struct Kept {
    name: String,
    bytes: Bytes,
    /// `None` for a built-in.
    origin: Option<Arc<str>>,
    dependency: Vec<String>,
}

impl Kept {
    fn origin(&self) -> &str {
        self.origin.as_deref().unwrap_or("built-in google protos")
    }
}

/// Merges the sources (in order) and the built-ins into one pool; see the module docs.
pub(crate) fn merge(sources: &[SourceFiles]) -> Result<Merged, RegistryError> {
    let total: usize = sources.iter().map(|s| s.files.len()).sum();
    let mut kept: Vec<Kept> = Vec::with_capacity(total + 32);
    let mut by_name: HashMap<String, usize> = HashMap::with_capacity(total + 32);
    let mut symbols: HashMap<String, usize> = HashMap::new();

    for source in sources {
        let origin: Arc<str> = Arc::from(source.origin.as_str());
        for file in &source.files {
            let lite = FileLite::decode_raw(&file.bytes).map_err(|err| {
                RegistryError::InvalidDescriptor {
                    origin: source.origin.clone(),
                    reason: format!("file \"{}\" cannot be decoded: {err}", file.name),
                }
            })?;
            let name = match lite.name.as_deref() {
                Some(name) if !name.is_empty() => name.to_owned(),
                _ => {
                    return Err(RegistryError::InvalidDescriptor {
                        origin: source.origin.clone(),
                        reason: format!("file \"{}\" has no name", file.name),
                    });
                }
            };
            let bytes = classic(&source.origin, &name, lite.syntax.as_deref(), &file.bytes)?;
            if let Some(&existing) = by_name.get(&name) {
                let first = &kept[existing];
                if first.bytes == bytes {
                    continue;
                }
                if is_google_family(&name) {
                    tracing::debug!(
                        file = %name,
                        kept = first.origin(),
                        ignored = %origin,
                        "two copies of a google proto differ; keeping the first"
                    );
                    continue;
                }
                return Err(RegistryError::FileConflict {
                    file: name,
                    first_origin: first.origin().to_owned(),
                    second_origin: source.origin.clone(),
                });
            }
            let index = kept.len();
            for symbol in lite.symbols() {
                match symbols.entry(symbol.name) {
                    MapEntry::Vacant(slot) => {
                        slot.insert(index);
                    }
                    MapEntry::Occupied(slot) => {
                        let first = kept.get(*slot.get());
                        return Err(RegistryError::SymbolConflict(Box::new(SymbolConflict {
                            kind: symbol.kind,
                            first_file: first.map_or_else(|| name.clone(), |f| f.name.clone()),
                            first_origin: first
                                .map_or_else(|| source.origin.clone(), |f| f.origin().to_owned()),
                            symbol: slot.key().clone(),
                            second_file: name,
                            second_origin: source.origin.clone(),
                        })));
                    }
                }
            }
            by_name.insert(name.clone(), index);
            kept.push(Kept {
                name,
                bytes,
                origin: Some(origin.clone()),
                dependency: lite.dependency,
            });
        }
    }
    let user_count = kept.len();

    // The built-ins the pool needs: those always present, and every one a user file imports,
    // directly or through other built-ins.
    let builtins = builtin_files()?;
    let mut builtin_lites = HashMap::with_capacity(builtins.len());
    for file in builtins {
        let lite = FileLite::decode_raw(&file.bytes)
            .map_err(|err| RegistryError::Builtin(format!("{}: {err}", file.name)))?;
        builtin_lites.insert(file.name.as_str(), lite);
    }
    let mut needed: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut stack: Vec<String> = builtins
        .iter()
        .map(|f| f.name.clone())
        .filter(|n| always_present(n))
        .chain(kept.iter().flat_map(|k| k.dependency.iter().cloned()))
        .collect();
    while let Some(name) = stack.pop() {
        if let Some(lite) = builtin_lites.get(name.as_str())
            && !needed.contains(&name)
        {
            stack.extend(lite.dependency.iter().cloned());
            needed.insert(name);
        }
    }

    // Built-ins come dependencies first, so one pass sees every left-out import.
    for file in builtins {
        if by_name.contains_key(&file.name) || !needed.contains(file.name.as_str()) {
            continue;
        }
        let Some(lite) = builtin_lites.remove(file.name.as_str()) else {
            continue;
        };
        if let Some(import) = lite.dependency.iter().find(|d| !by_name.contains_key(*d)) {
            tracing::debug!(file = %file.name, %import, "built-in left out: its import was left out");
            continue;
        }
        let file_symbols = lite.symbols();
        if let Some(symbol) = file_symbols.iter().find(|s| symbols.contains_key(&s.name)) {
            tracing::debug!(
                file = %file.name,
                symbol = %symbol.name,
                "built-in left out: a user file defines the same symbol"
            );
            continue;
        }
        let index = kept.len();
        symbols.extend(file_symbols.into_iter().map(|s| (s.name, index)));
        by_name.insert(file.name.clone(), index);
        kept.push(Kept {
            name: file.name.clone(),
            bytes: file.bytes.clone(),
            origin: None,
            dependency: lite.dependency,
        });
    }

    for file in &kept[..user_count] {
        if let Some(import) = file.dependency.iter().find(|d| !by_name.contains_key(*d)) {
            return Err(RegistryError::MissingImport {
                origin: file.origin().to_owned(),
                file: file.name.clone(),
                import: import.clone(),
            });
        }
    }

    let set = encode_descriptor_set(kept.iter().map(|f| &f.bytes));
    let decoded = std::panic::catch_unwind(|| DescriptorPool::decode(set)).map_err(|panic| {
        let what = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        RegistryError::Pool {
            origin: origins_of(&kept[..user_count]),
            message: format!(
                "the descriptor library (prost-reflect) failed on these descriptors ({what}); \
                 please report it with the descriptor set"
            ),
        }
    })?;
    let pool = decoded.map_err(|err| RegistryError::Pool {
        origin: err
            .file()
            .and_then(|file| by_name.get(file))
            .map_or("merged descriptors", |&index| kept[index].origin())
            .to_owned(),
        message: format!("{err:?}"),
    })?;

    let file_origins = kept
        .into_iter()
        .filter_map(|file| Some((file.name, file.origin?)))
        .collect();
    Ok(Merged { pool, file_origins })
}

/// The distinct origins of `files`, for an error about all of them.
fn origins_of(files: &[Kept]) -> String {
    let mut origins: Vec<&str> = files.iter().map(Kept::origin).collect();
    origins.dedup();
    origins.join(", ")
}

/// The bytes to pool for a user file: itself, or its proto2/proto3 rewrite when it is in
/// editions; an unknown syntax is refused (prost-reflect would fail on it, badly).
fn classic(
    origin: &str,
    name: &str,
    syntax: Option<&str>,
    bytes: &Bytes,
) -> Result<Bytes, RegistryError> {
    match syntax {
        None | Some("") | Some("proto2") | Some("proto3") => Ok(bytes.clone()),
        s if editions::is_editions(s) => match editions::to_classic(bytes) {
            Ok(c) => {
                tracing::debug!(file = %name, syntax = c.syntax, "editions file rewritten");
                for a in &c.approximations {
                    tracing::warn!(file = %name, %origin, approximated = %a,
                        "an editions feature proto2 cannot express is approximated");
                }
                Ok(c.bytes)
            }
            Err(reason) => Err(RegistryError::InvalidDescriptor {
                origin: origin.to_owned(),
                reason: format!("file \"{name}\" {reason}"),
            }),
        },
        Some(other) => Err(RegistryError::InvalidDescriptor {
            origin: origin.to_owned(),
            reason: format!(
                "file \"{name}\" declares syntax {other:?}; the gateway reads proto2, proto3 and editions (2023, 2024)"
            ),
        }),
    }
}

/// Built-ins in every pool, imported or not: the well-known types, the HTTP rule, and what
/// renders a backend's error details.
fn always_present(name: &str) -> bool {
    name.starts_with("google/protobuf/")
        || matches!(
            name,
            "google/api/annotations.proto"
                | "google/api/http.proto"
                | "google/rpc/code.proto"
                | "google/rpc/error_details.proto"
                | "google/rpc/status.proto"
        )
}
