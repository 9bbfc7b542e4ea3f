//! CORS: the tower-http [`CorsLayer`] of the `cors` section (exact origins and `*.` wildcard
//! subdomains), built with the snapshot. The ingress puts it around everything
//! ([`crate::ingress::admit`]).

use http::{HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::{CorsConfig, OriginPattern, origin_pattern};

/// The layer of a (validated) `cors` section.
pub fn layer(cfg: &CorsConfig) -> CorsLayer {
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
    let names = |list: &[String]| -> Vec<HeaderName> {
        list.iter()
            .filter_map(|h| HeaderName::from_bytes(h.as_bytes()).ok())
            .collect()
    };
    CorsLayer::new()
        .allow_origin(origin)
        .allow_methods(methods)
        .allow_headers(names(&cfg.headers))
        .expose_headers(names(&cfg.expose_headers))
        .allow_credentials(cfg.credentials)
        .max_age(cfg.max_age.get())
}
