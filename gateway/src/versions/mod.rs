//! API versions: which exposed methods each version is, the version a caller names on an
//! unversioned path, and what a deprecated or retired version's answers carry.
//!
//! Built once per snapshot from the `versions` section and the exposed services
//! ([`Versions::build`]); a request only looks things up. The doors use it in three places:
//! the REST door looks an unversioned path up under the selected version's prefix
//! ([`Versions::select`], [`Versions::is_versioned`]); the [`policy::Retire`] stage of the
//! policy chain refuses every call of a retired method, whichever door planned it; the
//! ingress stamps the `Deprecation`, `Sunset` and `Link` headers on every answer of a
//! deprecated version's method ([`Versions::stamp`]) and names the version in the access line
//! and metrics. OpenAPI and the GraphQL schema read [`Versions::note`].

pub mod headers;
pub mod policy;
pub mod select;

use std::collections::HashMap;
use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};
use prost_reflect::ServiceDescriptor;

use crate::config::{VersionConfig, VersionsConfig};
use crate::descriptors::http_bindings;
use crate::error::{GatewayError, Retirement};

/// One API version, resolved.
#[derive(Debug)]
pub struct Version {
    /// Its name (`v1`).
    pub name: String,
    /// The path prefix of its routes (`/v1`).
    pub prefix: String,
    /// Its state: `current`, `deprecated` or `retired` (the metric label).
    pub state: State,
    /// The headers every answer of its methods carries (empty unless deprecated).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The deprecation note of OpenAPI and the SDL.
    pub note: Option<String>,
    retired: Option<Retired>,
}

/// Where a version is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Served, nothing said.
    Current,
    /// Served, with `Deprecation`/`Sunset` headers.
    Deprecated,
    /// Not served: 410 Gone.
    Retired,
}

impl State {
    /// `current`, `deprecated` or `retired`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Current => "current",
            State::Deprecated => "deprecated",
            State::Retired => "retired",
        }
    }
}

#[derive(Debug)]
struct Retired {
    replacement: Option<String>,
    message: String,
}

/// The versions of one snapshot (empty without a `versions` section).
#[derive(Debug, Default)]
pub struct Versions {
    list: Vec<Arc<Version>>,
    by_method: HashMap<String, usize>,
    /// Each retired method's replacement method and route.
    replacements: HashMap<String, (String, String)>,
    default: Option<usize>,
    select: select::Selector,
}

impl Versions {
    /// Resolves the `versions` section over the exposed services. Errors name the key under
    /// `versions` (a pattern that matches no exposed method, a method claimed by two
    /// versions).
    pub fn build(
        cfg: Option<&VersionsConfig>,
        services: &[(ServiceDescriptor, String)],
    ) -> Result<Versions, (String, String)> {
        let Some(cfg) = cfg else {
            return Ok(Versions::default());
        };
        let methods: Vec<_> = services.iter().flat_map(|(s, _)| s.methods()).collect();
        let mut by_method: HashMap<String, usize> = HashMap::new();
        for (i, v) in cfg.list.iter().enumerate() {
            for (j, pattern) in v.services.iter().enumerate() {
                let key = format!("versions.list[{i}].services[{j}]");
                let mut any = false;
                for m in methods.iter().filter(|m| matches(pattern, m.full_name())) {
                    any = true;
                    if let Some(other) = by_method.insert(m.full_name().to_string(), i)
                        && other != i
                    {
                        return Err((
                            key,
                            format!(
                                "{} is already in version {:?}: a method belongs to one version",
                                m.full_name(),
                                cfg.list[other].name
                            ),
                        ));
                    }
                }
                if !any {
                    return Err((
                        key,
                        format!(
                            "{pattern:?} matches no exposed method (write a package `demo.v1.*`, a service `demo.v1.UserService` or a method `demo.v1.UserService.GetUser`)"
                        ),
                    ));
                }
            }
        }
        let list: Vec<Arc<Version>> = cfg.list.iter().map(|v| Arc::new(resolve(v))).collect();
        // A retired method's replacement: the method of the same service and method name in
        // the replacement version (else of the same method name), and its first route.
        let mut replacements = HashMap::new();
        for m in &methods {
            let Some(&i) = by_method.get(m.full_name()) else {
                continue;
            };
            let Some(rep) = cfg.list[i]
                .retired
                .as_ref()
                .and_then(|r| r.replacement.as_ref())
            else {
                continue;
            };
            let in_rep = |n: &prost_reflect::MethodDescriptor| {
                by_method
                    .get(n.full_name())
                    .is_some_and(|&k| &cfg.list[k].name == rep)
            };
            let same = methods
                .iter()
                .filter(|n| in_rep(n) && n.name() == m.name())
                .find(|n| n.parent_service().name() == m.parent_service().name())
                .or_else(|| methods.iter().find(|n| in_rep(n) && n.name() == m.name()));
            if let Some(n) = same {
                let route = http_bindings(n)
                    .into_iter()
                    .next()
                    .map(|b| format!("{} {}", b.method, b.path))
                    .unwrap_or_else(|| {
                        format!("POST /{}/{}", n.parent_service().full_name(), n.name())
                    });
                replacements.insert(
                    m.full_name().to_string(),
                    (n.full_name().to_string(), route),
                );
            }
        }
        let default = cfg
            .default
            .as_ref()
            .and_then(|d| cfg.list.iter().position(|v| &v.name == d));
        Ok(Versions {
            list,
            by_method,
            replacements,
            default,
            select: select::Selector::new(&cfg.select),
        })
    }

