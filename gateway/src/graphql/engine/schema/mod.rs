//! The aggregated GraphQL schema, generated from the descriptors of every exposed service
//! (async-graphql's dynamic schema) plus the configured links.
//!
//! Mapping rules (documented in the README): each method is a root field (query when it has no
//! side effects or a GET rule, else mutation; server streaming is a subscription; client and
//! bidirectional streaming are not exposed); its request fields are the field's arguments;
//! messages are object types (output) and `...Input` types (input); see [`naming`] for names
//! and [`shape`] for how each field kind is typed.

pub mod documents;
pub mod input;
pub mod links;
pub mod naming;
pub mod output;
pub(crate) mod roots;
pub mod shape;
mod types;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_graphql::dynamic::{Field, FieldFuture, Object, Schema, Subscription, TypeRef};
use prost_reflect::{
    DescriptorPool, EnumDescriptor, Kind, MessageDescriptor, MethodDescriptor, ServiceDescriptor,
};

use crate::config::{DeadlinesConfig, Execution, GraphqlConfig, OperationKind, RedactAction};
use crate::descriptors::Docs;
use crate::descriptors::{Idempotency, http_bindings, idempotency};
use crate::request::policy::CallSite;
use crate::shaping::Redactions;
use crate::transcode::FieldPath;
use crate::upstream::{Target, Targets};
use links::{BatchPlan, LinkPlan, compatible, item_message};
use naming::{NamedType, TypeNames, qualified_root_field_name, root_field_name};
use shape::{Shape, Wkt, output_named};

/// What the limits analysis needs to know about one field.
#[derive(Clone, Debug)]
pub struct FieldMeta {
    /// The named return type.
    pub type_name: String,
    /// Whether it returns a list.
    pub is_list: bool,
    /// Extra cost of resolving it: [`CALL_COST`] for a field that makes its own backend call,
    /// [`BATCHED_CALL_COST`] for a batched link, 0 for data.
    pub call_cost: u32,
}

/// Cost of a field that makes a backend call of its own (query limits).
pub const CALL_COST: u32 = 10;
/// Cost of a batched link field: the call is shared with its siblings.
pub const BATCHED_CALL_COST: u32 = 1;

/// One root field of the schema.
#[derive(Clone, Debug)]
pub struct RootField {
    /// `Query`, `Mutation` or `Subscription`.
    pub root: &'static str,
    /// The field name.
    pub name: String,
    /// The method it calls.
    pub method: MethodDescriptor,
}

/// A generated schema and what the gateway needs alongside it.
pub struct GraphqlSchema {
    /// The executable schema.
    pub schema: Schema,
    /// The links, by index (the request's link loader uses them).
    pub links: Arc<Vec<LinkPlan>>,
    /// Every field of every object type, by (type, field), for query analysis.
    pub fields: HashMap<(String, String), FieldMeta>,
    /// The root fields, sorted.
    pub roots: Vec<RootField>,
    /// The redaction rules (config `shaping.redact`) the field resolvers apply, resolved
    /// against this schema's type names; the REST door applies the same rules.
    pub redactions: Arc<Redactions>,
    /// Parsed documents of recent operations, by query text.
    pub documents: documents::DocumentCache,
    /// The arguments that bound list sizes for the query limits (config
    /// `graphql.limits.size_args`), handed out with every field.
    pub size_args: Vec<String>,
    /// What query plans are compiled against; `None` when `graphql.execution` is
    /// `interpreted`.
    pub plan_model: Option<crate::graphql::engine::plan::PlanModel>,
    /// Compiled plans of recent operations.
    pub plans: crate::graphql::engine::plan::PlanCache,
}

/// How many parsed documents a schema keeps.
const DOCUMENT_CACHE_CAPACITY: usize = 512;

impl std::fmt::Debug for GraphqlSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphqlSchema")
            .field("roots", &self.roots.len())
            .field("links", &self.links.len())
            .finish_non_exhaustive()
    }
}

