//! Traffic splitting (canary releases): a backend served by several variants at once, and
//! which variant serves each call.
//!
//! A [`Split`] is built from `backends.NAME.split`. Each variant is a [`Backend`] of its own
//! (endpoints, breaker, bulkhead, connections), kept across a reload that does not change its
//! config (a weight is not part of it), so a weight change drops no connection and resets no
//! breaker. [`Split::choose`] picks the variant of one call: the one the override header
//! names, else the one the caller's sticky key hashes to ([`weights::rendezvous`]), else the
//! next of the smooth weighted round robin ([`weights::Rotation`]). The [`policy`] stage makes
//! that choice for every call a door plans and notes it for the access line; a call that did
//! not come through the chain (a cache refresh) gets the round robin's pick from the upstream.
//! A call keeps the variant (and channel) it started with, through its retries and past a
//! reload.

pub mod policy;
pub mod weights;

use std::sync::{Mutex, PoisonError};

use http::{HeaderMap, HeaderName};
use serde_json::{Value as Json, json};

use crate::config::BackendConfig;
use crate::error::GatewayError;
use crate::upstream::Backend;
use weights::Rotation;

/// One variant of a split backend.
#[derive(Clone, Debug)]
pub struct Variant {
    /// Its name in the config.
    pub name: std::sync::Arc<str>,
    /// Its weight.
    pub weight: u32,
    /// Its endpoints and resilience state.
    pub backend: Backend,
}

/// Why a call went to its variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The smooth weighted round robin's turn (no sticky key).
    Weight,
    /// The caller's sticky key.
    Sticky,
    /// The override header.
    Override,
}

impl Reason {
    /// `weight`, `sticky` or `override`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Weight => "weight",
            Reason::Sticky => "sticky",
            Reason::Override => "override",
        }
    }
}

/// A split backend: its variants and how a call picks one.
#[derive(Debug)]
pub struct Split {
    name: std::sync::Arc<str>,
    variants: Vec<Variant>,
    rotation: Mutex<Rotation>,
    sticky_subject: bool,
    sticky_header: Option<HeaderName>,
    override_header: Option<HeaderName>,
    response_header: Option<HeaderName>,
}

impl Split {
    /// Builds the split backend `name` from `cfg` (its `split` section; TLS paths resolved),
    /// keeping the variants of `previous` whose config did not change. Errors give the key
    /// below `backends.NAME` and what is wrong.
    pub fn build(
        name: &str,
        cfg: &BackendConfig,
        previous: Option<&Split>,
    ) -> Result<Self, (String, String)> {
        let Some(split) = cfg.split.as_ref().filter(|s| !s.variants.is_empty()) else {
            return Err(("split.variants".into(), "no variants".into()));
        };
        let mut variants = Vec::with_capacity(split.variants.len());
        for (i, v) in split.variants.iter().enumerate() {
            let vcfg = cfg.variant_config(v);
            let kept = previous
                .and_then(|p| p.variant(&v.name))
                .filter(|old| old.backend.built_from(&vcfg))
                .map(|old| old.backend.clone());
            let backend = match kept {
                Some(b) => b,
                None => Backend::new_variant(name, &v.name, &vcfg)
                    .map_err(|m| (format!("split.variants[{i}]"), m))?,
            };
            variants.push(Variant {
                name: v.name.as_str().into(),
                weight: v.weight,
                backend,
            });
        }
        let header = |h: &str| HeaderName::from_bytes(h.as_bytes()).ok();
        let weights: Vec<u32> = variants.iter().map(|v| v.weight).collect();
        Ok(Self {
            name: name.into(),
            rotation: Mutex::new(Rotation::new(&weights)),
            variants,
            sticky_subject: split.sticky.as_ref().is_some_and(|s| s.subject),
            sticky_header: split
                .sticky
                .as_ref()
                .and_then(|s| s.header.as_deref())
                .and_then(header),
            override_header: split.override_header.as_deref().and_then(header),
            response_header: split.response_header.as_deref().and_then(header),
        })
    }

