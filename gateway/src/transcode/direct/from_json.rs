//! A request's JSON -> protobuf wire bytes in one pass, without building a `DynamicMessage`
//! tree: serde_json drives visitors that mirror prost-reflect's deserializer (the same
//! accepted forms, the same `null` rules, the same range checks, the same error messages) and
//! write each value's wire form as it is read, with the message's plan.
//!
//! The bytes decode to the message prost-reflect would have built, and are what it would
//! have written: fields in field-number order (a message whose keys came in another order is
//! put in order when it ends), proto3 defaults left out, repeated scalars packed where the
//! field says so. Map entries are written in document order (prost-reflect's come in hash
//! order). A body prost-reflect would refuse is refused with its error, word for word
//! ([`Refusal::Invalid`]; a second walk, with the JSON path tracked, runs only then).
//!
//! It also refuses wherever the scan pass (`transcode::scan`) would, so a valid body needs no
//! scan: nesting past `max_depth` (objects and arrays counted as the scan counts them), more
//! free-form values than `max_struct_values`, a key twice in one object (a field under either
//! name, a map key, a `Struct` key, a key of a skipped unknown value), an unknown field
//! without `ignore_unknown`. Those refusals, and what it does not take (Any, extensions,
//! groups, `null` for a repeated `Value`), are [`Refusal::Unsupported`]: the caller runs the
//! scan, whose error comes first as it always did, else takes the `DynamicMessage` path.
//! Timestamp, Duration, FieldMask and Empty are read by prost-reflect and written here.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use prost::Message as _;
use prost_reflect::{DeserializeOptions, DynamicMessage, EnumDescriptor};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Unexpected, Visitor};

use super::{MAX_DEPTH, MessagePlan, Plans, Shape, Ty, Unsupported, Wkt};
use crate::transcode::json_text;

/// Marks an error as "not for this decoder" (the caller takes the `DynamicMessage` path)
/// rather than an invalid body (whose error is prost-reflect's, word for word).
const UNSUPPORTED: &str = "\u{0}direct decoder leaves this: ";

fn unsupported<E: de::Error>(why: &str) -> E {
    E::custom(format_args!("{UNSUPPORTED}{why}"))
}

/// Wire types.
const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;
const FIXED32: u32 = 5;

/// Why the direct decoder gave a body back.
#[derive(Debug)]
pub enum Refusal {
    /// Not for this decoder (why, for logs): the caller takes the `DynamicMessage` path.
    Unsupported(String),
    /// The body is not valid: prost-reflect's error for it, word for word, and the JSON path
    /// where it is (as `serde_path_to_error` tracks it over prost-reflect's deserializer).
    Invalid(serde_json::Error, serde_path_to_error::Path),
}

/// Where a walk starts.
#[derive(Clone, Copy)]
enum Start<'p> {
    /// A message of this plan.
    Message(usize),
    /// The value of a field (its index) of a message of this plan.
    Field(&'p MessagePlan, usize),
}

/// Encodes `json` as a message of plan `root`: its wire bytes.
pub(super) fn decode_at(
    plans: &Plans,
    root: usize,
    json: &[u8],
    limits: Limits,
) -> Result<Vec<u8>, Refusal> {
    run(plans, json, limits, Start::Message(root))
}

/// Encodes `json` as the value of field `field` (an index into the plan's fields) of a
/// message of plan `parent`: the field's wire bytes, keys included (nothing for `null` or an
/// empty list). The caller wraps them in the messages that lead to the field.
pub(super) fn decode_field_at(
    plans: &Plans,
    parent: usize,
    field: usize,
    json: &[u8],
    limits: Limits,
) -> Result<Vec<u8>, Refusal> {
    let parent = plans
        .plans
        .get(parent)
        .ok_or_else(|| Refusal::Unsupported("a message type without a plan".into()))?;
    run(plans, json, limits, Start::Field(parent, field))
}

/// Walks `json` from `start`. When the body is invalid, walks it again with the JSON path
/// tracked (errors are rare: the first walk pays nothing for them) to say where.
fn run<'p>(
    plans: &'p Plans,
    json: &[u8],
    limits: Limits,
    start: Start<'p>,
) -> Result<Vec<u8>, Refusal> {
    let mut enc = Enc::new(plans, limits, json.len());
    // A UTF-8 body (checked once, whole) is read as text: serde_json then does not check
    // each string again. One that is not gets from_slice's error, with its place.
    let first = match json_text::utf8_body(json) {
        Some(text) => {
            let mut de = serde_json::Deserializer::from_str(text);
            walk(&mut enc, start, &mut de).and_then(|()| de.end())
        }
        None => {
            let mut de = serde_json::Deserializer::from_slice(json);
            walk(&mut enc, start, &mut de).and_then(|()| de.end())
        }
    };
    let Err(e) = first else {
        return Ok(enc.out);
    };
    let text = e.to_string();
    if let Some(why) = text.strip_prefix(UNSUPPORTED) {
        return Err(Refusal::Unsupported(why.to_owned()));
    }
    drop(enc);
    let mut enc = Enc::new(plans, limits, 0);
    let mut de = serde_json::Deserializer::from_slice(json);
    let mut track = serde_path_to_error::Track::new();
    let tracked = serde_path_to_error::Deserializer::new(&mut de, &mut track);
    let _ = walk(&mut enc, start, tracked);
    Err(Refusal::Invalid(e, track.path()))
}

