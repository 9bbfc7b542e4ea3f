//! The direct paths between protobuf wire bytes and proto3 JSON, without a `DynamicMessage`
//! tree in between. A plan per message type (fields sorted by number and found by name, JSON
//! keys pre-escaped, kinds resolved) is built once from the descriptors when a snapshot is
//! built; two walkers use it:
//! - `to_json`: a reply's wire bytes -> canonical JSON ([`encode`], [`TypePlan::encode`]);
//! - `from_json`: a request's JSON -> wire bytes ([`TypePlan::decode`]).
//!
//! Each is held to prost-reflect's behaviour by differential tests; what a walker does not
//! handle it refuses with [`Unsupported`], and the caller takes the `DynamicMessage` path.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use prost_reflect::{EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor};
use serde::Serialize;

use super::scalar::is_well_known_type;
use super::{DecodeOptions, EncodeOptions};

mod from_json;
pub(crate) mod to_json;

pub use from_json::Refusal;
pub use to_json::encode;
use to_json::encode_at;

/// How deep messages may nest before this path gives up.
pub const MAX_DEPTH: usize = 64;

/// The direct path cannot encode these bytes; encode the decoded message instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unsupported(pub &'static str);

/// The plans of some message types and of every message type they contain (each type once,
/// shared by every type that contains it).
#[derive(Debug)]
pub struct Plans {
    plans: Vec<MessagePlan>,
    /// The plan of each type, by full name.
    index: HashMap<String, usize>,
    /// The type [`encode`] writes (the first type given).
    root: usize,
}

/// One message type's plan inside a shared [`Plans`]: what a route keeps to write its replies.
#[derive(Clone, Debug)]
pub struct TypePlan {
    plans: Arc<Plans>,
    index: usize,
}

impl TypePlan {
    /// Encodes the message `bytes` of this type as JSON (see [`encode`]).
    pub fn encode(&self, bytes: &[u8], opts: &EncodeOptions) -> Result<Vec<u8>, Unsupported> {
        encode_at(&self.plans, self.index, bytes, opts)
    }

    /// Encodes the JSON document `json` as a message of this type: its wire bytes (see
    /// `from_json`), within the limits of `opts`.
    pub fn decode(&self, json: &[u8], opts: &DecodeOptions) -> Result<Vec<u8>, Refusal> {
        from_json::decode_at(&self.plans, self.index, json, limits(opts))
    }

    /// Encodes `json` as the value of the field at `path` (singular message fields from this
    /// type down, then the field) and returns the bytes of a message of this type holding it,
    /// as prost-reflect would set it: a blank document is `{}` for a message field and leaves
    /// any other field unset, as do `null`, `[]` and a proto3 default (then nothing is
    /// written, not even the messages on the way).
    pub fn decode_into_path(
        &self,
        path: &[FieldDescriptor],
        json: &[u8],
        opts: &DecodeOptions,
    ) -> Result<Vec<u8>, Refusal> {
        let limits = limits(opts);
        let unsupported = |why: &str| Refusal::Unsupported(why.to_owned());
        let (last, lead) = path
            .split_last()
            .ok_or_else(|| unsupported("an empty field path"))?;
        let index_of = |desc: &MessageDescriptor| {
            self.plans
                .index
                .get(desc.full_name())
                .copied()
                .ok_or_else(|| unsupported("a message type without a plan"))
        };
        let blank = super::body::is_blank(json);
        let mut bytes = match last.kind() {
            Kind::Message(m) if !last.is_list() && !last.is_map() => {
                if last.is_group() {
                    return Err(unsupported("a group"));
                }
                let content = if blank {
                    Vec::new()
                } else {
                    from_json::decode_at(&self.plans, index_of(&m)?, json, limits)?
                };
                let mut out = Vec::with_capacity(content.len() + 8);
                from_json::put_len_field(&mut out, last.number(), &content);
                out
            }
            _ if blank => return Ok(Vec::new()),
            _ => {
                let parent = index_of(last.parent_message())?;
                let field = self
                    .plans
                    .plans
                    .get(parent)
                    .and_then(|p| {
                        p.fields
                            .binary_search_by_key(&last.number(), |f| f.number)
                            .ok()
                    })
                    .ok_or_else(|| unsupported("a field without a plan"))?;
                from_json::decode_field_at(&self.plans, parent, field, json, limits)?
            }
        };
        if bytes.is_empty() {
            return Ok(bytes);
        }
        for f in lead.iter().rev() {
            if f.is_group() {
                return Err(unsupported("a group"));
            }
            let mut outer = Vec::with_capacity(bytes.len() + 8);
            from_json::put_len_field(&mut outer, f.number(), &bytes);
            bytes = outer;
        }
        Ok(bytes)
    }

