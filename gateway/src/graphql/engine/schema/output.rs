//! Protobuf values to GraphQL: a message becomes a parent value its fields borrow from; scalars
//! become GraphQL values (64-bit integers as strings, bytes as base64, enums by name).

use std::borrow::Cow;
use std::sync::Arc;

use async_graphql::dynamic::FieldValue;
use async_graphql::{Error, Name, Value as Gql};
use base64::Engine;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, ReflectMessage, Value};

use super::shape::{Shape, Wkt};

/// One entry of a map field, as the parent value of its `{key, value}` entry object.
#[derive(Clone, Debug)]
pub struct MapEntry {
    /// The key.
    pub key: MapKey,
    /// The value.
    pub value: Value,
}

/// A message inside a shared reply, by reference: the reply, the field holding the message
/// and, for a repeated field, its position. Link results are handed to GraphQL this way, so
/// that a list of orders or a batch of products is not copied out of its reply.
#[derive(Clone, Debug)]
pub struct Part {
    reply: Arc<DynamicMessage>,
    field: FieldDescriptor,
    index: Option<usize>,
}

impl Part {
    /// The message in `field` of `reply` (a singular message field).
    pub fn field(reply: Arc<DynamicMessage>, field: FieldDescriptor) -> Self {
        Self {
            reply,
            field,
            index: None,
        }
    }

    /// Element `index` of the repeated message field `field` of `reply`.
    pub fn item(reply: Arc<DynamicMessage>, field: FieldDescriptor, index: usize) -> Self {
        Self {
            reply,
            field,
            index: Some(index),
        }
    }

    /// The message referred to, or `None` when the reply does not hold it.
    pub fn message(&self) -> Option<&DynamicMessage> {
        match (self.reply.get_field(&self.field), self.index) {
            (Cow::Borrowed(Value::Message(m)), None) => Some(m),
            (Cow::Borrowed(Value::List(items)), Some(i)) => items.get(i)?.as_message(),
            _ => None,
        }
    }
}

/// The message a field resolver's parent holds, whether owned, shared or a [`Part`].
pub fn parent_message<'a>(parent: &'a FieldValue<'a>) -> Result<&'a DynamicMessage, Error> {
    if let Some(m) = parent.downcast_ref::<DynamicMessage>() {
        return Ok(m);
    }
    if let Some(m) = parent.downcast_ref::<Arc<DynamicMessage>>() {
        return Ok(m);
    }
    if let Some(m) = parent.downcast_ref::<Part>().and_then(Part::message) {
        return Ok(m);
    }
    Err(Error::new("internal: the parent value is not a message"))
}

/// Converts a field's value for GraphQL. Borrowed values stay borrowed (messages are not
/// copied); owned ones (defaults) are moved.
pub fn to_field_value<'a>(value: Cow<'a, Value>, shape: &Shape) -> Result<FieldValue<'a>, Error> {
    match shape {
        Shape::Scalar(kind) => Ok(FieldValue::value(scalar(&value, kind)?)),
        Shape::Enum(e) => {
            let n = value.as_enum_number().unwrap_or_default();
            match e.get_value(n) {
                Some(v) => Ok(FieldValue::value(Gql::Enum(Name::new(v.name())))),
                None => Err(Error::new(format!(
                    "the backend sent {n}, which is not a value of enum {}",
                    e.full_name()
                ))),
            }
        }
        Shape::Wkt(w) => match value.as_message() {
            Some(m) => Ok(FieldValue::value(wkt(m, *w)?)),
            None => Ok(FieldValue::NULL),
        },
        Shape::Object(_) => match value {
            Cow::Borrowed(Value::Message(m)) => Ok(FieldValue::borrowed_any(m)),
            Cow::Owned(Value::Message(m)) => Ok(FieldValue::owned_any(m)),
            _ => Err(Error::new("internal: expected a message value")),
        },
        Shape::List(inner) => {
            let items: Vec<FieldValue<'a>> = match value {
                Cow::Borrowed(Value::List(items)) => items
                    .iter()
                    .map(|v| to_field_value(Cow::Borrowed(v), inner))
                    .collect::<Result<_, _>>()?,
                Cow::Owned(Value::List(items)) => items
                    .into_iter()
                    .map(|v| to_field_value(Cow::Owned(v), inner))
                    .collect::<Result<_, _>>()?,
                _ => Vec::new(),
            };
            Ok(FieldValue::list(items))
        }
        Shape::Map { .. } => {
            let mut entries: Vec<MapEntry> = match value.as_map() {
                Some(map) => map
                    .iter()
                    .map(|(k, v)| MapEntry {
                        key: k.clone(),
                        value: v.clone(),
                    })
                    .collect(),
                None => Vec::new(),
            };
            entries.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(FieldValue::list(
                entries.into_iter().map(FieldValue::owned_any),
            ))
        }
    }
}