fn walk<'de, 'p, D: Deserializer<'de>>(
    enc: &mut Enc<'p>,
    start: Start<'p>,
    d: D,
) -> Result<(), D::Error> {
    match start {
        Start::Message(plan) => MsgSeed {
            enc,
            plan,
            depth: 0,
        }
        .deserialize(d),
        Start::Field(parent, field) => FieldSeed {
            enc,
            parent,
            field,
            depth: 0,
        }
        .deserialize(d)
        .map(|_| ()),
    }
}

/// What a body may hold, as the scan pass bounds it (see `DecodeOptions`).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Unknown fields are skipped (their content still checked) rather than refused.
    pub ignore_unknown: bool,
    /// Most nesting of objects and arrays.
    pub max_depth: usize,
    /// Most values inside `Struct`, `Value` and `ListValue` content.
    pub max_struct_values: usize,
}

/// The output and what the walk needs beside it.
struct Enc<'p> {
    plans: &'p Plans,
    ignore_unknown: bool,
    /// Nesting past this is left to the scan pass (which names it).
    max_depth: usize,
    max_struct_values: usize,
    /// Values read so far inside `Struct`/`Value`/`ListValue` content, counted as the scan
    /// pass counts them.
    struct_values: usize,
    out: Vec<u8>,
    /// The fields written by the messages being read, innermost last: (number, start in
    /// `out`). A message puts its own in order when it ends, and removes them.
    segs: Vec<(u32, usize)>,
    /// Room to put a message's fields in order.
    scratch: Vec<u8>,
}

impl<'p> Enc<'p> {
    fn new(plans: &'p Plans, limits: Limits, json_len: usize) -> Self {
        Self {
            plans,
            ignore_unknown: limits.ignore_unknown,
            max_depth: limits.max_depth.min(MAX_DEPTH),
            max_struct_values: limits.max_struct_values,
            struct_values: 0,
            // Wire bytes are mostly shorter than their JSON.
            out: Vec::with_capacity(json_len),
            segs: Vec::new(),
            scratch: Vec::new(),
        }
    }

    fn plan(&self, i: usize) -> Result<&'p MessagePlan, Unsupported> {
        self.plans
            .plans
            .get(i)
            .ok_or(Unsupported("a message type without a plan"))
    }

    /// Enters an object or array enclosed by `depth` others: its own depth, or a refusal past
    /// the limit (the scan pass names it).
    fn enter<E: de::Error>(&self, depth: usize) -> Result<usize, E> {
        let d = depth + 1;
        if d > self.max_depth {
            return Err(unsupported("nested deeper than the limit"));
        }
        Ok(d)
    }

    /// Counts one value of free-form content; a refusal past the limit.
    fn count_value<E: de::Error>(&mut self) -> Result<(), E> {
        self.struct_values += 1;
        if self.struct_values > self.max_struct_values {
            return Err(unsupported("more free-form values than the limit"));
        }
        Ok(())
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_key(out: &mut Vec<u8>, number: u32, wire: u32) {
    put_varint(out, u64::from(number << 3 | wire));
}

/// Starts a length-delimited value: one byte is kept for its length; returns where the
/// content starts.
fn open(out: &mut Vec<u8>) -> usize {
    out.push(0);
    out.len()
}

/// Ends the value begun at `start`: writes its length, moving the content when the length
/// takes more than one byte.
fn close(out: &mut Vec<u8>, start: usize) {
    let len = out.len() - start;
    if len < 0x80 {
        if let Some(b) = out.get_mut(start - 1) {
            *b = len as u8;
        }
        return;
    }
    let mut prefix = [0u8; 10];
    let mut n = 0;
    let mut v = len as u64;
    while v >= 0x80 {
        prefix[n] = (v as u8) | 0x80;
        v >>= 7;
        n += 1;
    }
    prefix[n] = v as u8;
    n += 1;
    let end = out.len();
    out.resize(end + n - 1, 0);
    out.copy_within(start..end, start + n - 1);
    if let Some(dst) = out.get_mut(start - 1..start - 1 + n) {
        dst.copy_from_slice(&prefix[..n]);
    }
}

/// Writes a length-delimited field: its key, the length of `content`, `content`.
pub(super) fn put_len_field(out: &mut Vec<u8>, number: u32, content: &[u8]) {
    put_key(out, number, LEN);
    put_varint(out, content.len() as u64);
    out.extend_from_slice(content);
}

fn wire_type(ty: &Ty) -> u32 {
    match ty {
        Ty::Double | Ty::Fixed64 | Ty::Sfixed64 => FIXED64,
        Ty::Float | Ty::Fixed32 | Ty::Sfixed32 => FIXED32,
        Ty::String | Ty::Bytes | Ty::Message(_) => LEN,
        _ => VARINT,
    }
}

fn is_null_value(e: &EnumDescriptor) -> bool {
    e.full_name() == "google.protobuf.NullValue"
}

/// Whether values of this type take `null` as a value of their own (prost-reflect: a
/// `google.protobuf.Value` holding null, or `NULL_VALUE`).
fn takes_null(plans: &Plans, ty: &Ty) -> bool {
    match ty {
        Ty::Enum(e) => is_null_value(e),
        Ty::Message(m) => plans
            .plans
            .get(*m)
            .is_some_and(|p| p.desc.full_name() == "google.protobuf.Value"),
        _ => false,
    }
}

// ---- messages ----

/// A message value (its content only: the caller writes its key and length), enclosed by
/// `depth` objects and arrays.
struct MsgSeed<'a, 'p> {
    enc: &'a mut Enc<'p>,
    plan: usize,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for MsgSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let MsgSeed { enc, plan, depth } = self;
        let plan = enc.plan(plan).map_err(|u| unsupported(u.0))?;
        match &plan.wkt {
            Wkt::No => d.deserialize_map(MsgVisitor { enc, plan, depth }),
            Wkt::Wrapper(ty) => {
                let ignore_unknown = enc.ignore_unknown;
                ScalarSeed {
                    out: &mut enc.out,
                    ty,
                    key: Some((1, true)),
                    ignore_unknown,
                }
                .deserialize(d)
                .map(|_| ())
            }
            _ => match plan.desc.full_name() {
                // Free-form content: every value counts, as the scan pass counts it.
                "google.protobuf.Value" => {
                    enc.count_value()?;
                    d.deserialize_any(ValueVisitor { enc, depth })
                }
                "google.protobuf.Struct" => {
                    enc.count_value()?;
                    d.deserialize_map(StructVisitor { enc, depth })
                }
                "google.protobuf.ListValue" => {
                    enc.count_value()?;
                    d.deserialize_seq(ListValueVisitor { enc, depth })
                }
                // Any resolves types and may hold anything: the decoded way.
                "google.protobuf.Any" => Err(unsupported("google.protobuf.Any")),
                // Timestamp, Duration, FieldMask, Empty: small, and their JSON forms are
                // prost-reflect's to read. (Counted as one level deeper, in case it is an
                // object.)
                _ => {
                    enc.enter::<D::Error>(depth)?;
                    let opts = DeserializeOptions::new().deny_unknown_fields(!enc.ignore_unknown);
                    let msg =
                        DynamicMessage::deserialize_with_options(plan.desc.clone(), d, &opts)?;
                    msg.encode(&mut enc.out).map_err(de::Error::custom)
                }
            },
        }
    }
}

