//! The google protos Portico always knows: the whole googleapis `google/api`, `google/rpc` and
//! `google/type` sets, `google/longrunning/operations.proto`, and the well-known types.
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

/// The embedded googleapis sources, by import name: every file of `google/api`, `google/rpc`,
/// `google/type` and `google/longrunning/operations.proto`.
const EMBEDDED: &[(&str, &str)] = &[
    (
        "google/api/annotations.proto",
        include_str!("../../proto/google/api/annotations.proto"),
    ),
    (
        "google/api/auth.proto",
        include_str!("../../proto/google/api/auth.proto"),
    ),
    (
        "google/api/backend.proto",
        include_str!("../../proto/google/api/backend.proto"),
    ),
    (
        "google/api/billing.proto",
        include_str!("../../proto/google/api/billing.proto"),
    ),
    (
        "google/api/client.proto",
        include_str!("../../proto/google/api/client.proto"),
    ),
    (
        "google/api/config_change.proto",
        include_str!("../../proto/google/api/config_change.proto"),
    ),
    (
        "google/api/consumer.proto",
        include_str!("../../proto/google/api/consumer.proto"),
    ),
    (
        "google/api/context.proto",
        include_str!("../../proto/google/api/context.proto"),
    ),
    (
        "google/api/control.proto",
        include_str!("../../proto/google/api/control.proto"),
    ),
    (
        "google/api/distribution.proto",
        include_str!("../../proto/google/api/distribution.proto"),
    ),
    (
        "google/api/documentation.proto",
        include_str!("../../proto/google/api/documentation.proto"),
    ),
    (
        "google/api/endpoint.proto",
        include_str!("../../proto/google/api/endpoint.proto"),
    ),
    (
        "google/api/error_reason.proto",
        include_str!("../../proto/google/api/error_reason.proto"),
    ),
    (
        "google/api/field_behavior.proto",
        include_str!("../../proto/google/api/field_behavior.proto"),
    ),
    (
        "google/api/field_info.proto",
        include_str!("../../proto/google/api/field_info.proto"),
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
        "google/api/label.proto",
        include_str!("../../proto/google/api/label.proto"),
    ),
    (
        "google/api/launch_stage.proto",
        include_str!("../../proto/google/api/launch_stage.proto"),
    ),
    (
        "google/api/log.proto",
        include_str!("../../proto/google/api/log.proto"),
    ),
    (
        "google/api/logging.proto",
        include_str!("../../proto/google/api/logging.proto"),
    ),
    (
        "google/api/metric.proto",
        include_str!("../../proto/google/api/metric.proto"),
    ),
    (
        "google/api/monitored_resource.proto",
        include_str!("../../proto/google/api/monitored_resource.proto"),
    ),
    (
        "google/api/monitoring.proto",
        include_str!("../../proto/google/api/monitoring.proto"),
    ),
    (
        "google/api/policy.proto",
        include_str!("../../proto/google/api/policy.proto"),
    ),
    (
        "google/api/quota.proto",
        include_str!("../../proto/google/api/quota.proto"),
    ),
    (
        "google/api/resource.proto",
        include_str!("../../proto/google/api/resource.proto"),
    ),
    (
        "google/api/routing.proto",
        include_str!("../../proto/google/api/routing.proto"),
    ),
    (
        "google/api/service.proto",
        include_str!("../../proto/google/api/service.proto"),
    ),
    (
        "google/api/source_info.proto",
        include_str!("../../proto/google/api/source_info.proto"),
    ),
    (
        "google/api/system_parameter.proto",
        include_str!("../../proto/google/api/system_parameter.proto"),
    ),
    (
        "google/api/usage.proto",
        include_str!("../../proto/google/api/usage.proto"),
    ),
    (
        "google/api/visibility.proto",
        include_str!("../../proto/google/api/visibility.proto"),
    ),
    (
        "google/longrunning/operations.proto",
        include_str!("../../proto/google/longrunning/operations.proto"),
    ),
    (
        "google/rpc/code.proto",
        include_str!("../../proto/google/rpc/code.proto"),
    ),
    (
        "google/rpc/context/attribute_context.proto",
        include_str!("../../proto/google/rpc/context/attribute_context.proto"),
    ),
    (
        "google/rpc/context/audit_context.proto",
        include_str!("../../proto/google/rpc/context/audit_context.proto"),
    ),
    (
        "google/rpc/error_details.proto",
        include_str!("../../proto/google/rpc/error_details.proto"),
    ),
    (
        "google/rpc/http.proto",
        include_str!("../../proto/google/rpc/http.proto"),
    ),
    (
        "google/rpc/status.proto",
        include_str!("../../proto/google/rpc/status.proto"),
    ),
    (
        "google/type/calendar_period.proto",
        include_str!("../../proto/google/type/calendar_period.proto"),
    ),
    (
        "google/type/color.proto",
        include_str!("../../proto/google/type/color.proto"),
    ),
    (
        "google/type/date.proto",
        include_str!("../../proto/google/type/date.proto"),
    ),
    (
        "google/type/datetime.proto",
        include_str!("../../proto/google/type/datetime.proto"),
    ),
    (
        "google/type/dayofweek.proto",
        include_str!("../../proto/google/type/dayofweek.proto"),
    ),
    (
        "google/type/decimal.proto",
        include_str!("../../proto/google/type/decimal.proto"),
    ),
    (
        "google/type/expr.proto",
        include_str!("../../proto/google/type/expr.proto"),
    ),
    (
        "google/type/fraction.proto",
        include_str!("../../proto/google/type/fraction.proto"),
    ),
    (
        "google/type/interval.proto",
        include_str!("../../proto/google/type/interval.proto"),
    ),
    (
        "google/type/latlng.proto",
        include_str!("../../proto/google/type/latlng.proto"),
    ),
    (
        "google/type/localized_text.proto",
        include_str!("../../proto/google/type/localized_text.proto"),
    ),
    (
        "google/type/money.proto",
        include_str!("../../proto/google/type/money.proto"),
    ),
    (
        "google/type/month.proto",
        include_str!("../../proto/google/type/month.proto"),
    ),
    (
        "google/type/phone_number.proto",
        include_str!("../../proto/google/type/phone_number.proto"),
    ),
    (
        "google/type/postal_address.proto",
        include_str!("../../proto/google/type/postal_address.proto"),
    ),
    (
        "google/type/quaternion.proto",
        include_str!("../../proto/google/type/quaternion.proto"),
    ),
    (
        "google/type/timeofday.proto",
        include_str!("../../proto/google/type/timeofday.proto"),
    ),
];

/// Whether a file name belongs to the families Portico ships itself (well-known types,
/// google/api, google/rpc). Different copies of these are not conflicts: descriptor sets built
/// from different googleapis/protobuf versions differ in comments and newer fields only.
pub(crate) fn is_google_family(name: &str) -> bool {
    name.starts_with("google/protobuf/")
        || name.starts_with("google/api/")
        || name.starts_with("google/rpc/")
        || name.starts_with("google/type/")
        || name.starts_with("google/longrunning/")
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
