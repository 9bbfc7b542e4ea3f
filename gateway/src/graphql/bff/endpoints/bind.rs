//! Binding an endpoint request to the operation's variables: path parameters, query
//! parameters and a JSON body, each converted by the variable's declared type.
//!
//! Text values (path and query) convert as: `Int` a 32-bit integer, `Float` a finite number,
//! `Boolean` `true`/`false`, `String`/`ID` as is, `Int64`/`UInt64` a 64-bit integer (kept as a
//! string, as the schema writes them), an enum one of its value names, another scalar its text
//! as is, an input object a JSON text; a list takes repeated parameters (`?tag=a&tag=b`), each
//! converted by the item type. A JSON body's values are checked the same way (numbers for
//! `Int`/`Float`, strings or integers for `Int64`/`UInt64`/`ID`). A variable given twice with
//! different values (path and query, or path and body) is a 400, like an unknown parameter, a
//! missing required variable, or a malformed value; each 400 names the variable.

use serde_json::{Map, Value as Json};

use crate::error::GatewayError;
use crate::graphql::bff::operations::{Operation, Scalar, VarType, VariableDef};

/// Where the values come from.
#[derive(Debug, Default)]
pub struct Inputs<'a> {
    /// Path parameters (decoded), by variable name.
    pub path: Vec<(String, String)>,
    /// The raw query string.
    pub query: Option<&'a str>,
    /// The JSON body's object (POST).
    pub body: Option<Map<String, Json>>,
    /// Query parameters that are ignored rather than refused (`rest.ignored_query_params`).
    pub ignored: &'a [String],
    /// Read `+` in the query string as a space.
    pub plus_is_space: bool,
}

fn bad(name: &str, message: String) -> GatewayError {
    GatewayError::bad_request(Some(name.to_string()), message)
}

/// The operation's variables from `inputs`, as a JSON object.
pub fn bind(op: &Operation, inputs: Inputs<'_>) -> Result<Map<String, Json>, GatewayError> {
    let find = |name: &str| op.variables.iter().find(|v| v.name == name);
    let known = || {
        op.variables
            .iter()
            .map(|v| format!("{} ({})", v.name, v.declared))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = Map::new();
    // Text values, grouped by name in order of appearance.
    let mut texts: Vec<(String, Vec<String>, &'static str)> = Vec::new();
    for (name, value) in inputs.path {
        texts.push((name, vec![value], "path"));
    }
    for (name, value) in parse_query(inputs.query.unwrap_or(""), inputs.plus_is_space)? {
        if inputs.ignored.contains(&name) {
            continue;
        }
        if find(&name).is_none() {
            return Err(bad(
                &name,
                format!(
                    "unknown query parameter {name:?}: the operation {} takes {}",
                    op.name,
                    if op.variables.is_empty() {
                        "no variables".to_string()
                    } else {
                        known()
                    }
                ),
            ));
        }
        match texts
            .iter_mut()
            .find(|(n, _, src)| *n == name && *src == "query")
        {
            Some((_, values, _)) => values.push(value),
            None => texts.push((name, vec![value], "query")),
        }
    }
    for (name, values, _) in texts {
        let Some(def) = find(&name) else {
            return Err(bad(
                &name,
                format!("{name:?} is not a variable of the operation {}", op.name),
            ));
        };
        let value = from_texts(def, &values)?;
        agree(&mut out, &name, value)?;
    }
    if let Some(body) = inputs.body {
        for (name, value) in body {
            let Some(def) = find(&name) else {
                return Err(bad(
                    &name,
                    format!(
                        "unknown body field {name:?}: the operation {} takes {}",
                        op.name,
                        known()
                    ),
                ));
            };
            check_json(&def.name, &def.ty, &value)?;
            agree(&mut out, &name, value)?;
        }
    }
    for def in &op.variables {
        let given = out.get(&def.name).is_some_and(|v| !v.is_null());
        if def.required && !given {
            return Err(bad(
                &def.name,
                format!(
                    "missing variable {:?} ({}) of the operation {}",
                    def.name, def.declared, op.name
                ),
            ));
        }
    }
    Ok(out)
}

/// Sets `name`, refusing a second, different value.
fn agree(out: &mut Map<String, Json>, name: &str, value: Json) -> Result<(), GatewayError> {
    match out.get(name) {
        Some(existing) if *existing != value => Err(bad(
            name,
            format!("variable {name:?} is given twice with different values"),
        )),
        _ => {
            out.insert(name.to_string(), value);
            Ok(())
        }
    }
}

/// Splits and decodes a query string into (name, value) pairs, in order.
fn parse_query(query: &str, plus_is_space: bool) -> Result<Vec<(String, String)>, GatewayError> {
    let mut out = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            let s = if plus_is_space {
                s.replace('+', " ")
            } else {
                s.to_string()
            };
            crate::rest::template::percent_decode(&s, false)
                .map(|c| c.into_owned())
                .map_err(|e| {
                    GatewayError::bad_request(None, format!("malformed query string: {e}"))
                })
        };
        out.push((decode(k)?, decode(v)?));
    }
    Ok(out)
}

