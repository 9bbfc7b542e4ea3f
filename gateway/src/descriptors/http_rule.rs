//! Reading a method's `google.api.http` bindings and its idempotency level.

use prost_reflect::{DynamicMessage, MethodDescriptor, Value};

/// One HTTP binding of a method, flattened from its `google.api.HttpRule` and the rule's
/// `additional_bindings`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpBinding {
    /// The HTTP method (`custom { kind }` maps to that method name).
    pub method: http::Method,
    /// The path template, e.g. `/v1/users/{id}`.
    pub path: String,
    /// The request field the body maps to: `*` for the whole message; `None` for no body.
    pub body: Option<String>,
    /// The response field sent as the body; `None` for the whole response message.
    pub response_body: Option<String>,
}

/// Every HTTP binding of a method: the main rule first, then its `additional_bindings` in order.
///
/// Additional bindings keep their own `body` / `response_body`; `additional_bindings` nested
/// inside additional bindings are ignored, as the HttpRule spec says. A binding without a
/// pattern, with an empty path or with an unusable custom method name is skipped (logged).
/// Empty when the method has no `google.api.http` option.
pub fn http_bindings(method: &MethodDescriptor) -> Vec<HttpBinding> {
    let Some(extension) = method
        .parent_pool()
        .get_extension_by_name("google.api.http")
    else {
        return Vec::new();
    };
    let options = method.options();
    if !options.has_extension(&extension) {
        return Vec::new();
    }
    let rule = options.get_extension(&extension);
    let Value::Message(rule) = rule.as_ref() else {
        return Vec::new();
    };

    let mut bindings = Vec::new();
    bindings.extend(binding(method, rule));
    if let Some(Value::List(additional)) = rule.get_field_by_name("additional_bindings").as_deref()
    {
        bindings.extend(additional.iter().filter_map(|value| match value {
            Value::Message(extra) => binding(method, extra),
            _ => None,
        }));
    }
    bindings
}

/// Reads one rule's pattern, body and response body (ignoring its additional bindings).
fn binding(method: &MethodDescriptor, rule: &DynamicMessage) -> Option<HttpBinding> {
    let (http_method, path) = pattern(rule)?;
    let Some(http_method) = http_method else {
        tracing::warn!(
            method = %method.full_name(),
            "google.api.http custom binding has an invalid method name; binding skipped"
        );
        return None;
    };
    if path.is_empty() {
        tracing::warn!(
            method = %method.full_name(),
            "google.api.http binding has an empty path; binding skipped"
        );
        return None;
    }
    Some(HttpBinding {
        method: http_method,
        path,
        body: non_empty_string(rule, "body"),
        response_body: non_empty_string(rule, "response_body"),
    })
}

/// The rule's `pattern` oneof: `None` if unset; `Some((None, _))` if the custom kind is invalid.
fn pattern(rule: &DynamicMessage) -> Option<(Option<http::Method>, String)> {
    const SIMPLE: [(&str, http::Method); 5] = [
        ("get", http::Method::GET),
        ("put", http::Method::PUT),
        ("post", http::Method::POST),
        ("delete", http::Method::DELETE),
        ("patch", http::Method::PATCH),
    ];
    for (field, http_method) in SIMPLE {
        if rule.has_field_by_name(field) {
            return Some((Some(http_method), string_field(rule, field)));
        }
    }
    if rule.has_field_by_name("custom") {
        let custom = rule.get_field_by_name("custom")?;
        let Value::Message(custom) = custom.as_ref() else {
            return None;
        };
        let kind = string_field(custom, "kind");
        let http_method = http::Method::from_bytes(kind.as_bytes()).ok();
        return Some((http_method, string_field(custom, "path")));
    }
    None
}

fn string_field(message: &DynamicMessage, name: &str) -> String {
    match message.get_field_by_name(name).as_deref() {
        Some(Value::String(value)) => value.clone(),
        _ => String::new(),
    }
}