impl GraphqlSchema {
    /// The schema in SDL, as committed under `schemas/`.
    pub fn sdl(&self) -> String {
        self.schema.sdl()
    }
}

impl crate::graphql::engine::limits::SchemaInfo for GraphqlSchema {
    fn field(
        &self,
        type_name: &str,
        field: &str,
    ) -> Option<crate::graphql::engine::limits::FieldInfo<'_>> {
        let meta = self
            .fields
            .get(&(type_name.to_string(), field.to_string()))?;
        Some(crate::graphql::engine::limits::FieldInfo {
            type_name: &meta.type_name,
            is_list: meta.is_list,
            call_cost: meta.call_cost,
            size_args: std::borrow::Cow::Borrowed(&self.size_args),
        })
    }

    fn root_type(&self, op: crate::graphql::engine::limits::OperationKind) -> Option<&str> {
        use crate::graphql::engine::limits::OperationKind as K;
        let name = match op {
            K::Query => "Query",
            K::Mutation => "Mutation",
            K::Subscription => "Subscription",
        };
        self.roots
            .iter()
            .any(|r| r.root == name)
            .then_some(name)
            .or((op == K::Query).then_some("Query"))
    }
}

/// Why the schema could not be built; names the config key or the method at fault.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct GraphqlBuildError(pub String);

fn err(msg: impl Into<String>) -> GraphqlBuildError {
    GraphqlBuildError(msg.into())
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
enum Root {
    Query,
    Mutation,
    Subscription,
}

impl Root {
    fn name(self) -> &'static str {
        match self {
            Root::Query => "Query",
            Root::Mutation => "Mutation",
            Root::Subscription => "Subscription",
        }
    }
}

/// Builds the schema over `services` (each exposed service with its backend), without
/// redaction, every call with the default timeout.
pub fn build(
    services: &[(ServiceDescriptor, String)],
    cfg: &GraphqlConfig,
) -> Result<GraphqlSchema, GraphqlBuildError> {
    let pool = services
        .first()
        .map(|(s, _)| s.parent_pool().clone())
        .unwrap_or_else(DescriptorPool::global);
    let timeout = DeadlinesConfig::default().default.get();
    let targets = Targets::new(services, |_, _| timeout);
    build_with(
        services,
        &targets,
        cfg,
        &pool,
        &BTreeMap::new(),
        &crate::versions::Versions::default(),
    )
}

/// The call target of `method`, which must be one of the exposed services'.
fn target_of(
    targets: &Targets,
    method: &MethodDescriptor,
) -> Result<Arc<Target>, GraphqlBuildError> {
    targets.get(method.full_name()).cloned().ok_or_else(|| {
        err(format!(
            "{}: its service has no backend",
            method.full_name()
        ))
    })
}

