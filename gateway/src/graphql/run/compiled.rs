//! Running a compiled query or mutation ([`crate::graphql::engine::plan`]): the root fields'
//! calls run concurrently (one after the other for a mutation), links are loaded through the operation's batcher as the interpreted
//! executor's resolvers do (one batch call per round, identical calls made once), and the
//! response is written from the replies in one pass over the plan, without a resolver or a
//! future per field.
//!
//! The answer is the interpreted executor's, field for field: the same values, nulls, error
//! messages, locations and paths (a field that fails is null with its error; a non-null one
//! that fails is left out with a second, "non-null" error, as async-graphql's dynamic
//! executor does), except that fields keep the order of the selection, where async-graphql
//! orders concurrent root fields by completion.

use std::borrow::Cow;

use async_graphql::indexmap::IndexMap;
use async_graphql::{Error, Name, Pos, Response, ServerError, Value as Gql, Variables};
use futures::FutureExt;
use futures::future::{BoxFuture, join_all};
use prost_reflect::{DynamicMessage, Value};

use super::values::{leaf, object_value};
use crate::config::RedactAction;
use crate::error::GatewayError;
use crate::error::graphql::field_error;
use crate::graphql::engine::context::GraphqlCtx;
use crate::graphql::engine::plan::{Cond, Node, NodeKind, OpPlan, RootNode, Sel};
use crate::graphql::engine::schema::input::args_to_message;
use crate::graphql::engine::schema::links::{LinkKey, LinkPlan};
use crate::graphql::engine::schema::output::map_key;
use crate::graphql::engine::schema::shape::Shape;
use crate::shaping::redact::redact_str;
use crate::upstream::{Payload, ReplyForm};

/// One segment of a response path.
#[derive(Clone, Debug)]
enum Seg {
    Key(Name),
    Index(usize),
}

type Path = Vec<Seg>;

/// What resolving one field gave: its value (`None`: left out of its object) and the errors
/// raised at or below it, in document order.
struct Out {
    value: Option<Gql>,
    errors: Vec<ServerError>,
}

/// What a root field gave: a value, or its JSON text written from the reply's bytes.
enum Root {
    Value(Out),
    Json(Vec<u8>),
}

/// What running a plan gave: the response, and with [`run`]'s `json`, the JSON text of its
/// `data` (the response's own `data` is then only null or not: an empty object stands for
/// any other value).
pub struct Ran {
    /// The response: errors, extensions, and `data` unless written as JSON.
    pub response: Response,
    /// `data` as JSON text, when asked for.
    pub data_json: Option<Vec<u8>>,
}

/// Runs `plan` with the request's `variables` on the operation context `g`. With `json`,
/// `data` comes back as JSON text ([`Ran::data_json`]): root fields read from their replies'
/// bytes are written straight to it, without a GraphQL value in between.
pub async fn run(plan: &OpPlan, variables: &Variables, g: &GraphqlCtx, json: bool) -> Ran {
    let run = Run { g, variables, plan };
    let roots = plan.roots.iter().filter(|r| !run.skipped(&r.conds));
    let outs = if plan.serial {
        // A mutation's fields run one after the other, in order.
        let mut outs = Vec::new();
        for r in roots {
            outs.push(run.root(r).await);
        }
        outs
    } else {
        join_all(roots.map(|r| run.root(r))).await
    };
    let roots = plan.roots.iter().filter(|r| !run.skipped(&r.conds));
    let mut errors = Vec::new();
    let (data, data_json) = if json {
        let mut text = Vec::new();
        for (root, out) in roots.zip(outs) {
            let piece = match out {
                Root::Json(piece) => Some(Piece::Json(piece)),
                Root::Value(out) => {
                    errors.extend(out.errors);
                    out.value.map(Piece::Value)
                }
            };
            if let Some(piece) = piece {
                text.push(if text.is_empty() { b'{' } else { b',' });
                piece.write(root.key.as_str(), &mut text);
            }
        }
        if text.is_empty() {
            (Gql::Null, Some(b"null".to_vec()))
        } else {
            text.push(b'}');
            (Gql::Object(IndexMap::new()), Some(text))
        }
    } else {
        let mut data = IndexMap::new();
        for (root, out) in roots.zip(outs) {
            let value = match out {
                Root::Json(piece) => match serde_json::from_slice::<Gql>(&piece) {
                    Ok(v) => Some(v),
                    // Text this module wrote always reads back; say so if it ever does not.
                    Err(_) => {
                        let path = [Seg::Key(root.key.clone())];
                        let e = Error::new("internal: the reply could not be written");
                        errors.push(at(e, root.pos, &path));
                        Some(Gql::Null)
                    }
                },
                Root::Value(out) => {
                    errors.extend(out.errors);
                    out.value
                }
            };
            if let Some(v) = value {
                data.insert(root.key.clone(), v);
            }
        }
        (object_value(data), None)
    };
    let mut response = Response::new(data);
    response.errors = errors;
    Ran {
        response,
        data_json,
    }
}

