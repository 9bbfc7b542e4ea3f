//! CORS: the tower-http [`CorsLayer`] of the `cors` section (exact origins and `*.` wildcard
//! subdomains), built with the snapshot. The ingress puts it around everything
//! ([`crate::ingress::admit`]). With gRPC-Web on, the headers its browser clients send are
//! allowed and the status headers they read are exposed, whatever the section lists.

use http::{HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::{CorsConfig, OriginPattern, origin_pattern};

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
