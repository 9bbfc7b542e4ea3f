//! One walk of the selected operation that measures depth, aliases, root fields and cost,
//! expanding fragments once each (memoised) and refusing fragment cycles.

use std::collections::HashMap;

use async_graphql::Value as ConstValue;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Field, OperationDefinition, OperationType, Selection,
    SelectionSet,
};

use super::{FieldInfo, OperationKind, QueryLimits, QueryStats, SchemaInfo, Violation, codes};

/// How deep fields, inline fragments and fragment spreads may nest before the analysis gives
/// up with `QUERY_TOO_DEEP`, whatever `max_depth` says; this bounds the recursion (the parser
/// already stops one definition at 64 levels, but fragments can chain).
pub const MAX_ANALYSIS_NESTING: u32 = 256;

/// What a selection set adds up to, at a list multiplier of 1.
#[derive(Clone, Copy, Debug, Default)]
struct Summary {
    /// Deepest field nesting below (a set of leaf fields is 1; introspection adds nothing).
    depth: u32,
    /// Fields with an alias.
    aliases: u64,
    /// Selections of this set after expansion (the root-field count at the root).
    fields: u64,
    /// Cost, to be multiplied by the sizes of the enclosing lists.
    cost: u64,
    /// `__schema` or `__type` is selected.
    introspects: bool,
}

impl Summary {
    /// Adds a nested summary that shares this set's level (a fragment or inline fragment).
    fn merge(&mut self, other: &Summary, introspection: bool) {
        if !introspection {
            self.depth = self.depth.max(other.depth);
        }
        self.aliases = self.aliases.saturating_add(other.aliases);
        self.fields = self.fields.saturating_add(other.fields);
        self.cost = self.cost.saturating_add(other.cost);
        self.introspects |= other.introspects;
    }
}

/// Selects the operation and measures it.
pub(super) fn analyze(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: &serde_json::Value,
    limits: &QueryLimits,
    schema: &dyn SchemaInfo,
) -> Result<QueryStats, Violation> {
    let operation = select_operation(document, operation_name)?;
    let kind = match operation.ty {
        OperationType::Query => OperationKind::Query,
        OperationType::Mutation => OperationKind::Mutation,
        OperationType::Subscription => OperationKind::Subscription,
    };
    let mut walker = Walker {
        document,
        operation,
        variables,
        default_list_size: u64::from(limits.default_list_size),
        schema,
        memo: HashMap::new(),
        in_progress: Vec::new(),
        variables_read: std::cell::Cell::new(false),
    };
    let root = schema.root_type(kind).map(str::to_owned);
    let summary = walker.selection_set(&operation.selection_set.node, root.as_deref(), false, 0)?;
    let clamp = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    Ok(QueryStats {
        tokens: 0,
        depth: summary.depth,
        aliases: clamp(summary.aliases),
        root_fields: clamp(summary.fields),
        cost: clamp(summary.cost),
        introspection: summary.introspects,
        variables_read: walker.variables_read.get(),
    })
}

/// Picks the operation the executor would run: the named one, or the only one.
fn select_operation<'d>(
    document: &'d ExecutableDocument,
    operation_name: Option<&str>,
) -> Result<&'d OperationDefinition, Violation> {
    let failure = |m: String| Violation::new(codes::OPERATION_RESOLUTION_FAILURE, m);
    match (&document.operations, operation_name) {
        (DocumentOperations::Single(op), None) => Ok(&op.node),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops
            .values()
            .next()
            .map(|op| &op.node)
            .ok_or_else(|| failure("the document has no operation".to_owned())),
        (DocumentOperations::Multiple(_), None) => Err(failure(
            "the document has several operations and the request names none".to_owned(),
        )),
        (DocumentOperations::Single(_), Some(name)) => Err(failure(format!(
            "unknown operation named \"{name}\" (the document's only operation is anonymous)"
        ))),
        (DocumentOperations::Multiple(ops), Some(name)) => ops
            .get(name)
            .map(|op| &op.node)
            .ok_or_else(|| failure(format!("unknown operation named \"{name}\""))),
    }
}

/// The state of one analysis.
struct Walker<'a> {
    document: &'a ExecutableDocument,
    operation: &'a OperationDefinition,
    variables: &'a serde_json::Value,
    default_list_size: u64,
    schema: &'a dyn SchemaInfo,
    /// Summaries of the named fragments already analysed (their type is their condition, so
    /// the name alone is the key).
    memo: HashMap<&'a str, Summary>,
    /// The named fragments being expanded, outermost first (to detect and name cycles).
    in_progress: Vec<&'a str>,
    /// Whether a variable was read.
    variables_read: std::cell::Cell<bool>,
}

