//! Compiled operations: a query's (or mutation's) selection resolved once per (document, operation name)
//! against the schema's model — which method each root field calls, which protobuf field or
//! link each selected field reads, its shape and nullability, its redaction — so that running
//! it (see `graphql::run::compiled`) needs no resolver lookup, no per-field future and no type
//! dispatch: one future per backend call, the response written from the replies in one pass.
//!
//! A plan is only ever run for a request that async-graphql has parsed and validated, so
//! compiling may meet invalid documents; it answers `None` for them and for anything a plan
//! does not express, and such operations run on async-graphql's executor: mutations,
//! subscriptions, introspection (`__schema`, `__type`), directives other than `@skip` and
//! `@include`, a response key selected twice under different conditions, and link fields
//! under map entries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use async_graphql::parser::types::{
    Directive, DocumentOperations, ExecutableDocument, Field, OperationDefinition, OperationType,
    Selection, SelectionSet,
};
use async_graphql::registry::Registry;
use async_graphql::{Name, Pos, Positioned, ValidationResult, Value as Gql};
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};

use super::limits::QueryStats;
use super::schema::links::LinkPlan;
use super::schema::naming::TypeNames;
use super::schema::shape::{Shape, has_presence};
use super::validated::VariableArgs;
use crate::config::RedactAction;
use crate::request::policy::CallSite;
use crate::shaping::Redactions;
use crate::upstream::Target;

/// How many documents a schema keeps plans (and validation verdicts) of.
const PLAN_CACHE_CAPACITY: usize = 512;
/// Documents longer than this (bytes of query text) are not compiled.
const MAX_QUERY_LEN: usize = 16 * 1024;
/// Operation names remembered per document.
const MAX_NAMES_PER_DOCUMENT: usize = 16;
/// Nesting (fields and fragments) beyond which a document is not compiled.
const MAX_DEPTH: usize = 64;
/// Selected fields beyond which a document is not compiled.
const MAX_NODES: usize = 4096;

/// A `Query` or `Mutation` root field: the call it makes.
#[derive(Clone, Debug)]
pub struct RootDef {
    /// The method's call target.
    pub target: Arc<Target>,
    /// The call site policies see (`Query.user`).
    pub site: CallSite,
    /// The shape of the method's response.
    pub shape: Shape,
}

/// What plans are compiled against: the schema's root fields, links, type names and
/// redactions. Built with the schema.
#[derive(Debug)]
pub struct PlanModel {
    /// `Query` root fields by name.
    pub queries: HashMap<String, RootDef>,
    /// `Mutation` root fields by name.
    pub mutations: HashMap<String, RootDef>,
    /// Links by (message full name, field name).
    pub links: HashMap<(String, String), Arc<LinkPlan>>,
    /// GraphQL names of messages and enums.
    pub names: TypeNames,
    /// The redaction rules the field resolvers apply.
    pub redactions: Arc<Redactions>,
}

/// A compiled query or mutation.
#[derive(Debug)]
pub struct OpPlan {
    /// The root fields, in selection order.
    pub roots: Vec<RootNode>,
    /// A mutation: its root fields run one after the other.
    pub serial: bool,
    /// The operation's variables with their default values.
    pub variables: Vec<(Name, Option<Gql>)>,
}

/// A root field of a plan.
#[derive(Debug)]
pub struct RootNode {
    /// Response key (alias or name).
    pub key: Name,
    /// Where the field is in the document (error locations).
    pub pos: Pos,
    /// The field as written (its arguments are filled from the variables at run time).
    pub field: Positioned<Field>,
    /// `@skip` / `@include` conditions.
    pub conds: Vec<Cond>,
    /// The call.
    pub def: Arc<RootDef>,
    /// What is selected from the reply (when it is an object).
    pub sel: Option<Sel>,
}

/// A `@skip` or `@include` condition, evaluated as async-graphql does (variables without
/// their defaults; anything not a boolean counts as `false`).
#[derive(Clone, Debug)]
pub struct Cond {
    /// `@include` (true) or `@skip` (false).
    pub include: bool,
    /// The directive as written.
    pub directive: Positioned<Directive>,
}

