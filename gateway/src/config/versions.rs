//! The `versions` section: API versions (which services and methods each is), how a caller
//! names one on an unversioned path, and each version's deprecation and retirement.

use std::time::SystemTime;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// API versions. Without this section nothing is versioned: no header is added, no path is
/// rewritten, nothing is retired.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VersionsConfig {
    /// How a caller names a version on an unversioned path (`/users/1` rather than
    /// `/v2/users/1`): a header, a vendor media type in `Accept`, a query parameter. The first
    /// one present wins, in that order; none: `default`.
    #[serde(default)]
    pub select: SelectConfig,
    /// The version an unversioned path is served by when the caller names none (none: an
    /// unversioned path that matches no route is a 404, as without versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// The versions.
    pub list: Vec<VersionConfig>,
}

/// How a caller names a version on an unversioned path.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SelectConfig {
    /// A request header holding the version's name, e.g. `x-api-version: v2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// The vendor of `Accept: application/vnd.<vendor>.<version>+json`, e.g. `demo` for
    /// `application/vnd.demo.v2+json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_vendor: Option<String>,
    /// A query parameter holding the version's name, e.g. `api-version` for
    /// `?api-version=v2` (never passed on as a request field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

/// One API version.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VersionConfig {
    /// Its name, as callers write it (`v1`).
    pub name: String,
    /// The path prefix of its routes (default `/<name>`): an unversioned path selected for this
    /// version is looked up with it in front.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// What belongs to it: proto packages (`demo.v1.*`), services (`demo.v1.UserService`) or
    /// methods (`demo.v1.UserService.GetUser`). A method belongs to one version at most.
    pub services: Vec<String>,
    /// Deprecated: every answer of its methods carries `Deprecation`, `Sunset` and `Link`;
    /// OpenAPI marks its operations and the SDL its root fields `deprecated`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecated: Option<DeprecatedConfig>,
    /// Retired: its methods answer 410 Gone (REST), UNIMPLEMENTED (gRPC-Web) and a `GONE`
    /// error (GraphQL), naming the replacement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired: Option<RetiredConfig>,
}

/// When a version was deprecated, and when it goes away.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeprecatedConfig {
    /// When it was (or will be) deprecated, RFC 3339 (`2026-10-01T00:00:00Z`): the
    /// `Deprecation` header (RFC 9745).
    pub since: Rfc3339,
    /// When it stops being served, RFC 3339: the `Sunset` header (RFC 8594).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sunset: Option<Rfc3339>,
    /// A page about the deprecation and how to migrate: `Link: <url>; rel="deprecation"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// What a retired version answers.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetiredConfig {
    /// The version that replaces it (named in the answer, with the replacement method's route).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
    /// The message of the answer (default: "API version v1 is retired", plus the replacement).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A point in time written in RFC 3339 (`2026-10-01T00:00:00Z`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rfc3339(pub SystemTime);

impl<'de> Deserialize<'de> for Rfc3339 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339(&text).map(Rfc3339).map_err(|e| {
            serde::de::Error::custom(format!(
                "{text:?} is not an RFC 3339 time ({e}): write UTC, e.g. 2026-10-01T00:00:00Z"
            ))
        })
    }
}

impl Serialize for Rfc3339 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_rfc3339_seconds(self.0).to_string())
    }
}

impl VersionConfig {
    /// The path prefix of its routes.
    pub fn prefix(&self) -> String {
        self.prefix
            .clone()
            .unwrap_or_else(|| format!("/{}", self.name))
    }
}

impl VersionsConfig {
    /// Checks what serde cannot; the error names the key under `versions`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let names: Vec<&str> = self.list.iter().map(|v| v.name.as_str()).collect();
        let known = || names.join(", ");
        if self.list.is_empty() {
            return Err((
                "list".into(),
                "list at least one version (name and services), or remove the versions section"
                    .into(),
            ));
        }
        if let Some(h) = &self.select.header
            && http::HeaderName::from_bytes(h.as_bytes()).is_err()
        {
            return Err((
                "select.header".into(),
                format!("{h:?} is not a valid header name"),
            ));
        }
        if let Some(v) = &self.select.accept_vendor
            && (v.is_empty()
                || !v
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return Err((
                "select.accept_vendor".into(),
                format!("{v:?} is not a vendor name (letters, digits, - _ .)"),
            ));
        }
        if let Some(q) = &self.select.query
            && q.is_empty()
        {
            return Err(("select.query".into(), "empty parameter name".into()));
        }
        if let Some(d) = &self.default
            && !names.contains(&d.as_str())
        {
            return Err((
                "default".into(),
                format!("no version named {d:?} (known: {})", known()),
            ));
        }
        let mut prefixes: Vec<String> = Vec::new();
        for (i, v) in self.list.iter().enumerate() {
            let key = |k: &str| format!("list[{i}].{k}");
            if v.name.is_empty()
                || !v
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                return Err((
                    key("name"),
                    format!(
                        "{:?} is not a version name (letters, digits, - _ .)",
                        v.name
                    ),
                ));
            }
            if names.iter().filter(|n| **n == v.name).count() > 1 {
                return Err((key("name"), format!("{:?} is listed twice", v.name)));
            }
            let prefix = v.prefix();
            if !prefix.starts_with('/') || prefix.ends_with('/') || prefix.contains(['{', '*']) {
                return Err((
                    key("prefix"),
                    format!("{prefix:?}: write a literal path like /v1 (no trailing /)"),
                ));
            }
            if prefixes.contains(&prefix) {
                return Err((
                    key("prefix"),
                    format!("{prefix} is another version's prefix"),
                ));
            }
            prefixes.push(prefix);
            if v.services.is_empty() {
                return Err((
                    key("services"),
                    "list what this version is: packages (demo.v1.*), services or methods".into(),
                ));
            }
            if let Some(d) = &v.deprecated {
                if let Some(s) = &d.sunset
                    && s < &d.since
                {
                    return Err((
                        key("deprecated.sunset"),
                        "the sunset is before the deprecation (`since`)".into(),
                    ));
                }
                if let Some(l) = &d.link
                    && !(l.starts_with("https://") || l.starts_with("http://"))
                {
                    return Err((
                        key("deprecated.link"),
                        format!("{l:?} is not an http(s) URL"),
                    ));
                }
            }
            if let Some(r) = &v.retired
                && let Some(rep) = &r.replacement
            {
                if !names.contains(&rep.as_str()) {
                    return Err((
                        key("retired.replacement"),
                        format!("no version named {rep:?} (known: {})", known()),
                    ));
                }
                if rep == &v.name {
                    return Err((
                        key("retired.replacement"),
                        "a version cannot replace itself".into(),
                    ));
                }
            }
        }
        Ok(())
    }
}
