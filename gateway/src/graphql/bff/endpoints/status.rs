//! The HTTP answer of an endpoint from its GraphQL result: which status, which body.
//!
//! - No errors: 200, the body is `data` (or `data.<unwrap>`).
//! - Partial (errors, and at least one root field is not null): 200, the same body with an
//!   `errors` member added (a body that is not a JSON object is wrapped as
//!   `{"data": ..., "errors": [...]}`), and the header `x-portico-partial: true`.
//! - All failed (errors, and `data` null or every root field null): the most severe status of
//!   the errors, i.e. the highest status their codes map to (5xx before 4xx; 504 beats 503,
//!   503 beats 404), body `{"errors": [...]}`. Codes map to statuses through the one error
//!   taxonomy ([`crate::error::kind`]), exactly as the REST door writes the same failure:
//!   `NOT_FOUND` 404, `INVALID_ARGUMENT` 400, `UNAVAILABLE` 503, `DEADLINE_EXCEEDED` 504,
//!   `CIRCUIT_OPEN` and `OVERLOADED` 503, `RESPONSE_TOO_LARGE` 502, `BAD_USER_INPUT` and the
//!   GraphQL request-error codes 400; an error without a known code counts as 500.

use async_graphql::{Name, Value};
use http::StatusCode;

use crate::error::ErrorKind;

/// The header marking a partial response.
pub const PARTIAL_HEADER: &str = "x-portico-partial";

/// An endpoint's answer before it is written (a GraphQL value keeps the selection's order).
#[derive(Debug, PartialEq)]
pub struct Shaped {
    /// The HTTP status.
    pub status: StatusCode,
    /// The JSON body.
    pub body: Value,
    /// Whether to mark it partial.
    pub partial: bool,
}

/// The answer for a result with `data` and `errors` (each error as a value with `message`,
/// `extensions`...), unwrapped to `unwrap`.
pub fn shape(data: Value, errors: Vec<Value>, unwrap: Option<&str>) -> Shaped {
    let all_failed = match &data {
        Value::Null => true,
        Value::Object(fields) => fields.values().all(|v| *v == Value::Null),
        _ => false,
    };
    if errors.is_empty() {
        return Shaped {
            status: StatusCode::OK,
            body: unwrapped(data, unwrap),
            partial: false,
        };
    }
    if all_failed {
        let status = errors
            .iter()
            .map(|e| status_of_code(code_of(e)))
            .max_by_key(|s| s.as_u16())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut body = async_graphql::indexmap::IndexMap::new();
        body.insert(Name::new("errors"), Value::List(errors));
        return Shaped {
            status,
            body: Value::Object(body),
            partial: false,
        };
    }
    let body = match unwrapped(data, unwrap) {
        Value::Object(mut map) => {
            map.insert(Name::new("errors"), Value::List(errors));
            Value::Object(map)
        }
        other => {
            let mut map = async_graphql::indexmap::IndexMap::new();
            map.insert(Name::new("data"), other);
            map.insert(Name::new("errors"), Value::List(errors));
            Value::Object(map)
        }
    };
    Shaped {
        status: StatusCode::OK,
        body,
        partial: true,
    }
}

fn unwrapped(data: Value, unwrap: Option<&str>) -> Value {
    match (unwrap, data) {
        (Some(key), Value::Object(mut map)) => map.shift_remove(key).unwrap_or(Value::Null),
        (_, data) => data,
    }
}

/// The `extensions.code` of an error value.
fn code_of(error: &Value) -> Option<&str> {
    let Value::Object(e) = error else { return None };
    let Some(Value::Object(ext)) = e.get("extensions") else {
        return None;
    };
    match ext.get("code") {
        Some(Value::String(c)) => Some(c.as_str()),
        _ => None,
    }
}

