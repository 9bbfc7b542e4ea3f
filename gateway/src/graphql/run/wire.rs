//! A selection written as JSON straight from a reply's wire bytes, without decoding the whole
//! message first: the compiled run's way for a root field whose selection has no links
//! (the flat query's case).
//!
//! One scan over the message's fields notes where each selected field's occurrences are;
//! the selection is then written in its own order as the JSON text serde would write for the
//! GraphQL value the general way builds: strings and enum names straight from the bytes,
//! other values decoded as prost-reflect would decode them and converted by the compiled
//! run's own [`leaf`] (so the values are the same), no object or map in between. Anything this does not handle gives `None`, and the caller decodes the message and
//! projects it the general way, which also reports what was wrong: malformed bytes, a value
//! the conversion refuses (an enum number the enum lacks, a `uint32` past GraphQL's `Int`),
//! redacted fields, maps, members of a real `oneof` (a later member clears an earlier one),
//! a singular message sent twice (protobuf merges them), extensions, groups. Fields not
//! selected are checked as decoding would check them (wire type, UTF-8, nested messages), not
//! converted: a reply the general way refuses is refused here too.

use async_graphql::Value as Gql;
use prost::bytes::Buf;
use prost::encoding::{WireType, decode_key, decode_varint};
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, Value};

use super::values::leaf;
use crate::graphql::engine::plan::{Cond, NodeKind, Sel, WireLayout};
use crate::graphql::engine::schema::shape::{Shape, Wkt};
use crate::transcode::direct::to_json::time_text;

/// Deepest nesting of messages followed (prost-reflect's decoder stops at 100 too).
const MAX_DEPTH: u32 = 100;

/// One occurrence of a selected field: which node, its wire type and its bytes (a varint's
/// or fixed value's encoding, or a length-delimited payload).
struct Seen<'a> {
    node: usize,
    wire: WireType,
    data: &'a [u8],
}

/// Writes the JSON text of the selection `sel` (no links) of the message of type `desc`
/// encoded in `bytes` to `out`: the text serde writes for the value the general way builds.
/// `None` when the general way must do it (`out` is then as it was). `skipped` says whether
/// `@skip` / `@include` leave a node out.
pub(super) fn project(
    bytes: &[u8],
    desc: &MessageDescriptor,
    sel: &Sel,
    skipped: &dyn Fn(&[Cond]) -> bool,
    out: &mut Vec<u8>,
) -> Option<()> {
    let start = out.len();
    let done = object(bytes, desc, sel, skipped, 0, out);
    if done.is_none() {
        out.truncate(start);
    }
    done
}

/// A JSON string (serde's escaping).
fn write_str(out: &mut Vec<u8>, s: &str) -> Option<()> {
    crate::transcode::json_text::write_str(out, s);
    Some(())
}

/// A GraphQL value as serde writes it.
fn write_value(out: &mut Vec<u8>, v: &Gql) -> Option<()> {
    serde_json::to_writer(out, v).ok()
}

fn object(
    bytes: &[u8],
    desc: &MessageDescriptor,
    sel: &Sel,
    skipped: &dyn Fn(&[Cond]) -> bool,
    depth: u32,
    out: &mut Vec<u8>,
) -> Option<()> {
    if depth > MAX_DEPTH || sel.links {
        return None;
    }
    let layout = sel.wire.get_or_init(|| layout(sel)).as_ref()?;
    let seen = scan(bytes, &layout.numbers, Some((desc, depth)))?;
    let start = out.len();
    let mut empty = true;
    for (i, node) in sel.nodes.iter().enumerate() {
        if !node.conds.is_empty() && skipped(&node.conds) {
            continue;
        }
        out.push(if empty { b'{' } else { b',' });
        empty = false;
        out.extend_from_slice(layout.keys.get(i)?);
        match (&node.kind, layout.kinds.get(i)?) {
            (NodeKind::Typename(v), _) => write_value(out, v)?,
            (NodeKind::Field { fd, shape, sel, .. }, Some(kind)) => {
                let mut occurrences = seen.iter().filter(|s| s.node == i).peekable();
                if occurrences.peek().is_none() {
                    write_value(out, &unset(fd, shape)?)?;
                } else {
                    field(
                        fd,
                        kind,
                        shape,
                        sel.as_ref(),
                        occurrences,
                        skipped,
                        depth,
                        out,
                    )?;
                }
            }
            _ => return None,
        }
    }
    // An object without fields is null (as the general way's `object_value`).
    if empty {
        out.truncate(start);
        out.extend_from_slice(b"null");
    } else {
        out.push(b'}');
    }
    Some(())
}