/// The fields selected on one object type, fragments flattened.
#[derive(Debug, Default)]
pub struct Sel {
    /// In response order.
    pub nodes: Vec<Node>,
    /// Whether a link is selected here or below (the selection needs calls to resolve).
    pub links: bool,
    /// What writing it straight from wire bytes needs, worked out on first use (the plan is
    /// cached, so once per cached plan): see [`crate::graphql::run`]'s `wire`.
    pub wire: std::sync::OnceLock<Option<WireLayout>>,
}

/// A selection's layout for writing it from wire bytes: per node, in response order, the
/// field number it reads (0 for `__typename`), its kind, and its key as JSON text
/// (`"key":`). `None` (on [`Sel::wire`]) when a node cannot be written that way (maps,
/// members of a real `oneof`, redacted fields, links).
#[derive(Debug)]
pub struct WireLayout {
    /// The field number each node reads (0: none).
    pub numbers: Box<[u32]>,
    /// The kind of each node's field (`None` for `__typename`).
    pub kinds: Box<[Option<prost_reflect::Kind>]>,
    /// Each node's key, escaped, quoted and followed by `:`.
    pub keys: Box<[Box<[u8]>]>,
}

/// One selected field.
#[derive(Debug)]
pub struct Node {
    /// Response key.
    pub key: Name,
    /// Position in the document.
    pub pos: Pos,
    /// `@skip` / `@include` conditions.
    pub conds: Vec<Cond>,
    /// What it reads.
    pub kind: NodeKind,
}

/// What a selected field reads.
#[derive(Debug)]
pub enum NodeKind {
    /// `__typename`: the type's name.
    Typename(Gql),
    /// A protobuf field of the parent message.
    Field {
        /// The field.
        fd: FieldDescriptor,
        /// Its shape.
        shape: Shape,
        /// Whether its GraphQL type is non-null.
        non_null: bool,
        /// Its redaction, if any.
        redact: Option<RedactAction>,
        /// The sub-selection (objects, lists of objects, map entries).
        sel: Option<Sel>,
    },
    /// A link field of the parent message.
    Link {
        /// The link.
        plan: Arc<LinkPlan>,
        /// Whether its GraphQL type is non-null (list links).
        non_null: bool,
        /// The sub-selection of its objects.
        sel: Option<Sel>,
    },
    /// `key` of a map entry.
    MapKey,
    /// `value` of a map entry.
    MapValue {
        /// The value's shape.
        shape: Shape,
        /// Whether it is non-null.
        non_null: bool,
        /// Its sub-selection (message values).
        sel: Option<Sel>,
    },
}

/// The type a selection set is on.
enum Parent<'a> {
    Message(&'a MessageDescriptor),
    /// A map field's entry type: its name and the map field.
    Entry(&'a str, &'a FieldDescriptor),
}

/// Why a document has no plan (it runs on async-graphql's executor).
struct Unsupported;

type Compiled<T> = Result<T, Unsupported>;

/// A fragment's selection set and the directives on it.
type Fragment<'a> = (&'a SelectionSet, &'a [Positioned<Directive>]);

/// The operations of one document, by operation name.
type ByName = Vec<(Option<Box<str>>, Arc<Known>)>;

struct Compiler<'a> {
    model: &'a PlanModel,
    doc: &'a ExecutableDocument,
    nodes: usize,
    /// The root fields of the operation's type.
    roots_of: &'a HashMap<String, RootDef>,
    /// `Query` or `Mutation`.
    root_type: &'static str,
}

