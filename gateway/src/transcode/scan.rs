//! One cheap pass over a JSON body before prost-reflect parses it: rejects duplicate keys
//! (also a field given under both its JSON and its proto name), nesting deeper than the limit,
//! more free-form values (inside `Struct`/`Value`/`ListValue` fields) than the limit, unknown
//! fields (with their JSON path), non-objects where a message is expected, and records
//! which field paths the body sets (for update masks and path/body conflict checks).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::error::{TranscodeError, TranscodeErrorKind};
use super::scalar::is_well_known_type;

/// How a JSON value is checked, from the schema.
#[derive(Clone)]
pub(crate) enum Ctx {
    /// A (non-well-known) message: keys are fields.
    Message(MessageDescriptor),
    /// A repeated field of this element kind.
    List(Kind),
    /// A map field with values of this kind.
    Map(Kind),
    /// Free-form JSON: the content of a `google.protobuf.Struct`, `Value` or `ListValue`, where
    /// every value decodes to a message of its own. Structural checks, and every value counts
    /// against [`ScanOptions::max_struct_values`].
    Dynamic,
    /// Anything else: other well-known types, unknown fields, scalars. Only structural checks.
    Opaque,
}

impl Ctx {
    /// The context of a field's value.
    pub(crate) fn for_field(field: &FieldDescriptor) -> Ctx {
        let kind = field.kind();
        if field.is_map() {
            match kind.as_message() {
                Some(entry) => Ctx::Map(entry.map_entry_value_field().kind()),
                None => Ctx::Opaque,
            }
        } else if field.is_list() {
            Ctx::List(kind)
        } else {
            Ctx::for_kind(&kind)
        }
    }

    fn for_kind(kind: &Kind) -> Ctx {
        match kind {
            Kind::Message(m) if !is_well_known_type(m.full_name()) => Ctx::Message(m.clone()),
            Kind::Message(m)
                if matches!(
                    m.full_name(),
                    "google.protobuf.Struct"
                        | "google.protobuf.Value"
                        | "google.protobuf.ListValue"
                ) =>
            {
                Ctx::Dynamic
            }
            _ => Ctx::Opaque,
        }
    }
}

/// True if the field is a singular, non-well-known message: a JSON object given for it is
/// descended into when recording field paths.
fn descends(field: &FieldDescriptor) -> bool {
    !field.is_list()
        && !field.is_map()
        && matches!(field.kind(), Kind::Message(m) if !is_well_known_type(m.full_name()))
}

/// What to check and record.
pub(crate) struct ScanOptions<'a> {
    /// Maximum nesting of objects + arrays.
    pub max_depth: usize,
    /// Maximum values inside `Struct`/`Value`/`ListValue` content ([`Ctx::Dynamic`]).
    pub max_struct_values: usize,
    /// Unknown keys in message objects are skipped instead of rejected.
    pub ignore_unknown: bool,
    /// Record every leaf field path set by the body (proto names, relative to the root).
    pub record_all: bool,
    /// Field paths (proto names, relative to the root) whose presence must be reported.
    pub watch: &'a [String],
}

/// What the pass found.
#[derive(Debug, Default)]
pub(crate) struct ScanReport {
    /// Leaf paths present in the body, in document order (only with `record_all`).
    pub leaves: Vec<String>,
    /// For each watched path: `None` if absent, `Some(is_null)` if present.
    pub watched: Vec<Option<bool>>,
}

/// Runs the pass over `json` whose root is checked as `root`. `shown_prefix` (e.g. the body
/// field path) is put in front of the JSON paths named in errors.
pub(crate) fn scan(
    json: &[u8],
    root: Ctx,
    opts: &ScanOptions<'_>,
    shown_prefix: &str,
) -> Result<ScanReport, TranscodeError> {
    let record = matches!(root, Ctx::Message(_)) && (opts.record_all || !opts.watch.is_empty());
    let mut state = State {
        max_depth: opts.max_depth,
        max_struct_values: opts.max_struct_values,
        struct_values: 0,
        ignore_unknown: opts.ignore_unknown,
        err: None,
        err_path: Vec::new(),
        buf: String::new(),
        record_all: opts.record_all,
        report: ScanReport {
            leaves: Vec::new(),
            watched: vec![None; opts.watch.len()],
        },
        watch: opts.watch,
    };
    let mut de = serde_json::Deserializer::from_slice(json);
    let result = Scan {
        st: &mut state,
        ctx: root,
        depth: 0,
        record,
    }
    .deserialize(&mut de)
    .and_then(|_| de.end());
    match result {
        Ok(()) => Ok(state.report),
        Err(e) => Err(state.into_error(e, shown_prefix)),
    }
}

