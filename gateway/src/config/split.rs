//! Traffic splitting of a backend (`backends.NAME.split`): its variants and weights, sticky
//! callers and the testers' override header; types, and their own validation.

use serde::{Deserialize, Serialize};

use super::{BackendConfig, BackendTlsConfig, HumanDuration, ResilienceConfig};

/// A backend served by several versions at once (a canary release): each call goes to one
/// variant, by weight, by the caller's sticky key, or by the override header.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SplitConfig {
    /// The variants, each with its endpoints and weight (e.g. `stable` 95, `canary` 5).
    pub variants: Vec<VariantConfig>,
    /// Keep each caller on one variant (by their subject or a header); without it, calls are
    /// spread by smooth weighted round robin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky: Option<StickyConfig>,
    /// A request header naming the variant to use (for testers, e.g. `x-portico-variant`);
    /// it wins over weights and stickiness, and reaches variants of weight 0 too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_header: Option<String>,
    /// A response header naming the variant that answered (e.g. `x-portico-variant`); off by
    /// default: clients are not told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_header: Option<String>,
}

/// One variant of a split backend: built like a backend of its own (its own endpoints,
/// breaker, bulkhead and connections).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VariantConfig {
    /// Its name (`[A-Za-z0-9_.-]`, unique in the backend): in the access log, metrics, admin
    /// status, and what the override header names.
    pub name: String,
    /// Its share of the calls, relative to the others' (0: only by the override header).
    pub weight: u32,
    /// Its endpoints, e.g. `http://10.0.0.7:50051`.
    pub endpoints: Vec<String>,
    /// How long to wait for a TCP connection (default: the backend's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<HumanDuration>,
    /// Its breaker, bulkhead, retries, balancing and health checks (default: the backend's;
    /// fallbacks stay on the backend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resilience: Option<ResilienceConfig>,
    /// TLS to its `https://` endpoints (default: the backend's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<BackendTlsConfig>,
}

/// What keeps a caller on one variant: the first of these the request has. A request with
/// neither is spread by weight like any other.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StickyConfig {
    /// The authenticated caller's subject (a JWT's `sub`, an API key's id, a certificate's
    /// subject).
    #[serde(default)]
    pub subject: bool,
    /// A request header, e.g. `x-user-id` (used when `subject` is off or the caller is
    /// anonymous).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
}

impl BackendConfig {
    /// The config variant `v` of this backend is built from: its endpoints, and its own
    /// `connect_timeout`, `resilience` and `tls` or else the backend's (no services, no
    /// fallbacks, no split). A weight is not part of it: a reload that only changes weights
    /// keeps every variant's connections, breaker and bulkhead.
    pub fn variant_config(&self, v: &VariantConfig) -> BackendConfig {
        let mut resilience = v
            .resilience
            .clone()
            .unwrap_or_else(|| self.resilience.clone());
        resilience.fallbacks.clear();
        BackendConfig {
            endpoints: v.endpoints.clone(),
            services: Vec::new(),
            timeout: self.timeout,
            connect_timeout: v.connect_timeout.unwrap_or(self.connect_timeout),
            resilience,
            tls: v.tls.clone().or_else(|| self.tls.clone()),
            split: None,
        }
    }
}

/// Whether `name` is a valid HTTP header name.
fn is_header_name(name: &str) -> bool {
    http::HeaderName::from_bytes(name.as_bytes()).is_ok()
}

impl SplitConfig {
    /// Checks names, weights and header names; errors give the key below `split` and why.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |k: String, m: String| Err((k, m));
        if self.variants.is_empty() {
            return bad(
                "variants".into(),
                "at least one variant is needed, e.g. [{name: stable, weight: 95, endpoints: [...]}, {name: canary, weight: 5, endpoints: [...]}]".into(),
            );
        }
        for (i, v) in self.variants.iter().enumerate() {
            if v.name.is_empty()
                || !v
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
            {
                return bad(
                    format!("variants[{i}].name"),
                    format!(
                        "{:?}: a variant's name is letters, digits, `_`, `.` or `-` (it is a metric label and a header value)",
                        v.name
                    ),
                );
            }
            if let Some(j) = self.variants[..i].iter().position(|o| o.name == v.name) {
                return bad(
                    format!("variants[{i}].name"),
                    format!("{:?} is already the name of variants[{j}]", v.name),
                );
            }
            if v.resilience
                .as_ref()
                .is_some_and(|r| !r.fallbacks.is_empty())
            {
                return bad(
                    format!("variants[{i}].resilience.fallbacks"),
                    "fallbacks belong to the backend (`resilience.fallbacks` beside `split`), not to a variant".into(),
                );
            }
        }
        let total: u64 = self.variants.iter().map(|v| u64::from(v.weight)).sum();
        if total == 0 {
            return bad(
                "variants".into(),
                "every weight is 0: at least one variant must take traffic".into(),
            );
        }
        if let Some(s) = &self.sticky {
            if !s.subject && s.header.is_none() {
                return bad(
                    "sticky".into(),
                    "name what keeps a caller on one variant: `subject: true`, `header: x-user-id`, or both".into(),
                );
            }
            if let Some(h) = s.header.as_deref().filter(|h| !is_header_name(h)) {
                return bad(
                    "sticky.header".into(),
                    format!("{h:?} is not a header name"),
                );
            }
        }
        if let Some(h) = self
            .response_header
            .as_deref()
            .filter(|h| !is_header_name(h))
        {
            return bad(
                "response_header".into(),
                format!("{h:?} is not a header name"),
            );
        }
        if let Some(h) = self.override_header.as_deref() {
            if !is_header_name(h) {
                return bad(
                    "override_header".into(),
                    format!("{h:?} is not a header name"),
                );
            }
            if self
                .sticky
                .as_ref()
                .and_then(|s| s.header.as_deref())
                .is_some_and(|s| s.eq_ignore_ascii_case(h))
            {
                return bad(
                    "override_header".into(),
                    format!("{h:?} is also `sticky.header`: use two headers"),
                );
            }
        }
        Ok(())
    }
}
