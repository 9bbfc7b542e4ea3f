//! Links: fields added to message types by configuration, resolved by another call with
//! arguments taken from the parent message. A link with a batch method is served through the
//! request's batcher ([`crate::fanout::batch`]): every parent in one round of resolution
//! shares one call per batch, and results are matched to parents by key, never by position.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::Error;
use futures::future::join_all;
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, MethodDescriptor, Value,
};

use super::output::Part;
use super::shape::{Shape, Wkt};
use crate::error::graphql::field_error;
use crate::graphql::engine::context::Calls;
use crate::request::policy::CallSite;
use crate::transcode::FieldPath;
use crate::upstream::Target;

/// A link, resolved against the descriptors at build time.
#[derive(Clone, Debug)]
pub struct LinkPlan {
    /// Position in the snapshot's link table.
    pub index: usize,
    /// The message the field is added to.
    pub on: MessageDescriptor,
    /// The GraphQL field name.
    pub field: String,
    /// The method called for one parent.
    pub method: MethodDescriptor,
    /// Its call target (backend, timeout, idempotency).
    pub target: Arc<Target>,
    /// The call site policies see: `Type.field`.
    pub site: CallSite,
    /// Request field <- parent field.
    pub args: Vec<(FieldPath, FieldPath)>,
    /// The response field returned instead of the whole response.
    pub result: Option<FieldDescriptor>,
    /// How to batch, if configured.
    pub batch: Option<BatchPlan>,
    /// The shape of the field's value.
    pub shape: Shape,
    /// Description in the schema.
    pub description: Option<String>,
}

/// The batch side of a link.
#[derive(Clone, Debug)]
pub struct BatchPlan {
    /// The batch method.
    pub method: MethodDescriptor,
    /// Its call target (backend, timeout, idempotency).
    pub target: Arc<Target>,
    /// The call site policies see: `Type.field`.
    pub site: CallSite,
    /// Its repeated request field receiving the keys.
    pub keys: FieldDescriptor,
    /// Its repeated response field with the results.
    pub results: FieldDescriptor,
    /// The field of a result that equals its key.
    pub key: FieldDescriptor,
    /// The parent field the key comes from.
    pub parent_key: FieldPath,
    /// Most keys per call.
    pub max_batch: usize,
}

/// The value at a field path of a message (`None` when an intermediate message is unset).
pub fn value_at<'a>(msg: &'a DynamicMessage, path: &FieldPath) -> Option<Cow<'a, Value>> {
    let (last, init) = path.fields().split_last()?;
    let mut cur = msg;
    for f in init {
        if !cur.has_field(f) {
            return None;
        }
        match cur.get_field(f) {
            Cow::Borrowed(Value::Message(m)) => cur = m,
            _ => return None,
        }
    }
    Some(cur.get_field(last))
}

/// A batch key from a scalar value (strings, integers, bools).
pub fn map_key(v: &Value) -> Option<MapKey> {
    Some(match v {
        Value::String(s) => MapKey::String(s.clone()),
        Value::I64(n) => MapKey::I64(*n),
        Value::U64(n) => MapKey::U64(*n),
        Value::I32(n) => MapKey::I32(*n),
        Value::U32(n) => MapKey::U32(*n),
        Value::Bool(b) => MapKey::Bool(*b),
        _ => return None,
    })
}

impl LinkPlan {
    /// The request of the non-batched call for one parent.
    pub fn request_for(&self, parent: &DynamicMessage) -> Result<DynamicMessage, Error> {
        let mut req = DynamicMessage::new(self.method.input());
        for (to, from) in &self.args {
            let Some(v) = value_at(parent, from) else {
                continue;
            };
            set_at(&mut req, to, v.into_owned())?;
        }
        Ok(req)
    }

    /// Whether the parent has nothing to look up (e.g. an empty key): the field is null.
    pub fn key_of(&self, parent: &DynamicMessage) -> Option<MapKey> {
        let b = self.batch.as_ref()?;
        let v = value_at(parent, &b.parent_key)?;
        let k = map_key(&v)?;
        let empty = matches!(&k, MapKey::String(s) if s.is_empty());
        (!empty).then_some(k)
    }
}

fn set_at(msg: &mut DynamicMessage, path: &FieldPath, value: Value) -> Result<(), Error> {
    let Some((last, init)) = path.fields().split_last() else {
        return Ok(());
    };
    let mut cur = msg;
    for f in init {
        cur = match cur.get_field_mut(f) {
            Value::Message(m) => m,
            _ => return Err(Error::new("internal: link argument path is not a message")),
        };
    }
    cur.try_set_field(last, value)
        .map_err(|e| Error::new(format!("internal: link argument: {e}")))
}

