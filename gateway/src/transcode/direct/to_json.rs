//! Protobuf wire bytes -> canonical proto3 JSON in one pass per message, without building a
//! `DynamicMessage` tree: [`encode`] walks the bytes with the message's plan.
//!
//! The output is what prost-reflect's serializer writes for the same message (fields in field
//! number order, defaults left out or written as [`EncodeOptions`] say, 64-bit integers as
//! strings, enums by name, bytes in standard base64, NaN and infinities as strings); a
//! differential test holds the two together. Timestamps, Durations, wrappers, `Struct`,
//! `Value`, `ListValue` and `Empty` are written natively; `Any` and `FieldMask` by
//! prost-reflect (small, and their JSON forms are special). What this path does not handle, it
//! refuses with [`Unsupported`] and the caller takes the `DynamicMessage` path: a singular
//! message field sent twice (the wire format merges them), a map key sent twice, groups,
//! extensions, bytes that do not decode, nesting deeper than [`MAX_DEPTH`].

use prost_reflect::DynamicMessage;

use super::{
    EncodeOptions, FieldPlan, MAX_DEPTH, MessagePlan, Plans, Shape, Ty, Unsupported, Wkt,
    write_json,
};
use crate::transcode::json_text;

/// One field occurrence on the wire.
#[derive(Clone, Copy, Debug)]
enum Wire {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Len(usize, usize),
}

/// Encodes the message `bytes` (of the plans' first type) as JSON.
pub fn encode(plans: &Plans, bytes: &[u8], opts: &EncodeOptions) -> Result<Vec<u8>, Unsupported> {
    encode_at(plans, plans.root, bytes, opts)
}

pub(super) fn encode_at(
    plans: &Plans,
    root: usize,
    bytes: &[u8],
    opts: &EncodeOptions,
) -> Result<Vec<u8>, Unsupported> {
    let mut out = Vec::with_capacity(bytes.len() * 2 + 16);
    let mut w = Writer {
        plans,
        opts,
        scratch: Vec::with_capacity(64),
    };
    w.message(&mut out, root, bytes, 0)?;
    Ok(out)
}

struct Writer<'a> {
    plans: &'a Plans,
    opts: &'a EncodeOptions,
    /// The field occurrences of the messages being written, innermost last (each message
    /// appends its own and removes them when done).
    scratch: Vec<(usize, Wire)>,
}

/// Reads a varint at `*pos`.
fn varint(bytes: &[u8], pos: &mut usize) -> Result<u64, Unsupported> {
    let mut value = 0u64;
    for shift in 0..10 {
        let b = *bytes.get(*pos).ok_or(Unsupported("truncated varint"))?;
        *pos += 1;
        // As prost: the tenth byte holds the 64th bit only.
        if shift == 9 && b > 1 {
            return Err(Unsupported("varint over 64 bits"));
        }
        value |= u64::from(b & 0x7f) << (shift * 7);
        if b < 0x80 {
            return Ok(value);
        }
    }
    Err(Unsupported("varint too long"))
}

fn fixed<const N: usize>(bytes: &[u8], pos: &mut usize) -> Result<[u8; N], Unsupported> {
    let end = pos.checked_add(N).ok_or(Unsupported("truncated"))?;
    let raw: [u8; N] = bytes
        .get(*pos..end)
        .and_then(|s| s.try_into().ok())
        .ok_or(Unsupported("truncated fixed-width value"))?;
    *pos = end;
    Ok(raw)
}

/// Reads one field at `*pos`: its number and its wire value.
fn read_field(bytes: &[u8], pos: &mut usize) -> Result<(u64, Wire), Unsupported> {
    let tag = varint(bytes, pos)?;
    // As prost decodes a key: at most 32 bits, field number at least 1.
    if tag > u64::from(u32::MAX) {
        return Err(Unsupported("bad tag"));
    }
    if tag >> 3 == 0 {
        return Err(Unsupported("field number 0"));
    }
    let wire = match tag & 7 {
        0 => Wire::Varint(varint(bytes, pos)?),
        1 => Wire::Fixed64(u64::from_le_bytes(fixed::<8>(bytes, pos)?)),
        2 => {
            let len = usize::try_from(varint(bytes, pos)?)
                .map_err(|_| Unsupported("length too large"))?;
            let end = pos
                .checked_add(len)
                .filter(|&e| e <= bytes.len())
                .ok_or(Unsupported("truncated length-delimited field"))?;
            let w = Wire::Len(*pos, end);
            *pos = end;
            w
        }
        5 => Wire::Fixed32(u32::from_le_bytes(fixed::<4>(bytes, pos)?)),
        _ => return Err(Unsupported("groups or an invalid wire type")),
    };
    Ok((tag >> 3, wire))
}

