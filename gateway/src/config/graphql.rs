//! Configuration of the GraphQL door: endpoint, per-method overrides and cross-service links.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The `graphql` section.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GraphqlConfig {
    /// Serve GraphQL at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Path of the endpoint (POST, GET, WebSocket, SSE).
    #[serde(default = "d_path")]
    pub path: String,
    /// Serve the GraphiQL page to browsers at the endpoint.
    #[serde(default = "yes")]
    pub graphiql: bool,
    /// Answer introspection queries (`__schema`, `__type`).
    #[serde(default = "yes")]
    pub introspection: bool,
    /// Limits on every operation, checked before any backend is called.
    #[serde(default)]
    pub limits: crate::graphql::engine::limits::QueryLimits,
    /// Per-method overrides, keyed by `package.Service.Method`.
    #[serde(default)]
    pub methods: BTreeMap<String, GraphqlMethodConfig>,
    /// Fields added to message types, resolved by another call.
    #[serde(default)]
    pub links: Vec<LinkConfig>,
    /// How queries run: `compiled` (the default: a plan per document, and a document
    /// validated once per schema; see the README) or `interpreted` (async-graphql validates
    /// and executes every request, a resolver per field).
    #[serde(default)]
    pub execution: Execution,
}

/// How GraphQL queries are executed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Execution {
    /// Through a plan compiled once per document; operations a plan cannot express run
    /// interpreted.
    #[default]
    Compiled,
    /// Every operation through async-graphql's executor.
    Interpreted,
}

fn yes() -> bool {
    true
}

fn d_path() -> String {
    "/graphql".into()
}

impl Default for GraphqlConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            path: d_path(),
            graphiql: true,
            introspection: true,
            limits: Default::default(),
            methods: BTreeMap::new(),
            links: Vec::new(),
            execution: Execution::default(),
        }
    }
}

/// Where a method appears in the schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationKind {
    /// A field of `Query`.
    Query,
    /// A field of `Mutation`.
    Mutation,
    /// Not exposed in GraphQL.
    Hidden,
}

/// Overrides for one method.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GraphqlMethodConfig {
    /// Name of the root field (default: derived from the method name, e.g. `GetUser` -> `user`).
    #[serde(default)]
    pub field: Option<String>,
    /// Query, mutation or hidden (default: query when the method has no side effects or a GET
    /// rule, else mutation). Server-streaming methods are always subscriptions.
    #[serde(default)]
    pub kind: Option<OperationKind>,
}

/// A field added to a message type, resolved by calling another method with arguments taken
/// from the parent message: e.g. `OrderItem.product` by `CatalogService.GetProduct(id:
/// parent.product_id)`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LinkConfig {
    /// The message the field is added to, fully qualified (`demo.v1.OrderItem`).
    pub on: String,
    /// The new field's name (`product`).
    pub field: String,
    /// The method that resolves it (`demo.v1.CatalogService.GetProduct`).
    pub call: String,
    /// Request fields of the call, each taken from a field of the parent (`{id: product_id}`).
    pub args: BTreeMap<String, String>,
    /// A field of the call's response to return instead of the whole response (`orders`).
    #[serde(default)]
    pub result: Option<String>,
    /// A batch method that serves many parents with one call (one per round of resolution).
    #[serde(default)]
    pub batch: Option<BatchConfig>,
    /// Description of the field in the schema.
    #[serde(default)]
    pub description: Option<String>,
}

/// How a link is batched: every key of one response goes out in one call per `max_batch`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// The batch method (`demo.v1.CatalogService.BatchGetProducts`).
    pub call: String,
    /// Its repeated request field receiving the keys (`ids`).
    pub keys: String,
    /// Its repeated response field holding the results (`products`).
    pub results: String,
    /// The field of each result that equals its key (`id`); results are matched by key,
    /// never by position.
    pub key: String,
    /// Most keys in one call.
    #[serde(default = "d_max_batch")]
    pub max_batch: usize,
}

fn d_max_batch() -> usize {
    100
}