struct MsgVisitor<'a, 'p> {
    enc: &'a mut Enc<'p>,
    plan: &'p MessagePlan,
    depth: usize,
}

impl<'de> Visitor<'de> for MsgVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let MsgVisitor { enc, plan, depth } = self;
        let depth = enc.enter(depth)?;
        let start = enc.out.len();
        let seg_base = enc.segs.len();
        let mut in_order = true;
        let mut last = 0u32;
        // Fields seen (by index) and oneofs set, as bits (a long message spills to a Vec).
        let mut seen = Bits::new(plan.fields.len());
        let mut oneofs = Bits::new(plan.oneofs);
        let mut unknown: Option<KeySet<'de>> = None;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let Some(&i) = plan.by_name.get(key.as_ref()) else {
                if !enc.ignore_unknown || key.starts_with('[') {
                    // Unknown (the scan pass names it) or an extension.
                    return Err(unsupported("an unknown field or an extension"));
                }
                // Skipped, but checked as the scan pass checks it.
                if !unknown.get_or_insert_with(KeySet::new).insert(key) {
                    return Err(unsupported("a key given twice"));
                }
                map.next_value_seed(Skip { enc, depth })?;
                continue;
            };
            if !seen.insert(i) {
                return Err(unsupported("a field given twice"));
            }
            let Some(field) = plan.fields.get(i) else {
                return Err(unsupported("no such field"));
            };
            let at = enc.out.len();
            let set = map.next_value_seed(FieldSeed {
                enc: &mut *enc,
                parent: plan,
                field: i,
                depth,
            })?;
            if set
                && let Some(o) = field.oneof
                && !oneofs.insert(o)
            {
                // prost-reflect's words.
                let name = plan.desc.oneofs().nth(o).map(|x| x.name().to_owned());
                return Err(de::Error::custom(format!(
                    "multiple fields provided for oneof '{}'",
                    name.unwrap_or_default()
                )));
            }
            if enc.out.len() > at {
                enc.segs.push((field.number, at));
                in_order &= field.number > last;
                last = field.number;
            }
        }
        if !in_order {
            sort_fields(enc, seg_base, start);
        }
        enc.segs.truncate(seg_base);
        Ok(())
    }
}

/// A value that is skipped (an unknown field under `ignore_unknown`), checked as the scan
/// pass checks it: its nesting, and no key twice in one object.
struct Skip<'a, 'p> {
    enc: &'a mut Enc<'p>,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Skip<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let depth = self.enc.enter(self.depth)?;
        while seq
            .next_element_seed(Skip {
                enc: &mut *self.enc,
                depth,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let depth = self.enc.enter(self.depth)?;
        let mut keys = KeySet::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            if !keys.insert(key) {
                return Err(unsupported("a key given twice"));
            }
            map.next_value_seed(Skip {
                enc: &mut *self.enc,
                depth,
            })?;
        }
        Ok(())
    }
}

