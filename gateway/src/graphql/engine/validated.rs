//! Validating a document once per schema, not once per request.
//!
//! async-graphql validates every request from scratch, and for a small query validation costs
//! more than the backend call. Of its rules, only one reads the request's variables: the check
//! that an argument written with variables (`user(id: $id)`, `@include(if: $x)`) gets a value
//! of its type. So a document that passed validation against a schema passes it again, with
//! other variables, exactly when those variables pass that check — which [`VariableArgs`]
//! makes, over the arguments it collected from the document once.
//!
//! The check here is the rule's own test (async-graphql's `is_valid_input_value`, over the
//! same registry), and it only ever lets a request skip validation: a request whose variables
//! it doubts is validated in full, so its errors are async-graphql's, word for word.

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Selection, SelectionSet,
};
use async_graphql::registry::{MetaType, MetaTypeName, Registry};
use async_graphql::{Positioned, Value as Gql, Variables};
use async_graphql_value::Value as InputValue;

/// Beyond this nesting (fields and fragments) a document is always validated in full.
const MAX_DEPTH: usize = 64;

/// An argument written with variables, and its declared type.
#[derive(Debug)]
struct VariableArg {
    /// The argument's type (`Int64!`, `[String!]`...).
    ty: String,
    /// The value as written.
    value: InputValue,
}

/// Every argument of a document that reads variables, each with its declared type.
#[derive(Debug, Default)]
pub struct VariableArgs {
    args: Vec<VariableArg>,
}

impl VariableArgs {
    /// Collects the arguments of `doc` (every operation and fragment) that read variables;
    /// `None` when some field or type is not in `registry` (the document is not valid, or
    /// not one this module understands).
    pub fn collect(registry: &Registry, doc: &ExecutableDocument) -> Option<VariableArgs> {
        let mut out = VariableArgs::default();
        for fragment in doc.fragments.values() {
            let on = fragment.node.type_condition.node.on.node.as_str();
            let ty = registry.types.get(on)?;
            out.set(registry, ty, &fragment.node.selection_set.node, 0)?;
        }
        let ops: Vec<_> = match &doc.operations {
            DocumentOperations::Single(op) => vec![op],
            DocumentOperations::Multiple(ops) => ops.values().collect(),
        };
        for op in ops {
            if !op.node.directives.is_empty() {
                return None;
            }
            let root = match op.node.ty {
                async_graphql::parser::types::OperationType::Query => &registry.query_type,
                async_graphql::parser::types::OperationType::Mutation => {
                    registry.mutation_type.as_ref()?
                }
                async_graphql::parser::types::OperationType::Subscription => {
                    registry.subscription_type.as_ref()?
                }
            };
            let ty = registry.types.get(root)?;
            out.set(registry, ty, &op.node.selection_set.node, 0)?;
        }
        Some(out)
    }