/// Appends every field occurrence of a message to `found`, in wire order: (field index in
/// the plan, value).
fn scan(
    plan: &MessagePlan,
    bytes: &[u8],
    found: &mut Vec<(usize, Wire)>,
) -> Result<(), Unsupported> {
    let mut pos = 0;
    while pos < bytes.len() {
        let (number, value) = read_field(bytes, &mut pos)?;
        let number = u32::try_from(number).map_err(|_| Unsupported("bad tag"))?;
        if number == 0 {
            return Err(Unsupported("field number 0"));
        }
        match plan.fields.binary_search_by_key(&number, |f| f.number) {
            Ok(i) => found.push((i, value)),
            // An extension is written by prost-reflect; an unknown field is left out.
            Err(_) if plan.desc.get_extension(number).is_some() => {
                return Err(Unsupported("an extension field"));
            }
            Err(_) => {}
        }
    }
    Ok(())
}

/// A scalar decoded from the wire.
#[derive(Clone, Copy, Debug)]
enum Scalar<'b> {
    F64(f64),
    F32(f32),
    I32(i32),
    I64(i64),
    U32(u32),
    U64(u64),
    Bool(bool),
    Str(&'b str),
    /// A string whose bytes are plain ([`json_text::is_plain`]): UTF-8 with nothing to
    /// escape, written as they are.
    Plain(&'b [u8]),
    Bytes(&'b [u8]),
    Enum(i32),
}

impl Scalar<'_> {
    /// Whether it is its type's default (what proto3 leaves out).
    fn is_default(&self) -> bool {
        match *self {
            Scalar::F64(v) => v == 0.0,
            Scalar::F32(v) => v == 0.0,
            Scalar::I32(v) | Scalar::Enum(v) => v == 0,
            Scalar::I64(v) => v == 0,
            Scalar::U32(v) => v == 0,
            Scalar::U64(v) => v == 0,
            Scalar::Bool(v) => !v,
            Scalar::Str(v) => v.is_empty(),
            Scalar::Plain(v) | Scalar::Bytes(v) => v.is_empty(),
        }
    }
}

fn zigzag32(v: u64) -> i32 {
    let v = v as u32;
    ((v >> 1) as i32) ^ -((v & 1) as i32)
}

fn zigzag64(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// The scalar of type `ty` in `wire` (`None`: the wire type does not fit the type).
fn scalar<'b>(ty: &Ty, wire: Wire, bytes: &'b [u8]) -> Result<Scalar<'b>, Unsupported> {
    let mismatch = Unsupported("a wire type that does not fit the field");
    Ok(match (ty, wire) {
        (Ty::Double, Wire::Fixed64(v)) => Scalar::F64(f64::from_bits(v)),
        (Ty::Float, Wire::Fixed32(v)) => Scalar::F32(f32::from_bits(v)),
        (Ty::Int32, Wire::Varint(v)) => Scalar::I32(v as i32),
        (Ty::Int64, Wire::Varint(v)) => Scalar::I64(v as i64),
        (Ty::Uint32, Wire::Varint(v)) => Scalar::U32(v as u32),
        (Ty::Uint64, Wire::Varint(v)) => Scalar::U64(v),
        (Ty::Sint32, Wire::Varint(v)) => Scalar::I32(zigzag32(v)),
        (Ty::Sint64, Wire::Varint(v)) => Scalar::I64(zigzag64(v)),
        (Ty::Fixed32, Wire::Fixed32(v)) => Scalar::U32(v),
        (Ty::Fixed64, Wire::Fixed64(v)) => Scalar::U64(v),
        (Ty::Sfixed32, Wire::Fixed32(v)) => Scalar::I32(v as i32),
        (Ty::Sfixed64, Wire::Fixed64(v)) => Scalar::I64(v as i64),
        (Ty::Bool, Wire::Varint(v)) => Scalar::Bool(v != 0),
        (Ty::Enum(_), Wire::Varint(v)) => Scalar::Enum(v as i32),
        (Ty::String, Wire::Len(s, e)) => {
            let b = bytes.get(s..e).ok_or(mismatch)?;
            if json_text::is_plain(b) {
                Scalar::Plain(b)
            } else {
                Scalar::Str(
                    std::str::from_utf8(b)
                        .map_err(|_| Unsupported("a string that is not UTF-8"))?,
                )
            }
        }
        (Ty::Bytes, Wire::Len(s, e)) => Scalar::Bytes(bytes.get(s..e).ok_or(mismatch)?),
        _ => return Err(mismatch),
    })
}