enum Problem {
    Duplicate {
        alias_of: Option<String>,
    },
    Unknown {
        message_type: String,
    },
    TooDeep,
    TooManyValues,
    NotObject {
        found: &'static str,
        message_type: String,
    },
}

enum Seg {
    Key(String),
    Index(usize),
}

struct State<'o> {
    max_depth: usize,
    max_struct_values: usize,
    /// Values read so far inside [`Ctx::Dynamic`] content.
    struct_values: usize,
    ignore_unknown: bool,
    err: Option<Problem>,
    /// Segments of the failing value's JSON path, innermost first.
    err_path: Vec<Seg>,
    /// The proto path of the value being read (when recording).
    buf: String,
    record_all: bool,
    report: ScanReport,
    watch: &'o [String],
}

impl State<'_> {
    fn fail<E: de::Error>(&mut self, problem: Problem) -> E {
        self.err = Some(problem);
        E::custom("")
    }

    fn push_key(&mut self, key: &str) {
        if self.err.is_some() {
            self.err_path.push(Seg::Key(key.to_owned()));
        }
    }

    fn push_index(&mut self, index: usize) {
        if self.err.is_some() {
            self.err_path.push(Seg::Index(index));
        }
    }

    fn record_leaf(&mut self, is_null: bool) {
        if self.record_all {
            self.report.leaves.push(self.buf.clone());
        }
        for (i, w) in self.watch.iter().enumerate() {
            if *w == self.buf {
                self.report.watched[i] = Some(is_null);
            }
        }
    }

    fn into_error(self, e: serde_json::Error, prefix: &str) -> TranscodeError {
        use TranscodeErrorKind as K;
        let Some(problem) = self.err else {
            if e.to_string().contains("recursion limit exceeded") {
                return TranscodeError::new(
                    K::TooDeep,
                    format!(
                        "JSON nesting is deeper than the limit of {} levels",
                        self.max_depth
                    ),
                );
            }
            return TranscodeError::new(K::MalformedJson, format!("malformed JSON: {e}"));
        };
        let mut path = prefix.to_owned();
        for seg in self.err_path.iter().rev() {
            match seg {
                Seg::Key(k) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                }
                Seg::Index(i) => {
                    path.push('[');
                    path.push_str(&i.to_string());
                    path.push(']');
                }
            }
        }
        let (kind, message) = match problem {
            Problem::Duplicate { alias_of: None } => (
                K::DuplicateKey,
                format!("duplicate key \"{path}\" in JSON object"),
            ),
            Problem::Duplicate {
                alias_of: Some(other),
            } => (
                K::DuplicateKey,
                format!(
                    "duplicate key \"{path}\" in JSON object: the same field was already given as \"{other}\""
                ),
            ),
            Problem::Unknown { message_type } => (
                K::UnknownField,
                format!("unknown field \"{path}\" (message {message_type} has no such field)"),
            ),
            Problem::TooDeep => (
                K::TooDeep,
                format!(
                    "JSON nesting is deeper than the limit of {} levels (at \"{path}\")",
                    self.max_depth
                ),
            ),
            Problem::TooManyValues => (
                K::TooManyValues,
                format!(
                    "more than {} values inside google.protobuf.Struct, Value or ListValue fields (at \"{path}\"): send less free-form JSON",
                    self.max_struct_values
                ),
            ),
            Problem::NotObject {
                found,
                message_type,
            } => {
                let msg = if path.is_empty() {
                    format!(
                        "the request body must be a JSON object (message {message_type}), found {found}"
                    )
                } else {
                    format!(
                        "invalid value for field \"{path}\": expected a JSON object (message {message_type}), found {found}"
                    )
                };
                (K::InvalidValue, msg)
            }
        };
        TranscodeError {
            kind,
            field: (!path.is_empty()).then_some(path),
            message,
        }
    }
}