impl PlanModel {
    /// Compiles operation `name` of `doc`; `None` when it must run on async-graphql's
    /// executor (see the module docs).
    pub fn compile(&self, doc: &ExecutableDocument, name: Option<&str>) -> Option<OpPlan> {
        let op = operation_of(doc, name)?;
        let (roots_of, serial) = match op.node.ty {
            OperationType::Query => (&self.queries, false),
            OperationType::Mutation => (&self.mutations, true),
            OperationType::Subscription => return None,
        };
        if !op.node.directives.is_empty() {
            return None;
        }
        let root_type = if serial { "Mutation" } else { "Query" };
        let mut c = Compiler {
            model: self,
            doc,
            nodes: 0,
            roots_of,
            root_type,
        };
        let mut roots = Vec::new();
        c.roots(&op.node.selection_set.node, &[], &mut roots, 0)
            .ok()?;
        let variables = op
            .node
            .variable_definitions
            .iter()
            .map(|d| (d.node.name.node.clone(), d.node.default_value().cloned()))
            .collect();
        Some(OpPlan {
            roots,
            serial,
            variables,
        })
    }
}

impl<'a> Compiler<'a> {
    fn count(&mut self, depth: usize) -> Compiled<()> {
        self.nodes += 1;
        if self.nodes > MAX_NODES || depth > MAX_DEPTH {
            return Err(Unsupported);
        }
        Ok(())
    }

