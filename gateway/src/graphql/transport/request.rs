//! Turning an HTTP request (POST JSON body or GET URL parameters) into an `async_graphql::Request`.
//!
//! Parameter rules (GraphQL over HTTP): `query` a string; `operationName` a string or null;
//! `variables` and `extensions` a map or null (in GET, a URL-encoded JSON text of a map);
//! `documentId` a string or null (trusted documents, put in the request data as a
//! [`DocumentId`]). A missing `query` is only allowed with a `persistedQuery` extension or a
//! `documentId` (the `Prepare` hook then fills it in or rejects). A JSON array (a batch) is
//! refused. Unknown keys are ignored.

use async_graphql::{Extensions, Value, Variables};
use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Uri};
use serde_json::{Map, Value as Json};

use super::DocumentId;
use crate::error::GatewayError;

/// The GraphQL parameters of a request, checked for their JSON types.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Params {
    /// The document, if sent.
    pub query: Option<String>,
    /// The operation to run.
    pub operation_name: Option<String>,
    /// Variable values.
    pub variables: Map<String, Json>,
    /// Protocol extensions (persisted queries...).
    pub extensions: Map<String, Json>,
    /// The id of a trusted document, sent instead of `query`.
    pub document_id: Option<String>,
}

impl Params {
    /// Builds the GraphQL request; a missing `query` needs a `persistedQuery` extension or a
    /// `documentId`.
    pub(crate) fn into_request(self) -> Result<async_graphql::Request, GatewayError> {
        if self.query.is_none()
            && self.document_id.is_none()
            && !self.extensions.contains_key("persistedQuery")
        {
            return Err(bad_request("the `query` parameter is missing"));
        }
        let variables = Value::from_json(Json::Object(self.variables))
            .map_err(|e| bad_request(format!("invalid `variables`: {e}")))?;
        let mut extensions = Extensions::default();
        for (name, value) in self.extensions {
            let value = Value::from_json(value)
                .map_err(|e| bad_request(format!("invalid `extensions.{name}`: {e}")))?;
            extensions.0.insert(name, value);
        }
        let mut request = async_graphql::Request::new(self.query.unwrap_or_default())
            .variables(Variables::from_value(variables));
        request.operation_name = self.operation_name;
        request.extensions = extensions;
        if let Some(id) = self.document_id {
            request = request.data(DocumentId(id));
        }
        Ok(request)
    }
}

/// A 400 with code `BAD_REQUEST`.
pub(crate) fn bad_request(message: impl Into<String>) -> GatewayError {
    GatewayError::bad_request(None, message)
}

/// Checks that a POST declares a JSON body (`application/json`, charset utf-8 if any).
pub(crate) fn check_content_type(headers: &HeaderMap) -> Result<(), GatewayError> {
    let unsupported = |got: &str| GatewayError::UnsupportedMediaType {
        got: got.to_owned(),
        expected: "application/json (utf-8)",
    };
    let Some(value) = headers.get(http::header::CONTENT_TYPE) else {
        return Err(unsupported("(none)"));
    };
    let text = value.to_str().map_err(|_| unsupported("(not text)"))?;
    let mut pieces = text.split(';');
    let essence = pieces.next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(unsupported(text));
    }
    for param in pieces {
        if let Some((name, value)) = param.split_once('=')
            && name.trim().eq_ignore_ascii_case("charset")
            && !value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        {
            return Err(unsupported(text));
        }
    }
    Ok(())
}

/// The body's bytes. The gateway's ingress has already read it, under the size and time
/// limits, into memory: this only collects it.
pub(crate) async fn read_body(body: Body) -> Result<Bytes, GatewayError> {
    use http_body_util::BodyExt;
    body.collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| bad_request(format!("could not read the request body: {e}")))
}