/// Works out `sel`'s [`WireLayout`]; `None` when a node cannot be written from wire bytes.
fn layout(sel: &Sel) -> Option<WireLayout> {
    let (mut numbers, mut kinds, mut keys) = (Vec::new(), Vec::new(), Vec::new());
    for node in &sel.nodes {
        let (number, kind) = match &node.kind {
            NodeKind::Typename(_) => (0, None),
            NodeKind::Field {
                fd, redact: None, ..
            } => {
                if fd.is_map() || fd.containing_oneof().is_some_and(|o| !o.is_synthetic()) {
                    return None;
                }
                (fd.number(), Some(fd.kind()))
            }
            _ => return None,
        };
        numbers.push(number);
        kinds.push(kind);
        let mut key = Vec::with_capacity(node.key.len() + 3);
        write_str(&mut key, node.key.as_str())?;
        key.push(b':');
        keys.push(key.into_boxed_slice());
    }
    Some(WireLayout {
        numbers: numbers.into(),
        kinds: kinds.into(),
        keys: keys.into(),
    })
}

/// Every occurrence of the fields in `numbers`, in wire order; `None` on malformed framing or
/// groups. With `check`, the other fields are checked against the message type (at that
/// depth) as decoding would check them.
fn scan<'a>(
    mut buf: &'a [u8],
    numbers: &[u32],
    check: Option<(&MessageDescriptor, u32)>,
) -> Option<Vec<Seen<'a>>> {
    let mut seen = Vec::with_capacity(numbers.len());
    while buf.has_remaining() {
        let (number, wire) = decode_key(&mut buf).ok()?;
        let data = match wire {
            WireType::Varint => varint_bytes(&mut buf)?,
            WireType::ThirtyTwoBit => take(&mut buf, 4)?,
            WireType::SixtyFourBit => take(&mut buf, 8)?,
            WireType::LengthDelimited => {
                let len = usize::try_from(decode_varint(&mut buf).ok()?).ok()?;
                take(&mut buf, len)?
            }
            WireType::StartGroup | WireType::EndGroup => return None,
        };
        let mut selected = false;
        for (node, n) in numbers.iter().enumerate() {
            if *n == number {
                seen.push(Seen { node, wire, data });
                selected = true;
            }
        }
        if !selected && let Some((desc, depth)) = check {
            unselected(desc, number, wire, data, depth)?;
        }
    }
    Some(seen)
}

/// Checks a field no node selects as decoding it would: the wire type its kind takes, UTF-8
/// strings, nested messages whole. Unknown numbers are kept by decoding, not refused;
/// extensions give `None` (the general way decodes them).
fn unselected(
    desc: &MessageDescriptor,
    number: u32,
    wire: WireType,
    data: &[u8],
    depth: u32,
) -> Option<()> {
    let Some(fd) = desc.get_field(number) else {
        return desc.get_extension(number).is_none().then_some(());
    };
    let kind = fd.kind();
    if let Kind::Message(m) = &kind {
        if wire != WireType::LengthDelimited || depth >= MAX_DEPTH {
            return None;
        }
        return validate(data, m, depth + 1);
    }
    let one = Seen {
        node: 0,
        wire,
        data,
    };
    if fd.is_list() {
        return each_value(&kind, &one, &mut |wire, data| check(&kind, wire, data));
    }
    check(&kind, wire, data)
}