    /// The full name of the type.
    pub fn type_name(&self) -> &str {
        self.plans
            .plans
            .get(self.index)
            .map_or("", |p| p.desc.full_name())
    }
}

#[derive(Debug)]
struct MessagePlan {
    desc: MessageDescriptor,
    /// A well-known type, written its own way.
    wkt: Wkt,
    /// Sorted by field number.
    fields: Vec<FieldPlan>,
    /// How many oneofs the message has (fields name theirs by index).
    oneofs: usize,
    /// Each field's index in `fields` by its JSON name and by its proto name (the JSON name
    /// wins where one field's JSON name is another's proto name, as in prost-reflect).
    by_name: HashMap<Box<str>, usize, BuildHasherDefault<NameHasher>>,
}

#[derive(Debug)]
struct FieldPlan {
    number: u32,
    /// `"jsonName":`, escaped.
    json_key: Box<[u8]>,
    /// `"proto_name":`, escaped.
    proto_key: Box<[u8]>,
    shape: Shape,
    /// Whether an unset field is left out even when defaults are written (it has presence).
    presence: bool,
    oneof: Option<usize>,
    /// A repeated scalar written as one length-delimited run.
    packed: bool,
    /// A message field written as a group (proto2 groups, editions' delimited encoding).
    group: bool,
    /// The field's proto name and JSON name (for finding it by a JSON key).
    names: (Box<str>, Box<str>),
}

/// How a well-known type is written.
#[derive(Debug)]
enum Wkt {
    /// Not one: an object of its fields.
    No,
    /// `"1972-01-01T10:00:20.021Z"`.
    Timestamp,
    /// `"1.5s"`.
    Duration,
    /// The wrapped value (`google.protobuf.Int64Value` -> `"5"`).
    Wrapper(Ty),
    /// Decoded and written by prost-reflect (Any, Struct, Value, ListValue, FieldMask,
    /// Empty).
    Other,
}

#[derive(Debug)]
enum Shape {
    Single(Ty),
    List(Ty),
    Map(Ty, Ty),
}

#[derive(Clone, Debug)]
enum Ty {
    Double,
    Float,
    Int32,
    Int64,
    Uint32,
    Uint64,
    Sint32,
    Sint64,
    Fixed32,
    Fixed64,
    Sfixed32,
    Sfixed64,
    Bool,
    String,
    Bytes,
    Enum(EnumDescriptor),
    /// The plan index.
    Message(usize),
}

impl Plans {
    /// The plans for `desc` and every message type reachable from it.
    pub fn new(desc: &MessageDescriptor) -> Arc<Plans> {
        Self::for_types(std::iter::once(desc.clone()))
    }

    /// The plans for each of `types` and every message type reachable from them; the first
    /// is the one [`encode`] writes.
    pub fn for_types(types: impl IntoIterator<Item = MessageDescriptor>) -> Arc<Plans> {
        let mut plans = Vec::new();
        let mut index = HashMap::new();
        let mut root = None;
        for desc in types {
            let i = plan_of(&desc, &mut plans, &mut index);
            root.get_or_insert(i);
        }
        Arc::new(Plans {
            plans,
            index,
            root: root.unwrap_or(0),
        })
    }

    /// The plan of `desc`, when it is one of the types these plans were built for (or one
    /// they contain).
    pub fn type_plan(self: &Arc<Self>, desc: &MessageDescriptor) -> Option<TypePlan> {
        let index = *self.index.get(desc.full_name())?;
        Some(TypePlan {
            plans: self.clone(),
            index,
        })
    }
}