/// Counts the values of a POST body's `variables` (at every level) before anything is parsed,
/// and refuses past `max` (0: no limit): parsed, each takes 50-100 bytes whatever its JSON
/// size. A body that is not a JSON object, or not JSON, is left to [`parse_body`] to name.
pub(crate) fn count_variable_values(body: &[u8], max: usize) -> Result<(), GatewayError> {
    use serde::de::{
        DeserializeSeed, Deserializer as _, IgnoredAny, MapAccess, SeqAccess, Visitor,
    };
    const OVER: &str = "\u{0}over";

    struct Top(usize);
    struct Count<'a> {
        n: &'a mut usize,
        max: usize,
    }
    impl<'de> Visitor<'de> for Top {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut n = 0;
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if key == "variables" {
                    map.next_value_seed(Count {
                        n: &mut n,
                        max: self.0,
                    })?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(())
        }
    }
    impl<'de> DeserializeSeed<'de> for Count<'_> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            *self.n += 1;
            if *self.n > self.max {
                return Err(serde::de::Error::custom(OVER));
            }
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Count<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("any value")
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq
                .next_element_seed(Count {
                    n: &mut *self.n,
                    max: self.max,
                })?
                .is_some()
            {}
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while map.next_key::<IgnoredAny>()?.is_some() {
                map.next_value_seed(Count {
                    n: &mut *self.n,
                    max: self.max,
                })?;
            }
            Ok(())
        }
    }

    if max == 0 {
        return Ok(());
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    match de.deserialize_any(Top(max)) {
        Err(e) if e.to_string().starts_with(OVER) => Err(bad_request(format!(
            "the request's `variables` hold more than {max} values \
             (graphql.limits.max_variable_values): send fewer, or larger, values"
        ))),
        // Anything else (not an object, not JSON) is named by `parse_body`.
        _ => Ok(()),
    }
}

/// Parses a POST body: one JSON object with the GraphQL parameters.
pub(crate) fn parse_body(body: &[u8]) -> Result<Params, GatewayError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad_request("the request body is empty"));
    }
    let json: Json = crate::transcode::json_text::from_slice(body)
        .map_err(|e| bad_request(format!("the request body is not valid JSON: {e}")))?;
    let map = match json {
        Json::Object(map) => map,
        Json::Array(_) => {
            return Err(bad_request(
                "batched requests (a JSON array) are not supported: send one operation per request",
            ));
        }
        _ => return Err(bad_request("the request body must be a JSON object")),
    };
    let mut params = Params::default();
    for (key, value) in map {
        match key.as_str() {
            "query" => params.query = optional_string("query", value)?,
            "operationName" => params.operation_name = optional_string("operationName", value)?,
            "variables" => params.variables = optional_map("variables", value)?,
            "extensions" => params.extensions = optional_map("extensions", value)?,
            "documentId" => params.document_id = optional_string("documentId", value)?,
            _ => {}
        }
    }
    Ok(params)
}

/// Parses the GraphQL parameters of a GET from the URL query string.
pub(crate) fn parse_query_string(uri: &Uri) -> Result<Params, GatewayError> {
    let pairs = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map_err(|e| bad_request(format!("malformed query string: {e}")))?
        .0;
    let mut params = Params::default();
    let mut seen: Vec<&str> = Vec::new();
    for (key, value) in &pairs {
        let name = key.as_str();
        if !matches!(
            name,
            "query" | "operationName" | "variables" | "extensions" | "documentId"
        ) {
            continue;
        }
        if seen.contains(&name) {
            return Err(bad_request(format!(
                "the `{name}` parameter is given more than once"
            )));
        }
        seen.push(name);
        let non_empty = (!value.is_empty()).then(|| value.clone());
        match name {
            "query" => params.query = non_empty,
            "operationName" => params.operation_name = non_empty,
            "variables" => params.variables = json_map_param(name, value)?,
            "documentId" => params.document_id = non_empty,
            _ => params.extensions = json_map_param(name, value)?,
        }
    }
    Ok(params)
}

/// True when the URL query string carries a `query` parameter (GraphiQL is not served then).
pub(crate) fn has_query_param(uri: &Uri) -> bool {
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map(|q| q.0.iter().any(|(k, _)| k == "query"))
        .unwrap_or(false)
}