/// The HTTP status an error code maps to: the taxonomy's ([`ErrorKind::from_code`]), 500 for
/// a missing or unknown code.
pub fn status_of_code(code: Option<&str>) -> StatusCode {
    code.and_then(ErrorKind::from_code)
        .map_or(StatusCode::INTERNAL_SERVER_ERROR, ErrorKind::http_status)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::{Value as Json, json};

    fn err(code: &str) -> Value {
        v(json!({"message": "x", "extensions": {"code": code}}))
    }

    fn v(j: Json) -> Value {
        Value::from_json(j).unwrap()
    }

    fn j(s: &Shaped) -> Json {
        s.body.clone().into_json().unwrap()
    }

    #[test]
    fn codes_map_through_the_grpc_table_and_the_gateway_codes() {
        for (code, status) in [
            (Some("NOT_FOUND"), 404),
            (Some("INVALID_ARGUMENT"), 400),
            (Some("PERMISSION_DENIED"), 403),
            (Some("UNAUTHENTICATED"), 401),
            (Some("UNAVAILABLE"), 503),
            (Some("DEADLINE_EXCEEDED"), 504),
            (Some("CIRCUIT_OPEN"), 503),
            (Some("OVERLOADED"), 503),
            (Some("RESPONSE_TOO_LARGE"), 502),
            (Some("BAD_USER_INPUT"), 400),
            (Some("INTERNAL"), 500),
            (Some("SOMETHING_ELSE"), 500),
            (None, 500),
        ] {
            assert_eq!(status_of_code(code).as_u16(), status, "{code:?}");
        }
    }

    #[test]
    fn success_is_200_with_data_or_the_unwrapped_field() {
        let s = shape(v(json!({"user": {"id": "1"}})), vec![], None);
        assert_eq!((s.status, s.partial), (StatusCode::OK, false));
        assert_eq!(j(&s), json!({"user": {"id": "1"}}));
        let s = shape(v(json!({"user": {"id": "1"}})), vec![], Some("user"));
        assert_eq!(j(&s), json!({"id": "1"}));
    }

    #[test]
    fn partial_is_200_with_errors_added_and_marked() {
        let s = shape(
            v(json!({"user": {"id": "1"}, "product": null})),
            vec![err("UNAVAILABLE")],
            None,
        );
        assert_eq!((s.status, s.partial), (StatusCode::OK, true));
        assert_eq!(j(&s)["user"]["id"], "1");
        assert_eq!(j(&s)["errors"][0]["extensions"]["code"], "UNAVAILABLE");
        // Nested errors under a non-null root are partial too.
        let s = shape(
            v(json!({"user": {"id": "1", "orders": null}})),
            vec![err("UNAVAILABLE")],
            Some("user"),
        );
        assert!(s.partial);
        assert_eq!(j(&s)["id"], "1");
        assert!(j(&s)["errors"].is_array());
        // A non-object body is wrapped.
        let s = shape(v(json!({"a": [1], "b": null})), vec![err("X")], Some("a"));
        assert_eq!(
            j(&s),
            json!({"data": [1], "errors": [{"message": "x", "extensions": {"code": "X"}}]})
        );
    }

    #[test]
    fn all_failed_takes_the_most_severe_status() {
        let s = shape(
            v(json!({"user": null, "product": null})),
            vec![err("NOT_FOUND"), err("UNAVAILABLE")],
            None,
        );
        assert_eq!(s.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(j(&s)["errors"].as_array().unwrap().len(), 2);
        assert!(j(&s).get("user").is_none());
        let s = shape(
            Value::Null,
            vec![err("DEADLINE_EXCEEDED"), err("CIRCUIT_OPEN")],
            None,
        );
        assert_eq!(s.status, StatusCode::GATEWAY_TIMEOUT);
        let s = shape(
            v(json!({"user": null})),
            vec![err("NOT_FOUND")],
            Some("user"),
        );
        assert_eq!(s.status, StatusCode::NOT_FOUND);
        assert!(!s.partial);
    }
}