    /// Whether any version is configured.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The version `method` (`package.Service.Method`) belongs to.
    pub fn of_method(&self, method: &str) -> Option<&Arc<Version>> {
        self.by_method.get(method).and_then(|&i| self.list.get(i))
    }

    /// The deprecation (or retirement) note of `method`'s version, for OpenAPI and the SDL.
    pub fn note(&self, method: &str) -> Option<&str> {
        self.of_method(method).and_then(|v| v.note.as_deref())
    }

    /// The refusal of a call to `method` when its version is retired.
    pub fn refuse(&self, method: &str) -> Result<(), GatewayError> {
        let Some(v) = self.of_method(method) else {
            return Ok(());
        };
        let Some(r) = &v.retired else {
            return Ok(());
        };
        let (replacement_method, replacement_route) = self
            .replacements
            .get(method)
            .map(|(m, r)| (Some(m.clone()), Some(r.clone())))
            .unwrap_or_default();
        let message = match &replacement_route {
            Some(route) => format!("{} (replacement: {route})", r.message),
            None => r.message.clone(),
        };
        Err(GatewayError::Gone(Box::new(Retirement {
            message,
            version: v.name.clone(),
            method: method.to_string(),
            replacement: r.replacement.clone(),
            replacement_method,
            replacement_route,
        })))
    }

    /// Adds the headers of `method`'s version to an answer (`Deprecation`, `Sunset`, `Link`
    /// when it is deprecated), and gives the version.
    pub fn stamp(&self, method: &str, headers: &mut HeaderMap) -> Option<&Arc<Version>> {
        let v = self.of_method(method)?;
        for (name, value) in &v.headers {
            headers.append(name.clone(), value.clone());
        }
        Some(v)
    }

    /// Whether `path` already names a version by its prefix (`/v1/users/1`).
    pub fn is_versioned(&self, path: &str) -> bool {
        self.list.iter().any(|v| {
            path.strip_prefix(v.prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    }

    /// The version a request on an unversioned path names (its header, then its `Accept`
    /// vendor type, then its query parameter), else the default; an unknown name is refused.
    pub fn select(
        &self,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Result<Option<&Arc<Version>>, GatewayError> {
        if self.list.is_empty() {
            return Ok(None);
        }
        match self.select.named(headers, query) {
            Some((name, from)) => match self.list.iter().find(|v| v.name == name) {
                Some(v) => Ok(Some(v)),
                None => Err(from.unknown(&name, &self.names())),
            },
            None => Ok(self.default.and_then(|i| self.list.get(i))),
        }
    }

    /// The `Vary` value of an answer whose version was selected by the request's headers.
    pub fn vary(&self) -> Option<HeaderValue> {
        self.select.vary()
    }

    /// The query parameter that names a version (not a request field).
    pub fn query_param(&self) -> Option<&str> {
        self.select.query.as_deref()
    }

    fn names(&self) -> String {
        self.list
            .iter()
            .map(|v| v.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Whether `pattern` (`demo.v1.*`, `demo.v1.UserService`, `demo.v1.UserService.*`,
/// `demo.v1.UserService.GetUser`) covers the method `full_name`.
pub fn matches(pattern: &str, full_name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => full_name.starts_with(prefix),
        None => {
            full_name == pattern
                || full_name
                    .strip_prefix(pattern)
                    .is_some_and(|rest| rest.starts_with('.') && !rest[1..].contains('.'))
        }
    }
}

fn resolve(v: &VersionConfig) -> Version {
    let headers = v
        .deprecated
        .as_ref()
        .map(headers::deprecation_headers)
        .unwrap_or_default();
    let retired = v.retired.as_ref().map(|r| Retired {
        replacement: r.replacement.clone(),
        message: r.message.clone().unwrap_or_else(|| match &r.replacement {
            Some(rep) => format!("API version {} is retired: use {rep}", v.name),
            None => format!("API version {} is retired", v.name),
        }),
    });
    let state = match (&retired, &v.deprecated) {
        (Some(_), _) => State::Retired,
        (None, Some(_)) => State::Deprecated,
        (None, None) => State::Current,
    };
    let note = match (&retired, &v.deprecated) {
        (Some(r), _) => Some(format!("{} (answers 410 Gone).", r.message)),
        (None, Some(d)) => Some(headers::deprecation_note(&v.name, d)),
        (None, None) => None,
    };
    Version {
        name: v.name.clone(),
        prefix: v.prefix(),
        state,
        headers,
        note,
        retired,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn patterns_cover_packages_services_and_methods() {
        let m = "demo.v1.UserService.GetUser";
        assert!(matches("demo.v1.*", m));
        assert!(matches("demo.*", m));
        assert!(matches("demo.v1.UserService", m));
        assert!(matches("demo.v1.UserService.*", m));
        assert!(matches("demo.v1.UserService.GetUser", m));
        assert!(!matches("demo.v2.*", m));
        assert!(!matches("demo.v1.User", m));
        assert!(!matches("demo.v1", m), "a package needs .*");
        assert!(!matches("demo.v1.UserService.GetUsers", m));
    }
}
