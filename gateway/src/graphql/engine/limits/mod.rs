//! Query limits: rejects abusive GraphQL operations (too big, deep, aliased, wide or costly)
//! before anything is executed or any backend is called.
//!
//! [`check`] runs in this order, stopping at the first violation:
//! 1. tokens, counted by a lexer ([`count_tokens`]) *before* parsing, so an oversized document
//!    costs only as much as its first `max_tokens` tokens;
//! 2. parsing (failure: [`codes::GRAPHQL_PARSE_FAILED`]) and operation selection (failure:
//!    [`codes::OPERATION_RESOLUTION_FAILURE`]);
//! 3. one walk of the selected operation, fragments expanded where they are spread, that
//!    measures depth, aliases, root fields and cost ([`QueryStats`]); then the limits are
//!    compared in that order: depth, aliases, root fields, cost.
//!
//! How things are measured:
//! - Selections are counted as written after fragment expansion: two identical fields count
//!   twice (even though the executor would merge them), and `@skip`/`@include` are ignored
//!   (the fields count as if included). This only ever over-estimates.
//! - Depth: root fields are at depth 1, each nested selection set adds 1. `__typename` adds no
//!   depth. Introspection fields (`__schema`, `__type`) and everything below them add no depth
//!   either, so the usual introspection query (its `TypeRef` fragment nests `ofType` 8 deep)
//!   passes the default limit; they still count for aliases, root fields and cost.
//! - Aliases: every field with an alias, including `__typename`, inside fragments as expanded.
//! - Root fields: the selections of the operation's root selection set after expansion
//!   (inline fragments and spreads at the root are replaced by their fields).
//! - Cost: each field costs `1 + call_cost` times the product of the estimated sizes of the
//!   lists enclosing it; a field that returns a list multiplies its children by its size. The
//!   size of a list is read from the first of its [`FieldInfo::size_args`] present on the
//!   field (the gateway's schema gives every field the configured [`QueryLimits::size_args`]):
//!   an integer literal or variable (`0` or a negative number means "the server's
//!   default" and counts as `default_list_size`), or the length of a list literal or list
//!   variable (`ids: [1, 2, 3]` is 3, an empty list is 0); a size arg may be a dotted path into
//!   an input object (`page.size`). Without any, the size is `default_list_size`. A field
//!   unknown to the [`SchemaInfo`] costs 1 and does not multiply its children (validation will
//!   reject it anyway). `__typename` costs 0. All arithmetic saturates.
//! - Fragments are analysed once each (memoised), so fragments that double at each level cost
//!   linear work and their blow-up shows in the cost and alias counts. A fragment cycle is the
//!   violation [`codes::FRAGMENT_CYCLE`]; nesting of fields and fragments beyond
//!   [`MAX_ANALYSIS_NESTING`] is [`codes::QUERY_TOO_DEEP`], whatever `max_depth` is, so the
//!   walk never overflows the stack.

mod analyze;
mod tokens;

#[cfg(test)]
mod tests;

use std::borrow::Cow;

use async_graphql::parser::parse_query;
use async_graphql::parser::types::ExecutableDocument;
use serde::{Deserialize, Serialize};

pub use analyze::MAX_ANALYSIS_NESTING;
pub use tokens::count_tokens;

/// The kinds of [`Violation`]s, one per limit (their codes are GraphQL `extensions.code`).
pub mod codes {
    use crate::error::ErrorKind;

    /// The document has more tokens than `max_tokens`.
    pub const TOO_MANY_TOKENS: ErrorKind = ErrorKind::TooManyTokens;
    /// The operation is nested deeper than `max_depth` (or than the analysis can follow).
    pub const QUERY_TOO_DEEP: ErrorKind = ErrorKind::QueryTooDeep;
    /// The operation has more aliases than `max_aliases`.
    pub const TOO_MANY_ALIASES: ErrorKind = ErrorKind::TooManyAliases;
    /// The operation selects more root fields than `max_root_fields`.
    pub const TOO_MANY_ROOT_FIELDS: ErrorKind = ErrorKind::TooManyRootFields;
    /// The operation's estimated cost is above `max_cost`.
    pub const QUERY_TOO_COSTLY: ErrorKind = ErrorKind::QueryTooCostly;
    /// The operation spreads fragments that spread each other in a cycle.
    pub const FRAGMENT_CYCLE: ErrorKind = ErrorKind::FragmentCycle;
    /// The document is not valid GraphQL syntax (not a limit: the executor would say the same).
    pub const GRAPHQL_PARSE_FAILED: ErrorKind = ErrorKind::GraphqlParseFailed;
    /// The operation to run cannot be chosen: no operation with the given name, or several
    /// operations and no name (not a limit: the executor would say the same).
    pub const OPERATION_RESOLUTION_FAILURE: ErrorKind = ErrorKind::OperationResolutionFailure;
}

