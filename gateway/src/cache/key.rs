//! The key of a cached or coalesced call: the method, the request message's bytes, and what
//! else the answer depends on (the caller, named metadata, or all the metadata sent). Every
//! part is length-prefixed, so two different calls never share a key.

use std::collections::HashSet;
use std::sync::Arc;

use prost::Message;
use prost_reflect::{DynamicMessage, Kind, MessageDescriptor, ReflectMessage, Value};
use tonic::metadata::{KeyAndValueRef, MetadataMap};

/// A call's key (exact bytes, compared whole: no hash stands for it).
pub type Key = Arc<[u8]>;

/// Metadata that differs on every call and says nothing about the answer.
const PER_CALL: [&str; 3] = [
    "traceparent",
    "tracestate",
    crate::request::REQUEST_ID_HEADER,
];

/// Whether a message of this type can hold a map field, at any depth (its requests then need
/// [`request_bytes`]'s sorting).
pub fn reaches_map(desc: &MessageDescriptor) -> bool {
    fn walk(desc: &MessageDescriptor, seen: &mut HashSet<String>) -> bool {
        if !seen.insert(desc.full_name().to_string()) {
            return false;
        }
        desc.fields().any(|f| {
            f.is_map()
                || match f.kind() {
                    Kind::Message(m) => walk(&m, seen),
                    _ => false,
                }
        })
    }
    walk(desc, &mut HashSet::new())
}

/// The request message's bytes as a key part: its wire encoding (fields in number order),
/// with map entries sorted by key when `has_maps` (the wire format leaves their order free,
/// and prost-reflect writes them in hash order, which differs from one message to the next).
/// Equal messages give equal bytes; different ones, different bytes.
pub fn request_bytes(msg: &DynamicMessage, has_maps: bool) -> Vec<u8> {
    if !has_maps {
        return msg.encode_to_vec();
    }
    let mut out = Vec::new();
    canonical(msg, &mut out);
    out
}

fn canonical(msg: &DynamicMessage, out: &mut Vec<u8>) {
    let desc = msg.descriptor();
    // One field at a time: the field alone in a message of the same type encodes as that
    // field's bytes; maps and messages are written here, sorted and recursively.
    let alone = |field: &prost_reflect::FieldDescriptor, value: &Value, out: &mut Vec<u8>| {
        let mut one = DynamicMessage::new(desc.clone());
        one.set_field(field, value.clone());
        out.extend_from_slice(&one.encode_to_vec());
    };
    for (field, value) in msg.fields() {
        match (value, field.kind()) {
            (Value::Map(map), Kind::Message(entry)) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                for (k, v) in entries {
                    let mut e = DynamicMessage::new(entry.clone());
                    e.set_field(&entry.map_entry_key_field(), k.clone().into());
                    e.set_field(&entry.map_entry_value_field(), v.clone());
                    nested(field.number(), &e, out);
                }
            }
            (Value::Message(m), _) => nested(field.number(), m, out),
            (Value::List(items), Kind::Message(_)) => {
                for item in items {
                    if let Value::Message(m) = item {
                        nested(field.number(), m, out);
                    }
                }
            }
            _ => alone(&field, value, out),
        }
    }
}

/// Writes `msg` as field `number` (length-delimited), canonically.
fn nested(number: u32, msg: &DynamicMessage, out: &mut Vec<u8>) {
    let mut inner = Vec::new();
    canonical(msg, &mut inner);
    prost::encoding::encode_key(number, prost::encoding::WireType::LengthDelimited, out);
    prost::encoding::encode_varint(inner.len() as u64, out);
    out.extend_from_slice(&inner);
}

/// Builds keys part by part.
pub struct KeyBuilder(Vec<u8>);

impl KeyBuilder {
    /// A key for `method` called with the encoded `request`.
    pub fn new(method: &str, request: &[u8]) -> Self {
        let mut b = KeyBuilder(Vec::with_capacity(method.len() + request.len() + 32));
        b.part(method.as_bytes());
        b.part(request);
        b
    }

    fn part(&mut self, bytes: &[u8]) {
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        self.0.extend_from_slice(&len.to_le_bytes());
        self.0.extend_from_slice(bytes);
    }

    /// Adds a named value (`subject`, a metadata name) or its absence.
    pub fn with(mut self, name: &str, value: Option<&[u8]>) -> Self {
        self.part(name.as_bytes());
        match value {
            Some(v) => {
                self.0.push(1);
                self.part(v);
            }
            None => self.0.push(0),
        }
        self
    }

    /// Adds the values of `names` in `metadata` (each name once, in the order given; several
    /// values of one name in the order sent).
    pub fn with_metadata(mut self, metadata: &MetadataMap, names: &[String]) -> Self {
        for name in names {
            self.part(name.as_bytes());
            for v in metadata.get_all(name.as_str()) {
                self.0.push(1);
                self.part(v.as_bytes());
            }
            self.0.push(0);
        }
        self
    }