fn plan_of(
    desc: &MessageDescriptor,
    plans: &mut Vec<MessagePlan>,
    index: &mut HashMap<String, usize>,
) -> usize {
    if let Some(&i) = index.get(desc.full_name()) {
        return i;
    }
    let i = plans.len();
    index.insert(desc.full_name().to_string(), i);
    let wkt = match desc.full_name() {
        "google.protobuf.Timestamp" => Wkt::Timestamp,
        "google.protobuf.Duration" => Wkt::Duration,
        name if name.starts_with("google.protobuf.")
            && name.ends_with("Value")
            && name != "google.protobuf.Value"
            && name != "google.protobuf.ListValue" =>
        {
            match desc.get_field(1).map(|f| f.kind()) {
                Some(Kind::Double) => Wkt::Wrapper(Ty::Double),
                Some(Kind::Float) => Wkt::Wrapper(Ty::Float),
                Some(Kind::Int64) => Wkt::Wrapper(Ty::Int64),
                Some(Kind::Uint64) => Wkt::Wrapper(Ty::Uint64),
                Some(Kind::Int32) => Wkt::Wrapper(Ty::Int32),
                Some(Kind::Uint32) => Wkt::Wrapper(Ty::Uint32),
                Some(Kind::Bool) => Wkt::Wrapper(Ty::Bool),
                Some(Kind::String) => Wkt::Wrapper(Ty::String),
                Some(Kind::Bytes) => Wkt::Wrapper(Ty::Bytes),
                _ => Wkt::Other,
            }
        }
        name if is_well_known_type(name) => Wkt::Other,
        _ => Wkt::No,
    };
    let well_known = !matches!(wkt, Wkt::No);
    plans.push(MessagePlan {
        desc: desc.clone(),
        wkt,
        fields: Vec::new(),
        oneofs: desc.oneofs().count(),
        by_name: HashMap::default(),
    });
    if well_known {
        return i;
    }
    let mut fields: Vec<FieldPlan> = desc
        .fields()
        .map(|f| field_plan(&f, plans, index))
        .collect();
    fields.sort_by_key(|f| f.number);
    let mut by_name =
        HashMap::with_capacity_and_hasher(fields.len() * 2, BuildHasherDefault::default());
    for (n, f) in fields.iter().enumerate() {
        by_name.insert(f.names.0.clone(), n);
    }
    for (n, f) in fields.iter().enumerate() {
        by_name.insert(f.names.1.clone(), n);
    }
    if let Some(p) = plans.get_mut(i) {
        p.fields = fields;
        p.by_name = by_name;
    }
    i
}

fn field_plan(
    f: &FieldDescriptor,
    plans: &mut Vec<MessagePlan>,
    index: &mut HashMap<String, usize>,
) -> FieldPlan {
    let key = |name: &str| -> Box<[u8]> {
        let mut out = Vec::with_capacity(name.len() + 3);
        write_json(&mut out, name);
        out.push(b':');
        out.into_boxed_slice()
    };
    let mut ty_of = |k: Kind| -> Ty {
        match k {
            Kind::Double => Ty::Double,
            Kind::Float => Ty::Float,
            Kind::Int32 => Ty::Int32,
            Kind::Int64 => Ty::Int64,
            Kind::Uint32 => Ty::Uint32,
            Kind::Uint64 => Ty::Uint64,
            Kind::Sint32 => Ty::Sint32,
            Kind::Sint64 => Ty::Sint64,
            Kind::Fixed32 => Ty::Fixed32,
            Kind::Fixed64 => Ty::Fixed64,
            Kind::Sfixed32 => Ty::Sfixed32,
            Kind::Sfixed64 => Ty::Sfixed64,
            Kind::Bool => Ty::Bool,
            Kind::String => Ty::String,
            Kind::Bytes => Ty::Bytes,
            Kind::Enum(e) => Ty::Enum(e),
            Kind::Message(m) => Ty::Message(plan_of(&m, plans, index)),
        }
    };
    let shape = match f.kind() {
        Kind::Message(entry) if f.is_map() => {
            let k = ty_of(entry.map_entry_key_field().kind());
            let v = ty_of(entry.map_entry_value_field().kind());
            Shape::Map(k, v)
        }
        kind if f.is_list() => Shape::List(ty_of(kind)),
        kind => Shape::Single(ty_of(kind)),
    };
    FieldPlan {
        number: f.number(),
        json_key: key(f.json_name()),
        proto_key: key(f.name()),
        shape,
        presence: f.supports_presence(),
        packed: f.is_packed(),
        group: f.is_group(),
        names: (f.name().into(), f.json_name().into()),
        oneof: f.containing_oneof().and_then(|o| {
            f.parent_message()
                .oneofs()
                .position(|x| x.name() == o.name())
        }),
    }
}

/// FNV-1a, for the field-name tables: a JSON key is looked up once per key of every body, and
/// SipHash's flooding resistance buys nothing here (the tables are built from descriptors,
/// never from what a client sends; client keys are only looked up).
#[derive(Default)]
struct NameHasher(u64);

impl Hasher for NameHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// The direct decoder's limits: those of the scan pass.
fn limits(opts: &DecodeOptions) -> from_json::Limits {
    from_json::Limits {
        ignore_unknown: opts.ignore_unknown_fields,
        max_depth: opts.max_depth,
        max_struct_values: opts.max_struct_values,
    }
}

/// Writes `v` as JSON (serde_json's formatting: the one prost-reflect's output goes through).
fn write_json<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    let _ = v.serialize(&mut serde_json::Serializer::new(out));
}