/// The limits on one GraphQL operation (YAML: every key optional, with these defaults).
///
/// `0` turns a limit off (and, for `default_list_size`, makes unsized lists count as empty).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryLimits {
    /// Deepest field nesting; root fields are depth 1. Default 12 → `QUERY_TOO_DEEP`.
    pub max_depth: u32,
    /// Fields with an alias. Default 30 → `TOO_MANY_ALIASES`.
    pub max_aliases: u32,
    /// Selections at the root of the operation. Default 20 → `TOO_MANY_ROOT_FIELDS`.
    pub max_root_fields: u32,
    /// Lexical tokens of the whole document, counted before parsing. Default 5000 →
    /// `TOO_MANY_TOKENS`.
    pub max_tokens: u32,
    /// Estimated cost (see the module docs). Default 5000 → `QUERY_TOO_COSTLY`.
    pub max_cost: u32,
    /// Assumed size of a list when no argument gives it. Default 10.
    pub default_list_size: u32,
    /// Arguments that bound the size of a list field, by their GraphQL names (the protobuf JSON
    /// names, lowerCamelCase: a proto `page_size` is `pageSize`), tried in this order; the
    /// first one present on the field gives its size. An integer argument is the size itself
    /// (`first: 50` is 50; `0` or a negative number means "the server's default" and counts as
    /// `default_list_size`; a float is rounded up, a numeric string is read as its number); a
    /// list argument counts its items (`ids: ["a", "b"]` is 2, `[]` is 0); a variable counts
    /// as its value in the request, else its declared default. A dotted name reads a field of
    /// an input-object argument (`page.size`). A null or otherwise unusable value tries the next
    /// name; with none, the size is `default_list_size`. Only fields returning a list are
    /// sized. Default: [`DEFAULT_SIZE_ARGS`] (Relay's `first`/`last`, `limit`, `pageSize`,
    /// `perPage`, `size`, `count`, `take`). Setting it replaces the whole list: repeat the
    /// defaults an API uses beside its own names (e.g. `ids`); `[]` sizes every list as
    /// `default_list_size`.
    pub size_args: Vec<String>,
    /// Values in a request's `variables` (objects, arrays and scalars, at every level),
    /// counted in the POST body before it is parsed. Default 10,000 → 400 `BAD_REQUEST`.
    /// Parsed, each value takes 50-100 bytes whatever its size in JSON (a 4-byte `"a",` becomes
    /// about 95 bytes: 24x), so this bounds what a body's variables can make the gateway hold
    /// (about 1 MB at the default) where the body limit alone would allow 24 MiB.
    pub max_variable_values: u32,
}

/// The default [`QueryLimits::size_args`]: the usual names of a page size in GraphQL and REST
/// APIs (Relay connections' `first`/`last`, offset paging's `limit`, Google's `page_size` as
/// `pageSize`, `per_page` as `perPage`, `size`, `count`, and Prisma-style `take`).
pub const DEFAULT_SIZE_ARGS: &[&str] = &[
    "first", "last", "limit", "pageSize", "perPage", "size", "count", "take",
];

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            max_depth: 12,
            max_aliases: 30,
            max_root_fields: 20,
            max_tokens: 5000,
            max_cost: 5000,
            default_list_size: 10,
            size_args: DEFAULT_SIZE_ARGS.iter().map(|s| (*s).to_owned()).collect(),
            max_variable_values: 10_000,
        }
    }
}

