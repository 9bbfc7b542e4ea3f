//! The parts of an SDL document the diff compares, collected from the parser's AST (type
//! extensions merged into their type, directives other than `@deprecated` dropped).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use async_graphql::Value as ConstValue;
use async_graphql::parser::Positioned;
use async_graphql::parser::types::{
    ConstDirective, FieldDefinition, InputValueDefinition, ServiceDocument, Type, TypeDefinition,
    TypeKind, TypeSystemDefinition,
};

/// The reason `@deprecated` gives when it has none.
const DEFAULT_DEPRECATION_REASON: &str = "No longer supported";

/// A whole schema: its types by name and its root operation types.
#[derive(Debug, Default)]
pub(super) struct Schema {
    /// Every named type.
    pub types: BTreeMap<String, TypeDef>,
    /// Root type names of query, mutation and subscription.
    pub roots: [Option<String>; 3],
}

/// The kind of a named type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Scalar,
    Object,
    Interface,
    Union,
    Enum,
    InputObject,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Scalar => "scalar",
            Kind::Object => "object type",
            Kind::Interface => "interface",
            Kind::Union => "union",
            Kind::Enum => "enum",
            Kind::InputObject => "input object",
        })
    }
}

/// One named type; only the collections of its kind are filled.
#[derive(Debug)]
pub(super) struct TypeDef {
    pub kind: Kind,
    /// Fields of an object or interface.
    pub fields: BTreeMap<String, FieldDef>,
    /// Interfaces an object or interface implements.
    pub implements: BTreeSet<String>,
    /// Members of a union.
    pub members: BTreeSet<String>,
    /// Values of an enum, with their deprecation reason.
    pub values: BTreeMap<String, Option<String>>,
    /// Fields of an input object.
    pub inputs: BTreeMap<String, InputDef>,
}

/// A field of an object or interface.
#[derive(Debug)]
pub(super) struct FieldDef {
    pub ty: Type,
    pub args: BTreeMap<String, InputDef>,
    pub deprecated: Option<String>,
}

/// An argument or an input field.
#[derive(Debug)]
pub(super) struct InputDef {
    pub ty: Type,
    pub default: Option<ConstValue>,
    pub deprecated: Option<String>,
}

impl InputDef {
    /// A client must provide it: non-null without a default value.
    pub fn is_required(&self) -> bool {
        !self.ty.nullable && self.default.is_none()
    }
}

impl Schema {
    /// Collects a parsed SDL document.
    pub fn from_document(document: ServiceDocument) -> Self {
        let mut schema = Schema::default();
        let mut explicit_roots = false;
        for definition in document.definitions {
            match definition {
                TypeSystemDefinition::Schema(s) => {
                    explicit_roots = true;
                    let s = s.node;
                    for (slot, name) in [s.query, s.mutation, s.subscription]
                        .into_iter()
                        .enumerate()
                    {
                        if let Some(name) = name {
                            schema.roots[slot] = Some(name.node.to_string());
                        }
                    }
                }
                TypeSystemDefinition::Type(t) => schema.add_type(t.node),
                TypeSystemDefinition::Directive(_) => {}
            }
        }
        if !explicit_roots {
            for (slot, name) in ["Query", "Mutation", "Subscription"]
                .into_iter()
                .enumerate()
            {
                if schema.types.contains_key(name) {
                    schema.roots[slot] = Some(name.to_owned());
                }
            }
        }
        schema
    }

    /// Adds a type definition or extension, merging it into an earlier one of the same name.
    fn add_type(&mut self, definition: TypeDefinition) {
        let kind = match &definition.kind {
            TypeKind::Scalar => Kind::Scalar,
            TypeKind::Object(_) => Kind::Object,
            TypeKind::Interface(_) => Kind::Interface,
            TypeKind::Union(_) => Kind::Union,
            TypeKind::Enum(_) => Kind::Enum,
            TypeKind::InputObject(_) => Kind::InputObject,
        };
        let def = self
            .types
            .entry(definition.name.node.to_string())
            .or_insert_with(|| TypeDef {
                kind,
                fields: BTreeMap::new(),
                implements: BTreeSet::new(),
                members: BTreeSet::new(),
                values: BTreeMap::new(),
                inputs: BTreeMap::new(),
            });
        match definition.kind {
            TypeKind::Scalar => {}
            TypeKind::Object(o) => {
                def.implements
                    .extend(o.implements.iter().map(|n| n.node.to_string()));
                def.fields.extend(o.fields.into_iter().map(field));
            }
            TypeKind::Interface(i) => {
                def.implements
                    .extend(i.implements.iter().map(|n| n.node.to_string()));
                def.fields.extend(i.fields.into_iter().map(field));
            }
            TypeKind::Union(u) => def
                .members
                .extend(u.members.iter().map(|n| n.node.to_string())),
            TypeKind::Enum(e) => def.values.extend(e.values.into_iter().map(|v| {
                (
                    v.node.value.node.to_string(),
                    deprecation(&v.node.directives),
                )
            })),
            TypeKind::InputObject(i) => def.inputs.extend(i.fields.into_iter().map(input)),
        }
    }

    /// Names of the enums that appear in output positions (field types).
    pub fn output_enums(&self) -> BTreeSet<&str> {
        self.types
            .values()
            .flat_map(|t| t.fields.values())
            .map(|f| named_type(&f.ty))
            .filter(|name| self.types.get(*name).is_some_and(|t| t.kind == Kind::Enum))
            .collect()
    }
}

/// A field definition as `(name, FieldDef)`.
fn field(f: Positioned<FieldDefinition>) -> (String, FieldDef) {
    let f = f.node;
    let deprecated = deprecation(&f.directives);
    (
        f.name.node.to_string(),
        FieldDef {
            ty: f.ty.node,
            args: f.arguments.into_iter().map(input).collect(),
            deprecated,
        },
    )
}

/// An argument or input field definition as `(name, InputDef)`.
fn input(v: Positioned<InputValueDefinition>) -> (String, InputDef) {
    let v = v.node;
    let deprecated = deprecation(&v.directives);
    (
        v.name.node.to_string(),
        InputDef {
            ty: v.ty.node,
            default: v.default_value.map(|d| d.node),
            deprecated,
        },
    )
}

/// The reason of a `@deprecated` directive among `directives`, if there is one.
fn deprecation(directives: &[Positioned<ConstDirective>]) -> Option<String> {
    let directive = directives
        .iter()
        .find(|d| d.node.name.node == "deprecated")?;
    Some(
        match directive.node.get_argument("reason").map(|r| &r.node) {
            Some(ConstValue::String(reason)) => reason.clone(),
            _ => DEFAULT_DEPRECATION_REASON.to_owned(),
        },
    )
}

/// The named type inside list and non-null wrappers.
pub(super) fn named_type(ty: &Type) -> &str {
    match &ty.base {
        async_graphql::parser::types::BaseType::Named(name) => name.as_str(),
        async_graphql::parser::types::BaseType::List(inner) => named_type(inner),
    }
}