/// One entry of `data` written as JSON text.
enum Piece {
    Value(Gql),
    Json(Vec<u8>),
}

impl Piece {
    /// Writes `"key":value` to `out`.
    fn write(&self, key: &str, out: &mut Vec<u8>) {
        // Strings and GraphQL values always serialize (string keys only); a failure would
        // leave `null`, still valid JSON.
        if serde_json::to_writer(&mut *out, key).is_err() {
            out.extend_from_slice(b"\"\"");
        }
        out.push(b':');
        match self {
            Piece::Json(text) => out.extend_from_slice(text),
            Piece::Value(v) => {
                let start = out.len();
                if serde_json::to_writer(&mut *out, v).is_err() {
                    out.truncate(start);
                    out.extend_from_slice(b"null");
                }
            }
        }
    }
}

struct Run<'a> {
    g: &'a GraphqlCtx,
    variables: &'a Variables,
    plan: &'a OpPlan,
}

/// An error of a field at `path`, located at `pos`.
fn at(e: Error, pos: Pos, path: &[Seg]) -> ServerError {
    let mut err = e.into_server_error(pos);
    err.path = path
        .iter()
        .map(|s| match s {
            Seg::Key(k) => async_graphql::PathSegment::Field(k.to_string()),
            Seg::Index(i) => async_graphql::PathSegment::Index(*i),
        })
        .collect();
    err
}

/// Records the result of a field: its value, or null with its error; a non-null field that
/// failed is left out, with the executor's second error.
fn settle(
    r: Result<Gql, Error>,
    non_null: bool,
    pos: Pos,
    path: &[Seg],
    errors: &mut Vec<ServerError>,
) -> Option<Gql> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            errors.push(at(e, pos, path));
            if non_null {
                errors.push(at(
                    Error::new("internal: non-null types require a return value"),
                    pos,
                    path,
                ));
                None
            } else {
                Some(Gql::Null)
            }
        }
    }
}

impl<'a> Run<'a> {
    /// Whether `@skip` / `@include` leave a field out.
    fn skipped(&self, conds: &[Cond]) -> bool {
        conds.iter().any(|c| {
            let value = c
                .directive
                .node
                .get_argument("if")
                .and_then(|v| {
                    v.node
                        .clone()
                        .into_const_with(|name| self.variables.get(&name).cloned().ok_or(()))
                        .ok()
                })
                .unwrap_or_default();
            let value = matches!(value, Gql::Boolean(true));
            c.include != value
        })
    }