/// The keys of one object, to find one given twice: a small vector, a hash set past 16.
enum KeySet<'de> {
    Small(Vec<Cow<'de, str>>),
    Big(HashSet<Cow<'de, str>>),
}

impl<'de> KeySet<'de> {
    fn new() -> Self {
        KeySet::Small(Vec::new())
    }

    /// Adds `key`; false if it was there already.
    fn insert(&mut self, key: Cow<'de, str>) -> bool {
        match self {
            KeySet::Small(v) => {
                if v.contains(&key) {
                    return false;
                }
                if v.len() >= 16 {
                    let mut set: HashSet<Cow<'de, str>> = v.drain(..).collect();
                    set.insert(key);
                    *self = KeySet::Big(set);
                } else {
                    v.push(key);
                }
                true
            }
            KeySet::Big(set) => set.insert(key),
        }
    }
}

/// Puts the fields a message wrote (its segments from `seg_base`, content from `start`) in
/// field-number order. Each field's bytes are one run: a field appears once per object.
fn sort_fields(enc: &mut Enc<'_>, seg_base: usize, start: usize) {
    let end = enc.out.len();
    let Some(segs) = enc.segs.get_mut(seg_base..) else {
        return;
    };
    let mut runs: Vec<(u32, usize, usize)> = segs
        .iter()
        .enumerate()
        .map(|(n, &(number, s))| {
            let e = segs.get(n + 1).map_or(end, |next| next.1);
            (number, s, e)
        })
        .collect();
    runs.sort_by_key(|r| r.0);
    enc.scratch.clear();
    for &(_, s, e) in &runs {
        if let Some(run) = enc.out.get(s..e) {
            enc.scratch.extend_from_slice(run);
        }
    }
    enc.out.truncate(start);
    enc.out.extend_from_slice(&enc.scratch);
}

/// A small bit set.
struct Bits {
    low: u64,
    high: Vec<u64>,
}

impl Bits {
    fn new(len: usize) -> Self {
        Self {
            low: 0,
            high: if len > 64 {
                vec![0; len.div_ceil(64) - 1]
            } else {
                Vec::new()
            },
        }
    }

    /// Sets bit `i`; false if it was set already.
    fn insert(&mut self, i: usize) -> bool {
        let (word, bit) = (i / 64, 1u64 << (i % 64));
        let w = if word == 0 {
            &mut self.low
        } else {
            match self.high.get_mut(word - 1) {
                Some(w) => w,
                None => return false,
            }
        };
        let fresh = *w & bit == 0;
        *w |= bit;
        fresh
    }
}

/// Reads a key of a JSON object, borrowed from the input when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v))
    }
}

// ---- fields ----

/// One field's value, written with its key. Returns whether prost-reflect would have set the
/// field (`null` and an unknown enum name under `ignore_unknown` leave it unset).
struct FieldSeed<'a, 'p> {
    enc: &'a mut Enc<'p>,
    parent: &'p MessagePlan,
    /// The field's index in the parent's plan.
    field: usize,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for FieldSeed<'_, '_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for FieldSeed<'_, '_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("option")
    }

    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        self.visit_none()
    }

    fn visit_none<E: de::Error>(self) -> Result<bool, E> {
        let field = self
            .parent
            .fields
            .get(self.field)
            .ok_or_else(|| unsupported("no such field"))?;
        let plans = self.enc.plans;
        match &field.shape {
            Shape::Single(ty) if takes_null(plans, ty) => {
                let out = &mut self.enc.out;
                match ty {
                    // A `Value` holding null: its oneof member 1, the enum's 0.
                    Ty::Message(_) => {
                        put_key(out, field.number, LEN);
                        // Length 2: the key of `null_value` (1, varint) and 0.
                        out.extend_from_slice(&[2, 1 << 3, 0]);
                        Ok(true)
                    }
                    _ => {
                        if field.presence {
                            put_key(out, field.number, VARINT);
                            out.push(0);
                        }
                        Ok(true)
                    }
                }
            }
            // prost-reflect would set a list or map field to a single value here.
            Shape::List(ty) | Shape::Map(_, ty) if takes_null(plans, ty) => {
                Err(unsupported("null for a repeated Value or NullValue"))
            }
            _ => Ok(false),
        }
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        let FieldSeed {
            enc,
            parent,
            field,
            depth,
        } = self;
        let field = parent
            .fields
            .get(field)
            .ok_or_else(|| unsupported("no such field"))?;
        if field.group {
            return Err(unsupported("a group"));
        }
        match &field.shape {
            Shape::Single(Ty::Message(m)) => {
                put_key(&mut enc.out, field.number, LEN);
                let start = open(&mut enc.out);
                MsgSeed {
                    enc: &mut *enc,
                    plan: *m,
                    depth,
                }
                .deserialize(d)?;
                close(&mut enc.out, start);
                Ok(true)
            }
            Shape::Single(ty) => {
                let ignore_unknown = enc.ignore_unknown;
                ScalarSeed {
                    out: &mut enc.out,
                    ty,
                    key: Some((field.number, !field.presence)),
                    ignore_unknown,
                }
                .deserialize(d)
            }
            Shape::List(ty) => {
                d.deserialize_any(ListVisitor {
                    enc,
                    ty,
                    number: field.number,
                    packed: field.packed,
                    depth,
                })?;
                Ok(true)
            }
            Shape::Map(k, v) => {
                d.deserialize_any(MapVisitor {
                    enc,
                    key_ty: k,
                    value_ty: v,
                    number: field.number,
                    depth,
                })?;
                Ok(true)
            }
        }
    }
}

