//! The descriptor registry: descriptor sets, .proto sources and server reflection merged into one pool.
//!
//! Backend teams register descriptors three ways, mixed freely:
//! - [`load_descriptor_set`]: a FileDescriptorSet file (`protoc --include_imports -o`, `buf build -o`);
//! - [`compile_protos`]: .proto sources compiled at runtime with protox;
//! - [`fetch_reflection`]: a backend's gRPC server reflection service.
//!
//! Each gives [`SourceFiles`]: the files as their original encoded bytes (decoding them into
//! `prost_types` would lose custom options such as `google.api.http`). [`Registry::build`] merges
//! them with the built-in google protos (well-known types, google/api, google/rpc) into one
//! [`prost_reflect::DescriptorPool`], rejecting conflicting files and symbols and missing
//! imports. See `merge.rs` for the exact rules, notably: copies of `google/protobuf/*`,
//! `google/api/*` and `google/rpc/*` files that differ are not conflicts, and the user's copy
//! (the first one seen) is kept over the built-in one.

mod builtin;
mod docs;
mod editions;
mod error;
mod http_rule;
mod merge;
mod protos;
mod reflection;
mod source;

use std::collections::HashMap;
use std::sync::Arc;

use prost_reflect::{DescriptorPool, ServiceDescriptor};

pub use builtin::EmbeddedFileResolver;
pub use docs::Docs;
pub use error::{ReflectionFailure, RegistryError, SymbolConflict};
pub use http_rule::{HttpBinding, Idempotency, http_bindings, idempotency};
pub use protos::compile_protos;
pub use reflection::{
    DEFAULT_REFLECTION_TIMEOUT, Reflected, fetch_reflection, fetch_reflection_with_timeout,
};
pub use source::{RawFile, SourceFiles, load_descriptor_set};

/// Every registered descriptor in one pool, plus where each user file and service came from.
///
/// Cheap to clone (the pool is reference-counted).
#[derive(Debug, Clone)]
pub struct Registry {
    pool: DescriptorPool,
    file_origins: Arc<HashMap<String, Arc<str>>>,
    service_origins: Arc<HashMap<String, Arc<str>>>,
    services: Arc<[ServiceDescriptor]>,
}

impl Registry {
    /// Merges sources (in order) and the built-in google protos into one pool; conflicts
    /// (same file name with different content, same symbol in two files) and missing imports
    /// are errors naming the files and their origins.
    pub fn build(sources: Vec<SourceFiles>) -> Result<Registry, RegistryError> {
        let merged = merge::merge(&sources)?;
        let mut services: Vec<ServiceDescriptor> = Vec::new();
        let mut service_origins = HashMap::new();
        for service in merged.pool.services() {
            if let Some(origin) = merged.file_origins.get(service.parent_file().name()) {
                service_origins.insert(service.full_name().to_owned(), origin.clone());
                services.push(service);
            }
        }
        services.sort_by(|a, b| a.full_name().cmp(b.full_name()));
        Ok(Registry {
            pool: merged.pool,
            file_origins: Arc::new(merged.file_origins),
            service_origins: Arc::new(service_origins),
            services: services.into(),
        })
    }

    /// The merged pool: user files, the well-known types, google/api and google/rpc.
    pub fn pool(&self) -> &DescriptorPool {
        &self.pool
    }

    /// Which source defined a service (for `--check` output and error messages).
    pub fn service_origin(&self, full_name: &str) -> Option<&str> {
        self.service_origins.get(full_name).map(|origin| &**origin)
    }

    /// Which source provided a file; `None` for built-ins and unknown files.
    pub fn file_origin(&self, file_name: &str) -> Option<&str> {
        self.file_origins.get(file_name).map(|origin| &**origin)
    }

    /// Every service defined by the user's sources (not the built-in google ones), sorted by
    /// full name.
    pub fn services(&self) -> Vec<ServiceDescriptor> {
        self.services.to_vec()
    }
}

#[cfg(test)]
pub(crate) mod test_support;

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