/// A field of a message, for GraphQL: `None` (null) when a field with presence is unset.
pub fn field_of<'a>(
    msg: &'a DynamicMessage,
    field: &prost_reflect::FieldDescriptor,
    shape: &Shape,
) -> Result<Option<FieldValue<'a>>, Error> {
    if !field.is_list() && !field.is_map() && field.supports_presence() && !msg.has_field(field) {
        return Ok(None);
    }
    to_field_value(msg.get_field(field), shape).map(Some)
}

/// A map key as a GraphQL value.
pub fn map_key(key: &MapKey) -> Gql {
    match key {
        MapKey::Bool(b) => Gql::Boolean(*b),
        MapKey::I32(n) => Gql::from(*n),
        MapKey::U32(n) => Gql::from(*n),
        MapKey::I64(n) => Gql::String(n.to_string()),
        MapKey::U64(n) => Gql::String(n.to_string()),
        MapKey::String(s) => Gql::String(s.clone()),
    }
}

pub(crate) fn scalar(value: &Value, kind: &Kind) -> Result<Gql, Error> {
    Ok(match value {
        Value::Bool(b) => Gql::Boolean(*b),
        Value::I32(n) => Gql::from(*n),
        Value::U32(n) => match i32::try_from(*n) {
            Ok(n) => Gql::from(n),
            Err(_) => {
                return Err(Error::new(format!(
                    "{n} does not fit GraphQL's 32-bit Int ({kind:?})"
                )));
            }
        },
        Value::I64(n) => Gql::String(n.to_string()),
        Value::U64(n) => Gql::String(n.to_string()),
        Value::F32(f) => float(f64::from(*f))?,
        Value::F64(f) => float(*f)?,
        Value::String(s) => Gql::String(s.clone()),
        Value::Bytes(b) => Gql::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Value::EnumNumber(n) => Gql::from(*n),
        Value::Message(_) | Value::List(_) | Value::Map(_) => {
            return Err(Error::new("internal: expected a scalar value"));
        }
    })
}

fn float(f: f64) -> Result<Gql, Error> {
    if f.is_finite() {
        Ok(Gql::from(f))
    } else {
        Err(Error::new(format!(
            "{f} cannot be represented as a GraphQL Float"
        )))
    }
}

