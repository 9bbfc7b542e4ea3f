//! Validating a document against the schema with async-graphql's own rules, without running it.
//!
//! async-graphql 7.2.1 does not export its validator, so validation goes through
//! `Schema::execute` with a [`StopBeforeExecution`] marker in the request data: the
//! [`ValidationSignal`](crate::graphql::transport::ValidationSignal) extension (registered on every generated schema) ends such a request
//! after parsing and validation, before any resolver runs. Requests without the marker are
//! not affected.

use async_graphql::dynamic::Schema;
use async_graphql::{Pos, ServerError};

use crate::graphql::transport::StopBeforeExecution;

/// One validation error: the message and the first position it names in `document`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    /// async-graphql's message, e.g. `Unknown field "nope" on type "User".`
    pub message: String,
    /// Where, in the validated text (line and column from 1).
    pub pos: Option<Pos>,
}

/// Validates operation `name` of `document` against `schema`; the errors found, in order.
pub async fn validate(schema: &Schema, document: &str, name: &str) -> Vec<Invalid> {
    let request = async_graphql::Request::new(document)
        .operation_name(name)
        .data(StopBeforeExecution);
    let response = schema.execute(request).await;
    response.errors.into_iter().map(invalid).collect()
}

fn invalid(e: ServerError) -> Invalid {
    Invalid {
        pos: e.locations.first().copied(),
        message: e.message,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::graphql::transport::ValidationSignal;
    use async_graphql::dynamic::{Field, FieldFuture, Object, TypeRef};

    fn schema() -> Schema {
        let user = Object::new("User")
            .field(Field::new("id", TypeRef::named_nn(TypeRef::INT), |_| {
                FieldFuture::new(async { Ok(Some(async_graphql::Value::from(1))) })
            }))
            .field(Field::new(
                "name",
                TypeRef::named_nn(TypeRef::STRING),
                |_| FieldFuture::new(async { Ok(Some(async_graphql::Value::from("x"))) }),
            ));
        let query = Object::new("Query").field(
            Field::new("user", TypeRef::named("User"), |_| {
                FieldFuture::new(async {
                    panic!("validate-only requests never resolve fields");
                    #[allow(unreachable_code)]
                    Ok(None::<async_graphql::Value>)
                })
            })
            .argument(async_graphql::dynamic::InputValue::new(
                "id",
                TypeRef::named_nn(TypeRef::INT),
            )),
        );
        Schema::build("Query", None, None)
            .register(user)
            .register(query)
            .extension(ValidationSignal)
            .finish()
            .unwrap()
    }

    #[tokio::test]
    async fn a_valid_operation_has_no_errors_and_runs_nothing() {
        let s = schema();
        let errors = validate(&s, "query Q($id: Int!) { user(id: $id) { id name } }", "Q").await;
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[tokio::test]
    async fn unknown_fields_and_arguments_are_reported_with_positions() {
        let s = schema();
        let errors = validate(&s, "query Q {\n  user(id: 1) {\n    nope\n  }\n}", "Q").await;
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].message.contains("nope"), "{errors:?}");
        assert_eq!(errors[0].pos, Some(Pos { line: 3, column: 5 }));
        let errors = validate(&s, "query Q { user { id } }", "Q").await;
        assert!(errors[0].message.contains("id"), "{errors:?}");
        let errors = validate(&s, "query Q { user(id: $x) { id } }", "Q").await;
        assert!(!errors.is_empty());
    }

    #[tokio::test]
    async fn requests_without_the_marker_execute() {
        let s = Schema::build("Query", None, None)
            .register(Object::new("Query").field(Field::new(
                "n",
                TypeRef::named_nn(TypeRef::INT),
                |_| FieldFuture::new(async { Ok(Some(async_graphql::Value::from(7))) }),
            )))
            .extension(ValidationSignal)
            .finish()
            .unwrap();
        let r = s.execute("{ n }").await;
        assert_eq!(r.data.into_json().unwrap(), serde_json::json!({"n": 7}));
    }
}