    fn set(
        &mut self,
        registry: &Registry,
        parent: &MetaType,
        set: &SelectionSet,
        depth: usize,
    ) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => {
                    self.directives(registry, &f.node.directives)?;
                    let name = f.node.name.node.as_str();
                    if name == "__typename" {
                        continue;
                    }
                    let field = parent.field_by_name(name)?;
                    for (arg, value) in &f.node.arguments {
                        if has_variables(&value.node) {
                            let def = field.args.get(arg.node.as_str())?;
                            self.args.push(VariableArg {
                                ty: def.ty.clone(),
                                value: value.node.clone(),
                            });
                        }
                    }
                    if !f.node.selection_set.node.items.is_empty() {
                        let inner = MetaTypeName::concrete_typename(&field.ty);
                        let ty = registry.types.get(inner)?;
                        self.set(registry, ty, &f.node.selection_set.node, depth + 1)?;
                    }
                }
                Selection::FragmentSpread(spread) => {
                    self.directives(registry, &spread.node.directives)?;
                }
                Selection::InlineFragment(inline) => {
                    self.directives(registry, &inline.node.directives)?;
                    let ty = match &inline.node.type_condition {
                        Some(c) => registry.types.get(c.node.on.node.as_str())?,
                        None => parent,
                    };
                    self.set(registry, ty, &inline.node.selection_set.node, depth + 1)?;
                }
            }
        }
        Some(())
    }

    fn directives(
        &mut self,
        registry: &Registry,
        directives: &[Positioned<async_graphql::parser::types::Directive>],
    ) -> Option<()> {
        for d in directives {
            let def = registry.directives.get(d.node.name.node.as_str())?;
            for (name, value) in &d.node.arguments {
                if has_variables(&value.node) {
                    let arg = def.args.get(name.node.as_str())?;
                    self.args.push(VariableArg {
                        ty: arg.ty.clone(),
                        value: value.node.clone(),
                    });
                }
            }
        }
        Some(())
    }

    /// Whether every argument written with variables surely gets a valid value from
    /// `variables` (as async-graphql's rule sees it: an argument whose variables are not
    /// all given is not checked by the rule). `false` means: validate in full.
    pub fn accept(&self, registry: &Registry, variables: &Variables) -> bool {
        self.args.iter().all(|a| {
            match a
                .value
                .clone()
                .into_const_with(|name| variables.get(&name).cloned().ok_or(()))
            {
                // The rule leaves it to execution, as this does.
                Err(()) => true,
                Ok(value) => valid(registry, &a.ty, &value, 0),
            }
        })
    }

    /// How many arguments read variables.
    pub fn len(&self) -> usize {
        self.args.len()
    }

    /// Whether no argument reads a variable.
    pub fn is_empty(&self) -> bool {
        self.args.is_empty()
    }
}

/// Whether an input value as written reads a variable.
fn has_variables(v: &InputValue) -> bool {
    match v {
        InputValue::Variable(_) => true,
        InputValue::List(items) => items.iter().any(has_variables),
        InputValue::Object(fields) => fields.values().any(has_variables),
        _ => false,
    }
}