struct ListVisitor<'a, 'p> {
    enc: &'a mut Enc<'p>,
    ty: &'p Ty,
    number: u32,
    packed: bool,
    depth: usize,
}

impl<'de> Visitor<'de> for ListVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let ListVisitor {
            enc,
            ty,
            number,
            packed,
            depth,
        } = self;
        let depth = enc.enter(depth)?;
        let ignore_unknown = enc.ignore_unknown;
        match ty {
            Ty::Message(m) => {
                loop {
                    let at = enc.out.len();
                    put_key(&mut enc.out, number, LEN);
                    let start = open(&mut enc.out);
                    let seed = MsgSeed {
                        enc: &mut *enc,
                        plan: *m,
                        depth,
                    };
                    if seq.next_element_seed(seed)?.is_none() {
                        enc.out.truncate(at);
                        break;
                    }
                    close(&mut enc.out, start);
                }
                Ok(())
            }
            _ if packed => {
                let at = enc.out.len();
                put_key(&mut enc.out, number, LEN);
                let start = open(&mut enc.out);
                while seq
                    .next_element_seed(ScalarSeed {
                        out: &mut enc.out,
                        ty,
                        key: None,
                        ignore_unknown,
                    })?
                    .is_some()
                {}
                if enc.out.len() == start {
                    enc.out.truncate(at);
                } else {
                    close(&mut enc.out, start);
                }
                Ok(())
            }
            _ => {
                while seq
                    .next_element_seed(ScalarSeed {
                        out: &mut enc.out,
                        ty,
                        key: Some((number, false)),
                        ignore_unknown,
                    })?
                    .is_some()
                {}
                Ok(())
            }
        }
    }
}

struct MapVisitor<'a, 'p> {
    enc: &'a mut Enc<'p>,
    key_ty: &'p Ty,
    value_ty: &'p Ty,
    number: u32,
    depth: usize,
}

impl<'de> Visitor<'de> for MapVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let MapVisitor {
            enc,
            key_ty,
            value_ty,
            number,
            depth,
        } = self;
        let depth = enc.enter(depth)?;
        let ignore_unknown = enc.ignore_unknown;
        let mut keys = KeySet::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let entry_at = enc.out.len();
            put_key(&mut enc.out, number, LEN);
            let entry = open(&mut enc.out);
            map_key(&mut enc.out, key_ty, &key)?;
            if !keys.insert(key) {
                return Err(unsupported("a key given twice"));
            }
            let set = match value_ty {
                Ty::Message(m) => {
                    put_key(&mut enc.out, 2, LEN);
                    let start = open(&mut enc.out);
                    map.next_value_seed(MsgSeed {
                        enc: &mut *enc,
                        plan: *m,
                        depth,
                    })?;
                    close(&mut enc.out, start);
                    true
                }
                ty => map.next_value_seed(ScalarSeed {
                    out: &mut enc.out,
                    ty,
                    key: Some((2, false)),
                    ignore_unknown,
                })?,
            };
            if set {
                close(&mut enc.out, entry);
            } else {
                // An unknown enum name under `ignore_unknown`: no entry.
                enc.out.truncate(entry_at);
            }
        }
        Ok(())
    }
}

/// Writes a map key (field 1 of the entry), parsed from its JSON text as prost-reflect parses
/// it (its error is the parser's, as there).
fn map_key<E: de::Error>(out: &mut Vec<u8>, ty: &Ty, text: &str) -> Result<(), E> {
    match ty {
        Ty::String => {
            put_key(out, 1, LEN);
            put_varint(out, text.len() as u64);
            out.extend_from_slice(text.as_bytes());
        }
        Ty::Bool => {
            let v = bool::from_str(text).map_err(E::custom)?;
            put_key(out, 1, VARINT);
            out.push(u8::from(v));
        }
        Ty::Int32 | Ty::Sint32 | Ty::Sfixed32 => {
            let v = i32::from_str(text).map_err(E::custom)?;
            put_scalar(out, ty, Sc::I32(v), Some((1, false)));
        }
        Ty::Int64 | Ty::Sint64 | Ty::Sfixed64 => {
            let v = i64::from_str(text).map_err(E::custom)?;
            put_scalar(out, ty, Sc::I64(v), Some((1, false)));
        }
        Ty::Uint32 | Ty::Fixed32 => {
            let v = u32::from_str(text).map_err(E::custom)?;
            put_scalar(out, ty, Sc::U32(v), Some((1, false)));
        }
        Ty::Uint64 | Ty::Fixed64 => {
            let v = u64::from_str(text).map_err(E::custom)?;
            put_scalar(out, ty, Sc::U64(v), Some((1, false)));
        }
        _ => return Err(unsupported("a map key type protobuf does not allow")),
    }
    Ok(())
}

// ---- scalars ----