/// Whether values of `ty` may come packed in one length-delimited field.
fn packable(ty: &Ty) -> bool {
    !matches!(ty, Ty::String | Ty::Bytes | Ty::Message(_))
}

impl Writer<'_> {
    fn key<'p>(&self, f: &'p FieldPlan) -> &'p [u8] {
        if self.opts.use_proto_field_names {
            &f.proto_key
        } else {
            &f.json_key
        }
    }

    fn message(
        &mut self,
        out: &mut Vec<u8>,
        plan_index: usize,
        bytes: &[u8],
        depth: usize,
    ) -> Result<(), Unsupported> {
        if depth > MAX_DEPTH {
            return Err(Unsupported("nesting too deep"));
        }
        let plans = self.plans;
        let plan = plans.plans.get(plan_index).ok_or(Unsupported("no plan"))?;
        match &plan.wkt {
            Wkt::No => {}
            Wkt::Timestamp | Wkt::Duration => return time(out, &plan.wkt, bytes),
            Wkt::Wrapper(ty) => return wrapper(out, ty, bytes),
            Wkt::Other => {
                return match plan.desc.full_name() {
                    "google.protobuf.Value" => value(out, bytes, depth),
                    "google.protobuf.Struct" => structure(out, bytes, depth),
                    "google.protobuf.ListValue" => list_value(out, bytes, depth),
                    "google.protobuf.Empty" => empty(out, bytes),
                    _ => well_known(out, plan, bytes, self.opts),
                };
            }
        }
        let base = self.scratch.len();
        scan(plan, bytes, &mut self.scratch)?;
        let end = self.scratch.len();
        // The last member of each oneof on the wire (in wire order) is the one set.
        let mut oneof_last: Vec<Option<usize>> = Vec::new();
        if plan.oneofs > 0 {
            oneof_last.resize(plan.oneofs, None);
            for &(i, _) in self.scratch.get(base..end).unwrap_or_default() {
                if let Some(o) = plan.fields.get(i).and_then(|f| f.oneof)
                    && let Some(slot) = oneof_last.get_mut(o)
                {
                    *slot = Some(i);
                }
            }
        }
        // Occurrences grouped by field, in field-number order, wire order kept within a field
        // (serializers write fields in number order: usually nothing to sort).
        if let Some(found) = self.scratch.get_mut(base..end)
            && !found.is_sorted_by_key(|&(i, _)| i)
        {
            found.sort_by_key(|&(i, _)| i);
        }
        out.push(b'{');
        let mut first = true;
        let mut next = base;
        for (i, f) in plan.fields.iter().enumerate() {
            let start = next;
            while next < end && self.scratch.get(next).is_some_and(|&(j, _)| j == i) {
                next += 1;
            }
            if let Some(o) = f.oneof
                && start < next
                && oneof_last.get(o).copied().flatten() != Some(i)
            {
                // Another member of its oneof came later. Decoding still reads this one: it
                // must be valid (a message is left to the decoding path).
                match &f.shape {
                    Shape::Single(Ty::Message(_)) => {
                        return Err(Unsupported(
                            "a oneof message member replaced by a later one",
                        ));
                    }
                    Shape::Single(ty) => self.check_scalars(ty, start..next, bytes)?,
                    _ => {}
                }
                continue;
            }
            let mark = out.len();
            if !first {
                out.push(b',');
            }
            let written = self.field(out, f, start..next, bytes, depth)?;
            if written {
                first = false;
            } else {
                out.truncate(mark);
            }
        }
        out.push(b'}');
        self.scratch.truncate(base);
        Ok(())
    }

    /// Checks that the occurrences `range` (of the scratch list) are valid values of `ty`
    /// (the right wire type; UTF-8 for a string), as decoding would, though none is written.
    fn check_scalars(
        &self,
        ty: &Ty,
        range: std::ops::Range<usize>,
        bytes: &[u8],
    ) -> Result<(), Unsupported> {
        for k in range {
            scalar(ty, self.wire(k)?, bytes)?;
        }
        Ok(())
    }

    /// The wire value of occurrence `k` (of the scratch list).
    fn wire(&self, k: usize) -> Result<Wire, Unsupported> {
        self.scratch
            .get(k)
            .map(|&(_, w)| w)
            .ok_or(Unsupported("no such occurrence"))
    }

    /// Writes one field whose occurrences are `range` of the scratch list (`,` already
    /// written when needed); returns whether it wrote anything.
    fn field(
        &mut self,
        out: &mut Vec<u8>,
        f: &FieldPlan,
        range: std::ops::Range<usize>,
        bytes: &[u8],
        depth: usize,
    ) -> Result<bool, Unsupported> {
        let emit_defaults = self.opts.emit_unpopulated;
        let count = range.len();
        match &f.shape {
            Shape::Single(Ty::Message(m)) => {
                if count == 0 {
                    return Ok(false); // unset messages are left out, always
                }
                if count > 1 {
                    return Err(Unsupported("a message field sent twice (merged on decode)"));
                }
                let Wire::Len(s, e) = self.wire(range.start)? else {
                    return Err(Unsupported("a message field that is not length-delimited"));
                };
                out.extend_from_slice(self.key(f));
                self.message(out, *m, bytes.get(s..e).unwrap_or_default(), depth + 1)?;
                Ok(true)
            }
            Shape::Single(ty) => {
                // The last occurrence wins; the earlier ones must still be valid values.
                if count > 1 {
                    self.check_scalars(ty, range.start..range.end - 1, bytes)?;
                }
                let value = match range.end.checked_sub(1).filter(|_| count > 0) {
                    Some(last) => Some(scalar(ty, self.wire(last)?, bytes)?),
                    None => None,
                };
                match value {
                    Some(v) if f.presence || emit_defaults || !v.is_default() => {
                        out.extend_from_slice(self.key(f));
                        write_scalar(out, ty, v);
                        Ok(true)
                    }
                    None if emit_defaults && !f.presence => {
                        out.extend_from_slice(self.key(f));
                        write_default(out, ty);
                        Ok(true)
                    }
                    _ => Ok(false),
                }
            }
            Shape::List(ty) => {
                if count == 0 && !emit_defaults {
                    return Ok(false);
                }
                out.extend_from_slice(self.key(f));
                out.push(b'[');
                let mut first = true;
                for k in range {
                    let wire = self.wire(k)?;
                    match (ty, wire) {
                        (Ty::Message(m), Wire::Len(s, e)) => {
                            if !first {
                                out.push(b',');
                            }
                            first = false;
                            self.message(out, *m, bytes.get(s..e).unwrap_or_default(), depth + 1)?;
                        }
                        (Ty::Message(_), _) => {
                            return Err(Unsupported("a message that is not length-delimited"));
                        }
                        (ty, Wire::Len(s, e)) if packable(ty) => {
                            let packed = bytes.get(s..e).unwrap_or_default();
                            let mut pos = 0;
                            while pos < packed.len() {
                                let w = match ty {
                                    Ty::Double | Ty::Fixed64 | Ty::Sfixed64 => Wire::Fixed64(
                                        u64::from_le_bytes(fixed::<8>(packed, &mut pos)?),
                                    ),
                                    Ty::Float | Ty::Fixed32 | Ty::Sfixed32 => Wire::Fixed32(
                                        u32::from_le_bytes(fixed::<4>(packed, &mut pos)?),
                                    ),
                                    _ => Wire::Varint(varint(packed, &mut pos)?),
                                };
                                if !first {
                                    out.push(b',');
                                }
                                first = false;
                                write_scalar(out, ty, scalar(ty, w, packed)?);
                            }
                        }
                        (ty, w) => {
                            if !first {
                                out.push(b',');
                            }
                            first = false;
                            write_scalar(out, ty, scalar(ty, w, bytes)?);
                        }
                    }
                }
                if first && !emit_defaults {
                    // Only empty packed runs: no element, so the field is not set.
                    return Ok(false);
                }
                out.push(b']');
                Ok(true)
            }
            Shape::Map(kt, vt) => {
                if count == 0 && !emit_defaults {
                    return Ok(false);
                }
                out.extend_from_slice(self.key(f));
                out.push(b'{');
                let mut seen: Vec<Vec<u8>> = Vec::with_capacity(count);
                for k in range {
                    let Wire::Len(s, e) = self.wire(k)? else {
                        return Err(Unsupported("a map entry that is not length-delimited"));
                    };
                    let entry = bytes.get(s..e).unwrap_or_default();
                    let (key, value) = map_entry(entry, kt, vt)?;
                    let mut key_json = Vec::new();
                    match key {
                        Some(w) => write_map_key(&mut key_json, scalar(kt, w, entry)?),
                        None => write_map_key(&mut key_json, default_scalar(kt)),
                    }
                    if seen.contains(&key_json) {
                        return Err(Unsupported("a map key sent twice"));
                    }
                    if !seen.is_empty() {
                        out.push(b',');
                    }
                    out.extend_from_slice(&key_json);
                    out.push(b':');
                    seen.push(key_json);
                    match (vt, value) {
                        (Ty::Message(m), Some(Wire::Len(vs, ve))) => {
                            self.message(out, *m, entry.get(vs..ve).unwrap_or_default(), depth + 1)?
                        }
                        (Ty::Message(m), None) => self.message(out, *m, &[], depth + 1)?,
                        (Ty::Message(_), Some(_)) => {
                            return Err(Unsupported("a map value that is not length-delimited"));
                        }
                        (ty, Some(w)) => write_scalar(out, ty, scalar(ty, w, entry)?),
                        (ty, None) => write_default(out, ty),
                    }
                }
                out.push(b'}');
                Ok(true)
            }
        }
    }
}