    fn roots(
        &mut self,
        set: &'a SelectionSet,
        outer: &[Cond],
        out: &mut Vec<RootNode>,
        depth: usize,
    ) -> Compiled<()> {
        for item in &set.items {
            self.count(depth)?;
            match &item.node {
                Selection::Field(f) => {
                    let conds = with_conds(outer, &f.node.directives)?;
                    let name = f.node.name.node.as_str();
                    if name.starts_with("__") {
                        // `__typename` of a root type and introspection run on the executor.
                        return Err(Unsupported);
                    }
                    let def = self.roots_of.get(name).ok_or(Unsupported)?;
                    let sel = match &def.shape {
                        Shape::Object(m) => Some(self.selection(
                            &f.node.selection_set.node,
                            &Parent::Message(m),
                            depth + 1,
                        )?),
                        _ => None,
                    };
                    let key = f.node.response_key().node.clone();
                    if let Some(prev) = out.iter_mut().find(|r| r.key == key) {
                        // Validation made both the same call; merge what they select.
                        if !prev.conds.is_empty() || !conds.is_empty() {
                            return Err(Unsupported);
                        }
                        match (&mut prev.sel, sel) {
                            (Some(a), Some(b)) => merge(a, b)?,
                            (None, None) => {}
                            _ => return Err(Unsupported),
                        }
                        continue;
                    }
                    out.push(RootNode {
                        key,
                        pos: f.pos,
                        field: f.clone(),
                        conds,
                        def: Arc::new(def.clone()),
                        sel,
                    });
                }
                other => {
                    if let Some((set, directives)) = self.applies(other, self.root_type)? {
                        let conds = with_conds(outer, directives)?;
                        self.roots(set, &conds, out, depth + 1)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The selection set of a fragment (spread or inline) and its directives, when it applies
    /// to `type_name` (the schema has no interfaces or unions: only the type itself matches).
    fn applies(&self, selection: &'a Selection, type_name: &str) -> Compiled<Option<Fragment<'a>>> {
        let (on, set, directives) = match selection {
            Selection::Field(_) => return Err(Unsupported),
            Selection::FragmentSpread(spread) => {
                let frag = self
                    .doc
                    .fragments
                    .get(&spread.node.fragment_name.node)
                    .ok_or(Unsupported)?;
                if !frag.node.directives.is_empty() {
                    return Err(Unsupported);
                }
                (
                    Some(frag.node.type_condition.node.on.node.as_str()),
                    &frag.node.selection_set.node,
                    spread.node.directives.as_slice(),
                )
            }
            Selection::InlineFragment(inline) => (
                inline
                    .node
                    .type_condition
                    .as_ref()
                    .map(|c| c.node.on.node.as_str()),
                &inline.node.selection_set.node,
                inline.node.directives.as_slice(),
            ),
        };
        Ok((on.is_none_or(|on| on == type_name)).then_some((set, directives)))
    }

    fn selection(
        &mut self,
        set: &'a SelectionSet,
        parent: &Parent<'_>,
        depth: usize,
    ) -> Compiled<Sel> {
        let mut sel = Sel::default();
        self.collect(set, parent, &[], &mut sel, depth)?;
        Ok(sel)
    }

    fn type_name(&self, parent: &Parent<'_>) -> String {
        match parent {
            Parent::Message(m) => self
                .model
                .names
                .get(m.full_name())
                .unwrap_or(m.name())
                .to_string(),
            Parent::Entry(name, _) => (*name).to_string(),
        }
    }

    fn collect(
        &mut self,
        set: &'a SelectionSet,
        parent: &Parent<'_>,
        outer: &[Cond],
        sel: &mut Sel,
        depth: usize,
    ) -> Compiled<()> {
        let type_name = self.type_name(parent);
        for item in &set.items {
            self.count(depth)?;
            let f = match &item.node {
                Selection::Field(f) => f,
                other => {
                    if let Some((inner, directives)) = self.applies(other, &type_name)? {
                        let conds = with_conds(outer, directives)?;
                        self.collect(inner, parent, &conds, sel, depth + 1)?;
                    }
                    continue;
                }
            };
            let conds = with_conds(outer, &f.node.directives)?;
            let name = f.node.name.node.as_str();
            let sub = &f.node.selection_set.node;
            let kind = if name == "__typename" {
                NodeKind::Typename(Gql::String(type_name.clone()))
            } else {
                match parent {
                    Parent::Entry(_, map) => self.entry_field(map, name, sub, depth)?,
                    Parent::Message(m) => self.message_field(m, &type_name, name, sub, depth)?,
                }
            };
            let node = Node {
                key: f.node.response_key().node.clone(),
                pos: f.pos,
                conds,
                kind,
            };
            add(sel, node)?;
        }
        Ok(())
    }

    fn entry_field(
        &mut self,
        map: &FieldDescriptor,
        name: &str,
        sub: &'a SelectionSet,
        depth: usize,
    ) -> Compiled<NodeKind> {
        let Kind::Message(entry) = map.kind() else {
            return Err(Unsupported);
        };
        match name {
            "key" => Ok(NodeKind::MapKey),
            "value" => {
                let vf = entry.map_entry_value_field();
                let kind = vf.kind();
                let non_null = !matches!(kind, Kind::Message(_) | Kind::Enum(_));
                let shape = Shape::of_kind(kind);
                let sel = self.object_sel(&shape, sub, depth)?;
                if sel.as_ref().is_some_and(|s| s.links) {
                    return Err(Unsupported);
                }
                Ok(NodeKind::MapValue {
                    shape,
                    non_null,
                    sel,
                })
            }
            _ => Err(Unsupported),
        }
    }

    fn message_field(
        &mut self,
        m: &MessageDescriptor,
        owner: &str,
        name: &str,
        sub: &'a SelectionSet,
        depth: usize,
    ) -> Compiled<NodeKind> {
        if let Some(plan) = self
            .model
            .links
            .get(&(m.full_name().to_string(), name.to_string()))
        {
            let non_null = matches!(plan.shape, Shape::List(_));
            let sel = self.object_sel(&plan.shape, sub, depth)?;
            return Ok(NodeKind::Link {
                plan: plan.clone(),
                non_null,
                sel,
            });
        }
        let fd = m.get_field_by_json_name(name).ok_or(Unsupported)?;
        let shape = Shape::of_field(&fd, owner);
        let redact = self.model.redactions.rule(m.full_name(), &fd);
        let non_null = match redact {
            Some(RedactAction::Drop) => false,
            _ => {
                fd.is_list()
                    || fd.is_map()
                    || !(matches!(fd.kind(), Kind::Enum(_)) || has_presence(&fd))
            }
        };
        let sel = match &shape {
            Shape::Map { entry } => {
                let s = self.selection(sub, &Parent::Entry(entry, &fd), depth + 1)?;
                Some(s)
            }
            other => self.object_sel(other, sub, depth)?,
        };
        Ok(NodeKind::Field {
            fd,
            shape,
            non_null,
            redact,
            sel,
        })
    }

    /// The selection on the objects of a value of `shape` (`None` for leaves).
    fn object_sel(
        &mut self,
        shape: &Shape,
        sub: &'a SelectionSet,
        depth: usize,
    ) -> Compiled<Option<Sel>> {
        match shape {
            Shape::Object(m) => Ok(Some(self.selection(sub, &Parent::Message(m), depth + 1)?)),
            Shape::List(inner) => self.object_sel(inner, sub, depth),
            Shape::Map { .. } => Err(Unsupported),
            Shape::Scalar(_) | Shape::Enum(_) | Shape::Wkt(_) => {
                if sub.items.is_empty() {
                    Ok(None)
                } else {
                    Err(Unsupported)
                }
            }
        }
    }
}

/// The conditions of `outer` plus those of `directives`; any other directive cannot be planned.
fn with_conds(outer: &[Cond], directives: &[Positioned<Directive>]) -> Compiled<Vec<Cond>> {
    let mut conds = outer.to_vec();
    for d in directives {
        let include = match d.node.name.node.as_str() {
            "include" => true,
            "skip" => false,
            _ => return Err(Unsupported),
        };
        conds.push(Cond {
            include,
            directive: d.clone(),
        });
    }
    Ok(conds)
}

/// Adds `node` to `sel`, merging it with a field of the same response key (fragments often
/// select a field twice).
fn add(sel: &mut Sel, node: Node) -> Compiled<()> {
    sel.links |= match &node.kind {
        NodeKind::Link { .. } => true,
        NodeKind::Field { sel: Some(s), .. } | NodeKind::MapValue { sel: Some(s), .. } => s.links,
        _ => false,
    };
    let Some(prev) = sel.nodes.iter_mut().find(|n| n.key == node.key) else {
        sel.nodes.push(node);
        return Ok(());
    };
    if !prev.conds.is_empty() || !node.conds.is_empty() {
        return Err(Unsupported);
    }
    match (&mut prev.kind, node.kind) {
        (NodeKind::Typename(_), NodeKind::Typename(_)) | (NodeKind::MapKey, NodeKind::MapKey) => {
            Ok(())
        }
        (NodeKind::Field { fd: a, sel: sa, .. }, NodeKind::Field { fd: b, sel: sb, .. })
            if *a == b =>
        {
            merge_opt(sa, sb)
        }
        (
            NodeKind::Link {
                plan: a, sel: sa, ..
            },
            NodeKind::Link {
                plan: b, sel: sb, ..
            },
        ) if a.index == b.index => merge_opt(sa, sb),
        (NodeKind::MapValue { sel: sa, .. }, NodeKind::MapValue { sel: sb, .. }) => {
            merge_opt(sa, sb)
        }
        _ => Err(Unsupported),
    }
}

fn merge_opt(a: &mut Option<Sel>, b: Option<Sel>) -> Compiled<()> {
    match (a, b) {
        (Some(a), Some(b)) => merge(a, b),
        (None, None) => Ok(()),
        _ => Err(Unsupported),
    }
}

fn merge(a: &mut Sel, b: Sel) -> Compiled<()> {
    for n in b.nodes {
        add(a, n)?;
    }
    Ok(())
}

/// The operation a request for `name` runs in `doc`: the one named so, or the document's only
/// operation when no name is given (an anonymous one is never chosen by name).
pub fn operation_of<'d>(
    doc: &'d ExecutableDocument,
    name: Option<&str>,
) -> Option<&'d Positioned<OperationDefinition>> {
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), None) => Some(op),
        (DocumentOperations::Multiple(ops), Some(n)) => ops.get(n),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        _ => None,
    }
}

/// What is known of one operation of one document against the schema: its plan, and
/// whether (and with what result) async-graphql has validated it.
#[derive(Debug)]
pub struct Known {
    /// The type of the operation the request runs (`None`: the name chooses none).
    pub operation: Option<OperationType>,
    /// The name of the document's only operation, when it has one and the request names
    /// none (what the policies are asked about).
    pub only_name: Option<String>,
    /// The compiled plan; `None` when the operation runs on async-graphql's executor.
    pub plan: Option<Arc<OpPlan>>,
    /// The arguments that read variables (`None`: the document is always validated in
    /// full).
    pub args: Option<VariableArgs>,
    /// async-graphql's verdict, once it has validated the document.
    pub validated: Arc<OnceLock<ValidationResult>>,
    /// The query limits' figures, once measured, when they do not depend on variables.
    pub limits: OnceLock<QueryStats>,
}

impl Known {
    /// What the prepare step put in `request`'s data, if anything.
    pub fn of(request: &async_graphql::Request) -> Option<Arc<Known>> {
        request
            .data
            .get(&std::any::TypeId::of::<Arc<Known>>())
            .and_then(|d| d.downcast_ref::<Arc<Known>>())
            .cloned()
    }
}

/// What is known of recent operations, by query text and operation name, bounded like the
/// document cache: when full it is emptied.
#[derive(Debug, Default)]
pub struct PlanCache {
    known: Mutex<HashMap<Box<str>, ByName>>,
}

impl PlanCache {
    /// What is known of operation `name` of `query` (parsed as `doc`), learnt on first use:
    /// its plan, and the arguments that read variables (types from `registry`).
    pub fn get(
        &self,
        model: &PlanModel,
        registry: &Registry,
        query: &str,
        name: Option<&str>,
        doc: &ExecutableDocument,
    ) -> Option<Arc<Known>> {
        if query.len() > MAX_QUERY_LEN {
            return None;
        }
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(ops) = known.get(query)
            && let Some((_, k)) = ops.iter().find(|(n, _)| n.as_deref() == name)
        {
            return Some(k.clone());
        }
        let only_name = match (&doc.operations, name) {
            (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
                ops.keys().next().map(|n| n.to_string())
            }
            _ => None,
        };
        let k = Arc::new(Known {
            operation: operation_of(doc, name).map(|op| op.node.ty),
            only_name,
            plan: model.compile(doc, name).map(Arc::new),
            args: VariableArgs::collect(registry, doc),
            validated: Arc::default(),
            limits: OnceLock::new(),
        });
        if known.len() >= PLAN_CACHE_CAPACITY && !known.contains_key(query) {
            known.clear();
        }
        let ops = known.entry(query.into()).or_default();
        // Operation names are the client's: a few per document are kept, not any number.
        if ops.len() < MAX_NAMES_PER_DOCUMENT {
            ops.push((name.map(Into::into), k.clone()));
        }
        Some(k)
    }