/// A scalar read from JSON, converted to its field's type.
#[derive(Clone, Copy)]
enum Sc<'s> {
    F64(f64),
    F32(f32),
    I32(i32),
    I64(i64),
    U32(u32),
    U64(u64),
    Bool(bool),
    Str(&'s str),
}

/// Writes `v` (of type `ty`) with its key `(number, skip_default)`, or bare inside a packed
/// run; a proto3 default is left out when `skip_default`.
fn put_scalar(out: &mut Vec<u8>, ty: &Ty, v: Sc<'_>, key: Option<(u32, bool)>) {
    if let Some((number, skip_default)) = key {
        if skip_default && is_default(ty, v) {
            return;
        }
        put_key(out, number, wire_type(ty));
    }
    match (ty, v) {
        (Ty::Double, Sc::F64(x)) => out.extend_from_slice(&x.to_le_bytes()),
        (Ty::Float, Sc::F32(x)) => out.extend_from_slice(&x.to_le_bytes()),
        (Ty::Int32 | Ty::Enum(_), Sc::I32(x)) => put_varint(out, i64::from(x) as u64),
        (Ty::Sint32, Sc::I32(x)) => put_varint(out, u64::from(((x << 1) ^ (x >> 31)) as u32)),
        (Ty::Sfixed32, Sc::I32(x)) => out.extend_from_slice(&x.to_le_bytes()),
        (Ty::Int64, Sc::I64(x)) => put_varint(out, x as u64),
        (Ty::Sint64, Sc::I64(x)) => put_varint(out, ((x << 1) ^ (x >> 63)) as u64),
        (Ty::Sfixed64, Sc::I64(x)) => out.extend_from_slice(&x.to_le_bytes()),
        (Ty::Uint32, Sc::U32(x)) => put_varint(out, u64::from(x)),
        (Ty::Fixed32, Sc::U32(x)) => out.extend_from_slice(&x.to_le_bytes()),
        (Ty::Uint64, Sc::U64(x)) => put_varint(out, x),
        (Ty::Fixed64, Sc::U64(x)) => out.extend_from_slice(&x.to_le_bytes()),
        (Ty::Bool, Sc::Bool(x)) => out.push(u8::from(x)),
        (Ty::String | Ty::Bytes, Sc::Str(s)) => {
            put_varint(out, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        // Not reached: values are converted to their type's form before they are written.
        _ => {}
    }
}

/// Whether `v` is its type's default (what proto3 leaves out; `-0.0` counts, as in
/// prost-reflect, where it compares equal to `0.0`).
fn is_default(ty: &Ty, v: Sc<'_>) -> bool {
    match v {
        Sc::F64(x) => x == 0.0,
        Sc::F32(x) => x == 0.0,
        Sc::I32(x) => match ty {
            Ty::Enum(e) => x == e.default_value().number(),
            _ => x == 0,
        },
        Sc::I64(x) => x == 0,
        Sc::U32(x) => x == 0,
        Sc::U64(x) => x == 0,
        Sc::Bool(x) => !x,
        Sc::Str(s) => s.is_empty(),
    }
}

/// A scalar value, written with its key (or bare in a packed run). `Some(true)`: written (or
/// left out as a default); `Some(false)`: unset (an unknown enum name under
/// `ignore_unknown`). Accepts what prost-reflect's visitor for the type accepts.
struct ScalarSeed<'a, 'p> {
    out: &'a mut Vec<u8>,
    ty: &'p Ty,
    key: Option<(u32, bool)>,
    ignore_unknown: bool,
}

impl<'de> DeserializeSeed<'de> for ScalarSeed<'_, '_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        match self.ty {
            Ty::String => d.deserialize_string(self),
            Ty::Bytes => d.deserialize_str(self),
            _ => d.deserialize_any(self),
        }
    }
}

impl ScalarSeed<'_, '_> {
    fn put(self, v: Sc<'_>) -> bool {
        put_scalar(self.out, self.ty, v, self.key);
        true
    }

    /// The error prost-reflect's visitor for this type gives for a value it has no method
    /// for (serde's own wording, with that visitor's `expecting`).
    fn mismatch<E: de::Error>(&self, got: Unexpected<'_>) -> E {
        E::invalid_type(got, self)
    }
}

/// What prost-reflect's visitor for `ty` says it expects, word for word: the end of its
/// "invalid type" errors.
fn expecting(ty: &Ty) -> &'static str {
    match ty {
        Ty::Double => "a 64-bit floating point value",
        Ty::Float => "a 32-bit floating point value",
        Ty::Int32 | Ty::Sint32 | Ty::Sfixed32 => "a 32-bit signed integer",
        Ty::Uint32 | Ty::Fixed32 => "a 32-bit unsigned integer or decimal string",
        Ty::Int64 | Ty::Sint64 | Ty::Sfixed64 => "a 64-bit signed integer or decimal string",
        Ty::Uint64 | Ty::Fixed64 => "a 64-bit unsigned integer or decimal string",
        Ty::Bool => "a boolean",
        Ty::String => "a string",
        Ty::Bytes => "a base64-encoded string",
        Ty::Enum(e) if is_null_value(e) => "null",
        Ty::Enum(_) => "a string or integer",
        Ty::Message(_) => "a map",
    }
}

