//! What every call to a method needs to know, resolved once per snapshot: the backend serving
//! it, its timeout and whether it may be retried. Every door plans its calls from these.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use prost_reflect::{MethodDescriptor, ServiceDescriptor};

use crate::descriptors::{Idempotency, http_bindings, idempotency};

/// One method as a call target.
#[derive(Debug)]
pub struct Target {
    /// The method, from the snapshot's descriptor pool.
    pub method: MethodDescriptor,
    /// The backend serving its service.
    pub backend: Arc<str>,
    /// Its own timeout: `rest.methods.<method>.timeout`, else the backend's `timeout`, else
    /// `deadlines.default` (a request's budget may cut it shorter).
    pub timeout: Duration,
    /// Whether it may be retried: see [`is_idempotent`].
    pub idempotent: bool,
}

/// Whether a method may be retried on a transient failure: its `idempotency_level` says
/// `NO_SIDE_EFFECTS` or `IDEMPOTENT`, or it is bound to a `GET` by a `google.api.http` rule.
/// The one rule, for every door.
pub fn is_idempotent(method: &MethodDescriptor) -> bool {
    idempotency(method) != Idempotency::Unknown
        || http_bindings(method)
            .iter()
            .any(|b| b.method == http::Method::GET)
}

/// The call targets of a snapshot, by method full name.
#[derive(Debug, Default)]
pub struct Targets {
    by_method: HashMap<String, Arc<Target>>,
}

impl Targets {
    /// The targets of every method of `services` (each with its backend's name), with the
    /// timeout `timeout(backend, method full name)` gives.
    pub fn new(
        services: &[(ServiceDescriptor, String)],
        timeout: impl Fn(&str, &str) -> Duration,
    ) -> Self {
        let mut by_method = HashMap::new();
        for (service, backend) in services {
            let backend: Arc<str> = backend.as_str().into();
            for method in service.methods() {
                let target = Target {
                    timeout: timeout(&backend, method.full_name()),
                    idempotent: is_idempotent(&method),
                    backend: backend.clone(),
                    method: method.clone(),
                };
                by_method.insert(method.full_name().to_string(), Arc::new(target));
            }
        }
        Self { by_method }
    }

    /// The target of a method (`package.Service.Method`), if its service is served.
    pub fn get(&self, method: &str) -> Option<&Arc<Target>> {
        self.by_method.get(method)
    }

    /// Every target, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Target>> {
        self.by_method.values()
    }
}