    /// The backend's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its variants, in config order.
    pub fn variants(&self) -> &[Variant] {
        &self.variants
    }

    /// The variant named `name`.
    pub fn variant(&self, name: &str) -> Option<&Variant> {
        self.variants.iter().find(|v| &*v.name == name)
    }

    /// The request headers a choice may read (the sticky and the override header).
    pub fn headers(&self) -> impl Iterator<Item = &HeaderName> {
        self.sticky_header.iter().chain(self.override_header.iter())
    }

    /// The response header that names the variant that answered, when configured.
    pub fn response_header(&self) -> Option<&HeaderName> {
        self.response_header.as_ref()
    }

    /// The round robin's next variant.
    pub fn weighted(&self) -> &Variant {
        let i = self
            .rotation
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pick();
        // `i` is an index of `variants`, which is never empty (see `build`).
        &self.variants[i.min(self.variants.len().saturating_sub(1))]
    }

    /// The variant of a call by a caller with `subject` (when identified) sending `headers`:
    /// the override header's, else the sticky key's, else the round robin's. An override
    /// naming no variant is a 400 that names the variants.
    pub fn choose(
        &self,
        subject: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<(&Variant, Reason), GatewayError> {
        if let Some(h) = &self.override_header
            && let Some(value) = headers.get(h)
        {
            let asked = value.to_str().unwrap_or("").trim();
            return match self.variant(asked) {
                Some(v) => Ok((v, Reason::Override)),
                None => Err(GatewayError::bad_request(
                    Some(h.as_str().to_string()),
                    format!(
                        "{h}: {asked:?} is not a variant of backend {:?} (its variants: {})",
                        &*self.name,
                        self.variants
                            .iter()
                            .map(|v| &*v.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )),
            };
        }
        let key = match (self.sticky_subject, subject, &self.sticky_header) {
            (true, Some(s), _) => Some(s.as_bytes()),
            (_, _, Some(h)) => headers
                .get(h)
                .map(http::HeaderValue::as_bytes)
                .filter(|k| !k.is_empty()),
            _ => None,
        };
        Ok(match key {
            Some(key) => {
                let names: Vec<&str> = self.variants.iter().map(|v| &*v.name).collect();
                let weights: Vec<u32> = self.variants.iter().map(|v| v.weight).collect();
                let i = weights::rendezvous(&names, &weights, &self.name, key);
                (&self.variants[i], Reason::Sticky)
            }
            None => (self.weighted(), Reason::Weight),
        })
    }

    /// Its variants with their weights and state, as JSON (for `GET /admin/backends`).
    pub fn status(&self) -> Json {
        let total: u64 = self.variants.iter().map(|v| u64::from(v.weight)).sum();
        let variants: Vec<Json> = self
            .variants
            .iter()
            .map(|v| {
                let mut s = v.backend.status();
                if let Some(o) = s.as_object_mut() {
                    o.insert("name".into(), json!(&*v.name));
                    o.insert("weight".into(), json!(v.weight));
                    o.insert(
                        "share".into(),
                        json!(if total == 0 {
                            0.0
                        } else {
                            f64::from(v.weight) / total as f64
                        }),
                    );
                }
                s
            })
            .collect();
        let sticky: Vec<String> = self
            .sticky_subject
            .then(|| "subject".to_string())
            .into_iter()
            .chain(self.sticky_header.iter().map(|h| format!("header {h}")))
            .collect();
        json!({
            "name": &*self.name,
            "split": {
                "sticky": sticky,
                "override_header": self.override_header.as_ref().map(HeaderName::as_str),
                "response_header": self.response_header.as_ref().map(HeaderName::as_str),
                "variants": variants,
            },
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn split(extra: &str) -> Split {
        let yaml = format!(
            r#"
services: [demo.v1.UserService]
split:
  variants:
    - {{ name: stable, weight: 95, endpoints: ["http://127.0.0.1:1"] }}
    - {{ name: canary, weight: 5, endpoints: ["http://127.0.0.1:2"] }}
    - {{ name: dark, weight: 0, endpoints: ["http://127.0.0.1:3"] }}
{extra}"#
        );
        let cfg: BackendConfig = yaml_serde::from_str(&yaml).unwrap();
        cfg.split.as_ref().unwrap().validate().unwrap();
        Split::build("users", &cfg, None).unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(n, v)| {
                (
                    HeaderName::from_bytes(n.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn without_a_key_calls_follow_the_weights_exactly() {
        let s = split("");
        let mut canary = 0;
        for _ in 0..1000 {
            let (v, why) = s.choose(None, &HeaderMap::new()).unwrap();
            assert_eq!(why, Reason::Weight);
            assert_ne!(&*v.name, "dark");
            canary += usize::from(&*v.name == "canary");
        }
        assert_eq!(canary, 50);
    }

    #[tokio::test]
    async fn a_sticky_caller_always_gets_the_same_variant() {
        let s = split("  sticky: { subject: true, header: x-user }\n");
        let mut seen = std::collections::HashMap::new();
        for round in 0..5 {
            for k in 0..200 {
                let user = format!("user-{k}");
                let (v, why) = s.choose(Some(&user), &HeaderMap::new()).unwrap();
                assert_eq!(why, Reason::Sticky);
                let first = seen.entry(user).or_insert_with(|| v.name.clone());
                assert_eq!(*first, v.name, "round {round}");
            }
        }
        // the subject wins over the header; an anonymous caller goes by the header
        let h = headers(&[("x-user", "user-7")]);
        let by_subject = s.choose(Some("user-7"), &HeaderMap::new()).unwrap().0;
        let by_header = s.choose(None, &h).unwrap().0;
        assert_eq!(by_subject.name, by_header.name, "same key, same variant");
        let (_, why) = s.choose(None, &HeaderMap::new()).unwrap();
        assert_eq!(why, Reason::Weight, "no key at all: by weight");
        // the subject is not used unless configured
        let h_only = split("  sticky: { header: x-user }\n");
        assert_eq!(
            h_only.choose(Some("ada"), &HeaderMap::new()).unwrap().1,
            Reason::Weight
        );
    }

    #[tokio::test]
    async fn the_override_header_reaches_any_variant_and_a_wrong_name_is_a_400() {
        let s = split("  override_header: x-portico-variant\n  sticky: { subject: true }\n");
        for name in ["stable", "canary", "dark"] {
            let (v, why) = s
                .choose(Some("ada"), &headers(&[("x-portico-variant", name)]))
                .unwrap();
            assert_eq!((&*v.name, why), (name, Reason::Override));
        }
        let err = s
            .choose(None, &headers(&[("x-portico-variant", "canry")]))
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("\"canry\"") && text.contains("stable, canary, dark"),
            "{text}"
        );
        assert!(
            matches!(err, GatewayError::BadRequest { field: Some(ref f), .. } if f == "x-portico-variant")
        );
    }

    #[tokio::test]
    async fn a_weight_change_keeps_every_variant_built() {
        let before = split("");
        let yaml = r#"
services: [demo.v1.UserService]
split:
  variants:
    - { name: stable, weight: 50, endpoints: ["http://127.0.0.1:1"] }
    - { name: canary, weight: 50, endpoints: ["http://127.0.0.1:22"] }
"#;
        let cfg: BackendConfig = yaml_serde::from_str(yaml).unwrap();
        let after = Split::build("users", &cfg, Some(&before)).unwrap();
        let same = |name: &str| {
            before
                .variant(name)
                .unwrap()
                .backend
                .same_as(&after.variant(name).unwrap().backend)
        };
        assert!(same("stable"), "weight only: kept");
        assert!(!same("canary"), "endpoints changed: rebuilt");
        assert_eq!(after.variant("stable").unwrap().weight, 50);
    }
}
