//! Reading a config file: YAML parsing with key paths in errors, then semantic validation.

use std::path::Path;

use super::{Config, DescriptorKind};

/// A configuration problem; the message names the file, the key and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read the config file: {source}")]
    Read {
        /// The file.
        file: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A key holds a bad value, or is unknown, or is missing.
    #[error("{file}: {key}: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// The key path, e.g. `backends.users.endpoints[0]`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(
        cfg: &Config,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ConfigError::Invalid {
            file: cfg.source_name.clone(),
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Reads and validates a config file; relative paths inside it are resolved against its folder.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: file.clone(),
        source,
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    parse(&text, &file, &base)
}

/// Parses and validates config text; `file` is used in messages, `base_dir` for relative paths.
pub fn parse(text: &str, file: &str, base_dir: &Path) -> Result<Config, ConfigError> {
    let de = yaml_serde::Deserializer::from_str(text);
    let mut cfg: Config = match serde_path_to_error::deserialize(de) {
        Ok(cfg) => cfg,
        Err(e) => {
            let key = e.path().to_string();
            let key = if key == "." {
                "(top level)".to_string()
            } else {
                key
            };
            let mut message = e.into_inner().to_string();
            // yaml_serde prefixes its own (parent) key path; ours is more precise.
            if let Some((prefix, rest)) = message.split_once(": ")
                && key.starts_with(prefix)
            {
                message = rest.to_string();
            }
            return Err(ConfigError::Invalid {
                file: file.to_string(),
                key,
                message,
            });
        }
    };
    cfg.source_name = file.to_string();
    cfg.base_dir = base_dir.to_path_buf();
    validate(&cfg)?;
    Ok(cfg)
}

fn validate(cfg: &Config) -> Result<(), ConfigError> {
    if cfg.descriptors.is_empty() {
        return Err(ConfigError::invalid(
            cfg,
            "descriptors",
            "no descriptor source: add at least one `- file:`, `- proto:` or `- reflection:` entry",
        ));
    }
    for (i, src) in cfg.descriptors.iter().enumerate() {
        let key = format!("descriptors[{i}]");
        let Some(kind) = src.kind() else {
            return Err(ConfigError::invalid(
                cfg,
                key,
                "each entry needs exactly one of `file`, `proto` or `reflection`",
            ));
        };
        if !src.imports.is_empty() && !matches!(kind, DescriptorKind::Proto { .. }) {
            return Err(ConfigError::invalid(
                cfg,
                format!("{key}.imports"),
                "`imports` only applies to a `proto` entry",
            ));
        }
        if let DescriptorKind::Reflection(name) = &kind
            && !cfg.backends.contains_key(name)
        {
            return Err(ConfigError::invalid(
                cfg,
                format!("{key}.reflection"),
                format!(
                    "no backend named {name:?} (known: {})",
                    known(cfg.backends.keys())
                ),
            ));
        }
    }
    if cfg.backends.is_empty() {
        return Err(ConfigError::invalid(
            cfg,
            "backends",
            "no backend configured",
        ));
    }
    for (name, b) in &cfg.backends {
        let key = format!("backends.{name}");
        match &b.split {
            None => check_target(cfg, &key, b)?,
            Some(split) => {
                if !b.endpoints.is_empty() {
                    return Err(ConfigError::invalid(
                        cfg,
                        format!("{key}.endpoints"),
                        "a backend with `split` has its endpoints in each variant: move them to `split.variants[].endpoints`",
                    ));
                }
                if let Err((k, message)) = b.resilience.validate() {
                    return Err(ConfigError::invalid(
                        cfg,
                        format!("{key}.resilience.{k}"),
                        message,
                    ));
                }
                if let Err((k, message)) = split.validate() {
                    return Err(ConfigError::invalid(
                        cfg,
                        format!("{key}.split.{k}"),
                        message,
                    ));
                }
                for (i, v) in split.variants.iter().enumerate() {
                    check_target(
                        cfg,
                        &format!("{key}.split.variants[{i}]"),
                        &b.variant_config(v),
                    )?;
                }
            }
        }
        let reflected = cfg
            .descriptors
            .iter()
            .any(|d| d.reflection.as_deref() == Some(name.as_str()));
        if b.services.is_empty() && !reflected {
            return Err(ConfigError::invalid(
                cfg,
                format!("backends.{name}.services"),
                "list the services this backend serves (e.g. [demo.v1.UserService]), \
                 or register it with `- reflection: NAME` so they can be discovered",
            ));
        }
    }
    for (method, m) in &cfg.rest.methods {
        if let Some(s) = m.success_status
            && !(200..300).contains(&s)
        {
            return Err(ConfigError::invalid(
                cfg,
                format!("rest.methods.{method}.success_status"),
                format!("{s} is not a 2xx status"),
            ));
        }
    }
    if let Err((key, message)) = cfg.rest.multipart.validate() {
        return Err(ConfigError::invalid(
            cfg,
            format!("rest.multipart.{key}"),
            message,
        ));
    }
    for (i, h) in cfg.headers.forward.iter().enumerate() {
        if http::HeaderName::from_bytes(h.trim_end_matches('*').as_bytes()).is_err() {
            return Err(ConfigError::invalid(
                cfg,
                format!("headers.forward[{i}]"),
                format!("{h:?} is not a valid header name"),
            ));
        }
    }
    if cfg.limits.max_json_depth == 0 || cfg.limits.max_json_depth > 100 {
        return Err(ConfigError::invalid(
            cfg,
            "limits.max_json_depth",
            "must be between 1 and 100",
        ));
    }
    if let Err((key, message)) = cfg.graphql.limits.validate() {
        return Err(ConfigError::invalid(
            cfg,
            format!("graphql.limits.{key}"),
            message,
        ));
    }
    if let Some(v) = &cfg.versions
        && let Err((key, message)) = v.validate()
    {
        return Err(ConfigError::invalid(
            cfg,
            format!("versions.{key}"),
            message,
        ));
    }
    if let Err((key, message)) = cfg.streams.validate() {
        return Err(ConfigError::invalid(cfg, key, message));
    }
    if let Err((key, message)) = cfg.drain.validate() {
        return Err(ConfigError::invalid(cfg, format!("drain.{key}"), message));
    }
    if let Err((key, message)) = cfg.runtime.validate() {
        return Err(ConfigError::invalid(cfg, format!("runtime.{key}"), message));
    }
    if let Some(tls) = &cfg.tls
        && let Err((key, message)) = tls.validate()
    {
        return Err(ConfigError::invalid(cfg, format!("tls.{key}"), message));
    }
    if let Some(auth) = &cfg.auth
        && let Err((key, message)) = auth.validate()
    {
        return Err(ConfigError::invalid(cfg, format!("auth.{key}"), message));
    }
    if let Some(a) = &cfg.auth
        && a.client_certificates
        && cfg.tls.as_ref().is_none_or(|t| t.client_ca.is_none())
    {
        return Err(ConfigError::invalid(
            cfg,
            "auth.client_certificates",
            "client certificates are verified by the listener: set tls.client_ca",
        ));
    }
    if let Some(rules) = &cfg.authorization
        && cfg.auth.is_none()
        && (rules.default == Some(crate::config::DefaultRule::Authenticated)
            || rules.methods.values().any(|r| !r.anonymous)
            || rules.operations.values().any(|r| !r.anonymous)
            || [&rules.introspection, &rules.graphiql]
                .into_iter()
                .flatten()
                .any(|r| !r.anonymous))
    {
        return Err(ConfigError::invalid(
            cfg,
            "authorization",
            "these rules need identified callers: add an auth section (jwt, api_keys or client_certificates)",
        ));
    }
    if let Some(rl) = &cfg.rate_limits {
        if let Err((key, message)) = rl.validate() {
            return Err(ConfigError::invalid(
                cfg,
                format!("rate_limits.{key}"),
                message,
            ));
        }
        let has_plans = cfg
            .auth
            .as_ref()
            .and_then(|a| a.api_keys.as_ref())
            .is_some_and(|k| k.keys.iter().any(|k| k.plan.is_some()));
        if let Some(plan) = rl.plans.keys().next()
            && !has_plans
        {
            return Err(ConfigError::invalid(
                cfg,
                format!("rate_limits.plans.{plan}"),
                "plans come with API keys: give keys a plan in auth.api_keys.keys[].plan",
            ));
        }
        for (i, rule) in rl.rules.iter().enumerate() {
            let identity = rule.key.0.iter().any(|p| {
                matches!(
                    p,
                    crate::config::KeyPart::ApiKey
                        | crate::config::KeyPart::Plan
                        | crate::config::KeyPart::Certificate
                )
            });
            if identity && cfg.auth.is_none() {
                return Err(ConfigError::invalid(
                    cfg,
                    format!("rate_limits.rules[{i}].key"),
                    "this key needs identified callers: add an auth section",
                ));
            }
        }
    }
    if let Err((key, message)) = cfg.log.validate() {
        return Err(ConfigError::invalid(cfg, format!("log.{key}"), message));
    }
    if let Err((key, message)) = cfg.telemetry.validate() {
        return Err(ConfigError::invalid(
            cfg,
            format!("telemetry.{key}"),
            message,
        ));
    }
    if let Some(admin) = &cfg.admin {
        if let Err((key, message)) = admin.validate() {
            return Err(ConfigError::invalid(cfg, format!("admin.{key}"), message));
        }
        if admin.listen == cfg.listen && admin.listen.port() != 0 {
            return Err(ConfigError::invalid(
                cfg,
                "admin.listen",
                "the admin listener must not share the client port",
            ));
        }
        for (i, name) in admin.ready_backends.iter().enumerate() {
            if !cfg.backends.contains_key(name) {
                return Err(ConfigError::invalid(
                    cfg,
                    format!("admin.ready_backends[{i}]"),
                    format!("no backend named {name:?} in `backends`"),
                ));
            }
        }
    }
    if let Some(cors) = &cfg.cors
        && let Err((key, message)) = cors.validate()
    {
        return Err(ConfigError::invalid(cfg, format!("cors.{key}"), message));
    }
    if cfg.deadlines.default > cfg.deadlines.max {
        return Err(ConfigError::invalid(
            cfg,
            "deadlines.default",
            format!(
                "{} is longer than deadlines.max ({})",
                cfg.deadlines.default, cfg.deadlines.max
            ),
        ));
    }
    Ok(())
}

/// Checks what a backend (or a split backend's variant, under `key`) connects to: its
/// endpoints, resilience and TLS.
fn check_target(cfg: &Config, key: &str, b: &super::BackendConfig) -> Result<(), ConfigError> {
    if b.endpoints.is_empty() {
        return Err(ConfigError::invalid(
            cfg,
            format!("{key}.endpoints"),
            "at least one endpoint is needed, e.g. http://127.0.0.1:50051",
        ));
    }
    for (i, ep) in b.endpoints.iter().enumerate() {
        if let Err(why) = check_endpoint(ep) {
            return Err(ConfigError::invalid(
                cfg,
                format!("{key}.endpoints[{i}]"),
                why,
            ));
        }
    }
    if let Err((k, message)) = b.resilience.validate() {
        return Err(ConfigError::invalid(
            cfg,
            format!("{key}.resilience.{k}"),
            message,
        ));
    }
    if let Some(tls) = &b.tls {
        if let Some((i, ep)) = b
            .endpoints
            .iter()
            .enumerate()
            .find(|(_, ep)| !ep.starts_with("https://"))
        {
            return Err(ConfigError::invalid(
                cfg,
                format!("{key}.endpoints[{i}]"),
                format!("{ep:?}: a backend with `tls` is reached over https://"),
            ));
        }
        if tls.cert.is_some() != tls.key.is_some() {
            return Err(ConfigError::invalid(
                cfg,
                format!("{key}.tls"),
                "a client certificate needs both `cert` and `key`",
            ));
        }
    }
    Ok(())
}

fn check_endpoint(ep: &str) -> Result<(), String> {
    let uri: http::Uri = ep
        .parse()
        .map_err(|e| format!("{ep:?} is not a valid URI: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {}
        _ => return Err(format!("{ep:?} needs a scheme, e.g. http://{ep}")),
    }
    if uri.host().is_none() || uri.port_u16().is_none() {
        return Err(format!(
            "{ep:?} needs a host and a port, e.g. http://127.0.0.1:50051"
        ));
    }
    Ok(())
}

fn known<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let v: Vec<&str> = names.map(String::as_str).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
listen: 127.0.0.1:9999
descriptors:
  - file: ../descriptors/demo.binpb
  - reflection: users
backends:
  users:
    endpoints: [http://127.0.0.1:50051]
    timeout: 2s
  orders:
    endpoints: [http://127.0.0.1:50052]
    services: [demo.v1.OrderService]
rest:
  methods:
    demo.v1.UserService.CreateUser: { success_status: 201 }
"#;

    fn err(text: &str) -> String {
        parse(text, "bff.yaml", Path::new("/etc/bff"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_good_config_loads_with_defaults() {
        let cfg = parse(GOOD, "bff.yaml", Path::new("/etc/bff")).unwrap();
        assert_eq!(cfg.listen.port(), 9999);
        assert_eq!(cfg.limits.max_body_bytes.bytes(), 1 << 20);
        assert_eq!(
            cfg.resolve_path(Path::new("../x.binpb")),
            Path::new("/etc/x.binpb")
        );
        assert_eq!(
            cfg.resolve_path(Path::new("./a/../../b/c")),
            Path::new("/etc/b/c")
        );
        assert_eq!(
            cfg.call_timeout("users", "demo.v1.UserService.GetUser"),
            std::time::Duration::from_secs(2)
        );
        assert_eq!(
            cfg.call_timeout("orders", "x"),
            std::time::Duration::from_secs(10)
        );
    }

    #[test]
    fn unknown_keys_are_named_with_their_path() {
        let e = err(&GOOD.replace("timeout: 2s", "timout: 2s"));
        assert!(
            e.starts_with("bff.yaml: backends.users.timout: unknown field `timout`"),
            "{e}"
        );
        assert!(e.contains("line 9"), "{e}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = err(&GOOD.replace("timeout: 2s", "timeout: soon"));
        assert!(e.contains("backends.users.timeout"), "{e}");
        assert!(e.contains("invalid duration"), "{e}");
        let e = err(&GOOD.replace("127.0.0.1:9999", "nowhere"));
        assert!(e.starts_with("bff.yaml: listen:"), "{e}");
    }

    #[test]
    fn a_split_backend_loads_and_its_errors_name_the_key() {
        let split = GOOD.replace(
            "    endpoints: [http://127.0.0.1:50052]\n",
            "    split:\n      variants:\n        - { name: stable, weight: 95, endpoints: [http://127.0.0.1:50052] }\n        - { name: canary, weight: 5, endpoints: [http://127.0.0.1:50062] }\n      sticky: { header: x-user }\n      override_header: x-portico-variant\n",
        );
        let cfg = parse(&split, "bff.yaml", Path::new("/etc/bff")).unwrap();
        let orders = &cfg.backends["orders"];
        assert!(orders.endpoints.is_empty());
        assert_eq!(orders.split.as_ref().unwrap().variants[1].weight, 5);
        let cases = [
            (
                "weight: 5,",
                "weight: -5,",
                "backends.orders.split.variants[1].weight",
            ),
            (
                "name: canary",
                "name: stable",
                "backends.orders.split.variants[1].name: \"stable\" is already the name of variants[0]",
            ),
            (
                "name: canary",
                "name: \"can ary\"",
                "backends.orders.split.variants[1].name",
            ),
            (
                "http://127.0.0.1:50062",
                "127.0.0.1:50062",
                "backends.orders.split.variants[1].endpoints[0]",
            ),
            (
                "sticky: { header: x-user }",
                "sticky: {}",
                "backends.orders.split.sticky: name what keeps",
            ),
            (
                "sticky: { header: x-user }",
                "sticky: { header: \"x user\" }",
                "backends.orders.split.sticky.header",
            ),
            (
                "override_header: x-portico-variant",
                "override_header: x-portico-variant\n      response_header: \"a b\"",
                "backends.orders.split.response_header: \"a b\" is not a header name",
            ),
            (
                "override_header: x-portico-variant",
                "override_header: x-user",
                "backends.orders.split.override_header",
            ),
            (
                "    split:\n",
                "    endpoints: [http://127.0.0.1:1]\n    split:\n",
                "backends.orders.endpoints: a backend with `split`",
            ),
        ];
        for (from, to, want) in cases {
            let bad = split.replacen(from, to, 1);
            assert_ne!(bad, split, "{from}");
            let e = err(&bad);
            assert!(e.contains(want), "{to}: {e}");
        }
        let empty: String = split
            .lines()
            .filter(|l| !l.contains("- { name:"))
            .map(|l| format!("{}\n", l.replace("variants:", "variants: []")))
            .collect();
        let e = err(&empty);
        assert!(
            e.contains("backends.orders.split.variants: at least one variant"),
            "{e}"
        );
        let e = err(&split
            .replace("weight: 95,", "weight: 0,")
            .replace("weight: 5,", "weight: 0,"));
        assert!(
            e.contains("backends.orders.split.variants: every weight is 0"),
            "{e}"
        );
        let e = err(&split.replace(
            "weight: 95,",
            "weight: 95, resilience: { fallbacks: { a.B.C: {} } },",
        ));
        assert!(
            e.contains("variants[0].resilience.fallbacks: fallbacks belong to the backend"),
            "{e}"
        );
    }

    #[test]
    fn semantic_errors_name_the_key() {
        let e = err(&GOOD.replace("reflection: users", "reflection: nobody"));
        assert!(
            e.contains("descriptors[1].reflection: no backend named \"nobody\""),
            "{e}"
        );
        let e = err(&GOOD.replace("http://127.0.0.1:50052", "127.0.0.1:50052"));
        assert!(e.contains("backends.orders.endpoints[0]"), "{e}");
        let e = err(&GOOD.replace("services: [demo.v1.OrderService]", "services: []"));
        assert!(e.contains("backends.orders.services"), "{e}");
        let e = err(&GOOD.replace("success_status: 201", "success_status: 404"));
        assert!(e.contains("success_status: 404 is not a 2xx status"), "{e}");
        let e = err(&GOOD.replace("rest:\n", "rest:\n  multipart: { max_parts: 0 }\n"));
        assert!(
            e.contains("rest.multipart.max_parts: must be at least 1"),
            "{e}"
        );
        let e = err(&GOOD.replace("rest:\n", "rest:\n  multipart: { max_part_size: 1 }\n"));
        assert!(e.contains("max_part_size"), "{e}");
        let e = err(&GOOD.replace(
            "timeout: 2s",
            "timeout: 2s\n    resilience: { breaker: { error_ratio: 2 } }",
        ));
        assert!(
            e.contains("backends.users.resilience.breaker.error_ratio: must be above 0"),
            "{e}"
        );
        let e = err(&format!(
            "{GOOD}graphql: {{ limits: {{ size_args: [first, \"page..size\"] }} }}\n"
        ));
        assert!(
            e.contains("graphql.limits.size_args[1]: \"page..size\" is not an argument name"),
            "{e}"
        );
        let e = err(&format!("{GOOD}drain: {{ grace: 0s }}\n"));
        assert!(e.contains("drain.grace: must be longer than 0"), "{e}");
        let e = err(&format!(
            "{GOOD}runtime: {{ mode: per_core, threads: 0 }}\n"
        ));
        assert!(e.contains("runtime.threads: must be at least 1"), "{e}");
        let e = err(&format!("{GOOD}runtime: {{ mode: thread_per_request }}\n"));
        assert!(
            e.contains("runtime.mode: unknown variant `thread_per_request`, expected `multi_thread` or `per_core`"),
            "{e}"
        );
        let e = err(&GOOD.replace("  - reflection: users\n", "  - {}\n"));
        assert!(
            e.contains("descriptors[1]: each entry needs exactly one"),
            "{e}"
        );
    }
}