/// Builds the schema over `services` with the redaction rules `redact` (config
/// `shaping.redact`, keyed `Type.field` by GraphQL type name or protobuf full name, looked up
/// in `pool`): a redacted field resolves to its redacted value, and a dropped one is nullable
/// and always null.
pub fn build_with(
    services: &[(ServiceDescriptor, String)],
    targets: &Targets,
    cfg: &GraphqlConfig,
    pool: &DescriptorPool,
    redact: &BTreeMap<String, RedactAction>,
    versions: &crate::versions::Versions,
) -> Result<GraphqlSchema, GraphqlBuildError> {
    let roots = plan_roots(services, cfg)?;

    // Types reachable from the roots (outputs, and inputs through request fields).
    let mut outputs: BTreeMap<String, MessageDescriptor> = BTreeMap::new();
    let mut inputs: BTreeMap<String, MessageDescriptor> = BTreeMap::new();
    let mut enums: BTreeMap<String, EnumDescriptor> = BTreeMap::new();
    let mut requests: BTreeMap<String, MessageDescriptor> = BTreeMap::new();
    for (_, _, m) in &roots {
        walk(&m.output(), &mut outputs, &mut enums);
        let req = m.input();
        for f in req.fields() {
            walk_kind(&value_kind(&f), &mut inputs, &mut enums);
        }
        requests.insert(req.full_name().to_string(), req);
    }
    let mut link_plans = plan_links(services, targets, cfg, &roots, &mut outputs, &mut enums)?;

    let mut named: Vec<NamedType> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for m in outputs
        .values()
        .chain(inputs.values())
        .chain(requests.values())
    {
        if seen.insert(m.full_name().to_string()) {
            named.push(NamedType {
                full_name: m.full_name().to_string(),
                package: m.package_name().to_string(),
            });
        }
    }
    for e in enums.values() {
        if seen.insert(e.full_name().to_string()) {
            named.push(NamedType {
                full_name: e.full_name().to_string(),
                package: e.package_name().to_string(),
            });
        }
    }
    let names = TypeNames::new(&named);
    // Link call sites by GraphQL type name, as policies see them (`Order.user`).
    for p in &mut link_plans {
        let owner = names.get(p.on.full_name()).unwrap_or(p.on.name());
        let field = format!("{owner}.{}", p.field);
        if let Some(b) = &mut p.batch {
            b.site = CallSite::LinkBatch(field.as_str().into());
        }
        p.site = CallSite::LinkField(field.into());
    }
    let by_graphql_name: HashMap<&str, &MessageDescriptor> = outputs
        .values()
        .filter_map(|m| names.get(m.full_name()).map(|n| (n, m)))
        .collect();
    let redactions = Arc::new(
        Redactions::resolve(redact, pool, &|n| {
            by_graphql_name.get(n).map(|m| (*m).clone())
        })
        .map_err(|e| err(e.to_string()))?,
    );
    let mut docs = Docs::default();
    let mut fields: HashMap<(String, String), FieldMeta> = HashMap::new();

    let has = |r: Root| roots.iter().any(|(root, _, _)| *root == r);
    let mut builder = Schema::build(
        "Query",
        has(Root::Mutation).then_some("Mutation"),
        has(Root::Subscription).then_some("Subscription"),
    );
    // Lets the HTTP layer tell request errors (400) from execution errors (200), and the
    // operations folder be validated without running anything. The only extension: every
    // extension wraps every field's resolution in a boxed future.
    builder = builder.extension(crate::graphql::transport::ValidationSignal);
    if !cfg.introspection {
        builder = builder.disable_introspection();
    }
    for s in types::scalars() {
        builder = builder.register(s);
    }
    for e in enums.values() {
        builder = builder.register(types::enum_type(e, &names, &mut docs));
    }
    let link_plans: Vec<Arc<LinkPlan>> = link_plans.into_iter().map(Arc::new).collect();
    for m in outputs.values() {
        let owner = names.get(m.full_name()).unwrap_or(m.name()).to_string();
        let (mut obj, entries) = types::object_type(m, &names, &mut docs, &redactions);
        for f in m.fields() {
            let is_list = f.is_list() || f.is_map();
            let type_name = if f.is_map() {
                shape::entry_type_name(&owner, &f)
            } else {
                output_named(&f.kind(), &names)
            };
            fields.insert(
                (owner.clone(), f.json_name().to_string()),
                FieldMeta {
                    type_name,
                    is_list,
                    call_cost: 0,
                },
            );
        }
        for plan in link_plans
            .iter()
            .filter(|p| p.on.full_name() == m.full_name())
        {
            if m.get_field_by_json_name(&plan.field).is_some() {
                return Err(err(format!(
                    "graphql.links[{}]: {} already has a field named {:?}",
                    plan.index,
                    m.full_name(),
                    plan.field
                )));
            }
            let (ty, meta) = link_type(plan, &names);
            fields.insert((owner.clone(), plan.field.clone()), meta);
            obj = obj.field(roots::link_field(plan, ty));
        }
        builder = builder.register(obj);
        for e in entries {
            builder = builder.register(e);
        }
    }
    for m in inputs.values() {
        let (obj, extra) = types::input_object(m, &names, &mut docs);
        builder = builder.register(obj);
        for x in extra {
            builder = builder.register(x);
        }
    }

    let mut query = Object::new("Query").description("Every read of every exposed service.");
    let mut mutation = Object::new("Mutation").description("Every write of every exposed service.");
    let mut subscription = Subscription::new("Subscription")
        .description("Server-streaming methods, over WebSocket (graphql-transport-ws) or SSE.");
    let mut root_fields = Vec::new();
    let mut planned_roots = HashMap::new();
    for (root, name, method) in &roots {
        let req = method.input();
        let owner = names.get(req.full_name()).unwrap_or(req.name()).to_string();
        let (args, extra) = types::input_fields(&req, &owner, &names, &mut docs);
        for x in extra {
            builder = builder.register(x);
        }
        let out_name = output_named(&Kind::Message(method.output()), &names);
        let ty = TypeRef::named(out_name.clone());
        let doc = docs.get(&method.parent_file(), method.path());
        let deprecated = method
            .method_descriptor_proto()
            .options
            .as_ref()
            .and_then(|o| o.deprecated)
            .unwrap_or(false);
        // The API version's note (`versions`) first, else the proto's own deprecation.
        let deprecation = versions
            .note(method.full_name())
            .map(str::to_string)
            .or_else(|| deprecated.then(|| "Deprecated in the protobuf definition.".to_string()));
        let note = format!("Calls {}.", method.full_name());
        let description = match doc {
            Some(d) => format!("{d}\n\n{note}"),
            None => note,
        };
        fields.insert(
            (root.name().to_string(), name.clone()),
            FieldMeta {
                type_name: out_name,
                is_list: false,
                call_cost: CALL_COST,
            },
        );
        root_fields.push(RootField {
            root: root.name(),
            name: name.clone(),
            method: method.clone(),
        });
        match root {
            Root::Subscription => {
                let target = target_of(targets, method)?;
                let site = CallSite::Subscription(format!("Subscription.{name}").into());
                let mut f =
                    roots::subscription_field(name, &target, site, ty).description(description);
                for a in args {
                    f = f.argument(a);
                }
                if let Some(reason) = deprecation.as_deref() {
                    f = f.deprecation(Some(reason));
                }
                subscription = subscription.field(f);
            }
            Root::Query | Root::Mutation => {
                let target = target_of(targets, method)?;
                let site = CallSite::RootField(format!("{}.{name}", root.name()).into());
                if matches!(root, Root::Query | Root::Mutation) {
                    planned_roots.insert(
                        (*root == Root::Mutation, name.clone()),
                        crate::graphql::engine::plan::RootDef {
                            target: target.clone(),
                            site: site.clone(),
                            shape: roots::response_shape(method),
                        },
                    );
                }
                let mut f = roots::root_field(name, &target, site, ty).description(description);
                for a in args {
                    f = f.argument(a);
                }
                if let Some(reason) = deprecation.as_deref() {
                    f = f.deprecation(Some(reason));
                }
                if *root == Root::Query {
                    query = query.field(f);
                } else {
                    mutation = mutation.field(f);
                }
            }
        }
    }
    if !has(Root::Query) {
        query = query.field(
            Field::new("_empty", TypeRef::named("Boolean"), |_| {
                FieldFuture::from_value(None)
            })
            .description("No service exposes a query; GraphQL needs at least one field."),
        );
    }
    builder = builder.register(query);
    if has(Root::Mutation) {
        builder = builder.register(mutation);
    }
    if has(Root::Subscription) {
        builder = builder.register(subscription);
    }
    let schema = builder
        .finish()
        .map_err(|e| err(format!("the generated GraphQL schema is invalid: {e}")))?;
    root_fields.sort_by(|a, b| (a.root, &a.name).cmp(&(b.root, &b.name)));
    let plan_model =
        (cfg.execution == Execution::Compiled).then(|| crate::graphql::engine::plan::PlanModel {
            mutations: planned_roots
                .iter()
                .filter(|((m, _), _)| *m)
                .map(|((_, n), d)| (n.clone(), d.clone()))
                .collect(),
            queries: planned_roots
                .into_iter()
                .filter(|((m, _), _)| !*m)
                .map(|((_, n), d)| (n, d))
                .collect(),
            links: link_plans
                .iter()
                .map(|p| ((p.on.full_name().to_string(), p.field.clone()), p.clone()))
                .collect(),
            names: names.clone(),
            redactions: redactions.clone(),
        });
    Ok(GraphqlSchema {
        schema,
        links: Arc::new(link_plans.iter().map(|p| (**p).clone()).collect()),
        fields,
        roots: root_fields,
        redactions,
        documents: documents::DocumentCache::new(DOCUMENT_CACHE_CAPACITY),
        size_args: cfg.limits.size_args.clone(),
        plan_model,
        plans: Default::default(),
    })
}