/// Checks one value of `kind` (not a message) as [`scalar`] would read it, without building
/// it: the framing was checked by the scan, so what is left is the wire type and UTF-8.
fn check(kind: &Kind, wire: WireType, data: &[u8]) -> Option<()> {
    if wire != wire_of(kind) {
        return None;
    }
    match kind {
        Kind::String => std::str::from_utf8(data).ok().map(|_| ()),
        Kind::Message(_) => None,
        _ => Some(()),
    }
}

/// Checks a whole message of type `desc` as decoding would.
fn validate(bytes: &[u8], desc: &MessageDescriptor, depth: u32) -> Option<()> {
    scan(bytes, &[], Some((desc, depth))).map(|_| ())
}

/// The bytes of the varint at the start of `buf`, which moves past it.
fn varint_bytes<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    let start = *buf;
    decode_varint(buf).ok()?;
    Some(&start[..start.len() - buf.len()])
}

/// The one length-delimited occurrence of a singular message field (`None` for two: protobuf
/// merges them, the general way does that).
fn only_message<'a, 'b>(mut occurrences: impl Iterator<Item = &'b Seen<'a>>) -> Option<&'a [u8]>
where
    'a: 'b,
{
    let one = occurrences.next()?;
    (occurrences.next().is_none() && one.wire == WireType::LengthDelimited).then_some(one.data)
}

/// The next `n` bytes of `buf`, which moves past them.
fn take<'a>(buf: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if buf.len() < n {
        return None;
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Some(head)
}

/// A field that is not in the message: null where it has presence, else its default.
fn unset(fd: &FieldDescriptor, shape: &Shape) -> Option<Gql> {
    if fd.is_list() {
        return Some(Gql::List(Vec::new()));
    }
    if fd.supports_presence() {
        return Some(Gql::Null);
    }
    leaf(&Value::default_value_for_field(fd), shape).ok()
}

/// Writes the value of a field from its occurrences (at least one).
#[allow(clippy::too_many_arguments)]
fn field<'a, 'b>(
    fd: &FieldDescriptor,
    kind: &Kind,
    shape: &Shape,
    sel: Option<&Sel>,
    occurrences: impl Iterator<Item = &'b Seen<'a>>,
    skipped: &dyn Fn(&[Cond]) -> bool,
    depth: u32,
    out: &mut Vec<u8>,
) -> Option<()>
where
    'a: 'b,
{
    match (shape, sel) {
        (Shape::Object(m), Some(sel)) => {
            object(only_message(occurrences)?, m, sel, skipped, depth + 1, out)
        }
        (Shape::List(inner), Some(sel)) => {
            let Shape::Object(m) = inner.as_ref() else {
                return None;
            };
            out.push(b'[');
            for (i, one) in occurrences.enumerate() {
                if one.wire != WireType::LengthDelimited {
                    return None;
                }
                if i > 0 {
                    out.push(b',');
                }
                object(one.data, m, sel, skipped, depth + 1, out)?;
            }
            out.push(b']');
            Some(())
        }
        (Shape::Map { .. }, _) | (Shape::Object(_), None) => None,
        // Times, the commonest well-known types, written as the REST door writes them (which
        // is what the general way's serde conversion gives).
        (Shape::Wkt(w @ (Wkt::Timestamp | Wkt::Duration)), _) if !fd.is_list() => {
            let text = time_text(*w == Wkt::Timestamp, only_message(occurrences)?).ok()?;
            write_str(out, &text)
        }
        // Wrappers (nullable scalars), as `wkt` shows the decoded message.
        (Shape::Wkt(Wkt::Wrapper(_)), _) if !fd.is_list() => {
            let Kind::Message(m) = kind else {
                return None;
            };
            write_value(out, &wrapper(m, only_message(occurrences)?, depth)?)
        }
        (shape, _) if fd.is_list() => {
            let mut items = Vec::new();
            for one in occurrences {
                values(kind, one, &mut items)?;
            }
            write_value(out, &leaf(&Value::List(items), shape).ok()?)
        }
        (shape, _) => {
            // The last occurrence wins, except for messages (merged).
            let mut last = None;
            let mut count = 0;
            for one in occurrences {
                last = Some(one);
                count += 1;
            }
            let last = last?;
            if count > 1 && matches!(kind, Kind::Message(_)) {
                return None;
            }
            match (shape, kind) {
                // Strings and enums written from the bytes: no value in between.
                (Shape::Scalar(Kind::String), Kind::String) => {
                    if last.wire != WireType::LengthDelimited {
                        return None;
                    }
                    crate::transcode::json_text::write_utf8(out, last.data)
                }
                (Shape::Enum(e), Kind::Enum(_)) => {
                    let Value::EnumNumber(n) = scalar(kind, last.wire, last.data)? else {
                        return None;
                    };
                    // A number the enum lacks: the general way reports it.
                    write_str(out, e.get_value(n)?.name())
                }
                _ => write_value(
                    out,
                    &leaf(&scalar(kind, last.wire, last.data)?, shape).ok()?,
                ),
            }
        }
    }
}