/// Converts the text value(s) of one variable.
fn from_texts(def: &VariableDef, values: &[String]) -> Result<Json, GatewayError> {
    match &def.ty {
        VarType::List { item, .. } => values
            .iter()
            .map(|v| from_text(&def.name, item, v))
            .collect::<Result<Vec<_>, _>>()
            .map(Json::Array),
        ty => match values {
            [one] => from_text(&def.name, ty, one),
            _ => Err(bad(
                &def.name,
                format!(
                    "variable {:?} ({}) takes one value, got {}",
                    def.name,
                    def.declared,
                    values.len()
                ),
            )),
        },
    }
}

/// Converts one text value by type.
fn from_text(name: &str, ty: &VarType, text: &str) -> Result<Json, GatewayError> {
    let malformed = |expected: &str| {
        bad(
            name,
            format!("variable {name:?}: expected {expected}, got {text:?}"),
        )
    };
    match ty {
        VarType::Scalar { scalar, .. } => match scalar {
            Scalar::Int => text
                .parse::<i32>()
                .map(Json::from)
                .map_err(|_| malformed("an Int (32-bit integer)")),
            Scalar::Float => text
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .and_then(serde_json::Number::from_f64)
                .map(Json::Number)
                .ok_or_else(|| malformed("a Float")),
            Scalar::Boolean => match text {
                "true" => Ok(Json::Bool(true)),
                "false" => Ok(Json::Bool(false)),
                _ => Err(malformed("true or false")),
            },
            Scalar::Int64 => text
                .parse::<i64>()
                .map(|_| Json::String(text.to_string()))
                .map_err(|_| malformed("an Int64 (64-bit integer)")),
            Scalar::UInt64 => text
                .parse::<u64>()
                .map(|_| Json::String(text.to_string()))
                .map_err(|_| malformed("a UInt64 (unsigned 64-bit integer)")),
            Scalar::String | Scalar::Id | Scalar::Other(_) => Ok(Json::String(text.to_string())),
        },
        VarType::Enum {
            name: ty, values, ..
        } => {
            if values.iter().any(|v| v == text) {
                Ok(Json::String(text.to_string()))
            } else {
                Err(malformed(&format!("one of {ty}: {}", values.join(", "))))
            }
        }
        VarType::Input { .. } | VarType::List { .. }
            if text.trim_start().starts_with(['{', '[']) =>
        {
            let label = match ty {
                VarType::Input { name, .. } => name.clone(),
                _ => "a list".to_string(),
            };
            let json: Json =
                serde_json::from_str(text).map_err(|_| malformed(&format!("{label} as JSON")))?;
            check_json(name, ty, &json)?;
            Ok(json)
        }
        VarType::Input { name: ty, .. } => Err(malformed(&format!("{ty} as a JSON object"))),
        VarType::List { item, .. } => from_text(name, item, text).map(|v| Json::Array(vec![v])),
    }
}