    /// What is known of operation `name` of `query` if it was seen before (no document
    /// needed: the text is the key).
    pub fn known(&self, query: &str, name: Option<&str>) -> Option<Arc<Known>> {
        let known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        let ops = known.get(query)?;
        ops.iter()
            .find(|(n, _)| n.as_deref() == name)
            .map(|(_, k)| k.clone())
    }

    /// Whether operation `name` of `query` has a plan (`Some(false)`: it runs on
    /// async-graphql's executor), or `None` when it has not been seen.
    pub fn planned(&self, query: &str, name: Option<&str>) -> Option<bool> {
        self.known(query, name).map(|k| k.plan.is_some())
    }

    /// How many documents have an entry.
    pub fn len(&self) -> usize {
        self.known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no document has an entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::graphql::bff::operations::tests::demo_schema;

    fn compile(q: &str, name: Option<&str>) -> Option<OpPlan> {
        let g = demo_schema();
        let doc = async_graphql::parser::parse_query(q).unwrap();
        g.plan_model.as_ref().unwrap().compile(&doc, name)
    }

    fn keys(sel: &Sel) -> Vec<&str> {
        sel.nodes.iter().map(|n| n.key.as_str()).collect()
    }

    #[test]
    fn fragments_are_flattened_and_repeated_fields_merged() {
        let p = compile(
            r#"query Q { u: user(id: "1") { id ...F ... on User { address { city } } orders { id } }
               user(id: "2") { __typename } }
               fragment F on User { id displayName address { street } }"#,
            None,
        )
        .unwrap();
        assert!(!p.serial);
        assert_eq!(p.roots.len(), 2);
        let sel = p.roots[0].sel.as_ref().unwrap();
        assert_eq!(keys(sel), ["id", "displayName", "address", "orders"]);
        let Some(NodeKind::Field {
            sel: Some(address), ..
        }) = sel.nodes.get(2).map(|n| &n.kind)
        else {
            panic!("address is a message field");
        };
        assert_eq!(keys(address), ["street", "city"], "merged");
        assert!(sel.links, "orders is a link");
        assert!(matches!(
            sel.nodes[3].kind,
            NodeKind::Link { non_null: true, .. }
        ));
        let typename = &p.roots[1].sel.as_ref().unwrap().nodes[0].kind;
        assert!(matches!(typename, NodeKind::Typename(Gql::String(s)) if s == "User"));
    }

