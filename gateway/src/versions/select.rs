//! How a caller names a version on an unversioned path: a header (`x-api-version: v2`), a
//! vendor media type in `Accept` (`application/vnd.demo.v2+json`), a query parameter
//! (`?api-version=v2`), read in that order.

use http::{HeaderMap, HeaderName, HeaderValue, header};

use crate::config::SelectConfig;
use crate::error::{ErrorKind, GatewayError};

/// Where a request names its version.
#[derive(Debug, Default)]
pub struct Selector {
    header: Option<HeaderName>,
    vendor: Option<String>,
    /// The query parameter.
    pub query: Option<String>,
}

/// Which of the three named the version (for the refusal of an unknown one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum From {
    /// The header of that name.
    Header(String),
    /// The `Accept` header's vendor type.
    Accept,
    /// The query parameter of that name.
    Query(String),
}

impl From {
    /// The refusal of an unknown version name: 400 naming the header or parameter, 406 for
    /// an `Accept` type the gateway cannot produce.
    pub fn unknown(&self, name: &str, known: &str) -> GatewayError {
        match self {
            From::Header(h) => GatewayError::bad_request(
                Some(h.clone()),
                format!("unknown API version {name:?} in the {h} header (known: {known})"),
            ),
            From::Query(q) => GatewayError::bad_request(
                Some(q.clone()),
                format!("unknown API version {name:?} in the {q} query parameter (known: {known})"),
            ),
            From::Accept => GatewayError::rejected(
                ErrorKind::NotAcceptable,
                format!("unknown API version {name:?} in the Accept header (known: {known})"),
            ),
        }
    }
}

impl Selector {
    /// The selector of `select`.
    pub fn new(cfg: &SelectConfig) -> Self {
        Self {
            header: cfg
                .header
                .as_deref()
                .and_then(|h| HeaderName::from_bytes(h.as_bytes()).ok()),
            vendor: cfg.accept_vendor.as_ref().map(|v| v.to_ascii_lowercase()),
            query: cfg.query.clone(),
        }
    }

    /// The version name a request gives, and where: its header, its `Accept` vendor type, its
    /// query parameter, the first present.
    pub fn named(&self, headers: &HeaderMap, query: Option<&str>) -> Option<(String, From)> {
        if let Some(h) = &self.header
            && let Some(v) = headers.get(h).and_then(|v| v.to_str().ok())
            && !v.trim().is_empty()
        {
            return Some((v.trim().to_string(), From::Header(h.to_string())));
        }
        if let Some(vendor) = &self.vendor
            && let Some(name) = headers
                .get_all(header::ACCEPT)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(|v| accept_vendor_version(v, vendor))
        {
            return Some((name, From::Accept));
        }
        if let Some(q) = &self.query
            && let Some(v) = query.and_then(|s| query_value(s, q))
        {
            return Some((v, From::Query(q.clone())));
        }
        None
    }

    /// The `Vary` value of an answer whose version the request's headers chose.
    pub fn vary(&self) -> Option<HeaderValue> {
        let mut names: Vec<&str> = Vec::new();
        if let Some(h) = &self.header {
            names.push(h.as_str());
        }
        if self.vendor.is_some() {
            names.push("accept");
        }
        if names.is_empty() {
            return None;
        }
        HeaderValue::from_str(&names.join(", ")).ok()
    }
}

/// The version of the first `application/vnd.<vendor>.<version>+json` (or `+...` any suffix,
/// or none) media range of an `Accept` value; parameters and case ignored.
pub fn accept_vendor_version(accept: &str, vendor: &str) -> Option<String> {
    let lead = format!("application/vnd.{vendor}.");
    accept.split(',').find_map(|range| {
        let media = range.split(';').next()?.trim().to_ascii_lowercase();
        let rest = media.strip_prefix(&lead)?;
        let version = rest.split('+').next()?;
        (!version.is_empty() && !version.contains('.')).then(|| version.to_string())
    })
}

/// The (percent-decoded) value of the first `name=value` pair of a query string.
pub fn query_value(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn selector() -> Selector {
        Selector::new(&SelectConfig {
            header: Some("x-api-version".into()),
            accept_vendor: Some("demo".into()),
            query: Some("api-version".into()),
        })
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(*n, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn accept_vendor_types() {
        let v = |a| accept_vendor_version(a, "demo");
        assert_eq!(v("application/vnd.demo.v2+json").as_deref(), Some("v2"));
        assert_eq!(
            v("text/html, application/vnd.demo.v1+json; q=0.9").as_deref(),
            Some("v1")
        );
        assert_eq!(v("Application/VND.Demo.V2+JSON").as_deref(), Some("v2"));
        assert_eq!(v("application/vnd.demo.v2").as_deref(), Some("v2"));
        assert_eq!(v("application/vnd.other.v2+json"), None);
        assert_eq!(v("application/json"), None);
        assert_eq!(v("application/vnd.demo.+json"), None);
        assert_eq!(v("application/vnd.demo.a.b+json"), None);
    }

    #[test]
    fn query_values() {
        assert_eq!(
            query_value("a=1&api-version=v2", "api-version").as_deref(),
            Some("v2")
        );
        assert_eq!(
            query_value("api-version=v%32", "api-version").as_deref(),
            Some("v2")
        );
        assert_eq!(query_value("api-versions=v2", "api-version"), None);
        assert_eq!(
            query_value("api-version", "api-version").as_deref(),
            Some("")
        );
    }

    #[test]
    fn header_then_accept_then_query() {
        let s = selector();
        let all = headers(&[
            ("x-api-version", "v1"),
            ("accept", "application/vnd.demo.v2+json"),
        ]);
        assert_eq!(
            s.named(&all, Some("api-version=v3")),
            Some(("v1".into(), From::Header("x-api-version".into())))
        );
        let accept = headers(&[("accept", "application/vnd.demo.v2+json")]);
        assert_eq!(
            s.named(&accept, Some("api-version=v3")),
            Some(("v2".into(), From::Accept))
        );
        assert_eq!(
            s.named(&HeaderMap::new(), Some("api-version=v3")),
            Some(("v3".into(), From::Query("api-version".into())))
        );
        assert_eq!(s.named(&HeaderMap::new(), None), None);
        assert_eq!(
            s.named(&headers(&[("x-api-version", " ")]), None),
            None,
            "a blank header names nothing"
        );
        assert_eq!(s.vary().unwrap(), "x-api-version, accept");
        assert_eq!(
            Selector::default().named(&all, Some("api-version=v3")),
            None
        );
    }

    #[test]
    fn unknown_names_are_refused_naming_where() {
        let e = From::Header("x-api-version".into()).unknown("v9", "v1, v2");
        assert_eq!(e.http_status(), 400);
        assert!(
            e.to_string()
                .contains("\"v9\" in the x-api-version header (known: v1, v2)")
        );
        assert_eq!(From::Accept.unknown("v9", "v1").http_status(), 406);
        assert_eq!(
            From::Query("api-version".into())
                .unknown("v9", "v1")
                .http_status(),
            400
        );
    }
}