/// A string or null.
fn optional_string(name: &str, value: Json) -> Result<Option<String>, GatewayError> {
    match value {
        Json::Null => Ok(None),
        Json::String(s) => Ok(Some(s)),
        other => Err(bad_request(format!(
            "the `{name}` parameter must be a string, not {}",
            json_kind(&other)
        ))),
    }
}

/// A map or null (null is an empty map).
fn optional_map(name: &str, value: Json) -> Result<Map<String, Json>, GatewayError> {
    match value {
        Json::Null => Ok(Map::new()),
        Json::Object(map) => Ok(map),
        other => Err(bad_request(format!(
            "the `{name}` parameter must be a map, not {}",
            json_kind(&other)
        ))),
    }
}

/// A URL parameter holding the JSON text of a map (or `null`, or nothing).
fn json_map_param(name: &str, text: &str) -> Result<Map<String, Json>, GatewayError> {
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    let json: Json = serde_json::from_str(text)
        .map_err(|e| bad_request(format!("the `{name}` parameter is not valid JSON: {e}")))?;
    optional_map(name, json)
}

/// The JSON type of a value, for messages.
fn json_kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "a map",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use http::{HeaderValue, StatusCode};
    use serde_json::json;

    fn body(value: Json) -> Result<Params, GatewayError> {
        parse_body(value.to_string().as_bytes())
    }

    #[test]
    fn variable_values_are_counted_before_parsing() {
        let count = |v: Json, max: usize| count_variable_values(v.to_string().as_bytes(), max);
        // Every value counts, at every level: the object itself, 2 lists, 5 scalars, a null.
        let vars = json!({"query": "{a}", "variables": {"ids": ["a", "b", "c"], "page": {"n": 1, "tags": [null]}}});
        assert!(count(vars.clone(), 9).is_ok());
        let err = count(vars.clone(), 8).unwrap_err().to_string();
        assert!(
            err.contains("more than 8 values") && err.contains("max_variable_values"),
            "{err}"
        );
        assert!(count(vars, 0).is_ok(), "0 turns the limit off");
        // Other members do not count; a body that is not an object is left to the parser.
        let big: Vec<u32> = (0..100).collect();
        assert!(count(json!({"query": "{a}", "extensions": {"x": big}}), 3).is_ok());
        assert!(count_variable_values(b"[1, 2, 3]", 1).is_ok());
        assert!(count_variable_values(b"{ not json", 1).is_ok());
        // 10,000 one-letter strings (and their list, and the variables object): about 40 KB
        // of JSON, 950 KB once parsed.
        let many = json!({"query": "{a}", "variables": {"ids": vec!["a"; 10_000]}});
        assert!(count(many.clone(), 10_002).is_ok());
        assert!(count(many, 10_001).is_err());
    }

    #[test]
    fn full_post_body() {
        let p = body(json!({
            "query": "query Q($n: String) { hello(name: $n) }",
            "operationName": "Q",
            "variables": {"n": "ada"},
            "extensions": {"some": "value"},
            "unknown": 1
        }))
        .unwrap();
        assert_eq!(p.operation_name.as_deref(), Some("Q"));
        let req = p.into_request().unwrap();
        assert_eq!(req.query, "query Q($n: String) { hello(name: $n) }");
        assert_eq!(
            req.variables.into_value().into_json().unwrap(),
            json!({"n": "ada"})
        );
        assert_eq!(
            req.extensions.0.get("some"),
            Some(&Value::String("value".into()))
        );
    }

    #[test]
    fn nulls_are_allowed() {
        let p = body(
            json!({"query": "{a}", "operationName": null, "variables": null, "extensions": null}),
        )
        .unwrap();
        assert_eq!(p.query.as_deref(), Some("{a}"));
        assert!(p.variables.is_empty());
        p.into_request().unwrap();
    }

    #[test]
    fn wrong_types_are_400() {
        for bad in [
            json!({"query": {"obj": "ect"}}),
            json!({"query": 0}),
            json!({"query": false}),
            json!({"query": ["array"]}),
            json!({"query": "{a}", "operationName": 0}),
            json!({"query": "{a}", "variables": "string"}),
            json!({"query": "{a}", "variables": ["array"]}),
            json!({"query": "{a}", "extensions": false}),
        ] {
            let err = body(bad.clone()).unwrap_err();
            assert_eq!(err.http_status(), StatusCode::BAD_REQUEST, "{bad}");
            assert_eq!(err.kind().code(), "BAD_REQUEST");
        }
    }

    #[test]
    fn missing_query_is_400_unless_persisted() {
        let err = body(json!({"qeury": "{a}"}))
            .unwrap()
            .into_request()
            .unwrap_err();
        assert!(err.to_string().contains("missing"), "{}", err.to_string());
        let req =
            body(json!({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "ab"}}}))
                .unwrap()
                .into_request()
                .unwrap();
        assert!(req.query.is_empty());
    }

    #[test]
    fn document_id_replaces_the_query() {
        let req = body(json!({"documentId": "sha256:ab"}))
            .unwrap()
            .into_request()
            .unwrap();
        assert!(req.query.is_empty());
        let id = req
            .data
            .get(&std::any::TypeId::of::<DocumentId>())
            .and_then(|d| d.downcast_ref::<DocumentId>())
            .unwrap();
        assert_eq!(id.0, "sha256:ab");
        let p = parse_query_string(&"/g?documentId=abc".parse().unwrap()).unwrap();
        assert_eq!(p.document_id.as_deref(), Some("abc"));
        assert!(body(json!({"documentId": 1})).is_err());
    }

    #[test]
    fn malformed_batched_and_empty_bodies() {
        assert!(
            parse_body(b"{ \"not a JSON")
                .unwrap_err()
                .to_string()
                .contains("not valid JSON")
        );
        assert!(
            parse_body(b"[{\"query\":\"{a}\"}]")
                .unwrap_err()
                .to_string()
                .contains("batched")
        );
        assert!(parse_body(b"  ").unwrap_err().to_string().contains("empty"));
        assert!(
            parse_body(b"42")
                .unwrap_err()
                .to_string()
                .contains("JSON object")
        );
    }

    #[test]
    fn get_parameters() {
        let uri: Uri = "/graphql?query=query%20T(%24n%3AString!)%7B__type(name%3A%24n)%7Bname%7D%7D&variables=%7B%22n%22%3A%22x%22%7D&operationName=T&extensions=%7B%7D&other=1"
            .parse()
            .unwrap();
        let p = parse_query_string(&uri).unwrap();
        assert_eq!(
            p.query.as_deref(),
            Some("query T($n:String!){__type(name:$n){name}}")
        );
        assert_eq!(p.operation_name.as_deref(), Some("T"));
        assert_eq!(Json::Object(p.variables), json!({"n": "x"}));
        assert!(has_query_param(&uri));
    }

    #[test]
    fn get_parameter_errors() {
        let parse = |q: &str| parse_query_string(&format!("/g?{q}").parse().unwrap());
        assert!(
            parse("query=%7Ba%7D&variables=%5B1%5D")
                .unwrap_err()
                .to_string()
                .contains("map")
        );
        assert!(
            parse("query=%7Ba%7D&variables=%7B")
                .unwrap_err()
                .to_string()
                .contains("JSON")
        );
        assert!(
            parse("query=a&query=b")
                .unwrap_err()
                .to_string()
                .contains("more than once")
        );
        let p = parse("query=&variables=null").unwrap();
        assert_eq!(p.query, None);
        assert!(p.into_request().is_err());
        assert!(!has_query_param(&"/g?x=1".parse().unwrap()));
    }

    #[test]
    fn content_type_rules() {
        let with = |v: Option<&str>| {
            let mut h = HeaderMap::new();
            if let Some(v) = v {
                h.insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_str(v).unwrap(),
                );
            }
            check_content_type(&h)
        };
        assert!(with(Some("application/json")).is_ok());
        assert!(with(Some("Application/JSON; charset=UTF-8")).is_ok());
        assert!(with(Some("application/json;charset=\"utf-8\"")).is_ok());
        for bad in [
            None,
            Some("text/plain;charset=UTF-8"),
            Some("application/json; charset=latin1"),
        ] {
            let err = with(bad).unwrap_err();
            assert_eq!(err.http_status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        }
    }
}