    #[test]
    fn fragments_on_other_types_do_not_apply_and_conditions_are_kept() {
        let p = compile(
            r#"query ($x: Boolean!) { user(id: "1") { ... on Order { id } id @skip(if: $x) ...F @include(if: $x) } }
               fragment F on User { email }"#,
            None,
        )
        .unwrap();
        let sel = p.roots[0].sel.as_ref().unwrap();
        assert_eq!(keys(sel), ["id", "email"]);
        assert!(!sel.nodes[0].conds[0].include);
        assert!(sel.nodes[1].conds[0].include);
        assert_eq!(p.variables.len(), 1);
    }

    #[test]
    fn what_a_plan_cannot_express_has_none() {
        for q in [
            r#"{ __schema { types { name } } }"#,
            r#"{ __typename user(id: "1") { id } }"#,
            r#"subscription { watchOrders(userId: "1") { sequence } }"#,
            r#"{ user(id: "1") { nope } }"#,
            r#"{ nope { id } }"#,
            r#"query ($x: Boolean!) { user(id: "1") { id @skip(if: $x) id } }"#,
            r#"{ user(id: "1") { ...Missing } }"#,
            r#"query A { user(id: "1") { id } } query B { user(id: "2") { id } }"#,
        ] {
            assert!(compile(q, None).is_none(), "{q}");
        }
        // Named operations of a document with several.
        let q = r#"query A { user(id: "1") { id } } mutation B { createUser(validateOnly: true) { id } }"#;
        assert!(!compile(q, Some("A")).unwrap().serial);
        assert!(compile(q, Some("B")).unwrap().serial);
        assert!(compile(q, Some("C")).is_none());
    }