/// The kind of a field's values (a map field's value kind).
fn value_kind(f: &prost_reflect::FieldDescriptor) -> Kind {
    match f.kind() {
        Kind::Message(m) if f.is_map() => m.map_entry_value_field().kind(),
        k => k,
    }
}

fn walk_kind(
    kind: &Kind,
    set: &mut BTreeMap<String, MessageDescriptor>,
    enums: &mut BTreeMap<String, EnumDescriptor>,
) {
    match kind {
        Kind::Message(m) => walk(m, set, enums),
        Kind::Enum(e) => {
            enums.insert(e.full_name().to_string(), e.clone());
        }
        _ => {}
    }
}

fn walk(
    m: &MessageDescriptor,
    set: &mut BTreeMap<String, MessageDescriptor>,
    enums: &mut BTreeMap<String, EnumDescriptor>,
) {
    if Wkt::of(m).is_some() || set.contains_key(m.full_name()) {
        return;
    }
    set.insert(m.full_name().to_string(), m.clone());
    for f in m.fields() {
        walk_kind(&value_kind(&f), set, enums);
    }
}

/// Decides each exposed method's root type and field name.
fn plan_roots(
    services: &[(ServiceDescriptor, String)],
    cfg: &GraphqlConfig,
) -> Result<Vec<(Root, String, MethodDescriptor)>, GraphqlBuildError> {
    let mut all: Vec<(Root, String, MethodDescriptor)> = Vec::new();
    let mut known = std::collections::BTreeSet::new();
    for (svc, _) in services {
        for m in svc.methods() {
            known.insert(m.full_name().to_string());
            if m.is_client_streaming() {
                continue;
            }
            let over = cfg.methods.get(m.full_name());
            let kind = over.and_then(|o| o.kind);
            if kind == Some(OperationKind::Hidden) {
                continue;
            }
            let root = if m.is_server_streaming() {
                Root::Subscription
            } else {
                match kind {
                    Some(OperationKind::Query) => Root::Query,
                    Some(OperationKind::Mutation) => Root::Mutation,
                    _ => {
                        let reads = idempotency(&m) == Idempotency::NoSideEffects
                            || http_bindings(&m)
                                .iter()
                                .any(|b| b.method == http::Method::GET);
                        if reads { Root::Query } else { Root::Mutation }
                    }
                }
            };
            all.push((root, root_field_name(m.name()), m));
        }
    }
    for key in cfg.methods.keys() {
        if !known.contains(key) {
            return Err(err(format!(
                "graphql.methods.{key}: no such method among the exposed services (write package.Service.Method)"
            )));
        }
    }
    // Collisions of default names get the service in front.
    let mut count: HashMap<(Root, String), usize> = HashMap::new();
    for (root, name, _) in &all {
        *count.entry((*root, name.clone())).or_default() += 1;
    }
    for (root, name, m) in &mut all {
        if count.get(&(*root, name.clone())).copied().unwrap_or(0) > 1 {
            *name = qualified_root_field_name(m.parent_service().name(), m.name());
        }
        if let Some(f) = cfg.methods.get(m.full_name()).and_then(|o| o.field.clone()) {
            *name = f;
        }
    }
    let mut taken: HashMap<(Root, String), String> = HashMap::new();
    for (root, name, m) in &all {
        if let Some(other) = taken.insert((*root, name.clone()), m.full_name().to_string()) {
            return Err(err(format!(
                "graphql: {} and {} both want the {} field {name:?}; set graphql.methods.<method>.field for one",
                other,
                m.full_name(),
                root.name()
            )));
        }
    }
    all.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    Ok(all)
}