/// Keys seen in one object: a small vector, switching to a hash map for big objects.
enum Seen<K, V> {
    Small(Vec<(K, V)>),
    Big(HashMap<K, V>),
}

impl<K: Eq + Hash, V: Clone> Seen<K, V> {
    fn new() -> Self {
        Seen::Small(Vec::new())
    }

    /// Inserts; returns the previous value if the key was already there.
    fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self {
            Seen::Small(v) => {
                if let Some((_, old)) = v.iter().find(|(k, _)| *k == key) {
                    return Some(old.clone());
                }
                if v.len() >= 16 {
                    let mut map: HashMap<K, V> = v.drain(..).collect();
                    map.insert(key, value);
                    *self = Seen::Big(map);
                } else {
                    v.push((key, value));
                }
                None
            }
            Seen::Big(map) => {
                if let Some(old) = map.get(&key) {
                    return Some(old.clone());
                }
                map.insert(key, value);
                None
            }
        }
    }
}

/// The shape of a value that was read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Null,
    EmptyObject,
    Object,
    Other,
}

struct Scan<'s, 'o> {
    st: &'s mut State<'o>,
    ctx: Ctx,
    depth: usize,
    record: bool,
}

impl<'de> DeserializeSeed<'de> for Scan<'_, '_> {
    type Value = Shape;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Shape, D::Error> {
        if matches!(self.ctx, Ctx::Dynamic) {
            self.st.struct_values += 1;
            if self.st.struct_values > self.st.max_struct_values {
                return Err(self.st.fail(Problem::TooManyValues));
            }
        }
        d.deserialize_any(self)
    }
}

impl Scan<'_, '_> {
    fn scalar<E: de::Error>(self, found: &'static str) -> Result<Shape, E> {
        match &self.ctx {
            Ctx::Message(m) => {
                let message_type = m.full_name().to_owned();
                Err(self.st.fail(Problem::NotObject {
                    found,
                    message_type,
                }))
            }
            _ => Ok(Shape::Other),
        }
    }

    fn enter<E: de::Error>(&mut self) -> Result<usize, E> {
        let depth = self.depth + 1;
        if depth > self.st.max_depth {
            return Err(self.st.fail(Problem::TooDeep));
        }
        Ok(depth)
    }