/// A well-known type as a GraphQL scalar value, via its canonical JSON form.
pub(crate) fn wkt(msg: &DynamicMessage, w: Wkt) -> Result<Gql, Error> {
    if w == Wkt::Empty {
        return Ok(Gql::Boolean(true));
    }
    let json = serde_json::to_value(msg).map_err(|e| {
        Error::new(format!(
            "cannot write {}: {e}",
            msg.descriptor().full_name()
        ))
    })?;
    Gql::from_json(json).map_err(|e| Error::new(e.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn role_enum() -> prost_reflect::EnumDescriptor {
        let pool = prost_reflect::DescriptorPool::decode(
            include_bytes!("../../../../../descriptors/demo.binpb").as_ref(),
        )
        .unwrap();
        pool.get_enum_by_name("demo.v1.UserRole").unwrap()
    }

    #[test]
    fn an_unknown_enum_number_is_a_field_error_not_a_crash() {
        let shape = Shape::Enum(role_enum());
        let ok = to_field_value(Cow::Owned(Value::EnumNumber(2)), &shape).unwrap();
        assert_eq!(
            ok.as_value(),
            Some(&Gql::Enum(Name::new("USER_ROLE_ADMIN")))
        );
        let err = to_field_value(Cow::Owned(Value::EnumNumber(99)), &shape).unwrap_err();
        assert!(err.message.contains("99"), "{}", err.message);
    }

    #[test]
    fn sixty_four_bit_integers_are_strings_and_bytes_base64() {
        let v = to_field_value(
            Cow::Owned(Value::U64(u64::MAX)),
            &Shape::Scalar(Kind::Uint64),
        )
        .unwrap();
        assert_eq!(v.as_value(), Some(&Gql::String(u64::MAX.to_string())));
        let v = to_field_value(
            Cow::Owned(Value::Bytes(vec![0, 1, 255].into())),
            &Shape::Scalar(Kind::Bytes),
        )
        .unwrap();
        assert_eq!(v.as_value(), Some(&Gql::String("AAH/".into())));
        let e = to_field_value(
            Cow::Owned(Value::F64(f64::NAN)),
            &Shape::Scalar(Kind::Double),
        );
        assert!(e.is_err());
        let e = to_field_value(
            Cow::Owned(Value::U32(u32::MAX)),
            &Shape::Scalar(Kind::Uint32),
        );
        assert!(e.is_err(), "does not fit GraphQL's Int");
    }

    fn pool() -> prost_reflect::DescriptorPool {
        prost_reflect::DescriptorPool::decode(
            include_bytes!("../../../../../descriptors/demo.binpb").as_ref(),
        )
        .unwrap()
    }

    #[test]
    fn parts_refer_to_messages_inside_a_shared_reply() {
        let pool = pool();
        let list = pool
            .get_message_by_name("demo.v1.ListOrdersByUserResponse")
            .unwrap();
        let order = pool.get_message_by_name("demo.v1.Order").unwrap();
        let orders = list.get_field_by_name("orders").unwrap();
        let total = order.get_field_by_name("total").unwrap();
        let mut reply = DynamicMessage::new(list);
        let mut items = Vec::new();
        for id in ["o-1", "o-2"] {
            let mut o = DynamicMessage::new(order.clone());
            o.set_field_by_name("id", Value::String(id.into()));
            items.push(Value::Message(o));
        }
        reply.set_field(&orders, Value::List(items));
        let reply = Arc::new(reply);

        let second = Part::item(reply.clone(), orders.clone(), 1);
        let m = second.message().unwrap();
        assert_eq!(m.get_field_by_name("id").unwrap().as_str(), Some("o-2"));
        assert!(
            Part::item(reply.clone(), orders.clone(), 2)
                .message()
                .is_none()
        );
        // A parent value holding a part reads as the message.
        let parent = FieldValue::owned_any(second);
        let m = parent_message(&parent).unwrap();
        assert_eq!(m.get_field_by_name("id").unwrap().as_str(), Some("o-2"));

        // A singular message field: present, then absent.
        let mut o = DynamicMessage::new(order.clone());
        let money = DynamicMessage::new(match total.kind() {
            Kind::Message(m) => m,
            other => panic!("{other:?}"),
        });
        o.set_field(&total, Value::Message(money));
        let o = Arc::new(o);
        assert!(Part::field(o, total.clone()).message().is_some());
        let empty = Arc::new(DynamicMessage::new(order));
        assert!(Part::field(empty, total).message().is_none());
        assert!(parent_message(&FieldValue::value(1)).is_err());
    }
}