fn find_method(services: &[(ServiceDescriptor, String)], full: &str) -> Option<MethodDescriptor> {
    services
        .iter()
        .flat_map(|(s, _)| s.methods())
        .find(|m| m.full_name() == full)
}

/// Resolves and checks the configured links.
fn plan_links(
    services: &[(ServiceDescriptor, String)],
    targets: &Targets,
    cfg: &GraphqlConfig,
    _roots: &[(Root, String, MethodDescriptor)],
    outputs: &mut BTreeMap<String, MessageDescriptor>,
    enums: &mut BTreeMap<String, EnumDescriptor>,
) -> Result<Vec<LinkPlan>, GraphqlBuildError> {
    let mut plans = Vec::new();
    for (i, l) in cfg.links.iter().enumerate() {
        let at = format!("graphql.links[{i}] ({}.{})", l.on, l.field);
        let method = find_method(services, &l.call).ok_or_else(|| {
            err(format!(
                "{at}: call {:?} is not a method of an exposed service",
                l.call
            ))
        })?;
        if method.is_client_streaming() || method.is_server_streaming() {
            return Err(err(format!("{at}: {} is a streaming method", l.call)));
        }
        let on = services
            .iter()
            .find_map(|(s, _)| s.parent_pool().get_message_by_name(&l.on))
            .ok_or_else(|| err(format!("{at}: no message named {:?}", l.on)))?;
        let mut args = Vec::new();
        for (to, from) in &l.args {
            let to_p = FieldPath::resolve(&method.input(), to)
                .map_err(|e| err(format!("{at}: args.{to}: {e}")))?;
            let from_p = FieldPath::resolve(&on, from)
                .map_err(|e| err(format!("{at}: args.{to}: {from:?}: {e}")))?;
            if !compatible(to_p.last(), from_p.last()) {
                return Err(err(format!(
                    "{at}: args.{to}: {} ({:?}) cannot take {}.{} ({:?})",
                    to_p.as_str(),
                    to_p.last().kind(),
                    l.on,
                    from,
                    from_p.last().kind()
                )));
            }
            args.push((to_p, from_p));
        }
        let result = match &l.result {
            None => None,
            Some(r) => Some(method.output().get_field_by_name(r).ok_or_else(|| {
                err(format!(
                    "{at}: result: {} has no field {r:?}",
                    method.output().full_name()
                ))
            })?),
        };
        let mut shape = match &result {
            None => Shape::of_kind(Kind::Message(method.output())),
            Some(f) => Shape::of_field(f, ""),
        };
        if matches!(shape, Shape::Map { .. }) {
            return Err(err(format!("{at}: result cannot be a map field")));
        }
        let batch = match &l.batch {
            None => None,
            Some(b) => {
                let bm = find_method(services, &b.call).ok_or_else(|| {
                    err(format!(
                        "{at}: batch.call {:?} is not a method of an exposed service",
                        b.call
                    ))
                })?;
                let keys = bm
                    .input()
                    .get_field_by_name(&b.keys)
                    .filter(|f| f.is_list())
                    .ok_or_else(|| {
                        err(format!(
                            "{at}: batch.keys: {} has no repeated field {:?}",
                            bm.input().full_name(),
                            b.keys
                        ))
                    })?;
                let results = bm
                    .output()
                    .get_field_by_name(&b.results)
                    .filter(|f| f.is_list())
                    .ok_or_else(|| {
                        err(format!(
                            "{at}: batch.results: {} has no repeated field {:?}",
                            bm.output().full_name(),
                            b.results
                        ))
                    })?;
                let Kind::Message(item) = results.kind() else {
                    return Err(err(format!("{at}: batch.results must hold messages")));
                };
                let key = item.get_field_by_name(&b.key).ok_or_else(|| {
                    err(format!(
                        "{at}: batch.key: {} has no field {:?}",
                        item.full_name(),
                        b.key
                    ))
                })?;
                if l.args.len() != 1 {
                    return Err(err(format!(
                        "{at}: a batched link takes exactly one argument (the key)"
                    )));
                }
                let parent_key = args
                    .first()
                    .map(|(_, from)| from.clone())
                    .ok_or_else(|| err(format!("{at}: no key")))?;
                if keys.kind() != parent_key.last().kind() || key.kind() != keys.kind() {
                    return Err(err(format!(
                        "{at}: the key kinds differ: parent {:?}, batch.keys {:?}, batch.key {:?}",
                        parent_key.last().kind(),
                        keys.kind(),
                        key.kind()
                    )));
                }
                if item_message(&shape).is_some_and(|m| m.full_name() != item.full_name()) {
                    return Err(err(format!(
                        "{at}: the batch returns {} but the call returns {}",
                        item.full_name(),
                        item_message(&shape)
                            .map(|m| m.full_name().to_string())
                            .unwrap_or_default()
                    )));
                }
                shape = Shape::Object(item.clone());
                Some(BatchPlan {
                    target: target_of(targets, &bm)?,
                    site: CallSite::LinkBatch(format!("{}.{}", l.on, l.field).into()),
                    method: bm,
                    keys,
                    results,
                    key,
                    parent_key,
                    max_batch: b.max_batch,
                })
            }
        };
        match &shape {
            Shape::Object(m) => walk(m, outputs, enums),
            Shape::List(inner) => {
                if let Shape::Object(m) = inner.as_ref() {
                    walk(m, outputs, enums)
                }
            }
            Shape::Enum(e) => {
                enums.insert(e.full_name().to_string(), e.clone());
            }
            _ => {}
        }
        plans.push(LinkPlan {
            index: i,
            on,
            field: l.field.clone(),
            target: target_of(targets, &method)?,
            site: CallSite::LinkField(format!("{}.{}", l.on, l.field).into()),
            method,
            args,
            result,
            batch,
            shape,
            description: l.description.clone(),
        });
    }
    for p in &plans {
        if !outputs.contains_key(p.on.full_name()) {
            return Err(err(format!(
                "graphql.links[{}] ({}.{}): {} is not the output of any exposed method, so the field would never be reachable",
                p.index,
                p.on.full_name(),
                p.field,
                p.on.full_name()
            )));
        }
    }
    Ok(plans)
}

/// The GraphQL type of a link field, and its analysis metadata.
fn link_type(plan: &LinkPlan, names: &TypeNames) -> (TypeRef, FieldMeta) {
    let call_cost = if plan.batch.is_some() {
        BATCHED_CALL_COST
    } else {
        CALL_COST
    };
    let named = |s: &Shape| match s {
        Shape::Object(m) => names.get(m.full_name()).unwrap_or(m.name()).to_string(),
        Shape::Wkt(w) => w.name().to_string(),
        Shape::Enum(e) => names.get(e.full_name()).unwrap_or(e.name()).to_string(),
        Shape::Scalar(k) => output_named(k, names),
        Shape::List(_) | Shape::Map { .. } => "JSON".to_string(),
    };
    match &plan.shape {
        Shape::List(inner) => {
            let n = named(inner);
            (
                TypeRef::named_nn_list_nn(n.clone()),
                FieldMeta {
                    type_name: n,
                    is_list: true,
                    call_cost,
                },
            )
        }
        other => {
            let n = named(other);
            (
                TypeRef::named(n.clone()),
                FieldMeta {
                    type_name: n,
                    is_list: false,
                    call_cost,
                },
            )
        }
    }
}
