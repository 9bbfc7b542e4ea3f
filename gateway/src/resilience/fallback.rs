//! Static fallbacks: a configured response per method, checked against the descriptors when
//! the snapshot is built, served when a call fails because its backend is sick, its circuit is
//! open or its bulkhead is full. Replies built from it are marked (`Reply::fallback`).

use std::collections::HashMap;

use prost_reflect::{DescriptorPool, DynamicMessage};

use crate::config::ResilienceConfig;

/// The fallback responses of every method that has one.
#[derive(Debug, Default)]
pub struct Fallbacks {
    by_method: HashMap<String, DynamicMessage>,
}

/// A fallback that does not fit: the config key (below `backends.NAME.resilience`) and why.
pub type FallbackError = (String, String);

impl Fallbacks {
    /// Checks and converts the `fallbacks` of one backend: each method must exist, be served by
    /// `backend` (per `backend_of(service)`), be unary, and its value must be a valid JSON
    /// form of its response message.
    pub fn add_backend<'a>(
        &mut self,
        backend: &str,
        cfg: &ResilienceConfig,
        pool: &DescriptorPool,
        backend_of: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<(), FallbackError> {
        for (name, json) in &cfg.fallbacks {
            let key = format!("fallbacks.{name}");
            let (service, method) = name.rsplit_once('.').unwrap_or(("", name));
            let Some(desc) = pool
                .get_service_by_name(service)
                .and_then(|s| s.methods().find(|m| m.name() == method))
            else {
                return Err((key, "no such method in the registered descriptors".into()));
            };
            if backend_of(service) != Some(backend) {
                return Err((
                    key,
                    format!("{service} is not served by backend {backend:?}"),
                ));
            }
            if desc.is_server_streaming() {
                return Err((
                    key,
                    "streaming methods cannot have a static fallback".into(),
                ));
            }
            let msg = DynamicMessage::deserialize(desc.output(), json.clone()).map_err(|e| {
                (
                    key.clone(),
                    format!("not a valid {}: {e}", desc.output().full_name()),
                )
            })?;
            self.by_method.insert(name.clone(), msg);
        }
        Ok(())
    }

    /// The fallback of a method (`package.Service.Method`).
    pub fn get(&self, method: &str) -> Option<&DynamicMessage> {
        self.by_method.get(method)
    }

    /// Whether no method has a fallback.
    pub fn is_empty(&self) -> bool {
        self.by_method.is_empty()
    }
}