impl QueryLimits {
    /// Checks what serde cannot: every [`size_args`](Self::size_args) entry is a GraphQL name
    /// or a dotted path of names. On error, the key (`size_args[2]`) and why.
    pub fn validate(&self) -> Result<(), (String, String)> {
        for (i, arg) in self.size_args.iter().enumerate() {
            if !arg.split('.').all(is_graphql_name) {
                return Err((
                    format!("size_args[{i}]"),
                    format!(
                        "{arg:?} is not an argument name or a dotted path into an input \
                         object (e.g. pageSize, page.size)"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Whether `s` is a GraphQL name: `[_A-Za-z][_0-9A-Za-z]*`.
fn is_graphql_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// The kind of a GraphQL operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OperationKind {
    /// A `query` (or a bare selection set).
    Query,
    /// A `mutation`.
    Mutation,
    /// A `subscription`.
    Subscription,
}

/// What the analysis needs to know about the schema (implemented by the gateway over its
/// generated schema).
pub trait SchemaInfo {
    /// The field `field` of the object or interface type `type_name`, or `None` if unknown.
    /// Called once per selected field of every checked operation: keep it cheap (borrow from
    /// the schema rather than copy).
    fn field(&self, type_name: &str, field: &str) -> Option<FieldInfo<'_>>;
    /// The name of the root type of `op` (`"Query"`, `"Mutation"`, `"Subscription"`), or
    /// `None` if the schema has no such root.
    fn root_type(&self, op: OperationKind) -> Option<&str>;
}

/// What [`SchemaInfo::field`] tells about one field (borrowed from the schema where it can).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldInfo<'a> {
    /// The named type the field returns, without list or non-null wrappers.
    pub type_name: &'a str,
    /// Whether the field returns a list (its children are then multiplied by its size).
    pub is_list: bool,
    /// Extra cost of the field itself: 0 for a plain data field, more for a field that makes a
    /// backend call. The field costs `1 + call_cost`.
    pub call_cost: u32,
    /// Arguments that bound the size of the returned list, tried in order: integer arguments
    /// (`"pageSize"`, `"first"`, `"limit"`), list arguments whose length is the size
    /// (`"ids"`), or dotted paths into input objects (`"page.size"`); read as
    /// [`QueryLimits::size_args`] describes.
    pub size_args: Cow<'a, [String]>,
}

/// A limit that an operation breaks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Violation {
    /// One of [`codes`], e.g. [`codes::QUERY_TOO_DEEP`].
    pub kind: crate::error::ErrorKind,
    /// Names the limit and the measured value: "query depth 14 exceeds the limit of 12".
    pub message: String,
}

impl Violation {
    pub(crate) fn new(kind: crate::error::ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// What was measured on an accepted operation (useful for logs and metrics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct QueryStats {
    /// Lexical tokens of the whole document (0 from [`check_document`], which does not lex).
    pub tokens: u32,
    /// Deepest field nesting.
    pub depth: u32,
    /// Fields with an alias.
    pub aliases: u32,
    /// Selections at the root.
    pub root_fields: u32,
    /// Estimated cost.
    pub cost: u32,
    /// Whether it reads the schema (`__schema` or `__type`; `__typename` does not count).
    pub introspection: bool,
    /// Whether a list size was read from a variable: the figures hold for these variables
    /// only (else for every request of the same document and operation).
    pub variables_read: bool,
}

/// Checks a GraphQL request against `limits`: tokens first, then parsing, then the analysis of
/// the selected operation (`operation_name`, or the only operation of the document).
///
/// `variables` is the request's `variables` object (`Null` if absent); it is read for list
/// sizes given as variables. On success, returns what was measured.
///
/// # Errors
/// The first [`Violation`] found. A syntax error is [`codes::GRAPHQL_PARSE_FAILED`] and an
/// operation that cannot be chosen is [`codes::OPERATION_RESOLUTION_FAILURE`]; these are not
/// limits, and a caller may as well let the executor report them.
pub fn check(
    query: &str,
    operation_name: Option<&str>,
    variables: &serde_json::Value,
    limits: &QueryLimits,
    schema: &dyn SchemaInfo,
) -> Result<QueryStats, Violation> {
    let tokens = if limits.max_tokens == 0 {
        count_tokens(query, u32::MAX)
    } else {
        let tokens = count_tokens(query, limits.max_tokens);
        if tokens > limits.max_tokens {
            return Err(Violation::new(
                codes::TOO_MANY_TOKENS,
                format!(
                    "query has at least {tokens} tokens, more than the limit of {}",
                    limits.max_tokens
                ),
            ));
        }
        tokens
    };
    let document = parse_query(query).map_err(|e| {
        let at = e
            .positions()
            .next()
            .map(|p| format!(" at {p}"))
            .unwrap_or_default();
        Violation::new(
            codes::GRAPHQL_PARSE_FAILED,
            format!("query does not parse{at}: {e}"),
        )
    })?;
    let stats = check_document(&document, operation_name, variables, limits, schema)?;
    Ok(QueryStats { tokens, ..stats })
}

/// Checks an already parsed document against every limit but `max_tokens` (for a caller that
/// parses once and hands the document to the executor with `Request::set_parsed_query`).
/// The returned `tokens` is 0.
///
/// # Errors
/// As [`check`], without the token and parse violations.
pub fn check_document(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: &serde_json::Value,
    limits: &QueryLimits,
    schema: &dyn SchemaInfo,
) -> Result<QueryStats, Violation> {
    let stats = analyze::analyze(document, operation_name, variables, limits, schema)?;
    let over = |limit: u32, value: u32| limit != 0 && value > limit;
    if over(limits.max_depth, stats.depth) {
        return Err(Violation::new(
            codes::QUERY_TOO_DEEP,
            format!(
                "query depth {} exceeds the limit of {}",
                stats.depth, limits.max_depth
            ),
        ));
    }
    if over(limits.max_aliases, stats.aliases) {
        return Err(Violation::new(
            codes::TOO_MANY_ALIASES,
            format!(
                "query has {} aliases, more than the limit of {}",
                stats.aliases, limits.max_aliases
            ),
        ));
    }
    if over(limits.max_root_fields, stats.root_fields) {
        return Err(Violation::new(
            codes::TOO_MANY_ROOT_FIELDS,
            format!(
                "query selects {} root fields, more than the limit of {}",
                stats.root_fields, limits.max_root_fields
            ),
        ));
    }
    if over(limits.max_cost, stats.cost) {
        return Err(Violation::new(
            codes::QUERY_TOO_COSTLY,
            format!(
                "query cost {} exceeds the limit of {}",
                stats.cost, limits.max_cost
            ),
        ));
    }
    Ok(stats)
}