fn non_empty_string(message: &DynamicMessage, name: &str) -> Option<String> {
    Some(string_field(message, name)).filter(|value| !value.is_empty())
}

/// A method's `idempotency_level` option, for later retry and GraphQL query/mutation decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Idempotency {
    /// `IDEMPOTENCY_UNKNOWN` or not set.
    #[default]
    Unknown,
    /// `NO_SIDE_EFFECTS`: safe to retry and to expose as a query.
    NoSideEffects,
    /// `IDEMPOTENT`: has side effects, but repeating it has no further effect.
    Idempotent,
}

/// Reads the method's `idempotency_level` option.
pub fn idempotency(method: &MethodDescriptor) -> Idempotency {
    use prost_types::method_options::IdempotencyLevel;
    let level = method
        .method_descriptor_proto()
        .options
        .as_ref()
        .map(|options| options.idempotency_level());
    match level {
        Some(IdempotencyLevel::NoSideEffects) => Idempotency::NoSideEffects,
        Some(IdempotencyLevel::Idempotent) => Idempotency::Idempotent,
        Some(IdempotencyLevel::IdempotencyUnknown) | None => Idempotency::Unknown,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::descriptors::test_support::shop_registry;

    fn method(name: &str) -> MethodDescriptor {
        let registry = shop_registry();
        let service = registry
            .pool()
            .get_service_by_name("shop.v1.ShopService")
            .unwrap();
        service.methods().find(|m| m.name() == name).unwrap()
    }

    fn bind(
        method: http::Method,
        path: &str,
        body: Option<&str>,
        response_body: Option<&str>,
    ) -> HttpBinding {
        HttpBinding {
            method,
            path: path.to_owned(),
            body: body.map(str::to_owned),
            response_body: response_body.map(str::to_owned),
        }
    }

    #[test]
    fn get_with_additional_bindings_and_nested_ones_ignored() {
        assert_eq!(
            http_bindings(&method("GetOrder")),
            [
                bind(http::Method::GET, "/v1/orders/{id}", None, None),
                bind(
                    http::Method::GET,
                    "/v1/shops/{shop}/orders/{id}",
                    None,
                    None
                ),
                bind(
                    http::Method::POST,
                    "/v1/orders/{id}:get",
                    Some("*"),
                    Some("lines")
                ),
            ]
        );
    }

    #[test]
    fn put_post_delete_patch() {
        assert_eq!(
            http_bindings(&method("PutOrder")),
            [bind(
                http::Method::PUT,
                "/v1/orders/{order.id}",
                Some("order"),
                None
            )]
        );
        assert_eq!(
            http_bindings(&method("CreateOrder")),
            [bind(
                http::Method::POST,
                "/v1/orders",
                Some("*"),
                Some("lines")
            )]
        );
        assert_eq!(
            http_bindings(&method("DeleteOrder")),
            [bind(http::Method::DELETE, "/v1/orders/{id}", None, None)]
        );
        assert_eq!(
            http_bindings(&method("PatchOrder")),
            [bind(
                http::Method::PATCH,
                "/v1/orders/{order.id}",
                Some("order"),
                None
            )]
        );
    }

    #[test]
    fn custom_maps_to_its_kind_and_empty_body_is_none() {
        assert_eq!(
            http_bindings(&method("HeadOrder")),
            [bind(http::Method::HEAD, "/v1/orders/{id}", None, None)]
        );
    }

    #[test]
    fn no_option_means_no_bindings() {
        assert!(http_bindings(&method("Internal")).is_empty());
    }

    #[test]
    fn idempotency_levels() {
        assert_eq!(idempotency(&method("GetOrder")), Idempotency::NoSideEffects);
        assert_eq!(idempotency(&method("PutOrder")), Idempotency::Idempotent);
        assert_eq!(idempotency(&method("CreateOrder")), Idempotency::Unknown);
        assert_eq!(idempotency(&method("Internal")), Idempotency::Unknown);
    }
}