/// The key (field 1) and value (field 2) of a map entry: the last of each. Every occurrence
/// of a scalar key or value must be a valid value of its type (decoding reads them all).
fn map_entry(
    entry: &[u8],
    key_ty: &Ty,
    value_ty: &Ty,
) -> Result<(Option<Wire>, Option<Wire>), Unsupported> {
    let (mut key, mut value) = (None, None);
    let mut pos = 0;
    while pos < entry.len() {
        let (number, wire) = read_field(entry, &mut pos)?;
        match number {
            1 => {
                scalar(key_ty, wire, entry)?;
                key = Some(wire);
            }
            2 => {
                if matches!(value_ty, Ty::Message(_)) {
                    // Every occurrence must be length-delimited, as decoding requires (found by
                    // cargo-fuzz: a fixed32 one before the last was let through).
                    if !matches!(wire, Wire::Len(..)) {
                        return Err(Unsupported("a wire type that does not fit the field"));
                    }
                    // A message value sent twice would be merged: not handled here.
                    if value.is_some() {
                        return Err(Unsupported("a map value sent twice"));
                    }
                } else {
                    scalar(value_ty, wire, entry)?;
                }
                value = Some(wire);
            }
            _ => {}
        }
    }
    Ok((key, value))
}

fn default_scalar(ty: &Ty) -> Scalar<'static> {
    match ty {
        Ty::Double => Scalar::F64(0.0),
        Ty::Float => Scalar::F32(0.0),
        Ty::Int32 | Ty::Sint32 | Ty::Sfixed32 => Scalar::I32(0),
        Ty::Int64 | Ty::Sint64 | Ty::Sfixed64 => Scalar::I64(0),
        Ty::Uint32 | Ty::Fixed32 => Scalar::U32(0),
        Ty::Uint64 | Ty::Fixed64 => Scalar::U64(0),
        Ty::Bool => Scalar::Bool(false),
        Ty::String => Scalar::Str(""),
        Ty::Bytes => Scalar::Bytes(&[]),
        Ty::Enum(_) | Ty::Message(_) => Scalar::Enum(0),
    }
}