    /// A variable's value: the request's, else its default.
    fn variable(&self, name: &Name, pos: Pos) -> Result<Gql, ServerError> {
        self.plan
            .variables
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(n, default)| self.variables.get(n).or(default.as_ref()))
            .cloned()
            .ok_or_else(|| ServerError::new(format!("Variable {name} is not defined."), Some(pos)))
    }

    async fn root(&self, r: &'a RootNode) -> Root {
        let mut args = IndexMap::new();
        for (name, value) in &r.field.node.arguments {
            let pos = value.pos;
            match value
                .node
                .clone()
                .into_const_with(|var| self.variable(&var, pos))
            {
                Ok(v) => {
                    args.insert(name.node.clone(), v);
                }
                Err(e) => {
                    return Root::Value(Out {
                        value: None,
                        errors: vec![e],
                    });
                }
            }
        }
        let path = vec![Seg::Key(r.key.clone())];
        let target = &r.def.target;
        let rendered = |e: GatewayError| {
            field_error(
                &e,
                Some(target.method.parent_service().full_name()),
                Some(self.g.pool()),
            )
        };
        // A message without links selected: its reply is projected from the wire bytes.
        let from_wire =
            matches!((&r.def.shape, &r.sel), (Shape::Object(_), Some(sel)) if !sel.links);
        let form = if from_wire {
            ReplyForm::Wire
        } else {
            ReplyForm::Decoded
        };
        let reply = match args_to_message(&target.method.input(), &args, self.g.max_struct_values())
        {
            Ok(req) => self
                .g
                .call_as(target, &r.def.site, req, form)
                .await
                .map_err(rendered),
            Err(e) => Err(e),
        };
        if let (Ok(Payload::Wire(bytes)), Some(sel)) = (&reply, &r.sel)
            && from_wire
        {
            let mut json = Vec::with_capacity(bytes.len() * 2);
            let output = target.method.output();
            if super::wire::project(bytes, &output, sel, &|c| self.skipped(c), &mut json).is_some()
            {
                return Root::Json(json);
            }
        }
        let reply = reply.and_then(|p| {
            p.into_message(&target.method.output(), &target.backend)
                .map_err(|e| rendered(e.into()))
        });
        let mut errors = Vec::new();
        let value = match reply {
            Err(e) => Err(e),
            Ok(reply) => match (&r.def.shape, &r.sel) {
                (Shape::Object(_), Some(sel)) if sel.links => {
                    let (v, errs) = self.object_async(&reply, sel, path.clone()).await;
                    errors = errs;
                    Ok(v)
                }
                (Shape::Object(_), Some(sel)) => {
                    let mut path = path.clone();
                    Ok(self.object(&reply, sel, &mut path, &mut errors))
                }
                (shape, _) => leaf(&Value::Message((*reply).clone()), shape),
            },
        };
        let mut all = Vec::new();
        let value = settle(value, false, r.pos, &path, &mut all);
        all.extend(errors);
        Root::Value(Out { value, errors: all })
    }

    /// The selection `sel` (without links) of message `msg`, errors pushed to `errors`.
    fn object(
        &self,
        msg: &DynamicMessage,
        sel: &Sel,
        path: &mut Path,
        errors: &mut Vec<ServerError>,
    ) -> Gql {
        let mut map = IndexMap::with_capacity(sel.nodes.len());
        for node in &sel.nodes {
            if !node.conds.is_empty() && self.skipped(&node.conds) {
                continue;
            }
            path.push(Seg::Key(node.key.clone()));
            if let Some(v) = self.node_sync(msg, node, path, errors) {
                map.insert(node.key.clone(), v);
            }
            path.pop();
        }
        object_value(map)
    }

    /// A field without links below it.
    fn node_sync(
        &self,
        msg: &DynamicMessage,
        node: &Node,
        path: &mut Path,
        errors: &mut Vec<ServerError>,
    ) -> Option<Gql> {
        match &node.kind {
            NodeKind::Typename(v) => Some(v.clone()),
            NodeKind::Field {
                fd,
                shape,
                non_null,
                redact,
                sel,
            } => {
                let mut inner = Vec::new();
                let r = self.field(msg, fd, shape, *redact, sel.as_ref(), path, &mut inner);
                let v = settle(r, *non_null, node.pos, path, errors);
                errors.extend(inner);
                v
            }
            // Only in selections with links, or on map entries (see `entry`).
            NodeKind::Link { .. } | NodeKind::MapKey | NodeKind::MapValue { .. } => Some(Gql::Null),
        }
    }

    /// The value of field `fd` of `msg`.
    #[allow(clippy::too_many_arguments)]
    fn field(
        &self,
        msg: &DynamicMessage,
        fd: &prost_reflect::FieldDescriptor,
        shape: &Shape,
        redact: Option<RedactAction>,
        sel: Option<&Sel>,
        path: &mut Path,
        errors: &mut Vec<ServerError>,
    ) -> Result<Gql, Error> {
        let unset = !fd.is_list() && !fd.is_map() && fd.supports_presence() && !msg.has_field(fd);
        match redact {
            Some(RedactAction::Drop) => return Ok(Gql::Null),
            Some(action) => {
                if !fd.is_list() && fd.supports_presence() && !msg.has_field(fd) {
                    return Ok(Gql::Null);
                }
                let one =
                    |v: &Value| Gql::String(redact_str(v.as_str().unwrap_or_default(), action));
                return Ok(match msg.get_field(fd).as_ref() {
                    Value::List(items) => Gql::List(items.iter().map(one).collect()),
                    v => one(v),
                });
            }
            None => {}
        }
        if unset {
            return Ok(Gql::Null);
        }
        self.value(&msg.get_field(fd), shape, sel, path, errors)
    }

    /// A protobuf value of `shape`, objects projected through `sel` (no links below).
    fn value(
        &self,
        v: &Value,
        shape: &Shape,
        sel: Option<&Sel>,
        path: &mut Path,
        errors: &mut Vec<ServerError>,
    ) -> Result<Gql, Error> {
        match (shape, sel) {
            (Shape::Object(_), Some(sel)) => match v {
                Value::Message(m) => Ok(self.object(m, sel, path, errors)),
                _ => Err(Error::new("internal: expected a message value")),
            },
            (Shape::List(inner), Some(sel)) if matches!(inner.as_ref(), Shape::Object(_)) => {
                let Value::List(items) = v else {
                    return Ok(Gql::List(Vec::new()));
                };
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    path.push(Seg::Index(i));
                    out.push(match item {
                        Value::Message(m) => self.object(m, sel, path, errors),
                        _ => Gql::Null,
                    });
                    path.pop();
                }
                Ok(Gql::List(out))
            }
            (Shape::Map { .. }, Some(sel)) => Ok(self.map(v, sel, path, errors)),
            (shape, _) => leaf(v, shape),
        }
    }

    /// A map field: its entries sorted by key, each projected through `sel`.
    fn map(&self, v: &Value, sel: &Sel, path: &mut Path, errors: &mut Vec<ServerError>) -> Gql {
        let Some(map) = v.as_map() else {
            return Gql::List(Vec::new());
        };
        let mut entries: Vec<_> = map.iter().collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        let mut out = Vec::with_capacity(entries.len());
        for (i, (k, value)) in entries.into_iter().enumerate() {
            path.push(Seg::Index(i));
            let mut obj = IndexMap::with_capacity(sel.nodes.len());
            for node in &sel.nodes {
                if !node.conds.is_empty() && self.skipped(&node.conds) {
                    continue;
                }
                path.push(Seg::Key(node.key.clone()));
                let v = match &node.kind {
                    NodeKind::Typename(t) => Some(t.clone()),
                    NodeKind::MapKey => Some(map_key(k)),
                    NodeKind::MapValue {
                        shape,
                        non_null,
                        sel,
                    } => {
                        let mut inner = Vec::new();
                        let r = self.value(value, shape, sel.as_ref(), path, &mut inner);
                        let v = settle(r, *non_null, node.pos, path, errors);
                        errors.extend(inner);
                        v
                    }
                    _ => Some(Gql::Null),
                };
                if let Some(v) = v {
                    obj.insert(node.key.clone(), v);
                }
                path.pop();
            }
            out.push(object_value(obj));
            path.pop();
        }
        Gql::List(out)
    }

    /// The selection `sel` of `msg` when links are selected in it or below: every call
    /// waits together, so the batcher sees a whole round.
    fn object_async<'m>(
        &'m self,
        msg: &'m DynamicMessage,
        sel: &'m Sel,
        path: Path,
    ) -> BoxFuture<'m, (Gql, Vec<ServerError>)> {
        async move {
            let mut slots: Vec<(&Node, Option<Out>)> = Vec::with_capacity(sel.nodes.len());
            let mut pending = Vec::new();
            for node in &sel.nodes {
                if !node.conds.is_empty() && self.skipped(&node.conds) {
                    continue;
                }
                let mut p = path.clone();
                p.push(Seg::Key(node.key.clone()));
                match &node.kind {
                    NodeKind::Link {
                        plan,
                        non_null,
                        sel,
                    } => {
                        pending.push(self.link(msg, node.pos, plan, *non_null, sel.as_ref(), p));
                        slots.push((node, None));
                    }
                    NodeKind::Field {
                        fd,
                        shape,
                        non_null,
                        redact: None,
                        sel: Some(s),
                    } if s.links => {
                        pending.push(self.field_async(msg, node.pos, fd, shape, *non_null, s, p));
                        slots.push((node, None));
                    }
                    _ => {
                        let mut errors = Vec::new();
                        let value = self.node_sync(msg, node, &mut p, &mut errors);
                        slots.push((node, Some(Out { value, errors })));
                    }
                }
            }
            let mut done = join_all(pending).await.into_iter();
            let mut map = IndexMap::with_capacity(slots.len());
            let mut errors = Vec::new();
            for (node, out) in slots {
                let Some(out) = out.or_else(|| done.next()) else {
                    continue;
                };
                errors.extend(out.errors);
                if let Some(v) = out.value {
                    map.insert(node.key.clone(), v);
                }
            }
            (object_value(map), errors)
        }
        .boxed()
    }

    /// A message or list-of-messages field with links below it.
    #[allow(clippy::too_many_arguments)]
    fn field_async<'m>(
        &'m self,
        msg: &'m DynamicMessage,
        pos: Pos,
        fd: &'m prost_reflect::FieldDescriptor,
        shape: &'m Shape,
        non_null: bool,
        sel: &'m Sel,
        path: Path,
    ) -> BoxFuture<'m, Out> {
        async move {
            let unset = !fd.is_list() && fd.supports_presence() && !msg.has_field(fd);
            if unset {
                return Out {
                    value: Some(Gql::Null),
                    errors: Vec::new(),
                };
            }
            let (r, inner) = match msg.get_field(fd) {
                Cow::Borrowed(v) => self.value_async(v, shape, sel, path.clone()).await,
                // Only an unset list comes back owned: it is empty.
                Cow::Owned(_) => (Ok(Gql::List(Vec::new())), Vec::new()),
            };
            let mut errors = Vec::new();
            let value = settle(r, non_null, pos, &path, &mut errors);
            errors.extend(inner);
            Out { value, errors }
        }
        .boxed()
    }

    /// A value of `shape` (an object or a list of objects) projected through `sel`, which
    /// selects links.
    async fn value_async(
        &self,
        v: &Value,
        shape: &Shape,
        sel: &Sel,
        path: Path,
    ) -> (Result<Gql, Error>, Vec<ServerError>) {
        match (shape, v) {
            (Shape::Object(_), Value::Message(m)) => {
                let (v, errors) = self.object_async(m, sel, path).await;
                (Ok(v), errors)
            }
            (Shape::List(_), Value::List(items)) => {
                let items = items.iter().enumerate().map(|(i, item)| {
                    let mut p = path.clone();
                    p.push(Seg::Index(i));
                    async move {
                        match item {
                            Value::Message(m) => self.object_async(m, sel, p).await,
                            _ => (Gql::Null, Vec::new()),
                        }
                    }
                });
                let mut errors = Vec::new();
                let mut out = Vec::new();
                for (v, errs) in join_all(items).await {
                    out.push(v);
                    errors.extend(errs);
                }
                (Ok(Gql::List(out)), errors)
            }
            (Shape::List(_), _) => (Ok(Gql::List(Vec::new())), Vec::new()),
            _ => (
                Err(Error::new("internal: expected a message value")),
                Vec::new(),
            ),
        }
    }

    /// A link field of `parent`.
    fn link<'m>(
        &'m self,
        parent: &'m DynamicMessage,
        pos: Pos,
        plan: &'m LinkPlan,
        non_null: bool,
        sel: Option<&'m Sel>,
        path: Path,
    ) -> BoxFuture<'m, Out> {
        async move {
            let (r, inner) = self.resolve_link(parent, plan, sel, &path).await;
            let mut errors = Vec::new();
            let value = settle(r, non_null, pos, &path, &mut errors);
            errors.extend(inner);
            Out { value, errors }
        }
        .boxed()
    }

    async fn resolve_link(
        &self,
        parent: &DynamicMessage,
        plan: &LinkPlan,
        sel: Option<&Sel>,
        path: &Path,
    ) -> (Result<Gql, Error>, Vec<ServerError>) {
        if plan.batch.is_some() {
            let Some(key) = plan.key_of(parent) else {
                return (Ok(Gql::Null), Vec::new());
            };
            let loaded = self
                .g
                .links
                .load_one(LinkKey {
                    link: plan.index,
                    key,
                })
                .await;
            return match loaded {
                Err(e) => (Err(Error::new(e.to_string())), Vec::new()),
                Ok(None) => (Ok(Gql::Null), Vec::new()),
                Ok(Some(Err(e))) => (Err(e), Vec::new()),
                Ok(Some(Ok(part))) => match (part.message(), sel) {
                    (Some(m), Some(sel)) => self.project(m, sel, path.clone()).await,
                    (Some(m), None) => (leaf(&Value::Message(m.clone()), &plan.shape), Vec::new()),
                    (None, _) => (
                        Err(Error::new("internal: the parent value is not a message")),
                        Vec::new(),
                    ),
                },
            };
        }
        let req = match plan.request_for(parent) {
            Ok(req) => req,
            Err(e) => return (Err(e), Vec::new()),
        };
        let reply = match self.g.call(&plan.target, &plan.site, req).await {
            Ok(reply) => reply,
            Err(e) => {
                let e = field_error(
                    &e,
                    Some(plan.method.parent_service().full_name()),
                    Some(self.g.pool()),
                );
                return (Err(e), Vec::new());
            }
        };
        let Some(rf) = &plan.result else {
            return match (&plan.shape, sel) {
                (Shape::Object(_), Some(sel)) => self.project(&reply, sel, path.clone()).await,
                (shape, _) => (leaf(&Value::Message((*reply).clone()), shape), Vec::new()),
            };
        };
        if !rf.is_list() && rf.supports_presence() && !reply.has_field(rf) {
            return (Ok(Gql::Null), Vec::new());
        }
        let v = reply.get_field(rf);
        match (&plan.shape, sel) {
            (Shape::Object(_), Some(sel)) => match v.as_ref() {
                Value::Message(m) => self.project(m, sel, path.clone()).await,
                _ => (Ok(Gql::Null), Vec::new()),
            },
            (Shape::List(_), Some(sel)) if sel.links => {
                self.value_async(v.as_ref(), &plan.shape, sel, path.clone())
                    .await
            }
            (shape, sel) => {
                let mut p = path.clone();
                let mut errors = Vec::new();
                let r = self.value(v.as_ref(), shape, sel, &mut p, &mut errors);
                (r, errors)
            }
        }
    }

    /// `sel` of `m`, with or without links.
    async fn project(
        &self,
        m: &DynamicMessage,
        sel: &Sel,
        path: Path,
    ) -> (Result<Gql, Error>, Vec<ServerError>) {
        if sel.links {
            let (v, errors) = self.object_async(m, sel, path).await;
            (Ok(v), errors)
        } else {
            let mut p = path;
            let mut errors = Vec::new();
            let v = self.object(m, sel, &mut p, &mut errors);
            (Ok(v), errors)
        }
    }
}