    fn visit_message<'de, A: MapAccess<'de>>(
        self,
        desc: &MessageDescriptor,
        depth: usize,
        mut map: A,
    ) -> Result<Shape, A::Error> {
        // Field number -> whether it was spelled with its JSON name.
        let mut seen: Seen<u32, bool> = Seen::new();
        let mut seen_other: Option<Seen<Cow<'de, str>, ()>> = None;
        let mut count = 0usize;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            count += 1;
            let field = desc
                .get_field_by_json_name(&key)
                .or_else(|| desc.get_field_by_name(&key));
            let Some(field) = field else {
                if self.st.ignore_unknown || desc.get_extension_by_json_name(&key).is_some() {
                    if seen_other
                        .get_or_insert_with(Seen::new)
                        .insert(key.clone(), ())
                        .is_some()
                    {
                        let err = self.st.fail(Problem::Duplicate { alias_of: None });
                        self.st.push_key(&key);
                        return Err(err);
                    }
                    let r = map.next_value_seed(Scan {
                        st: &mut *self.st,
                        ctx: Ctx::Opaque,
                        depth,
                        record: false,
                    });
                    if let Err(e) = r {
                        self.st.push_key(&key);
                        return Err(e);
                    }
                    continue;
                }
                let err = self.st.fail(Problem::Unknown {
                    message_type: desc.full_name().to_owned(),
                });
                self.st.push_key(&key);
                return Err(err);
            };
            let as_json = *key == *field.json_name();
            if let Some(earlier_json) = seen.insert(field.number(), as_json) {
                let alias_of = (earlier_json != as_json).then(|| {
                    if earlier_json {
                        field.json_name().to_owned()
                    } else {
                        field.name().to_owned()
                    }
                });
                let err = self.st.fail(Problem::Duplicate { alias_of });
                self.st.push_key(&key);
                return Err(err);
            }
            let child_record = self.record && descends(&field);
            let mark = self.st.buf.len();
            if self.record {
                if mark > 0 {
                    self.st.buf.push('.');
                }
                self.st.buf.push_str(field.name());
            }
            let r = map.next_value_seed(Scan {
                st: &mut *self.st,
                ctx: Ctx::for_field(&field),
                depth,
                record: child_record,
            });
            let shape = match r {
                Ok(shape) => shape,
                Err(e) => {
                    self.st.push_key(&key);
                    return Err(e);
                }
            };
            if self.record {
                if !(child_record && shape == Shape::Object) {
                    self.st.record_leaf(shape == Shape::Null);
                }
                self.st.buf.truncate(mark);
            }
        }
        Ok(if count == 0 {
            Shape::EmptyObject
        } else {
            Shape::Object
        })
    }

    fn visit_plain_map<'de, A: MapAccess<'de>>(
        self,
        value_ctx: Ctx,
        depth: usize,
        mut map: A,
    ) -> Result<Shape, A::Error> {
        let mut seen: Seen<Cow<'de, str>, ()> = Seen::new();
        let mut count = 0usize;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            count += 1;
            if seen.insert(key.clone(), ()).is_some() {
                let err = self.st.fail(Problem::Duplicate { alias_of: None });
                self.st.push_key(&key);
                return Err(err);
            }
            let r = map.next_value_seed(Scan {
                st: &mut *self.st,
                ctx: value_ctx.clone(),
                depth,
                record: false,
            });
            if let Err(e) = r {
                self.st.push_key(&key);
                return Err(e);
            }
        }
        Ok(if count == 0 {
            Shape::EmptyObject
        } else {
            Shape::Object
        })
    }
}

impl<'de> Visitor<'de> for Scan<'_, '_> {
    type Value = Shape;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Shape, E> {
        self.scalar("a boolean")
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Shape, E> {
        self.scalar("a number")
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Shape, E> {
        self.scalar("a number")
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Shape, E> {
        self.scalar("a number")
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Shape, E> {
        self.scalar("a string")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Shape, E> {
        if self.depth == 0 {
            return self.scalar("null");
        }
        Ok(Shape::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Shape, E> {
        self.visit_unit()
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Shape, A::Error> {
        let depth = self.enter()?;
        let elem_ctx = match &self.ctx {
            Ctx::Message(_) => return self.scalar("an array"),
            Ctx::List(kind) => Ctx::for_kind(kind),
            Ctx::Dynamic => Ctx::Dynamic,
            _ => Ctx::Opaque,
        };
        let mut index = 0usize;
        loop {
            let r = seq.next_element_seed(Scan {
                st: &mut *self.st,
                ctx: elem_ctx.clone(),
                depth,
                record: false,
            });
            match r {
                Ok(Some(_)) => index += 1,
                Ok(None) => break,
                Err(e) => {
                    self.st.push_index(index);
                    return Err(e);
                }
            }
        }
        Ok(Shape::Other)
    }

    fn visit_map<A: MapAccess<'de>>(mut self, map: A) -> Result<Shape, A::Error> {
        let depth = self.enter()?;
        match self.ctx.clone() {
            Ctx::Message(desc) => self.visit_message(&desc, depth, map),
            Ctx::Map(value_kind) => self.visit_plain_map(Ctx::for_kind(&value_kind), depth, map),
            Ctx::Dynamic => self.visit_plain_map(Ctx::Dynamic, depth, map),
            Ctx::List(_) | Ctx::Opaque => self.visit_plain_map(Ctx::Opaque, depth, map),
        }
    }
}

/// Reads an object key, borrowing it from the input when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(KeySeed)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}