fn write_default(out: &mut Vec<u8>, ty: &Ty) {
    write_scalar(out, ty, default_scalar(ty));
}

fn write_scalar(out: &mut Vec<u8>, ty: &Ty, v: Scalar<'_>) {
    match v {
        Scalar::F64(x) if x.is_finite() => write_json(out, &x),
        Scalar::F32(x) if x.is_finite() => write_json(out, &x),
        Scalar::F64(x) => out.extend_from_slice(non_finite(x.is_nan(), x > 0.0)),
        Scalar::F32(x) => out.extend_from_slice(non_finite(x.is_nan(), x > 0.0)),
        Scalar::I32(x) => write_json(out, &x),
        Scalar::U32(x) => write_json(out, &x),
        Scalar::I64(x) => {
            out.push(b'"');
            write_json(out, &x);
            out.push(b'"');
        }
        Scalar::U64(x) => {
            out.push(b'"');
            write_json(out, &x);
            out.push(b'"');
        }
        Scalar::Bool(x) => out.extend_from_slice(if x { b"true" } else { b"false" }),
        Scalar::Str(s) => write_json(out, s),
        Scalar::Plain(b) => json_text::write_plain(out, b),
        Scalar::Bytes(b) => {
            use base64::Engine;
            out.push(b'"');
            let at = out.len();
            out.resize(at + base64::encoded_len(b.len(), true).unwrap_or(0), 0);
            let n = base64::engine::general_purpose::STANDARD
                .encode_slice(b, out.get_mut(at..).unwrap_or_default())
                .unwrap_or(0);
            out.truncate(at + n);
            out.push(b'"');
        }
        Scalar::Enum(n) => match ty {
            Ty::Enum(e) if e.full_name() == "google.protobuf.NullValue" => {
                out.extend_from_slice(b"null");
            }
            Ty::Enum(e) => match e.get_value(n) {
                Some(v) => json_text::write_str(out, v.name()),
                None => write_json(out, &n),
            },
            _ => write_json(out, &n),
        },
    }
}

