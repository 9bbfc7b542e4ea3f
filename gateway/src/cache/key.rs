//! The key of a cached or coalesced call: the method, the request message's bytes, and what
//! else the answer depends on (the caller, named metadata, or all the metadata sent). Every
//! part is length-prefixed, so two different calls never share a key.

use std::sync::Arc;

use tonic::metadata::{KeyAndValueRef, MetadataMap};

/// A call's key (exact bytes, compared whole: no hash stands for it).
pub type Key = Arc<[u8]>;

/// Metadata that differs on every call and says nothing about the answer.
const PER_CALL: [&str; 3] = [
    "traceparent",
    "tracestate",
    crate::request::REQUEST_ID_HEADER,
];

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
