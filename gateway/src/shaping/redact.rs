//! Field redaction: the configured rules resolved to protobuf fields once per snapshot, applied
//! to GraphQL field values and to protobuf messages before they are written as JSON.
//!
//! A rule is keyed `Type.field`: the type is an object type of the GraphQL schema (named as in
//! `schemas/*.graphql`) or a protobuf full name (`demo.v1.Card`); the field is its JSON name
//! (as in GraphQL) or its proto name. Rules are looked up by message full name, so the GraphQL
//! door (field resolvers) and the REST door (messages before encoding) share them.

use std::collections::{BTreeMap, HashMap, HashSet};

use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage, Value,
};
use sha2::{Digest, Sha256};

use crate::config::RedactAction;

/// A rule that cannot be resolved; `key` is the config key (`shaping.redact.Card.cardNumber`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct RedactError {
    /// The config key at fault.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// One resolved rule.
#[derive(Clone, Debug)]
pub struct FieldRule {
    /// The redacted field.
    pub field: FieldDescriptor,
    /// What is done to it.
    pub action: RedactAction,
}

/// The redaction rules of a snapshot, by message full name.
#[derive(Clone, Debug, Default)]
pub struct Redactions {
    by_message: HashMap<String, Vec<FieldRule>>,
    /// Messages from which a redacted field can be reached (themselves included): only these
    /// are walked.
    reaches: HashSet<String>,
}

impl Redactions {
    /// No rules at all.
    pub fn none() -> Self {
        Self::default()
    }

    /// Resolves `rules` (config `shaping.redact`): `graphql_type` maps a GraphQL object type
    /// name to its message; otherwise the type is looked up in `pool` by full name.
    pub fn resolve(
        rules: &BTreeMap<String, RedactAction>,
        pool: &DescriptorPool,
        graphql_type: &dyn Fn(&str) -> Option<MessageDescriptor>,
    ) -> Result<Self, RedactError> {
        let mut by_message: HashMap<String, Vec<FieldRule>> = HashMap::new();
        for (rule, action) in rules {
            let key = format!("shaping.redact.{rule}");
            let err = |message: String| RedactError {
                key: key.clone(),
                message,
            };
            let Some((type_name, field_name)) = rule.rsplit_once('.') else {
                return Err(err(
                    "write the rule as Type.field, e.g. Card.cardNumber".into()
                ));
            };
            let message = graphql_type(type_name)
                .or_else(|| pool.get_message_by_name(type_name))
                .ok_or_else(|| {
                    err(format!(
                        "unknown type {type_name:?}: neither an object type of the GraphQL schema nor a protobuf message"
                    ))
                })?;
            let field = message
                .get_field_by_json_name(field_name)
                .or_else(|| message.get_field_by_name(field_name))
                .ok_or_else(|| {
                    let known: Vec<String> = message
                        .fields()
                        .map(|f| f.json_name().to_string())
                        .collect();
                    err(format!(
                        "{type_name} ({}) has no field {field_name:?} (fields: {})",
                        message.full_name(),
                        known.join(", ")
                    ))
                })?;
            if *action != RedactAction::Drop && (field.is_map() || field.kind() != Kind::String) {
                return Err(err(format!(
                    "{} applies to string fields only, and {type_name}.{field_name} is {}; use drop",
                    action.name(),
                    describe_kind(&field)
                )));
            }
            let list = by_message
                .entry(message.full_name().to_string())
                .or_default();
            if list.iter().any(|r| r.field == field) {
                return Err(err(format!(
                    "another rule already redacts {}.{}",
                    message.full_name(),
                    field.name()
                )));
            }
            list.push(FieldRule {
                field,
                action: *action,
            });
        }
        let reaches = reaching(pool, &by_message);
        Ok(Self {
            by_message,
            reaches,
        })
    }

    /// Whether there is no rule.
    pub fn is_empty(&self) -> bool {
        self.by_message.is_empty()
    }

    /// The action on `field` of message `message` (full name), if any.
    pub fn rule(&self, message: &str, field: &FieldDescriptor) -> Option<RedactAction> {
        self.by_message
            .get(message)?
            .iter()
            .find(|r| r.field == *field)
            .map(|r| r.action)
    }