fn non_finite(nan: bool, positive: bool) -> &'static [u8] {
    match (nan, positive) {
        (true, _) => b"\"NaN\"",
        (false, true) => b"\"Infinity\"",
        (false, false) => b"\"-Infinity\"",
    }
}

/// A map key: always a JSON string.
fn write_map_key(out: &mut Vec<u8>, v: Scalar<'_>) {
    match v {
        Scalar::Str(s) => write_json(out, s),
        Scalar::Plain(b) => json_text::write_plain(out, b),
        Scalar::Bool(b) => out.extend_from_slice(if b { b"\"true\"" } else { b"\"false\"" }),
        other => {
            out.push(b'"');
            match other {
                Scalar::I32(x) | Scalar::Enum(x) => write_json(out, &x),
                Scalar::I64(x) => write_json(out, &x),
                Scalar::U32(x) => write_json(out, &x),
                Scalar::U64(x) => write_json(out, &x),
                _ => {}
            }
            out.push(b'"');
        }
    }
}

/// The last value of each of the first two fields (as varints), the way `Timestamp` and
/// `Duration` are laid out.
fn two_varints(bytes: &[u8]) -> Result<(u64, u64), Unsupported> {
    let (mut a, mut b) = (0, 0);
    let mut pos = 0;
    while pos < bytes.len() {
        // Keys checked as decoding checks them; other fields are unknown fields, skipped.
        match read_field(bytes, &mut pos)? {
            (1, Wire::Varint(v)) => a = v,
            (2, Wire::Varint(v)) => b = v,
            (1 | 2, _) => return Err(Unsupported("a time field that is not a varint")),
            _ => {}
        }
    }
    Ok((a, b))
}

/// A `Timestamp` or a `Duration`, formatted by prost-types as prost-reflect does (and
/// refused out of the ranges it accepts).
fn time(out: &mut Vec<u8>, wkt: &Wkt, bytes: &[u8]) -> Result<(), Unsupported> {
    let text = time_text(matches!(wkt, Wkt::Timestamp), bytes)?;
    // The text has nothing to escape: written between quotes as it is.
    out.push(b'"');
    out.extend_from_slice(text.as_bytes());
    out.push(b'"');
    Ok(())
}

/// The JSON text (unquoted) of the `Timestamp` (`timestamp`) or `Duration` encoded in
/// `bytes`, as prost-reflect writes it; refused out of the ranges it accepts. Also how the
/// GraphQL door shows them when it reads replies from their bytes.
pub(crate) fn time_text(timestamp: bool, bytes: &[u8]) -> Result<String, Unsupported> {
    let (seconds, nanos) = two_varints(bytes)?;
    let (seconds, nanos) = (seconds as i64, nanos as i32);
    if timestamp {
        // 0001-01-01T00:00:00Z ..= 9999-12-31T23:59:59Z
        if !(-62_135_596_800..=253_402_300_799).contains(&seconds) {
            return Err(Unsupported("a timestamp out of range"));
        }
        if (0..1_000_000_000).contains(&nanos) {
            return Ok(rfc3339(seconds, nanos));
        }
        // Nanos out of their range: prost-types normalizes them into the seconds.
        Ok(prost_types::Timestamp { seconds, nanos }.to_string())
    } else {
        if seconds.unsigned_abs() > 315_576_000_000 || nanos.unsigned_abs() > 999_999_999 {
            return Err(Unsupported("a duration out of range"));
        }
        Ok(prost_types::Duration { seconds, nanos }.to_string())
    }
}

/// The text prost-types' `Timestamp` display gives for `seconds` (years 1 to 9999) and
/// `nanos` (0 to 999,999,999), without its formatting machinery: the civil date of the day
/// (proleptic Gregorian, as prost-types' musl-derived conversion), the time of day, and the
/// fraction as nothing, milliseconds, microseconds or nanoseconds, whichever is exact.
fn rfc3339(seconds: i64, nanos: i32) -> String {
    /// `n` in `width` digits, zero-padded.
    fn digits(out: &mut String, n: u32, width: u32) {
        for i in (0..width).rev() {
            let d = (n / 10u32.pow(i)) % 10;
            out.push(char::from(b'0' + d as u8));
        }
    }
    let days = seconds.div_euclid(86_400);
    // Below 86,400: fits.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let secs = seconds.rem_euclid(86_400) as u32;
    let (year, month, day) = crate::calendar::civil_from_days(days);
    let mut out = String::with_capacity(30);
    // The range check keeps the year within 1..=9999 and the rest within their digits.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    {
        digits(&mut out, year as u32, 4);
        out.push('-');
        digits(&mut out, month as u32, 2);
        out.push('-');
        digits(&mut out, day as u32, 2);
    }
    out.push('T');
    digits(&mut out, secs / 3_600, 2);
    out.push(':');
    digits(&mut out, secs / 60 % 60, 2);
    out.push(':');
    digits(&mut out, secs % 60, 2);
    #[allow(clippy::cast_sign_loss)]
    let nanos = nanos as u32;
    if nanos != 0 {
        out.push('.');
        if nanos.is_multiple_of(1_000_000) {
            digits(&mut out, nanos / 1_000_000, 3);
        } else if nanos.is_multiple_of(1_000) {
            digits(&mut out, nanos / 1_000, 6);
        } else {
            digits(&mut out, nanos, 9);
        }
    }
    out.push('Z');
    out
}