    /// Adds every metadata entry but the per-call ones (trace context, request id), sorted:
    /// for calls whose answer may depend on anything the backend receives.
    pub fn with_all_metadata(mut self, metadata: &MetadataMap) -> Self {
        let mut entries: Vec<(&str, &[u8])> = metadata
            .iter()
            .map(|kv| match kv {
                KeyAndValueRef::Ascii(k, v) => (k.as_str(), v.as_bytes()),
                KeyAndValueRef::Binary(k, v) => (k.as_str(), v.as_encoded_bytes()),
            })
            .filter(|(k, _)| !PER_CALL.contains(k))
            .collect();
        entries.sort();
        for (k, v) in entries {
            self.part(k.as_bytes());
            self.part(v);
        }
        self
    }

    /// The start every key of `method` has (and, with `request`, every key of that request,
    /// whatever its scope): what a purge matches.
    pub fn prefix(method: &str, request: Option<&[u8]>) -> Vec<u8> {
        let mut b = KeyBuilder(Vec::new());
        b.part(method.as_bytes());
        if let Some(r) = request {
            b.part(r);
        }
        b.0
    }

    /// The key.
    pub fn build(self) -> Key {
        self.0.into()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn md(pairs: &[(&'static str, &'static str)]) -> MetadataMap {
        let mut m = MetadataMap::new();
        for (k, v) in pairs {
            m.append(*k, v.parse().unwrap());
        }
        m
    }

    #[test]
    fn parts_cannot_run_into_each_other() {
        let a = KeyBuilder::new("a.S.M", b"xy").build();
        let b = KeyBuilder::new("a.S.Mx", b"y").build();
        assert_ne!(a, b);
        let a = KeyBuilder::new("m", b"").with("subject", Some(b"")).build();
        let b = KeyBuilder::new("m", b"").with("subject", None).build();
        assert_ne!(a, b);
    }

    #[test]
    fn prefixes_match_the_keys_of_a_method_or_a_request() {
        let key = KeyBuilder::new("m.S.Get", b"req")
            .with("subject", Some(b"alice"))
            .build();
        assert!(key.starts_with(&KeyBuilder::prefix("m.S.Get", None)));
        assert!(key.starts_with(&KeyBuilder::prefix("m.S.Get", Some(b"req"))));
        assert!(!key.starts_with(&KeyBuilder::prefix("m.S.Get", Some(b"re"))));
        assert!(!key.starts_with(&KeyBuilder::prefix("m.S.Ge", None)));
    }

    #[test]
    fn requests_with_maps_give_one_key_whatever_the_entry_order() {
        let pool = prost_reflect::DescriptorPool::decode(
            &include_bytes!("../../../descriptors/demo.binpb")[..],
        )
        .unwrap();
        let user = pool.get_message_by_name("demo.v1.User").unwrap();
        assert!(reaches_map(&user));
        let get = pool.get_message_by_name("demo.v1.GetUserRequest").unwrap();
        assert!(!reaches_map(&get));
        let create = pool
            .get_message_by_name("demo.v1.CreateUserRequest")
            .unwrap();
        assert!(reaches_map(&create), "through User.attributes");

        let json = |pairs: &[(&str, &str)]| {
            let attrs: serde_json::Map<String, serde_json::Value> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
                .collect();
            let body = serde_json::json!({"user": {"displayName": "x", "attributes": attrs}});
            let text = body.to_string();
            let de = &mut serde_json::Deserializer::from_str(&text);
            DynamicMessage::deserialize(create.clone(), de).unwrap()
        };
        let many: Vec<(String, String)> = (0..40)
            .map(|i| (format!("k{i}"), format!("v{i}")))
            .collect();
        let forward: Vec<(&str, &str)> =
            many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let backward: Vec<(&str, &str)> = forward.iter().rev().copied().collect();
        let (a, b) = (json(&forward), json(&backward));
        assert_eq!(request_bytes(&a, true), request_bytes(&b, true));
        // Still the message: decodes back to it.
        let back = DynamicMessage::decode(create.clone(), &request_bytes(&a, true)[..]).unwrap();
        assert_eq!(back, a);
        // A different map, different bytes.
        let c = json(&[("k0", "other")]);
        assert_ne!(request_bytes(&a, true), request_bytes(&c, true));
        // Without maps: the plain encoding.
        let m = DynamicMessage::new(get.clone());
        assert_eq!(request_bytes(&m, false), m.encode_to_vec());
    }

    #[test]
    fn named_metadata_and_all_metadata() {
        let names = vec!["accept-language".to_string()];
        let fr = md(&[("accept-language", "fr"), ("x-other", "1")]);
        let fr2 = md(&[("accept-language", "fr"), ("x-other", "2")]);
        let en = md(&[("accept-language", "en")]);
        let key = |m: &MetadataMap| KeyBuilder::new("m", b"r").with_metadata(m, &names).build();
        assert_eq!(key(&fr), key(&fr2));
        assert_ne!(key(&fr), key(&en));
        assert_ne!(key(&fr), key(&MetadataMap::new()));

        let all = |m: &MetadataMap| KeyBuilder::new("m", b"r").with_all_metadata(m).build();
        assert_ne!(all(&fr), all(&fr2));
        // Order of entries and per-call metadata do not matter.
        let a = md(&[
            ("b", "2"),
            ("a", "1"),
            ("traceparent", "00-1"),
            ("x-request-id", "r1"),
        ]);
        let b = md(&[("a", "1"), ("b", "2"), ("traceparent", "00-2")]);
        assert_eq!(all(&a), all(&b));
    }
}