/// prost-reflect's checks of a float given for an integer, in their order and words: a whole
/// number first, then within `min..=max`.
fn whole<E: de::Error>(v: f64, min: f64, max: f64) -> Result<(), E> {
    if v.fract() != 0.0 {
        return Err(E::custom("expected integer value"));
    }
    if v < min || v > max {
        return Err(E::custom("float value out of range"));
    }
    Ok(())
}

impl<'de> Visitor<'de> for ScalarSeed<'_, '_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(expecting(self.ty))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        match self.ty {
            Ty::Bool => Ok(self.put(Sc::Bool(v))),
            _ => Err(self.mismatch(Unexpected::Bool(v))),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
        let sc = match self.ty {
            Ty::Double => Sc::F64(v as f64),
            Ty::Float => Sc::F32(v as f32),
            Ty::Int32 | Ty::Sint32 | Ty::Sfixed32 => Sc::I32(v.try_into().map_err(E::custom)?),
            Ty::Int64 | Ty::Sint64 | Ty::Sfixed64 => Sc::I64(v),
            Ty::Uint32 | Ty::Fixed32 => Sc::U32(v.try_into().map_err(E::custom)?),
            Ty::Uint64 | Ty::Fixed64 => Sc::U64(v.try_into().map_err(E::custom)?),
            Ty::Enum(e) if !is_null_value(e) => Sc::I32(v.try_into().map_err(E::custom)?),
            _ => return Err(self.mismatch(Unexpected::Signed(v))),
        };
        Ok(self.put(sc))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
        let sc = match self.ty {
            Ty::Double => Sc::F64(v as f64),
            Ty::Float => Sc::F32(v as f32),
            Ty::Int32 | Ty::Sint32 | Ty::Sfixed32 => Sc::I32(v.try_into().map_err(E::custom)?),
            Ty::Int64 | Ty::Sint64 | Ty::Sfixed64 => Sc::I64(v.try_into().map_err(E::custom)?),
            Ty::Uint32 | Ty::Fixed32 => Sc::U32(v.try_into().map_err(E::custom)?),
            Ty::Uint64 | Ty::Fixed64 => Sc::U64(v),
            Ty::Enum(e) if !is_null_value(e) => Sc::I32(v.try_into().map_err(E::custom)?),
            _ => return Err(self.mismatch(Unexpected::Unsigned(v))),
        };
        Ok(self.put(sc))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<bool, E> {
        // The checks and casts of prost-reflect's visitors, as they are written there.
        let sc = match self.ty {
            Ty::Double => Sc::F64(v),
            Ty::Float => {
                if v < (f32::MIN as f64) || v > (f32::MAX as f64) {
                    return Err(E::custom("float value out of range"));
                }
                Sc::F32(v as f32)
            }
            Ty::Int32 | Ty::Sint32 | Ty::Sfixed32 => {
                whole(v, i32::MIN as f64, i32::MAX as f64)?;
                Sc::I32(v as i32)
            }
            Ty::Int64 | Ty::Sint64 | Ty::Sfixed64 => {
                whole(v, i64::MIN as f64, i64::MAX as f64)?;
                Sc::I64(v as i64)
            }
            Ty::Uint32 | Ty::Fixed32 => {
                whole(v, u32::MIN as f64, u32::MAX as f64)?;
                Sc::U32(v as u32)
            }
            Ty::Uint64 | Ty::Fixed64 => {
                whole(v, u64::MIN as f64, u64::MAX as f64)?;
                Sc::U64(v as u64)
            }
            _ => return Err(self.mismatch(Unexpected::Float(v))),
        };
        Ok(self.put(sc))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        let sc = match self.ty {
            Ty::Double => Sc::F64(match f64::from_str(v) {
                Ok(x) => x,
                Err(_) if v == "Infinity" => f64::INFINITY,
                Err(_) if v == "-Infinity" => f64::NEG_INFINITY,
                Err(_) if v == "NaN" => f64::NAN,
                Err(e) => return Err(E::custom(e)),
            }),
            Ty::Float => Sc::F32(match f32::from_str(v) {
                Ok(x) => x,
                Err(_) if v == "Infinity" => f32::INFINITY,
                Err(_) if v == "-Infinity" => f32::NEG_INFINITY,
                Err(_) if v == "NaN" => f32::NAN,
                Err(e) => return Err(E::custom(e)),
            }),
            Ty::Int32 | Ty::Sint32 | Ty::Sfixed32 => Sc::I32(v.parse().map_err(E::custom)?),
            Ty::Int64 | Ty::Sint64 | Ty::Sfixed64 => Sc::I64(v.parse().map_err(E::custom)?),
            Ty::Uint32 | Ty::Fixed32 => Sc::U32(v.parse().map_err(E::custom)?),
            Ty::Uint64 | Ty::Fixed64 => Sc::U64(v.parse().map_err(E::custom)?),
            Ty::String => Sc::Str(v),
            Ty::Bytes => return self.bytes(v),
            Ty::Enum(e) if is_null_value(e) => {
                if v == "NULL_VALUE" {
                    Sc::I32(0)
                } else if self.ignore_unknown {
                    return Ok(false);
                } else {
                    return Err(E::custom("expected null"));
                }
            }
            Ty::Enum(e) => match e.get_value_by_name(v) {
                Some(x) => Sc::I32(x.number()),
                None if self.ignore_unknown => return Ok(false),
                None => return Err(E::custom(format!("unrecognized enum value '{v}'"))),
            },
            _ => return Err(self.mismatch(Unexpected::Str(v))),
        };
        Ok(self.put(sc))
    }

    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        match self.ty {
            Ty::Enum(e) if is_null_value(e) => Ok(self.put(Sc::I32(0))),
            _ => Err(self.mismatch(Unexpected::Unit)),
        }
    }
}

