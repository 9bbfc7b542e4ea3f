//! Raw descriptor files as sources contribute them: splitting sets, light decoding, re-assembling.
//!
//! Files stay as their original encoded `FileDescriptorProto` bytes all the way into the pool:
//! decoding them into `prost_types` would drop custom options such as `google.api.http`.
//! Only the few fields needed for bookkeeping (name, package, imports, symbol names) are
//! decoded, with the small `*Lite` messages below that skip everything else.

use std::path::Path;

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message;

use super::error::RegistryError;

/// The raw files one source contributed, each kept as its original encoded bytes.
#[derive(Debug, Clone)]
pub struct SourceFiles {
    /// Human-readable description of the source, used in every message about it, e.g.
    /// `descriptor set "descriptors/demo.binpb"`, `proto sources "descriptors/proto"`,
    /// `reflection from backend "users" (http://127.0.0.1:50051)`.
    pub origin: String,
    /// The files, in the order the source gave them.
    pub files: Vec<RawFile>,
}

/// One encoded `google.protobuf.FileDescriptorProto`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFile {
    /// The file's name (`FileDescriptorProto.name`), e.g. `demo/v1/users.proto`.
    pub name: String,
    /// The encoded `FileDescriptorProto`, unchanged.
    pub bytes: Bytes,
}

impl RawFile {
    /// Wraps encoded `FileDescriptorProto` bytes, reading the name from them.
    pub fn from_bytes(bytes: Bytes) -> Result<RawFile, prost::DecodeError> {
        let name = FileName::decode(bytes.as_ref())?.name.unwrap_or_default();
        Ok(RawFile { name, bytes })
    }
}

/// Reads a FileDescriptorSet file (`protoc --include_imports -o`, `buf build -o`).
pub fn load_descriptor_set(path: &Path) -> Result<SourceFiles, RegistryError> {
    let data = std::fs::read(path).map_err(|source| RegistryError::ReadDescriptorSet {
        path: path.to_owned(),
        source,
    })?;
    let origin = format!("descriptor set \"{}\"", path.display());
    let files = split_descriptor_set(Bytes::from(data), &origin)?;
    Ok(SourceFiles { origin, files })
}

/// Splits an encoded FileDescriptorSet into its files, without decoding them into `prost_types`.
pub(crate) fn split_descriptor_set(
    data: Bytes,
    origin: &str,
) -> Result<Vec<RawFile>, RegistryError> {
    let invalid = |reason: String| RegistryError::InvalidDescriptor {
        origin: origin.to_owned(),
        reason,
    };
    let set = RawSet::decode(data)
        .map_err(|err| invalid(format!("cannot decode a FileDescriptorSet: {err}")))?;
    if set.file.is_empty() {
        return Err(invalid("the FileDescriptorSet holds no files".to_owned()));
    }
    set.file
        .into_iter()
        .enumerate()
        .map(|(index, bytes)| {
            let file = RawFile::from_bytes(bytes)
                .map_err(|err| invalid(format!("file #{index} cannot be decoded: {err}")))?;
            if file.name.is_empty() {
                return Err(invalid(format!("file #{index} has no name")));
            }
            Ok(file)
        })
        .collect()
}

/// Encodes raw files as one FileDescriptorSet (each file's bytes copied verbatim).
pub(crate) fn encode_descriptor_set<'a>(files: impl Iterator<Item = &'a Bytes> + Clone) -> Bytes {
    let len: usize = files
        .clone()
        .map(|bytes| 1 + prost::encoding::encoded_len_varint(bytes.len() as u64) + bytes.len())
        .sum();
    let mut buf = BytesMut::with_capacity(len);
    for bytes in files {
        prost::encoding::encode_key(1, prost::encoding::WireType::LengthDelimited, &mut buf);
        prost::encoding::encode_varint(bytes.len() as u64, &mut buf);
        buf.put_slice(bytes);
    }
    buf.freeze()
}

/// `google.protobuf.FileDescriptorSet` with each file left as bytes.
#[derive(Clone, PartialEq, Message)]
struct RawSet {
    #[prost(bytes = "bytes", repeated, tag = "1")]
    file: Vec<Bytes>,
}

/// Only the name of a `FileDescriptorProto`.
#[derive(Clone, PartialEq, Message)]
struct FileName {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
}

/// The bookkeeping view of a `FileDescriptorProto`: name, package, imports and symbols.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct FileLite {
    /// `name`.
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// `package`.
    #[prost(string, optional, tag = "2")]
    pub package: Option<String>,
    /// `dependency`: the imports.
    #[prost(string, repeated, tag = "3")]
    pub dependency: Vec<String>,
    #[prost(message, repeated, tag = "4")]
    message_type: Vec<MessageLite>,
    #[prost(message, repeated, tag = "5")]
    enum_type: Vec<EnumLite>,
    #[prost(message, repeated, tag = "6")]
    service: Vec<NamedLite>,
    #[prost(message, repeated, tag = "7")]
    extension: Vec<NamedLite>,
    /// `syntax`: `proto2` (or empty), `proto3` or `editions`.
    #[prost(string, optional, tag = "12")]
    pub syntax: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct MessageLite {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(message, repeated, tag = "3")]
    nested_type: Vec<MessageLite>,
    #[prost(message, repeated, tag = "4")]
    enum_type: Vec<EnumLite>,
    #[prost(message, repeated, tag = "6")]
    extension: Vec<NamedLite>,
}

#[derive(Clone, PartialEq, Message)]
struct EnumLite {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(message, repeated, tag = "2")]
    value: Vec<NamedLite>,
}

