//! Which headers cross the REST door: request headers to gRPC metadata, and backend metadata
//! (headers and trailers) back to response headers, each by an allowlist of names or prefixes.

use http::{HeaderMap, HeaderName, HeaderValue};
use tonic::metadata::MetadataMap;

use crate::config::HeadersConfig;
use crate::request::{REQUEST_ID_HEADER, RequestId};

/// Headers that describe one hop or the HTTP framing; never forwarded, whatever the config says.
const NEVER_FORWARDED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "content-type",
    "content-encoding",
    "accept-encoding",
    REQUEST_ID_HEADER,
];

/// Backend metadata that belongs to the gRPC protocol, never returned as headers.
const NEVER_RETURNED: &[&str] = &["content-type", "date", "server", "trailer", "te"];

/// A compiled list of exact names and `prefix*` patterns.
#[derive(Clone, Debug, Default)]
struct NameRules {
    exact: Vec<String>,
    prefixes: Vec<String>,
}

impl NameRules {
    fn new(patterns: &[String]) -> Self {
        let mut r = NameRules::default();
        for p in patterns {
            let p = p.to_ascii_lowercase();
            match p.strip_suffix('*') {
                Some(prefix) => r.prefixes.push(prefix.to_string()),
                None => r.exact.push(p),
            }
        }
        r
    }

    fn matches(&self, name: &str) -> bool {
        self.exact.iter().any(|e| e == name) || self.prefixes.iter().any(|p| name.starts_with(p))
    }
}

/// The header rules of a snapshot, compiled once.
#[derive(Clone, Debug)]
pub struct HeaderRules {
    forward: NameRules,
    response: NameRules,
    response_prefix: String,
}

impl HeaderRules {
    /// Compiles the rules of the `headers` config section.
    pub fn new(cfg: &HeadersConfig) -> Self {
        Self {
            forward: NameRules::new(&cfg.forward),
            response: NameRules::new(&cfg.response),
            response_prefix: cfg.response_prefix.to_ascii_lowercase(),
        }
    }

    /// The metadata sent to the backend: allowlisted request headers plus the request id.
    pub fn request_metadata(&self, headers: &HeaderMap, id: Option<&RequestId>) -> MetadataMap {
        let mut out = HeaderMap::new();
        for (name, value) in headers {
            let n = name.as_str();
            if n.starts_with("grpc-") || NEVER_FORWARDED.contains(&n) || !self.forward.matches(n) {
                continue;
            }
            out.append(name.clone(), value.clone());
        }
        if let Some(id) = id {
            // Never indexed by HPACK: a value unique to each request would only churn the
            // table, evicting the headers every call repeats.
            let mut value = id.0.clone();
            value.set_sensitive(true);
            out.insert(REQUEST_ID_HEADER, value);
        }
        MetadataMap::from_headers(out)
    }

    /// Adds the allowlisted backend metadata to `headers` as `<prefix><name>`.
    pub fn response_headers(&self, metadata: &MetadataMap, headers: &mut HeaderMap) {
        if self.response.exact.is_empty() && self.response.prefixes.is_empty() {
            return;
        }
        for (name, value) in metadata.clone().into_headers().iter() {
            let n = name.as_str();
            if n.starts_with("grpc-") || NEVER_RETURNED.contains(&n) || !self.response.matches(n) {
                continue;
            }
            let Ok(out_name) =
                HeaderName::from_bytes(format!("{}{n}", self.response_prefix).as_bytes())
            else {
                continue;
            };
            if let Ok(v) = HeaderValue::from_bytes(value.as_bytes()) {
                headers.append(out_name, v);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rules(forward: &[&str], response: &[&str]) -> HeaderRules {
        HeaderRules::new(&HeadersConfig {
            forward: forward.iter().map(|s| s.to_string()).collect(),
            response: response.iter().map(|s| s.to_string()).collect(),
            response_prefix: "grpc-metadata-".into(),
        })
    }

    #[test]
    fn only_allowlisted_request_headers_are_forwarded() {
        let r = rules(
            &["x-tenant-*", "authorization", "connection", "grpc-timeout"],
            &[],
        );
        let mut h = HeaderMap::new();
        h.insert("x-tenant-id", HeaderValue::from_static("t1"));
        h.insert("authorization", HeaderValue::from_static("Bearer x"));
        h.insert("cookie", HeaderValue::from_static("secret"));
        h.insert("connection", HeaderValue::from_static("close"));
        h.insert("grpc-timeout", HeaderValue::from_static("1S"));
        h.insert("x-request-id", HeaderValue::from_static("spoofed"));
        let id = RequestId(HeaderValue::from_static("rid-1"));
        let md = r.request_metadata(&h, Some(&id)).into_headers();
        assert_eq!(md["x-tenant-id"], "t1");
        assert_eq!(md["authorization"], "Bearer x");
        assert_eq!(md["x-request-id"], "rid-1");
        assert!(md.get("cookie").is_none());
        assert!(md.get("connection").is_none());
        assert!(md.get("grpc-timeout").is_none());
    }

    #[test]
    fn response_metadata_is_prefixed_and_filtered() {
        let r = rules(&[], &["x-*"]);
        let mut md = MetadataMap::new();
        md.insert("x-cache", "hit".parse().unwrap());
        md.insert("internal-secret", "no".parse().unwrap());
        md.insert("grpc-status", "0".parse().unwrap());
        let mut h = HeaderMap::new();
        r.response_headers(&md, &mut h);
        assert_eq!(h["grpc-metadata-x-cache"], "hit");
        assert_eq!(h.len(), 1);
    }
}
