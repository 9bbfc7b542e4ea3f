//! The `cors` section: which browser origins may call this BFF, with what.

use serde::{Deserialize, Serialize};

use super::units::HumanDuration;

/// Cross-origin requests from browsers. Without this section no CORS header is sent, and
/// browsers keep pages from other origins out.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CorsConfig {
    /// Origins allowed: exact (`https://app.example.com`), one wildcard label on the left for
    /// every subdomain (`https://*.example.com`: `https://a.example.com`, `https://a.b.example.com`,
    /// not `https://example.com`), or `"*"` for any origin (not with `credentials`).
    pub origins: Vec<String>,
    /// Methods allowed in cross-origin requests.
    #[serde(default = "d_methods")]
    pub methods: Vec<String>,
    /// Request headers allowed besides the CORS-safelisted ones.
    #[serde(default = "d_headers")]
    pub headers: Vec<String>,
    /// Response headers a page may read besides the safelisted ones.
    #[serde(default = "d_expose")]
    pub expose_headers: Vec<String>,
    /// Whether cookies and `Authorization` may be sent (`Access-Control-Allow-Credentials`).
    #[serde(default)]
    pub credentials: bool,
    /// How long a browser may keep a preflight's answer.
    #[serde(default = "d_max_age")]
    pub max_age: HumanDuration,
}

fn d_methods() -> Vec<String> {
    ["GET", "POST", "PUT", "PATCH", "DELETE"]
        .map(String::from)
        .to_vec()
}

fn d_headers() -> Vec<String> {
    [
        "authorization",
        "content-type",
        "x-api-key",
        "x-request-id",
        "grpc-timeout",
        "if-none-match",
    ]
    .map(String::from)
    .to_vec()
}

fn d_expose() -> Vec<String> {
    [
        "x-request-id",
        "etag",
        "retry-after",
        "ratelimit",
        "ratelimit-policy",
        "www-authenticate",
    ]
    .map(String::from)
    .to_vec()
}

fn d_max_age() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(600))
}

impl CorsConfig {
    /// Checks what serde cannot; the error names the key under `cors`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.origins.is_empty() {
            return Err((
                "origins".into(),
                "list the origins allowed (e.g. \"https://app.example.com\"), or remove the cors section".into(),
            ));
        }
        for (i, o) in self.origins.iter().enumerate() {
            if o == "*" {
                if self.credentials {
                    return Err((
                        format!("origins[{i}]"),
                        "\"*\" cannot be used with credentials: true (browsers refuse it); list the origins".into(),
                    ));
                }
                continue;
            }
            origin_pattern(o).map_err(|m| (format!("origins[{i}]"), m))?;
        }
        for (i, m) in self.methods.iter().enumerate() {
            if http::Method::from_bytes(m.as_bytes()).is_err() || m == "*" {
                return Err((
                    format!("methods[{i}]"),
                    format!("{m:?} is not an HTTP method"),
                ));
            }
        }
        for (key, list) in [
            ("headers", &self.headers),
            ("expose_headers", &self.expose_headers),
        ] {
            for (i, h) in list.iter().enumerate() {
                if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                    return Err((format!("{key}[{i}]"), format!("{h:?} is not a header name")));
                }
            }
        }
        Ok(())
    }
}

/// Parses an allowed origin, `scheme://host[:port]`, the host possibly `*.` and a domain.
pub fn origin_pattern(o: &str) -> Result<OriginPattern, String> {
    let bad = |why: &str| {
        format!(
            "{o:?} is not an origin ({why}): write \"https://app.example.com\" or \"https://*.example.com\""
        )
    };
    let (scheme, rest) = o.split_once("://").ok_or_else(|| bad("no scheme"))?;
    if scheme != "http" && scheme != "https" {
        return Err(bad("the scheme must be http or https"));
    }
    if rest.is_empty() || rest.contains('/') || rest.contains('?') || rest.contains('#') {
        return Err(bad("an origin has no path"));
    }
    let (wildcard, host) = match rest.strip_prefix("*.") {
        Some(h) => (true, h),
        None => (false, rest),
    };
    if host.contains('*') {
        return Err(bad(
            "a wildcard is allowed only as the leftmost label, `*.`",
        ));
    }
    // The host without its port, for the wildcard check (IP literals take no wildcard).
    let hostname = host.split(':').next().unwrap_or(host);
    if hostname.is_empty() || (wildcard && !hostname.contains('.')) {
        return Err(bad(
            "a wildcard needs a domain of two labels or more after it",
        ));
    }
    Ok(OriginPattern {
        scheme: scheme.to_string(),
        host: host.to_ascii_lowercase(),
        wildcard,
    })
}

/// One allowed origin, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginPattern {
    scheme: String,
    /// The host and port as written (after `*.` for a wildcard), lowercased.
    host: String,
    wildcard: bool,
}

impl OriginPattern {
    /// Whether the `Origin` header value `origin` matches.
    pub fn matches(&self, origin: &str) -> bool {
        let Some(rest) = origin
            .strip_prefix(self.scheme.as_str())
            .and_then(|r| r.strip_prefix("://"))
        else {
            return false;
        };
        let rest = rest.to_ascii_lowercase();
        if !self.wildcard {
            return rest == self.host;
        }
        // `a.example.com` matches `*.example.com`: a non-empty label (or several) before a dot.
        rest.strip_suffix(self.host.as_str())
            .and_then(|prefix| prefix.strip_suffix('.'))
            .is_some_and(|labels| {
                !labels.is_empty()
                    && labels.split('.').all(|l| {
                        !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    })
            })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_wildcard_origins() {
        let exact = origin_pattern("https://app.example.com").unwrap();
        assert!(exact.matches("https://app.example.com"));
        assert!(exact.matches("https://APP.example.com"));
        assert!(!exact.matches("http://app.example.com"));
        assert!(!exact.matches("https://app.example.com.evil.test"));
        let wild = origin_pattern("https://*.example.com").unwrap();
        assert!(wild.matches("https://a.example.com"));
        assert!(wild.matches("https://a.b.example.com"));
        assert!(!wild.matches("https://example.com"));
        assert!(!wild.matches("https://evil-example.com"));
        assert!(!wild.matches("https://.example.com"));
        assert!(!wild.matches("https://a.example.com:8443"));
        let port = origin_pattern("http://localhost:3000").unwrap();
        assert!(port.matches("http://localhost:3000"));
        assert!(!port.matches("http://localhost:3001"));
    }

    #[test]
    fn bad_origins_are_named() {
        for bad in [
            "app.example.com",
            "ftp://x.com",
            "https://x.com/",
            "https://a.*.com",
            "https://*.com",
        ] {
            assert!(origin_pattern(bad).is_err(), "{bad}");
        }
        let c = CorsConfig {
            origins: vec!["*".into()],
            methods: d_methods(),
            headers: d_headers(),
            expose_headers: d_expose(),
            credentials: true,
            max_age: d_max_age(),
        };
        assert_eq!(c.validate().unwrap_err().0, "origins[0]");
    }
}