/// A key of the link loader: which link, which key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LinkKey {
    /// The link's index.
    pub link: usize,
    /// The key value.
    pub key: MapKey,
}

/// Loads batched links for one request.
pub struct LinkLoader {
    pub(crate) calls: Arc<Calls>,
    pub(crate) links: Arc<Vec<LinkPlan>>,
}

/// A loaded item, or the error of the batch call that should have brought it.
pub type LinkValue = Result<Part, Error>;

impl LinkLoader {
    /// Loads distinct keys: one call per batch link and chunk of at most `max_batch` keys,
    /// all concurrently. A key the backend did not return is missing from the answer.
    pub async fn load(&self, keys: &[LinkKey]) -> HashMap<LinkKey, LinkValue> {
        let mut by_link: HashMap<usize, Vec<MapKey>> = HashMap::new();
        for k in keys {
            by_link.entry(k.link).or_default().push(k.key.clone());
        }
        let mut jobs = Vec::new();
        for (link, mut ks) in by_link {
            let Some(plan) = self.links.get(link) else {
                continue;
            };
            let Some(batch) = &plan.batch else {
                continue;
            };
            ks.sort();
            for chunk in ks.chunks(batch.max_batch.max(1)) {
                jobs.push(self.load_chunk(plan, batch, chunk.to_vec()));
            }
        }
        let mut out = HashMap::new();
        for part in join_all(jobs).await {
            out.extend(part);
        }
        out
    }

    async fn load_chunk(
        &self,
        plan: &LinkPlan,
        batch: &BatchPlan,
        keys: Vec<MapKey>,
    ) -> Vec<(LinkKey, LinkValue)> {
        let mut req = DynamicMessage::new(batch.method.input());
        let list = Value::List(keys.iter().cloned().map(Value::from).collect());
        if let Err(e) = req.try_set_field(&batch.keys, list) {
            let err = Error::new(format!("internal: batch keys: {e}"));
            return keys
                .into_iter()
                .map(|k| {
                    (
                        LinkKey {
                            link: plan.index,
                            key: k,
                        },
                        Err(err.clone()),
                    )
                })
                .collect();
        }
        let reply = self.calls.call(&batch.target, &batch.site, req).await;
        match reply {
            Err(e) => {
                let err = field_error(
                    &e,
                    Some(batch.method.parent_service().full_name()),
                    Some(&self.calls.pool),
                );
                keys.into_iter()
                    .map(|k| {
                        (
                            LinkKey {
                                link: plan.index,
                                key: k,
                            },
                            Err(err.clone()),
                        )
                    })
                    .collect()
            }
            Ok(msg) => {
                let mut found = Vec::new();
                if let Value::List(items) = msg.get_field(&batch.results).as_ref() {
                    for (i, item) in items.iter().enumerate() {
                        let Some(item) = item.as_message() else {
                            continue;
                        };
                        let Some(k) = map_key(item.get_field(&batch.key).as_ref()) else {
                            continue;
                        };
                        found.push((
                            LinkKey {
                                link: plan.index,
                                key: k,
                            },
                            Ok(Part::item(msg.clone(), batch.results.clone(), i)),
                        ));
                    }
                }
                found
            }
        }
    }
}

/// Checks that a link's value kinds line up: `from` (parent) into `to` (request).
pub fn compatible(to: &FieldDescriptor, from: &FieldDescriptor) -> bool {
    if to.is_list() != from.is_list() || to.is_map() != from.is_map() {
        return false;
    }
    match (to.kind(), from.kind()) {
        (Kind::Message(a), Kind::Message(b)) => a.full_name() == b.full_name(),
        (Kind::Enum(a), Kind::Enum(b)) => a.full_name() == b.full_name(),
        (a, b) => a == b,
    }
}

/// The message type a link's value is made of, for type checks (None for scalars/WKTs).
pub fn item_message(shape: &Shape) -> Option<&MessageDescriptor> {
    match shape {
        Shape::Object(m) => Some(m),
        Shape::List(inner) => item_message(inner),
        _ => None,
    }
}

/// Whether a message is shown as an object (not a scalar-like well-known type).
pub fn is_object(m: &MessageDescriptor) -> bool {
    Wkt::of(m).is_none()
}