/// A wrapper: its value (the last field 1), or the type's default.
fn wrapper(out: &mut Vec<u8>, ty: &Ty, bytes: &[u8]) -> Result<(), Unsupported> {
    let mut value = None;
    let mut pos = 0;
    while pos < bytes.len() {
        let (number, wire) = read_field(bytes, &mut pos)?;
        if number == 1 {
            value = Some(scalar(ty, wire, bytes)?);
        }
    }
    match value.unwrap_or_else(|| default_scalar(ty)) {
        // A wrapped float is written as serde writes it (non-finite values as null).
        Scalar::F64(x) => write_json(out, &x),
        Scalar::F32(x) => write_json(out, &x),
        v => write_scalar(out, ty, v),
    }
    Ok(())
}

// ---- google.protobuf.Value, Struct, ListValue, Empty: written as prost-reflect writes them
// (through prost-types: a Value with no kind is `null`, Struct keys sorted, the last of a key
// given twice kept, a non-finite number refused). Wire forms that decoding would merge (a
// Value holding two kinds, a map entry's value sent twice) are refused and go the decoded way.

/// A `google.protobuf.Value`.
fn value(out: &mut Vec<u8>, bytes: &[u8], depth: usize) -> Result<(), Unsupported> {
    if depth > MAX_DEPTH {
        return Err(Unsupported("nesting too deep"));
    }
    let mut kind = None;
    let mut pos = 0;
    while pos < bytes.len() {
        let (number, wire) = read_field(bytes, &mut pos)?;
        if (1..=6).contains(&number) {
            if kind.is_some() {
                return Err(Unsupported("a Value holding two kinds"));
            }
            kind = Some((number, wire));
        }
    }
    let sub = |s: usize, e: usize| bytes.get(s..e).ok_or(Unsupported("truncated"));
    match kind {
        None | Some((1, Wire::Varint(_))) => out.extend_from_slice(b"null"),
        Some((2, Wire::Fixed64(bits))) => {
            let x = f64::from_bits(bits);
            if !x.is_finite() {
                return Err(Unsupported("a non-finite number in a Value"));
            }
            write_json(out, &x);
        }
        Some((3, Wire::Len(s, e))) => {
            json_text::write_utf8(out, sub(s, e)?)
                .ok_or(Unsupported("a string that is not UTF-8"))?;
        }
        Some((4, Wire::Varint(v))) => {
            out.extend_from_slice(if v != 0 { b"true" } else { b"false" });
        }
        Some((5, Wire::Len(s, e))) => structure(out, sub(s, e)?, depth + 1)?,
        Some((6, Wire::Len(s, e))) => list_value(out, sub(s, e)?, depth + 1)?,
        Some(_) => return Err(Unsupported("a wire type that does not fit the field")),
    }
    Ok(())
}

/// A `google.protobuf.Struct`: an object, keys in order.
fn structure(out: &mut Vec<u8>, bytes: &[u8], depth: usize) -> Result<(), Unsupported> {
    if depth > MAX_DEPTH {
        return Err(Unsupported("nesting too deep"));
    }
    // (key, the entry's value bytes: none is a Value with no kind).
    let mut entries: Vec<(&str, &[u8])> = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        match read_field(bytes, &mut pos)? {
            (1, Wire::Len(s, e)) => {
                let entry = bytes.get(s..e).ok_or(Unsupported("truncated"))?;
                let (mut key, mut val): (&str, Option<&[u8]>) = ("", None);
                let mut at = 0;
                while at < entry.len() {
                    match read_field(entry, &mut at)? {
                        (1, Wire::Len(s, e)) => {
                            key = std::str::from_utf8(
                                entry.get(s..e).ok_or(Unsupported("truncated"))?,
                            )
                            .map_err(|_| Unsupported("a string that is not UTF-8"))?;
                        }
                        (2, Wire::Len(s, e)) => {
                            if val.is_some() {
                                return Err(Unsupported("a Struct value sent twice"));
                            }
                            val = Some(entry.get(s..e).ok_or(Unsupported("truncated"))?);
                        }
                        (1 | 2, _) => {
                            return Err(Unsupported("a wire type that does not fit the field"));
                        }
                        _ => {}
                    }
                }
                entries.push((key, val.unwrap_or_default()));
            }
            (1, _) => return Err(Unsupported("a wire type that does not fit the field")),
            _ => {}
        }
    }
    // Sorted by key (a stable sort: the last of a key given twice is the one kept).
    entries.sort_by(|a, b| a.0.cmp(b.0));
    out.push(b'{');
    let mut first = true;
    for (i, (key, val)) in entries.iter().enumerate() {
        if entries.get(i + 1).is_some_and(|next| next.0 == *key) {
            // Shadowed by a later entry, but decoded all the same: a value that does not
            // decode fails the whole message (found by cargo-fuzz).
            value(&mut Vec::new(), val, depth + 1)?;
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        json_text::write_str(out, key);
        out.push(b':');
        value(out, val, depth + 1)?;
    }
    out.push(b'}');
    Ok(())
}

