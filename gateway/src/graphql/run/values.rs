//! The GraphQL values of protobuf leaves (scalars, enums, well-known types shown as scalars,
//! lists of them) and of projected objects: one conversion for the compiled run and the wire
//! projection, so both answer the same.

use async_graphql::indexmap::IndexMap;
use async_graphql::{Error, Name, Value as Gql};
use prost_reflect::Value;

use crate::graphql::engine::schema::output::{scalar, wkt};
use crate::graphql::engine::schema::shape::Shape;

/// An object's value from its fields: null when none was written.
pub(super) fn object_value(map: IndexMap<Name, Gql>) -> Gql {
    if map.is_empty() {
        Gql::Null
    } else {
        Gql::Object(map)
    }
}

/// A leaf value (scalar, enum, well-known type, or a list of them).
pub(super) fn leaf(v: &Value, shape: &Shape) -> Result<Gql, Error> {
    match shape {
        Shape::Scalar(kind) => scalar(v, kind),
        Shape::Enum(e) => {
            let n = v.as_enum_number().unwrap_or_default();
            match e.get_value(n) {
                Some(ev) => Ok(Gql::Enum(Name::new(ev.name()))),
                None => Err(Error::new(format!(
                    "the backend sent {n}, which is not a value of enum {}",
                    e.full_name()
                ))),
            }
        }
        Shape::Wkt(w) => match v.as_message() {
            Some(m) => wkt(m, *w),
            None => Ok(Gql::Null),
        },
        Shape::List(inner) => match v {
            Value::List(items) => items
                .iter()
                .map(|i| leaf(i, inner))
                .collect::<Result<Vec<_>, _>>()
                .map(Gql::List),
            _ => Ok(Gql::List(Vec::new())),
        },
        Shape::Object(_) | Shape::Map { .. } => {
            Err(Error::new("internal: expected a scalar value"))
        }
    }
}
