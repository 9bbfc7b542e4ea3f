//! The declared variables of an operation, with their types resolved against the schema
//! (scalar, enum with its values, or input object), for binding them from HTTP requests.

use async_graphql::parser::types::{BaseType, Type, VariableDefinition};
use async_graphql::registry::{MetaType, Registry};

/// A scalar, as far as binding a text value is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scalar {
    /// 32-bit signed integer.
    Int,
    /// Double.
    Float,
    /// `true` or `false`.
    Boolean,
    /// Any text.
    String,
    /// An id: text (or an integer in JSON).
    Id,
    /// A signed 64-bit integer, sent as a string.
    Int64,
    /// An unsigned 64-bit integer, sent as a string.
    UInt64,
    /// Another scalar (Timestamp, Duration, Bytes, FieldMask, JSON...): its text as is.
    Other(String),
}

/// A variable's type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VarType {
    /// A scalar.
    Scalar {
        /// Which one.
        scalar: Scalar,
        /// `!`.
        non_null: bool,
    },
    /// An enum.
    Enum {
        /// The enum's name.
        name: String,
        /// Its values.
        values: Vec<String>,
        /// `!`.
        non_null: bool,
    },
    /// An input object (JSON only).
    Input {
        /// The type's name.
        name: String,
        /// `!`.
        non_null: bool,
    },
    /// A list.
    List {
        /// The item type.
        item: Box<VarType>,
        /// `!`.
        non_null: bool,
    },
}

impl VarType {
    /// Resolves a declared type against the schema's types.
    pub fn resolve(ty: &Type, registry: &Registry) -> VarType {
        let non_null = !ty.nullable;
        match &ty.base {
            BaseType::List(item) => VarType::List {
                item: Box::new(VarType::resolve(item, registry)),
                non_null,
            },
            BaseType::Named(name) => {
                let scalar = match name.as_str() {
                    "Int" => Some(Scalar::Int),
                    "Float" => Some(Scalar::Float),
                    "Boolean" => Some(Scalar::Boolean),
                    "String" => Some(Scalar::String),
                    "ID" => Some(Scalar::Id),
                    "Int64" => Some(Scalar::Int64),
                    "UInt64" => Some(Scalar::UInt64),
                    _ => None,
                };
                if let Some(scalar) = scalar {
                    return VarType::Scalar { scalar, non_null };
                }
                match registry.types.get(name.as_str()) {
                    Some(MetaType::Enum { enum_values, .. }) => VarType::Enum {
                        name: name.to_string(),
                        values: enum_values.keys().cloned().collect(),
                        non_null,
                    },
                    Some(MetaType::InputObject { .. }) => VarType::Input {
                        name: name.to_string(),
                        non_null,
                    },
                    _ => VarType::Scalar {
                        scalar: Scalar::Other(name.to_string()),
                        non_null,
                    },
                }
            }
        }
    }

    /// Whether the type ends with `!`.
    pub fn non_null(&self) -> bool {
        match self {
            VarType::Scalar { non_null, .. }
            | VarType::Enum { non_null, .. }
            | VarType::Input { non_null, .. }
            | VarType::List { non_null, .. } => *non_null,
        }
    }
}

/// One declared variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VariableDef {
    /// Its name, without `$`.
    pub name: String,
    /// Its resolved type.
    pub ty: VarType,
    /// The type as written, e.g. `Int64!`.
    pub declared: String,
    /// Non-null without a default: a request must give it.
    pub required: bool,
}

impl VariableDef {
    /// Describes a variable definition.
    pub fn new(def: &VariableDefinition, registry: &Registry) -> VariableDef {
        let ty = VarType::resolve(&def.var_type.node, registry);
        VariableDef {
            name: def.name.node.to_string(),
            required: ty.non_null() && def.default_value.is_none(),
            declared: def.var_type.node.to_string(),
            ty,
        }
    }
}