impl<'a> Walker<'a> {
    /// Measures a selection set whose parent type is `type_name` (`None` when unknown).
    fn selection_set(
        &mut self,
        set: &'a SelectionSet,
        type_name: Option<&str>,
        introspection: bool,
        nesting: u32,
    ) -> Result<Summary, Violation> {
        if nesting >= MAX_ANALYSIS_NESTING {
            return Err(Violation::new(
                codes::QUERY_TOO_DEEP,
                format!(
                    "query nesting of fields and fragments exceeds {MAX_ANALYSIS_NESTING} levels"
                ),
            ));
        }
        let mut total = Summary::default();
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let name = field.name.node.as_str();
                    total.fields = total.fields.saturating_add(1);
                    if field.alias.is_some() {
                        total.aliases = total.aliases.saturating_add(1);
                    }
                    if name == "__typename" {
                        continue;
                    }
                    let info = type_name.and_then(|t| self.schema.field(t, name));
                    let inner_introspection = introspection || name.starts_with("__");
                    let child = self.selection_set(
                        &field.selection_set.node,
                        info.as_ref().map(|i| i.type_name),
                        inner_introspection,
                        nesting + 1,
                    )?;
                    let (own, multiplier) = match &info {
                        Some(info) => (
                            1 + u64::from(info.call_cost),
                            if info.is_list {
                                self.list_size(info, field)
                            } else {
                                1
                            },
                        ),
                        None => (1, 1),
                    };
                    total.cost = total
                        .cost
                        .saturating_add(own)
                        .saturating_add(child.cost.saturating_mul(multiplier));
                    total.aliases = total.aliases.saturating_add(child.aliases);
                    total.introspects |=
                        child.introspects || name == "__schema" || name == "__type";
                    if !inner_introspection {
                        total.depth = total.depth.max(child.depth.saturating_add(1));
                    }
                }
                Selection::InlineFragment(inline) => {
                    let inline = &inline.node;
                    let inner_type = inline
                        .type_condition
                        .as_ref()
                        .map(|c| c.node.on.node.as_str())
                        .or(type_name);
                    let inner = self.selection_set(
                        &inline.selection_set.node,
                        inner_type,
                        introspection,
                        nesting + 1,
                    )?;
                    total.merge(&inner, introspection);
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    if let Some(inner) = self.fragment(name, nesting)? {
                        total.merge(&inner, introspection);
                    }
                }
            }
        }
        Ok(total)
    }

    /// Measures the named fragment once; `None` if the document does not define it (the
    /// validation will say so).
    fn fragment(&mut self, name: &str, nesting: u32) -> Result<Option<Summary>, Violation> {
        let Some((key, definition)) = self.document.fragments.get_key_value(name) else {
            return Ok(None);
        };
        let key = key.as_str();
        if let Some(summary) = self.memo.get(key) {
            return Ok(Some(*summary));
        }
        if let Some(start) = self.in_progress.iter().position(|f| *f == key) {
            let mut cycle: Vec<&str> = self.in_progress[start..].to_vec();
            cycle.push(key);
            return Err(Violation::new(
                codes::FRAGMENT_CYCLE,
                format!(
                    "fragments spread each other in a cycle: {}",
                    cycle.join(" -> ")
                ),
            ));
        }
        self.in_progress.push(key);
        let definition = &definition.node;
        let result = self.selection_set(
            &definition.selection_set.node,
            Some(definition.type_condition.node.on.node.as_str()),
            false,
            nesting + 1,
        );
        self.in_progress.pop();
        let summary = result?;
        self.memo.insert(key, summary);
        Ok(Some(summary))
    }

    /// The estimated size of a list field, from the first of its size args that is present.
    fn list_size(&self, info: &FieldInfo, field: &Field) -> u64 {
        for size_arg in info.size_args.iter() {
            let mut path = size_arg.split('.');
            let Some(first) = path.next() else { continue };
            let Some(value) = field.get_argument(first) else {
                continue;
            };
            // Substitute the variables (request value, else the declared default, else null).
            let Ok(value) = value.node.clone().into_const_with(|name| {
                Ok::<_, std::convert::Infallible>(self.variable(name.as_str()))
            });
            let rest: Vec<&str> = path.collect();
            if let Some(size) = value_size(&value, &rest, self.default_list_size) {
                return size;
            }
        }
        self.default_list_size
    }

    /// The value of a variable: from the request, else its declared default, else null.
    fn variable(&self, name: &str) -> ConstValue {
        self.variables_read.set(true);
        if let Some(json) = self.variables.get(name).filter(|j| !j.is_null()) {
            return ConstValue::from_json(json.clone()).unwrap_or(ConstValue::Null);
        }
        self.operation
            .variable_definitions
            .iter()
            .find(|d| d.node.name.node.as_str() == name)
            .and_then(|d| d.node.default_value.as_ref())
            .map_or(ConstValue::Null, |d| d.node.clone())
    }
}

/// The size an argument value gives, following `path` into input objects; `None` if it gives
/// none (null, wrong type, missing path).
fn value_size(value: &ConstValue, path: &[&str], default: u64) -> Option<u64> {
    match (value, path.split_first()) {
        (ConstValue::Object(map), Some((head, rest))) => value_size(map.get(*head)?, rest, default),
        (_, Some(_)) => None,
        (ConstValue::List(items), None) => Some(items.len() as u64),
        (ConstValue::Number(n), None) => number_size(n, default),
        (ConstValue::String(s), None) => s.parse::<u64>().ok().map(|n| or_default(n, default)),
        _ => None,
    }
}

/// A numeric size: positive integers as is, floats rounded up, `0` and negatives mean the
/// server's default.
fn number_size(n: &serde_json::Number, default: u64) -> Option<u64> {
    if let Some(u) = n.as_u64() {
        return Some(or_default(u, default));
    }
    if n.as_i64().is_some() {
        return Some(default);
    }
    let f = n.as_f64()?;
    if f.is_finite() && f > 0.0 {
        // Saturating float-to-int conversion; the value is positive and finite.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Some(f.ceil() as u64)
    } else {
        Some(default)
    }
}

/// `0` means "the server's default page size".
fn or_default(n: u64, default: u64) -> u64 {
    if n == 0 { default } else { n }
}