/// async-graphql's `is_valid_input_value`, as a yes/no over the same registry; anything it
/// does not recognise is a no (validate in full).
fn valid(registry: &Registry, ty: &str, value: &Gql, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    match MetaTypeName::create(ty) {
        MetaTypeName::NonNull(inner) => {
            !matches!(value, Gql::Null) && valid(registry, inner, value, depth + 1)
        }
        MetaTypeName::List(inner) => match value {
            Gql::List(items) => items.iter().all(|i| valid(registry, inner, i, depth + 1)),
            Gql::Null => true,
            other => valid(registry, inner, other, depth + 1),
        },
        MetaTypeName::Named(name) => {
            if matches!(value, Gql::Null) {
                return true;
            }
            match registry.types.get(name) {
                Some(MetaType::Scalar {
                    is_valid: Some(f), ..
                }) => f(value),
                Some(MetaType::Scalar { is_valid: None, .. }) => true,
                Some(MetaType::Enum { enum_values, .. }) => match value {
                    Gql::Enum(n) => enum_values.contains_key(n.as_str()),
                    Gql::String(s) => enum_values.contains_key(s.as_str()),
                    _ => false,
                },
                Some(MetaType::InputObject {
                    input_fields,
                    oneof,
                    ..
                }) => match value {
                    Gql::Object(values) => {
                        if *oneof
                            && (values.len() != 1
                                || values.values().next().is_none_or(|v| *v == Gql::Null))
                        {
                            return false;
                        }
                        let known = values.keys().all(|k| input_fields.contains_key(k.as_str()));
                        known
                            && input_fields
                                .values()
                                .all(|f| match values.get(f.name.as_str()) {
                                    Some(v) => valid(registry, &f.ty, v, depth + 1),
                                    None => {
                                        !MetaTypeName::create(&f.ty).is_non_null()
                                            || f.default_value.is_some()
                                    }
                                })
                    }
                    // The rule accepts any other value for an input object.
                    _ => true,
                },
                _ => false,
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::graphql::bff::operations::tests::demo_schema;
    use crate::graphql::transport::StopBeforeExecution;
    use serde_json::json;

    const DOC: &str = r#"
query Q($id: Int64!, $tags: [String!], $filter: UserFilterInput, $size: Int, $on: Boolean!, $ids: [String!]) {
  user(id: $id) { id displayName @include(if: $on) }
  users(pageSize: $size, filter: $filter) { users { ...F @skip(if: $on) } }
  batchGetProducts(ids: $ids) { products { id } }
  literal: users(filter: { tags: $tags, role: USER_ROLE_ADMIN }) { nextPageToken }
}
fragment F on User { id }"#;

    /// async-graphql's verdict: does the request pass validation?
    async fn validates(schema: &async_graphql::dynamic::Schema, vars: &serde_json::Value) -> bool {
        let req = async_graphql::Request::new(DOC)
            .variables(Variables::from_json(vars.clone()))
            .data(StopBeforeExecution);
        schema.execute(req).await.errors.is_empty()
    }

    #[tokio::test]
    async fn accepts_exactly_the_variables_validation_accepts() {
        let g = demo_schema();
        let registry = g.schema.registry();
        let doc = async_graphql::parser::parse_query(DOC).unwrap();
        let args = VariableArgs::collect(registry, &doc).expect("collected");
        assert_eq!(args.len(), 7, "{args:?}");
        let base = json!({"id": "1", "on": true});
        let cases = [
            json!({}),
            json!({"id": 1}),
            json!({"id": "x"}),
            json!({"id": null}),
            json!({"id": 1.5}),
            json!({"on": "yes"}),
            json!({"on": null}),
            json!({"tags": ["a", "b"]}),
            json!({"tags": "a"}),
            json!({"tags": [1]}),
            json!({"tags": [null]}),
            json!({"tags": null}),
            json!({"size": 10}),
            json!({"size": "10"}),
            json!({"size": 3_000_000_000_u64}),
            json!({"filter": {"role": "USER_ROLE_ADMIN"}}),
            json!({"filter": {"role": "NOPE"}}),
            json!({"filter": {"city": "Lisbon", "tags": ["x"]}}),
            json!({"filter": {"town": "Lisbon"}}),
            json!({"filter": {"city": 3}}),
            json!({"filter": "Lisbon"}),
            json!({"ids": ["p-1", "p-2"]}),
            json!({"ids": [["p-1"]]}),
            json!({"unused": 1}),
        ];
        let mut refused = 0;
        for case in cases {
            let mut vars = base.clone();
            for (k, v) in case.as_object().unwrap() {
                vars[k] = v.clone();
            }
            let ours = args.accept(registry, &Variables::from_json(vars.clone()));
            let theirs = validates(&g.schema, &vars).await;
            // Skipping is only allowed when validation would pass; the rule is replicated,
            // so the two agree, but a doubtful "no" would be safe.
            assert!(!ours || theirs, "accepted what validation refuses: {vars}");
            assert_eq!(ours, theirs, "{vars}");
            refused += usize::from(!theirs);
        }
        assert!(
            (8..20).contains(&refused),
            "both verdicts are exercised: {refused}"
        );
    }

    #[test]
    fn documents_outside_the_schema_are_not_collected() {
        let g = demo_schema();
        let doc = async_graphql::parser::parse_query("{ nope(id: $x) { id } }").unwrap();
        assert!(VariableArgs::collect(g.schema.registry(), &doc).is_none());
        let doc = async_graphql::parser::parse_query("{ user(id: \"1\") { id } }").unwrap();
        assert!(
            VariableArgs::collect(g.schema.registry(), &doc)
                .unwrap()
                .is_empty()
        );
    }
}