/// A `google.protobuf.ListValue`: an array.
fn list_value(out: &mut Vec<u8>, bytes: &[u8], depth: usize) -> Result<(), Unsupported> {
    if depth > MAX_DEPTH {
        return Err(Unsupported("nesting too deep"));
    }
    out.push(b'[');
    let mut first = true;
    let mut pos = 0;
    while pos < bytes.len() {
        match read_field(bytes, &mut pos)? {
            (1, Wire::Len(s, e)) => {
                if !first {
                    out.push(b',');
                }
                first = false;
                value(
                    out,
                    bytes.get(s..e).ok_or(Unsupported("truncated"))?,
                    depth + 1,
                )?;
            }
            (1, _) => return Err(Unsupported("a wire type that does not fit the field")),
            _ => {}
        }
    }
    out.push(b']');
    Ok(())
}

/// A `google.protobuf.Empty`: `{}` (its bytes checked as decoding checks them).
fn empty(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), Unsupported> {
    let mut pos = 0;
    while pos < bytes.len() {
        read_field(bytes, &mut pos)?;
    }
    out.extend_from_slice(b"{}");
    Ok(())
}

/// A well-known type: decoded and written by prost-reflect (their JSON forms are special:
/// RFC 3339 timestamps, `1.5s` durations, unwrapped wrappers, `Struct` as an object...).
fn well_known(
    out: &mut Vec<u8>,
    plan: &MessagePlan,
    bytes: &[u8],
    opts: &EncodeOptions,
) -> Result<(), Unsupported> {
    let msg = DynamicMessage::decode(plan.desc.clone(), bytes)
        .map_err(|_| Unsupported("a well-known type that does not decode"))?;
    let sopts = prost_reflect::SerializeOptions::new()
        .use_proto_field_name(opts.use_proto_field_names)
        .skip_default_fields(!opts.emit_unpopulated);
    msg.serialize_with_options(&mut serde_json::Serializer::new(out), &sopts)
        .map_err(|_| Unsupported("a well-known type that does not encode"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use proptest::prelude::*;

    use super::rfc3339;

    fn prost(seconds: i64, nanos: i32) -> String {
        prost_types::Timestamp { seconds, nanos }.to_string()
    }

    #[test]
    fn timestamps_read_as_prost_types_writes_them_at_the_edges() {
        let days = [
            -62_135_596_800, // 0001-01-01
            -62_135_596_801 + 86_400,
            -2_208_988_800, // 1900-01-01 (not a leap year)
            -2_203_891_200, // 1900-03-01
            0,
            951_782_400,     // 2000-02-29
            951_868_800,     // 2000-03-01
            1_709_164_800,   // 2024-02-29
            4_107_542_400,   // 2100-03-01
            253_402_300_799, // 9999-12-31T23:59:59
        ];
        for seconds in days {
            for nanos in [
                0,
                1,
                999_999_999,
                1_000_000,
                5_000,
                120_000_000,
                123_456_789,
            ] {
                assert_eq!(
                    rfc3339(seconds, nanos),
                    prost(seconds, nanos),
                    "{seconds} {nanos}"
                );
            }
        }
    }

    proptest! {
        #[test]
        fn timestamps_read_as_prost_types_writes_them(
            seconds in -62_135_596_800i64..=253_402_300_799,
            nanos in prop_oneof![
                Just(0),
                (0..1_000i32).prop_map(|n| n * 1_000_000),
                (0..1_000_000i32).prop_map(|n| n * 1_000),
                0..1_000_000_000i32,
            ],
        ) {
            prop_assert_eq!(rfc3339(seconds, nanos), prost(seconds, nanos));
        }
    }
}