/// Checks a JSON value against a variable type (objects are left to GraphQL's coercion).
fn check_json(name: &str, ty: &VarType, value: &Json) -> Result<(), GatewayError> {
    let wrong = |expected: &str| {
        bad(
            name,
            format!("variable {name:?}: expected {expected}, got {value}"),
        )
    };
    if value.is_null() {
        return if ty.non_null() {
            Err(wrong("a value (the variable is non-null)"))
        } else {
            Ok(())
        };
    }
    match ty {
        VarType::Scalar { scalar, .. } => {
            let ok = match scalar {
                Scalar::Int => value.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
                Scalar::Float => value.is_number(),
                Scalar::Boolean => value.is_boolean(),
                Scalar::String => value.is_string(),
                Scalar::Id => value.is_string() || value.is_i64() || value.is_u64(),
                Scalar::Int64 => {
                    value.is_i64() || value.as_str().is_some_and(|s| s.parse::<i64>().is_ok())
                }
                Scalar::UInt64 => {
                    value.is_u64() || value.as_str().is_some_and(|s| s.parse::<u64>().is_ok())
                }
                Scalar::Other(_) => true,
            };
            if ok {
                Ok(())
            } else {
                Err(wrong(&scalar_label(scalar)))
            }
        }
        VarType::Enum {
            name: ty, values, ..
        } => match value.as_str() {
            Some(s) if values.iter().any(|v| v == s) => Ok(()),
            _ => Err(wrong(&format!("one of {ty}: {}", values.join(", ")))),
        },
        VarType::Input { name: ty, .. } => {
            if value.is_object() {
                Ok(())
            } else {
                Err(wrong(&format!("a {ty} object")))
            }
        }
        VarType::List { item, .. } => match value {
            Json::Array(items) => items.iter().try_for_each(|v| check_json(name, item, v)),
            single => check_json(name, item, single),
        },
    }
}