#[derive(Clone, PartialEq, Message)]
struct NamedLite {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
}

/// A fully-qualified name a file defines, with what kind of thing it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Symbol {
    /// e.g. `demo.v1.User.Address`.
    pub name: String,
    /// message, enum, enum value, service or extension.
    pub kind: &'static str,
}

impl FileLite {
    /// Decodes the bookkeeping fields of an encoded `FileDescriptorProto`.
    pub fn decode_raw(bytes: &[u8]) -> Result<FileLite, prost::DecodeError> {
        FileLite::decode(bytes)
    }

    /// Every symbol the file defines, nested ones included.
    pub fn symbols(&self) -> Vec<Symbol> {
        let mut out = Vec::new();
        let package = self.package.as_deref().unwrap_or_default();
        for message in &self.message_type {
            message.collect(package, &mut out);
        }
        for enumeration in &self.enum_type {
            enumeration.collect(package, &mut out);
        }
        push_named(&mut out, package, &self.service, "service");
        push_named(&mut out, package, &self.extension, "extension");
        out
    }
}

impl MessageLite {
    fn collect(&self, scope: &str, out: &mut Vec<Symbol>) {
        let name = join(scope, self.name.as_deref().unwrap_or_default());
        for nested in &self.nested_type {
            nested.collect(&name, out);
        }
        for enumeration in &self.enum_type {
            enumeration.collect(&name, out);
        }
        push_named(out, &name, &self.extension, "extension");
        out.push(Symbol {
            name,
            kind: "message",
        });
    }
}

impl EnumLite {
    fn collect(&self, scope: &str, out: &mut Vec<Symbol>) {
        out.push(Symbol {
            name: join(scope, self.name.as_deref().unwrap_or_default()),
            kind: "enum",
        });
        // Enum values are siblings of their enum (C++ scoping rules).
        push_named(out, scope, &self.value, "enum value");
    }
}

fn push_named(out: &mut Vec<Symbol>, scope: &str, items: &[NamedLite], kind: &'static str) {
    out.extend(items.iter().map(|item| Symbol {
        name: join(scope, item.name.as_deref().unwrap_or_default()),
        kind,
    }));
}

fn join(scope: &str, name: &str) -> String {
    if scope.is_empty() {
        name.to_owned()
    } else {
        format!("{scope}.{name}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::descriptors::test_support::{fixture, shop_set, temp_path};

    #[test]
    fn split_keeps_every_file_verbatim() {
        let set = shop_set(true);
        let files = split_descriptor_set(set.clone(), "test").unwrap();
        let names: Vec<_> = files.iter().map(|f| f.name.as_str()).collect();
        assert!(names.contains(&"shop/v1/shop.proto"), "{names:?}");
        assert!(names.contains(&"google/api/http.proto"), "{names:?}");
        // Re-assembling the pieces gives back the exact same set.
        let again = encode_descriptor_set(files.iter().map(|f| &f.bytes));
        assert_eq!(again, set);
    }

    #[test]
    fn lite_decoding_lists_symbols_including_nested_ones() {
        let files = split_descriptor_set(shop_set(false), "test").unwrap();
        let shop = files
            .iter()
            .find(|f| f.name == "shop/v1/shop.proto")
            .unwrap();
        let lite = FileLite::decode_raw(&shop.bytes).unwrap();
        assert_eq!(lite.package.as_deref(), Some("shop.v1"));
        assert_eq!(
            lite.dependency,
            ["google/api/annotations.proto", "shop/v1/common.proto"]
        );
        let symbols: Vec<_> = lite
            .symbols()
            .into_iter()
            .map(|s| format!("{} {}", s.kind, s.name))
            .collect();
        for expected in [
            "message shop.v1.Order",
            "message shop.v1.Order.Line",
            "enum shop.v1.Order.State",
            "enum value shop.v1.Order.STATE_UNSPECIFIED",
            "service shop.v1.ShopService",
        ] {
            assert!(symbols.contains(&expected.to_owned()), "{symbols:?}");
        }
    }

    #[test]
    fn load_descriptor_set_reads_a_file() {
        let path = temp_path("load-ok.binpb");
        std::fs::write(&path, shop_set(true)).unwrap();
        let source = load_descriptor_set(&path).unwrap();
        assert_eq!(
            source.origin,
            format!("descriptor set \"{}\"", path.display())
        );
        assert!(
            source
                .files
                .iter()
                .any(|f| f.name == "shop/v1/common.proto")
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn load_descriptor_set_names_a_missing_path() {
        let path = fixture("does-not-exist.binpb");
        let err = load_descriptor_set(&path).unwrap_err().to_string();
        assert!(err.contains("does-not-exist.binpb"), "{err}");
        assert!(err.contains("No such file"), "{err}");
    }

    #[test]
    fn load_descriptor_set_rejects_garbage() {
        let path = temp_path("garbage.binpb");
        std::fs::write(&path, b"\xff\xff\xff\xff this is not protobuf").unwrap();
        let err = load_descriptor_set(&path).unwrap_err().to_string();
        assert!(err.contains("garbage.binpb"), "{err}");
        assert!(err.contains("not a valid protobuf descriptor"), "{err}");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn load_descriptor_set_rejects_a_proto_source_file() {
        // A common mistake: pointing `descriptor_set` at a .proto file.
        let err = load_descriptor_set(&fixture("shop/shop/v1/common.proto"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a valid protobuf descriptor"), "{err}");
    }
}