    /// Every resolved rule, by message full name.
    pub fn rules(&self) -> impl Iterator<Item = (&str, &FieldRule)> {
        self.by_message
            .iter()
            .flat_map(|(m, rules)| rules.iter().map(move |r| (m.as_str(), r)))
    }

    /// Whether a message of this type can hold a redacted field, at any depth.
    pub fn affects(&self, message: &MessageDescriptor) -> bool {
        self.reaches.contains(message.full_name())
    }

    /// Redacts `msg` in place, at every depth (nested messages, lists, map values).
    /// `google.protobuf.Any` payloads are not opened.
    pub fn apply(&self, msg: &mut DynamicMessage) {
        if self.affects(&msg.descriptor()) {
            self.walk(msg);
        }
    }

    fn walk(&self, msg: &mut DynamicMessage) {
        let desc = msg.descriptor();
        if let Some(rules) = self.by_message.get(desc.full_name()) {
            for r in rules {
                apply_rule(msg, &r.field, r.action);
            }
        }
        for field in desc.fields() {
            let Some(target) = message_kind(&field) else {
                continue;
            };
            if !self.reaches.contains(target.full_name()) || !msg.has_field(&field) {
                continue;
            }
            match msg.get_field_mut(&field) {
                Value::Message(inner) => self.walk(inner),
                Value::List(items) => {
                    for item in items {
                        if let Value::Message(inner) = item {
                            self.walk(inner);
                        }
                    }
                }
                Value::Map(map) => {
                    for v in map.values_mut() {
                        if let Value::Message(inner) = v {
                            self.walk(inner);
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

/// The message type a field holds (a map field's value type), if any.
fn message_kind(field: &FieldDescriptor) -> Option<MessageDescriptor> {
    match field.kind() {
        Kind::Message(m) if field.is_map() => match m.map_entry_value_field().kind() {
            Kind::Message(v) => Some(v),
            _ => None,
        },
        Kind::Message(m) => Some(m),
        _ => None,
    }
}

/// Every message from which a message with rules can be reached through message fields.
fn reaching(
    pool: &DescriptorPool,
    by_message: &HashMap<String, Vec<FieldRule>>,
) -> HashSet<String> {
    let mut set: HashSet<String> = by_message.keys().cloned().collect();
    if set.is_empty() {
        return set;
    }
    let all: Vec<MessageDescriptor> = pool.all_messages().collect();
    loop {
        let before = set.len();
        for m in &all {
            if set.contains(m.full_name()) {
                continue;
            }
            if m.fields()
                .filter_map(|f| message_kind(&f))
                .any(|t| set.contains(t.full_name()))
            {
                set.insert(m.full_name().to_string());
            }
        }
        if set.len() == before {
            return set;
        }
    }
}

fn apply_rule(msg: &mut DynamicMessage, field: &FieldDescriptor, action: RedactAction) {
    if action == RedactAction::Drop {
        msg.clear_field(field);
        return;
    }
    if !msg.has_field(field) {
        return;
    }
    match msg.get_field_mut(field) {
        Value::String(s) => *s = redact_str(s, action),
        Value::List(items) => {
            for item in items {
                if let Value::String(s) = item {
                    *s = redact_str(s, action);
                }
            }
        }
        _ => {}
    }
}

/// The redacted form of a string value (`drop` gives an empty string; callers drop the field
/// itself instead).
pub fn redact_str(s: &str, action: RedactAction) -> String {
    if s.is_empty() {
        return String::new();
    }
    match action {
        RedactAction::Drop => String::new(),
        RedactAction::Mask => "***".to_string(),
        RedactAction::Last4 => {
            let n = s.chars().count();
            if n <= 4 {
                "*".repeat(n)
            } else {
                let keep: String = s.chars().skip(n - 4).collect();
                format!("{}{keep}", "*".repeat(n - 4))
            }
        }
        RedactAction::Hash => {
            let digest = Sha256::digest(s.as_bytes());
            hex(&digest[..8])
        }
    }
}

/// Lowercase hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

fn describe_kind(field: &FieldDescriptor) -> String {
    if field.is_map() {
        return "a map".into();
    }
    let base = match field.kind() {
        Kind::Message(m) => format!("a message ({})", m.full_name()),
        Kind::Enum(e) => format!("an enum ({})", e.full_name()),
        k => format!("{k:?}").to_lowercase(),
    };
    if field.is_list() {
        format!("a list of {base}")
    } else {
        base
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn pool() -> DescriptorPool {
        let bytes = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../descriptors/demo.binpb"),
        )
        .unwrap();
        DescriptorPool::decode(bytes.as_slice()).unwrap()
    }

    fn rules(pairs: &[(&str, RedactAction)]) -> BTreeMap<String, RedactAction> {
        pairs.iter().map(|(k, a)| (k.to_string(), *a)).collect()
    }

    fn order(pool: &DescriptorPool) -> DynamicMessage {
        let desc = pool.get_message_by_name("demo.v1.Order").unwrap();
        let json = r#"{"id":"o-1","internalNotes":"fragile","card":{"brand":"visa","cardNumber":"4111111111111111"}}"#;
        let mut de = serde_json::Deserializer::from_str(json);
        DynamicMessage::deserialize(desc, &mut de).unwrap()
    }

    #[test]
    fn string_actions() {
        assert_eq!(
            redact_str("4111111111111111", RedactAction::Last4),
            "************1111"
        );
        assert_eq!(redact_str("1234", RedactAction::Last4), "****");
        assert_eq!(
            redact_str("héllo wörld", RedactAction::Last4),
            "*******örld"
        );
        assert_eq!(redact_str("secret", RedactAction::Mask), "***");
        assert_eq!(redact_str("", RedactAction::Mask), "");
        let h = redact_str("ada@example.com", RedactAction::Hash);
        assert_eq!(h.len(), 16);
        assert_eq!(h, redact_str("ada@example.com", RedactAction::Hash));
        assert_ne!(h, redact_str("bob@example.com", RedactAction::Hash));
    }

    #[test]
    fn resolves_graphql_names_and_full_names_and_applies_at_depth() {
        let pool = pool();
        let p = pool.clone();
        let gql = move |n: &str| (n == "Card").then(|| p.get_message_by_name("demo.v1.Card"))?;
        let r = Redactions::resolve(
            &rules(&[
                ("Card.cardNumber", RedactAction::Last4),
                ("demo.v1.Order.internal_notes", RedactAction::Drop),
            ]),
            &pool,
            &gql,
        )
        .unwrap();
        let list = pool
            .get_message_by_name("demo.v1.ListOrdersByUserResponse")
            .unwrap();
        assert!(r.affects(&list));
        assert!(!r.affects(&pool.get_message_by_name("demo.v1.User").unwrap()));

        let mut msg = DynamicMessage::new(list);
        let orders = msg.descriptor().get_field_by_name("orders").unwrap();
        msg.set_field(&orders, Value::List(vec![Value::Message(order(&pool))]));
        r.apply(&mut msg);
        let json = serde_json::to_string(&msg).unwrap();
        assert!(
            json.contains(r#""cardNumber":"************1111""#),
            "{json}"
        );
        assert!(json.contains(r#""brand":"visa""#), "{json}");
        assert!(!json.contains("internalNotes"), "{json}");
        assert!(!json.contains("fragile"), "{json}");
    }

    #[test]
    fn bad_rules_name_their_key() {
        let pool = pool();
        let none = |_: &str| None;
        let e = |pairs: &[(&str, RedactAction)]| {
            Redactions::resolve(&rules(pairs), &pool, &none).unwrap_err()
        };
        let x = e(&[("Nope.field", RedactAction::Drop)]);
        assert_eq!(x.key, "shaping.redact.Nope.field");
        assert!(x.message.contains("unknown type \"Nope\""), "{x}");
        let x = e(&[("demo.v1.Card.pin", RedactAction::Drop)]);
        assert!(x.message.contains("has no field \"pin\""), "{x}");
        assert!(x.message.contains("cardNumber"), "{x}");
        let x = e(&[("demo.v1.Card.expiryYear", RedactAction::Last4)]);
        assert!(
            x.message.contains("last4 applies to string fields only"),
            "{x}"
        );
        let x = e(&[("demo.v1.Order.card", RedactAction::Mask)]);
        assert!(x.message.contains("a message (demo.v1.Card)"), "{x}");
        let x = e(&[("cardNumber", RedactAction::Drop)]);
        assert!(x.message.contains("Type.field"), "{x}");
        // drop works on any field.
        assert!(
            Redactions::resolve(
                &rules(&[("demo.v1.Order.card", RedactAction::Drop)]),
                &pool,
                &none
            )
            .is_ok()
        );
    }
}
