//! CORS: the tower-http [`CorsLayer`] of the `cors` section (exact origins and `*.` wildcard
//! subdomains), built with the snapshot. The ingress puts it around everything
//! ([`crate::ingress::admit`]). With gRPC-Web on, the headers its browser clients send are
//! allowed and the status headers they read are exposed, whatever the section lists.

use http::{HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::{CorsConfig, OriginPattern, origin_pattern};
use crate::error::{ErrorKind, GatewayError};

/// Request headers gRPC-Web clients send (grpc-web, Connect), allowed in preflights when
/// gRPC-Web is on.
pub const GRPC_WEB_REQUEST_HEADERS: &[&str] =
    &["content-type", "x-grpc-web", "x-user-agent", "grpc-timeout"];

/// Response headers gRPC-Web clients read (the status of a trailers-only answer), exposed
/// when gRPC-Web is on.
pub const GRPC_WEB_EXPOSED_HEADERS: &[&str] =
    &["grpc-status", "grpc-message", "grpc-status-details-bin"];

/// The layer of a (validated) `cors` section; `grpc_web`: gRPC-Web is served (its headers are
/// added to the allowed and exposed ones).
pub fn layer(cfg: &CorsConfig, grpc_web: bool) -> CorsLayer {
    let origin = if cfg.origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let patterns: Vec<OriginPattern> = cfg
            .origins
            .iter()
            .filter_map(|o| origin_pattern(o).ok())
            .collect();
        AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            origin
                .to_str()
                .is_ok_and(|o| patterns.iter().any(|p| p.matches(o)))
        })
    };
    let methods: Vec<Method> = cfg
        .methods
        .iter()
        .filter_map(|m| Method::from_bytes(m.as_bytes()).ok())
        .collect();
    let names = |list: &[String], web: &[&'static str]| -> Vec<HeaderName> {
        let mut out: Vec<HeaderName> = list
            .iter()
            .filter_map(|h| HeaderName::from_bytes(h.as_bytes()).ok())
            .collect();
        if grpc_web {
            for h in web {
                let name = HeaderName::from_static(h);
                if !out.contains(&name) {
                    out.push(name);
                }
            }
        }
        out
    };
    CorsLayer::new()
        .allow_origin(origin)
        .allow_methods(methods)
        .allow_headers(names(&cfg.headers, GRPC_WEB_REQUEST_HEADERS))
        .expose_headers(names(&cfg.expose_headers, GRPC_WEB_EXPOSED_HEADERS))
        .allow_credentials(cfg.credentials)
        .max_age(cfg.max_age.get())
}

/// Refuses a browser request from another site that could act without a CORS preflight: a
/// WebSocket upgrade (browsers apply no CORS to WebSockets) or a "simple" request a page's
/// form can send (`multipart/form-data`, or a raw body of any type for a
/// `google.api.HttpBody` route). Such a request carries the caller's ambient credentials
/// (a client certificate, an allowed address) whatever site sent it.
///
/// A request without `Origin` (not a page's) passes. With a `cors` section its origins decide;
/// without one, only a page of the gateway's own origin passes (the `Origin`'s host and port
/// are the request's `Host`, or its URI's authority over HTTP/2).
pub fn refuse_cross_site(
    cfg: Option<&CorsConfig>,
    headers: &http::HeaderMap,
    uri: &http::Uri,
    what: &str,
) -> Result<(), GatewayError> {
    let Some(origin) = headers.get(http::header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("");
    let allowed = match cfg {
        Some(cors) => cors
            .origins
            .iter()
            .any(|o| o == "*" || origin_pattern(o).is_ok_and(|p| p.matches(origin))),
        None => {
            let host = headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .or_else(|| uri.authority().map(http::uri::Authority::as_str));
            let own = origin
                .split_once("://")
                .map(|(_, rest)| rest)
                .filter(|rest| !rest.is_empty());
            matches!((own, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
        }
    };
    if allowed {
        return Ok(());
    }
    let why = if cfg.is_some() {
        "its origin is not in cors.origins"
    } else {
        "it is not the gateway's own origin, and there is no cors section to allow others"
    };
    Err(GatewayError::rejected(
        ErrorKind::PermissionDenied,
        format!("a page at {origin:?} may not send {what}: {why}"),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn check(cors: Option<&[&str]>, origin: Option<&str>, host: &str) -> bool {
        let cfg: Option<CorsConfig> =
            cors.map(|o| serde_json::from_value(serde_json::json!({ "origins": o })).unwrap());
        let mut headers = http::HeaderMap::new();
        if let Some(o) = origin {
            headers.insert(http::header::ORIGIN, o.parse().unwrap());
        }
        headers.insert(http::header::HOST, host.parse().unwrap());
        refuse_cross_site(cfg.as_ref(), &headers, &"/x".parse().unwrap(), "this").is_ok()
    }

    #[test]
    fn pages_of_other_sites_are_refused_unless_cors_allows_them() {
        // not a page: passes
        assert!(check(None, None, "gw.example:8080"));
        // the gateway's own pages pass, others do not
        assert!(check(
            None,
            Some("http://gw.example:8080"),
            "gw.example:8080"
        ));
        assert!(check(None, Some("https://GW.example"), "gw.example"));
        assert!(!check(None, Some("https://evil.example"), "gw.example"));
        assert!(!check(
            None,
            Some("http://gw.example:9999"),
            "gw.example:8080"
        ));
        assert!(!check(None, Some("null"), "gw.example"));
        // with cors, its origins decide
        let allowed: &[&str] = &["https://app.example", "https://*.shop.example"];
        assert!(check(
            Some(allowed),
            Some("https://app.example"),
            "gw.example"
        ));
        assert!(check(
            Some(allowed),
            Some("https://eu.shop.example"),
            "gw.example"
        ));
        assert!(!check(
            Some(allowed),
            Some("https://evil.example"),
            "gw.example"
        ));
        assert!(check(
            Some(&["*"]),
            Some("https://evil.example"),
            "gw.example"
        ));
    }
}