    #[test]
    fn the_cache_remembers_what_it_compiled_and_is_bounded() {
        let g = demo_schema();
        let model = g.plan_model.as_ref().unwrap();
        let q = r#"{ user(id: "1") { id } }"#;
        let doc = async_graphql::parser::parse_query(q).unwrap();
        let a = g
            .plans
            .get(model, g.schema.registry(), q, None, &doc)
            .unwrap();
        let b = g
            .plans
            .get(model, g.schema.registry(), q, None, &doc)
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(g.plans.planned(q, None), Some(true));
        assert_eq!(g.plans.planned(q, Some("other")), None);
        for i in 0..PLAN_CACHE_CAPACITY + 1 {
            let q = format!(r#"{{ user(id: "{i}") {{ id }} }}"#);
            let doc = async_graphql::parser::parse_query(&q).unwrap();
            g.plans.get(model, g.schema.registry(), &q, None, &doc);
        }
        assert!(g.plans.len() <= PLAN_CACHE_CAPACITY);
        let long = format!("{{ user(id: \"{}\") {{ id }} }}", "9".repeat(MAX_QUERY_LEN));
        let doc = async_graphql::parser::parse_query(&long).unwrap();
        assert!(
            g.plans
                .get(model, g.schema.registry(), &long, None, &doc)
                .is_none()
        );
    }
}