fn scalar_label(s: &Scalar) -> String {
    match s {
        Scalar::Int => "an Int (32-bit integer)".into(),
        Scalar::Float => "a Float".into(),
        Scalar::Boolean => "a Boolean".into(),
        Scalar::String => "a String".into(),
        Scalar::Id => "an ID".into(),
        Scalar::Int64 => "an Int64 (integer or string)".into(),
        Scalar::UInt64 => "a UInt64 (integer or string)".into(),
        Scalar::Other(n) => n.clone(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;

    use async_graphql::parser::types::OperationType;
    use serde_json::json;

    use super::*;

    fn var(name: &str, declared: &str, ty: VarType, required: bool) -> VariableDef {
        VariableDef {
            name: name.into(),
            ty,
            declared: declared.into(),
            required,
        }
    }

    fn scalar(s: Scalar, non_null: bool) -> VarType {
        VarType::Scalar {
            scalar: s,
            non_null,
        }
    }

    fn op() -> Operation {
        Operation {
            name: "Op".into(),
            kind: OperationType::Query,
            file: "op.graphql".into(),
            document: Arc::from("query Op { x }"),
            id: String::new(),
            variables: vec![
                var("userId", "Int64!", scalar(Scalar::Int64, true), true),
                var("n", "Int", scalar(Scalar::Int, false), false),
                var("f", "Float", scalar(Scalar::Float, false), false),
                var("b", "Boolean", scalar(Scalar::Boolean, false), false),
                var("s", "String", scalar(Scalar::String, false), false),
                var(
                    "status",
                    "OrderStatus",
                    VarType::Enum {
                        name: "OrderStatus".into(),
                        values: vec!["PAID".into(), "SHIPPED".into()],
                        non_null: false,
                    },
                    false,
                ),
                var(
                    "ids",
                    "[String!]",
                    VarType::List {
                        item: Box::new(scalar(Scalar::String, true)),
                        non_null: false,
                    },
                    false,
                ),
                var(
                    "filter",
                    "UserFilterInput",
                    VarType::Input {
                        name: "UserFilterInput".into(),
                        non_null: false,
                    },
                    false,
                ),
                var("u", "UInt64", scalar(Scalar::UInt64, false), false),
            ],
            root_fields: vec![],
        }
    }

    fn get(path: &[(&str, &str)], query: &str) -> Result<Json, GatewayError> {
        bind(
            &op(),
            Inputs {
                path: path
                    .iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect(),
                query: Some(query),
                ..Default::default()
            },
        )
        .map(Json::Object)
    }

    fn field_of(e: GatewayError) -> (String, String) {
        match e {
            GatewayError::BadRequest {
                field: Some(f),
                message,
            } => (f, message),
            other => panic!("not a field error: {other:?}"),
        }
    }

    #[test]
    fn path_and_query_values_convert_by_type() {
        let v = get(
            &[("userId", "1")],
            "n=5&f=2.5&b=true&s=a%20b+c&status=PAID&ids=p-1&ids=p-2&u=18446744073709551615&filter=%7B%22city%22%3A%22Paris%22%7D",
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"userId": "1", "n": 5, "f": 2.5, "b": true, "s": "a b+c", "status": "PAID",
                   "ids": ["p-1", "p-2"], "u": "18446744073709551615", "filter": {"city": "Paris"}})
        );
        // A single value for a list is a list of one.
        assert_eq!(
            get(&[("userId", "1")], "ids=x").unwrap()["ids"],
            json!(["x"])
        );
    }

    #[test]
    fn malformed_missing_unknown_and_repeated_values_name_the_variable() {
        for (path, query, var, fragment) in [
            (vec![("userId", "abc")], "", "userId", "Int64"),
            (vec![("userId", "1")], "n=1.5", "n", "Int (32-bit"),
            (vec![("userId", "1")], "n=3000000000", "n", "Int"),
            (vec![("userId", "1")], "b=yes", "b", "true or false"),
            (vec![("userId", "1")], "f=NaN", "f", "Float"),
            (
                vec![("userId", "1")],
                "status=LOST",
                "status",
                "PAID, SHIPPED",
            ),
            (vec![("userId", "1")], "u=-1", "u", "UInt64"),
            (
                vec![("userId", "1")],
                "filter=Paris",
                "filter",
                "UserFilterInput",
            ),
            (vec![("userId", "1")], "n=1&n=2", "n", "one value"),
            (
                vec![("userId", "1")],
                "nope=1",
                "nope",
                "unknown query parameter",
            ),
            (vec![], "", "userId", "missing variable"),
            (vec![("userId", "1")], "userId=2", "userId", "twice"),
        ] {
            let (field, message) = field_of(get(&path, query).unwrap_err());
            assert_eq!(field, var, "{query}: {message}");
            assert!(message.contains(fragment), "{query}: {message}");
        }
        // The same value twice is fine.
        get(&[("userId", "1")], "userId=1").unwrap();
    }

    #[test]
    fn ignored_query_params_and_plus_as_space() {
        let ignored = vec!["_".to_string()];
        let v = bind(
            &op(),
            Inputs {
                path: vec![("userId".into(), "1".into())],
                query: Some("_=123&s=a+b"),
                ignored: &ignored,
                plus_is_space: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(Json::Object(v), json!({"userId": "1", "s": "a b"}));
    }

    #[test]
    fn json_bodies_are_checked_by_type() {
        let body = |b: Json| {
            bind(
                &op(),
                Inputs {
                    path: vec![("userId".into(), "7".into())],
                    body: b.as_object().cloned(),
                    ..Default::default()
                },
            )
        };
        let ok = body(
            json!({"n": 3, "ids": ["a"], "filter": {"city": "Paris"}, "u": 5, "status": null}),
        )
        .unwrap();
        assert_eq!(ok["n"], 3);
        assert_eq!(ok["userId"], "7");
        for (b, var) in [
            (json!({"n": "3"}), "n"),
            (json!({"b": 1}), "b"),
            (json!({"ids": [1]}), "ids"),
            (json!({"status": "LOST"}), "status"),
            (json!({"filter": "Paris"}), "filter"),
            (json!({"userId": "8"}), "userId"),
            (json!({"userId": null}), "userId"),
            (json!({"other": 1}), "other"),
        ] {
            let (field, _) = field_of(body(b.clone()).unwrap_err());
            assert_eq!(field, var, "{b}");
        }
    }
}