/// The GraphQL value of the wrapper message (`StringValue`...) of type `desc` encoded in
/// `bytes`: what [`wkt`](crate::graphql::engine::schema::output::wkt) gives for the decoded
/// message (prost-reflect's JSON of the wrapped value read into a JSON value: 64-bit
/// integers as strings, bytes in base64, non-finite floats null).
fn wrapper(desc: &MessageDescriptor, bytes: &[u8], depth: u32) -> Option<Gql> {
    use base64::Engine as _;
    let inner = desc.get_field(1)?;
    let seen = scan(bytes, &[1], Some((desc, depth + 1)))?;
    let value = match seen.last() {
        Some(one) => scalar(&inner.kind(), one.wire, one.data)?,
        None => Value::default_value_for_field(&inner),
    };
    // A JSON value holds no non-finite number: serde makes them null.
    let float = |f: f64| Some(serde_json::Number::from_f64(f).map_or(Gql::Null, Gql::Number));
    match value {
        Value::I64(n) => Some(Gql::String(n.to_string())),
        Value::U64(n) => Some(Gql::String(n.to_string())),
        Value::I32(n) => Some(Gql::from(n)),
        Value::U32(n) => Some(Gql::from(n)),
        Value::Bool(b) => Some(Gql::Boolean(b)),
        Value::String(s) => Some(Gql::String(s)),
        Value::Bytes(b) => Some(Gql::String(
            base64::engine::general_purpose::STANDARD.encode(b),
        )),
        Value::F64(f) => float(f),
        Value::F32(f) => float(f64::from(f)),
        _ => None,
    }
}

/// The values of one occurrence of a repeated field: one, or a packed run of them.
fn values(kind: &Kind, one: &Seen<'_>, out: &mut Vec<Value>) -> Option<()> {
    each_value(kind, one, &mut |wire, data| {
        out.push(scalar(kind, wire, data)?);
        Some(())
    })
}

/// Calls `f` with the wire type and bytes of each value of one occurrence of a repeated
/// field: the occurrence itself, or each value of a packed run.
fn each_value(
    kind: &Kind,
    one: &Seen<'_>,
    f: &mut dyn FnMut(WireType, &[u8]) -> Option<()>,
) -> Option<()> {
    let packable = !matches!(kind, Kind::String | Kind::Bytes | Kind::Message(_));
    if packable && one.wire == WireType::LengthDelimited {
        let wire = wire_of(kind);
        let mut buf = one.data;
        while buf.has_remaining() {
            let data = match wire {
                WireType::ThirtyTwoBit => take(&mut buf, 4)?,
                WireType::SixtyFourBit => take(&mut buf, 8)?,
                _ => varint_bytes(&mut buf)?,
            };
            f(wire, data)?;
        }
        return Some(());
    }
    f(one.wire, one.data)
}