impl ScalarSeed<'_, '_> {
    /// Base64 in the standard or URL-safe alphabet, padding optional, as prost-reflect reads
    /// it (the same engine settings, the same errors).
    fn bytes<E: de::Error>(self, v: &str) -> Result<bool, E> {
        use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
        use base64::{DecodeError, Engine, alphabet};
        const CONFIG: GeneralPurposeConfig = GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::Indifferent);
        const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, CONFIG);
        const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, CONFIG);

        let mut buf = Vec::with_capacity(v.len() * 3 / 4 + 3);
        match STANDARD.decode_vec(v, &mut buf) {
            Ok(()) => {}
            Err(DecodeError::InvalidByte(_, b'-' | b'_')) => {
                buf.clear();
                URL_SAFE
                    .decode_vec(v, &mut buf)
                    .map_err(|e| E::custom(format!("invalid base64: {e}")))?;
            }
            Err(e) => return Err(E::custom(format!("invalid base64: {e}"))),
        }
        if let Some((number, skip_default)) = self.key {
            if skip_default && buf.is_empty() {
                return Ok(true);
            }
            put_key(self.out, number, LEN);
        }
        put_varint(self.out, buf.len() as u64);
        self.out.extend_from_slice(&buf);
        Ok(true)
    }
}

// ---- google.protobuf.Value, Struct, ListValue ----

/// A `Value`'s content: one member of its `kind` oneof.
struct ValueVisitor<'a, 'p> {
    enc: &'a mut Enc<'p>,
    depth: usize,
}

/// A `Value` inside free-form content (a `Struct` field or a `ListValue` element): one more
/// value counted.
impl<'de> DeserializeSeed<'de> for ValueVisitor<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.enc.count_value()?;
        d.deserialize_any(self)
    }
}

impl ValueVisitor<'_, '_> {
    fn number(self, v: f64) {
        put_key(&mut self.enc.out, 2, FIXED64);
        self.enc.out.extend_from_slice(&v.to_le_bytes());
    }
}

impl<'de> Visitor<'de> for ValueVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        put_key(&mut self.enc.out, 1, VARINT);
        self.enc.out.push(0);
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        put_key(&mut self.enc.out, 4, VARINT);
        self.enc.out.push(u8::from(v));
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.number(v as f64);
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.number(v as f64);
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.number(v);
        Ok(())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        let out = &mut self.enc.out;
        put_key(out, 3, LEN);
        put_varint(out, v.len() as u64);
        out.extend_from_slice(v.as_bytes());
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        put_key(&mut self.enc.out, 6, LEN);
        let start = open(&mut self.enc.out);
        ListValueVisitor {
            enc: &mut *self.enc,
            depth: self.depth,
        }
        .visit_seq(seq)?;
        close(&mut self.enc.out, start);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        put_key(&mut self.enc.out, 5, LEN);
        let start = open(&mut self.enc.out);
        StructVisitor {
            enc: &mut *self.enc,
            depth: self.depth,
        }
        .visit_map(map)?;
        close(&mut self.enc.out, start);
        Ok(())
    }
}

/// A `ListValue`'s content: field 1, a `Value` per element.
struct ListValueVisitor<'a, 'p> {
    enc: &'a mut Enc<'p>,
    depth: usize,
}

impl<'de> Visitor<'de> for ListValueVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let depth = self.enc.enter(self.depth)?;
        loop {
            let at = self.enc.out.len();
            put_key(&mut self.enc.out, 1, LEN);
            let start = open(&mut self.enc.out);
            let seed = ValueVisitor {
                enc: &mut *self.enc,
                depth,
            };
            if seq.next_element_seed(seed)?.is_none() {
                self.enc.out.truncate(at);
                return Ok(());
            }
            close(&mut self.enc.out, start);
        }
    }
}

/// A `Struct`'s content: field 1, a map entry per key. Entries come in document order
/// (prost-reflect sorts them by key; the decoded maps are equal).
struct StructVisitor<'a, 'p> {
    enc: &'a mut Enc<'p>,
    depth: usize,
}

impl<'de> Visitor<'de> for StructVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let depth = self.enc.enter(self.depth)?;
        let mut keys = KeySet::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let out = &mut self.enc.out;
            put_key(out, 1, LEN);
            let entry = open(out);
            put_key(out, 1, LEN);
            put_varint(out, key.len() as u64);
            out.extend_from_slice(key.as_bytes());
            put_key(out, 2, LEN);
            let start = open(out);
            if !keys.insert(key) {
                return Err(unsupported("a key given twice"));
            }
            map.next_value_seed(ValueVisitor {
                enc: &mut *self.enc,
                depth,
            })?;
            close(&mut self.enc.out, start);
            close(&mut self.enc.out, entry);
        }
        Ok(())
    }
}