/// The wire type a value of `kind` is sent as (unpacked).
fn wire_of(kind: &Kind) -> WireType {
    match kind {
        Kind::Fixed32 | Kind::Sfixed32 | Kind::Float => WireType::ThirtyTwoBit,
        Kind::Fixed64 | Kind::Sfixed64 | Kind::Double => WireType::SixtyFourBit,
        Kind::String | Kind::Bytes | Kind::Message(_) => WireType::LengthDelimited,
        _ => WireType::Varint,
    }
}

/// One value of `kind` from its wire bytes, as prost-reflect decodes it; `None` when the wire
/// type does not fit the kind or the bytes do not decode.
fn scalar(kind: &Kind, wire: WireType, data: &[u8]) -> Option<Value> {
    let varint = || {
        let mut b = data;
        decode_varint(&mut b).ok()
    };
    let fixed32 = || <[u8; 4]>::try_from(data).ok().map(u32::from_le_bytes);
    let fixed64 = || <[u8; 8]>::try_from(data).ok().map(u64::from_le_bytes);
    if wire != wire_of(kind) {
        return None;
    }
    // The truncating casts are protobuf's: a varint read as a 32-bit field keeps its low bits.
    #[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
    Some(match kind {
        Kind::Int32 => Value::I32(varint()? as i32),
        Kind::Int64 => Value::I64(varint()? as i64),
        Kind::Uint32 => Value::U32(varint()? as u32),
        Kind::Uint64 => Value::U64(varint()?),
        Kind::Sint32 => {
            let n = varint()? as u32;
            Value::I32(((n >> 1) as i32) ^ (-((n & 1) as i32)))
        }
        Kind::Sint64 => {
            let n = varint()?;
            Value::I64(((n >> 1) as i64) ^ (-((n & 1) as i64)))
        }
        Kind::Bool => Value::Bool(varint()? != 0),
        Kind::Enum(_) => Value::EnumNumber(varint()? as i32),
        Kind::Fixed32 => Value::U32(fixed32()?),
        Kind::Sfixed32 => Value::I32(fixed32()? as i32),
        Kind::Float => Value::F32(f32::from_bits(fixed32()?)),
        Kind::Fixed64 => Value::U64(fixed64()?),
        Kind::Sfixed64 => Value::I64(fixed64()? as i64),
        Kind::Double => Value::F64(f64::from_bits(fixed64()?)),
        Kind::String => Value::String(std::str::from_utf8(data).ok()?.to_owned()),
        Kind::Bytes => Value::Bytes(prost::bytes::Bytes::copy_from_slice(data)),
        // Well-known types shown as scalars (timestamps, wrappers...): small, decoded whole.
        Kind::Message(m) => Value::Message(DynamicMessage::decode(m.clone(), data).ok()?),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use prost::Message;
    use prost_reflect::{DescriptorPool, ReflectMessage};

    use super::*;

    /// A message type with one field of each kind (repeated ones packed and not).
    fn pool() -> DescriptorPool {
        let file = prost_types::FileDescriptorProto {
            name: Some("t.proto".into()),
            package: Some("t".into()),
            syntax: Some("proto3".into()),
            message_type: vec![prost_types::DescriptorProto {
                name: Some("M".into()),
                field: [
                    ("i32", 1, 5),
                    ("i64", 2, 3),
                    ("u32", 3, 13),
                    ("u64", 4, 4),
                    ("s32", 5, 17),
                    ("s64", 6, 18),
                    ("f32", 7, 7),
                    ("sf32", 8, 15),
                    ("flt", 9, 2),
                    ("f64", 10, 6),
                    ("sf64", 11, 16),
                    ("dbl", 12, 1),
                    ("b", 13, 8),
                    ("s", 14, 9),
                    ("by", 15, 12),
                ]
                .into_iter()
                .flat_map(|(name, number, ty)| {
                    let one =
                        |name: String, number: i32, label: i32| prost_types::FieldDescriptorProto {
                            name: Some(name.clone()),
                            json_name: Some(name),
                            number: Some(number),
                            label: Some(label),
                            r#type: Some(ty),
                            ..Default::default()
                        };
                    [
                        one(name.into(), number, 1),
                        one(format!("r_{name}"), number + 100, 3),
                    ]
                })
                .collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        DescriptorPool::from_file_descriptor_set(prost_types::FileDescriptorSet {
            file: vec![file],
        })
        .unwrap()
    }

    /// Sets each singular field of `t.M` to its sample (in field order) and its repeated twin
    /// to two of them.
    fn fill(msg: &mut DynamicMessage, samples: &[Value]) {
        let desc = msg.descriptor();
        for (fd, v) in desc.fields().filter(|f| !f.is_list()).zip(samples) {
            msg.set_field(&fd, v.clone());
            let list = desc.get_field(fd.number() + 100).unwrap();
            msg.set_field(&list, Value::List(vec![v.clone(), v.clone()]));
        }
    }

    #[test]
    fn every_scalar_kind_decodes_as_prost_reflect_decodes_it() {
        let desc = pool().get_message_by_name("t.M").unwrap();
        let mut msg = DynamicMessage::new(desc.clone());
        let samples = [
            Value::I32(-7),
            Value::I64(-1 << 40),
            Value::U32(u32::MAX),
            Value::U64(u64::MAX),
            Value::I32(i32::MIN),
            Value::I64(i64::MIN),
            Value::U32(7),
            Value::I32(-9),
            Value::F32(-1.5),
            Value::U64(1 << 50),
            Value::I64(-3),
            Value::F64(2.25),
            Value::Bool(true),
            Value::String("é".into()),
            Value::Bytes(vec![0, 255].into()),
        ];
        fill(&mut msg, &samples);
        let bytes = msg.encode_to_vec();
        let decoded = DynamicMessage::decode(desc.clone(), bytes.as_slice()).unwrap();
        let numbers: Vec<u32> = desc.fields().map(|f| f.number()).collect();
        let seen = scan(&bytes, &numbers, Some((&desc, 0))).unwrap();
        for (i, fd) in desc.fields().enumerate() {
            let kind = fd.kind();
            let mine: Vec<Value> = if fd.is_list() {
                let mut out = Vec::new();
                for one in seen.iter().filter(|s| s.node == i) {
                    values(&kind, one, &mut out).unwrap();
                }
                out
            } else {
                let one = seen.iter().rfind(|s| s.node == i).unwrap();
                vec![scalar(&kind, one.wire, one.data).unwrap()]
            };
            let theirs = match decoded.get_field(&fd).into_owned() {
                Value::List(items) => items,
                v => vec![v],
            };
            assert_eq!(mine, theirs, "{}", fd.name());
        }
        assert_eq!(msg.descriptor().full_name(), "t.M");
    }

    /// A selection of every field of `t.M`, each under its own name.
    fn select_all(desc: &MessageDescriptor) -> Sel {
        use crate::graphql::engine::plan::Node;
        Sel {
            nodes: desc
                .fields()
                .map(|fd| Node {
                    key: async_graphql::Name::new(fd.name()),
                    pos: async_graphql::Pos::default(),
                    conds: Vec::new(),
                    kind: NodeKind::Field {
                        shape: if fd.is_list() {
                            Shape::List(Box::new(Shape::of_kind(fd.kind())))
                        } else {
                            Shape::of_kind(fd.kind())
                        },
                        fd,
                        non_null: false,
                        redact: None,
                        sel: None,
                    },
                })
                .collect(),
            links: false,
            wire: Default::default(),
        }
    }

    #[test]
    fn the_json_written_is_what_serde_writes_for_the_decoded_values() {
        let desc = pool().get_message_by_name("t.M").unwrap();
        let sel = select_all(&desc);
        let mut msg = DynamicMessage::new(desc.clone());
        let samples = [
            Value::I32(-7),
            Value::I64(-1 << 40),
            Value::U32(7),
            Value::U64(u64::MAX),
            Value::I32(i32::MIN),
            Value::I64(i64::MIN),
            Value::U32(7),
            Value::I32(-9),
            Value::F32(0.1),
            Value::U64(1 << 50),
            Value::I64(-3),
            Value::F64(1e-7),
            Value::Bool(true),
            Value::String("quote \" backslash \\ newline \n tab \t \u{1} é 😀 </script>".into()),
            Value::Bytes(vec![0, 255, 1].into()),
        ];
        fill(&mut msg, &samples);
        let bytes = msg.encode_to_vec();
        let decoded = DynamicMessage::decode(desc.clone(), bytes.as_slice()).unwrap();
        // The general way: each decoded value converted by `leaf`, in an object, serialized.
        let mut expected = async_graphql::indexmap::IndexMap::new();
        for node in &sel.nodes {
            let NodeKind::Field { fd, shape, .. } = &node.kind else {
                unreachable!()
            };
            expected.insert(
                node.key.clone(),
                leaf(&decoded.get_field(fd), shape).unwrap(),
            );
        }
        let expected = serde_json::to_string(&Gql::Object(expected)).unwrap();
        let mut out = b"prefix".to_vec();
        project(&bytes, &desc, &sel, &|_| false, &mut out).unwrap();
        assert_eq!(std::str::from_utf8(&out[6..]).unwrap(), expected);
        // Nothing set: defaults and empty lists, the same way.
        let mut out = Vec::new();
        project(&[], &desc, &sel, &|_| false, &mut out).unwrap();
        let empty: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(empty["s"], "");
        assert_eq!(empty["r_s"], serde_json::json!([]));
        assert_eq!(empty["i64"], "0");
        // A refusal leaves what was written before as it was.
        let mut out = b"prefix".to_vec();
        assert!(project(&[0x72, 0x01, 0xff], &desc, &sel, &|_| false, &mut out).is_none());
        assert_eq!(out, b"prefix");
    }

    #[test]
    fn wrappers_read_as_the_decoded_message_shows_them() {
        use crate::graphql::engine::schema::output::wkt;
        use crate::graphql::engine::schema::shape::Wkt;
        let pool = DescriptorPool::global();
        let cases: Vec<(&str, Vec<Value>)> = vec![
            (
                "DoubleValue",
                vec![
                    Value::F64(0.1),
                    Value::F64(-0.0),
                    Value::F64(1e300),
                    Value::F64(f64::NAN),
                    Value::F64(f64::INFINITY),
                    Value::F64(f64::NEG_INFINITY),
                ],
            ),
            (
                "FloatValue",
                vec![
                    Value::F32(0.1),
                    Value::F32(3.5),
                    Value::F32(f32::NAN),
                    Value::F32(f32::NEG_INFINITY),
                ],
            ),
            ("Int64Value", vec![Value::I64(i64::MIN), Value::I64(7)]),
            ("UInt64Value", vec![Value::U64(u64::MAX)]),
            ("Int32Value", vec![Value::I32(i32::MIN), Value::I32(-1)]),
            ("UInt32Value", vec![Value::U32(u32::MAX)]),
            ("BoolValue", vec![Value::Bool(true)]),
            ("StringValue", vec![Value::String("é \" 😀".into())]),
            ("BytesValue", vec![Value::Bytes(vec![0, 255, 7, 9].into())]),
        ];
        for (name, values) in cases {
            let desc = pool
                .get_message_by_name(&format!("google.protobuf.{name}"))
                .unwrap();
            let Some(w @ Wkt::Wrapper(_)) = Wkt::of(&desc) else {
                panic!("{name} is a wrapper");
            };
            let field = desc.get_field(1).unwrap();
            // Unset (the default), then each value.
            let mut messages = vec![DynamicMessage::new(desc.clone())];
            for v in values {
                let mut m = DynamicMessage::new(desc.clone());
                m.set_field(&field, v);
                messages.push(m);
            }
            for m in messages {
                let bytes = m.encode_to_vec();
                let decoded = DynamicMessage::decode(desc.clone(), bytes.as_slice()).unwrap();
                let theirs = wkt(&decoded, w).unwrap();
                let mine = wrapper(&desc, &bytes, 0).unwrap();
                assert_eq!(
                    serde_json::to_string(&mine).unwrap(),
                    serde_json::to_string(&theirs).unwrap(),
                    "{name} {m:?}"
                );
            }
        }
        // Field 1 sent as the wrong wire type: the general way refuses it, so does this.
        let desc = pool
            .get_message_by_name("google.protobuf.StringValue")
            .unwrap();
        assert!(wrapper(&desc, &[0x08, 0x01], 0).is_none());
    }

    #[test]
    fn fields_not_selected_are_refused_exactly_when_decoding_refuses_them() {
        let desc = pool().get_message_by_name("t.M").unwrap();
        for (name, bytes) in [
            ("a packed int32 run cut short", &[0xaa, 0x6, 0x1, 0x80][..]),
            ("a packed int32 run", &[0xaa, 0x6, 0x2, 0x96, 0x1][..]),
            (
                "a packed fixed32 run of 3 bytes",
                &[0xda, 0x6, 0x3, 0x0, 0x0, 0x0][..],
            ),
            (
                "a packed fixed32 run",
                &[0xda, 0x6, 0x8, 0x0, 0x0, 0x80, 0x3f, 0x0, 0x0, 0x0, 0x0][..],
            ),
            ("a repeated string not UTF-8", &[0x92, 0x7, 0x1, 0xff][..]),
            ("a repeated string", &[0x92, 0x7, 0x2, 0xc3, 0xa9][..]),
            ("a string sent as a varint", &[0x70, 0x1][..]),
            (
                "a repeated int64 sent as fixed64",
                &[0xb1, 0x6, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0][..],
            ),
            ("repeated bytes", &[0x9a, 0x7, 0x2, 0xff, 0xfe][..]),
            ("an unknown field", &[0xb8, 0x3e, 0x1][..]),
            ("a bool of 5", &[0x68, 0x5][..]),
            ("a double sent as fixed32", &[0x65, 0x0, 0x0, 0x0, 0x0][..]),
        ] {
            let decodes = DynamicMessage::decode(desc.clone(), bytes).is_ok();
            let scans = scan(bytes, &[1], Some((&desc, 0))).is_some();
            assert_eq!(scans, decodes, "{name}");
        }
    }

    #[test]
    fn malformed_framing_and_wrong_wire_types_give_none() {
        // A length past the end, a truncated varint, a group.
        for bad in [&[0x0a, 0x05, b'a'][..], &[0x08, 0x80], &[0x0b, 0x0c]] {
            assert!(scan(bad, &[1], None).is_none(), "{bad:?}");
        }
        // A field no node selects is still checked against its type: `i64` (2) sent
        // length-delimited, `s` (14) not UTF-8; an unknown number is kept, not refused.
        let desc = pool().get_message_by_name("t.M").unwrap();
        let check = Some((&desc, 0));
        assert!(scan(&[0x12, 0x01, b'x'], &[1], check).is_none());
        assert!(scan(&[0x72, 0x01, 0xff], &[1], check).is_none());
        assert_eq!(scan(&[0xf8, 0x07, 0x01], &[1], check).unwrap().len(), 0);
        // An int32 sent as fixed32, a string that is not UTF-8.
        assert!(scalar(&Kind::Int32, WireType::ThirtyTwoBit, &[1, 0, 0, 0]).is_none());
        assert!(scalar(&Kind::String, WireType::LengthDelimited, &[0xff]).is_none());
    }
}
