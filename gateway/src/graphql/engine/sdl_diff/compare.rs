//! The comparison of two collected schemas, one rule per kind of definition.

use std::collections::{BTreeMap, BTreeSet};

use async_graphql::parser::types::{BaseType, Type};

use super::model::{FieldDef, InputDef, Kind, Schema, TypeDef};
use super::{Change, ChangeKind};

/// Collects the changes (unsorted).
pub(super) fn compare(old: &Schema, new: &Schema) -> Vec<Change> {
    let mut out = Changes {
        list: Vec::new(),
        output_enums: new.output_enums(),
    };
    for (slot, op) in ["query", "mutation", "subscription"]
        .into_iter()
        .enumerate()
    {
        match (&old.roots[slot], &new.roots[slot]) {
            (Some(o), Some(n)) if o != n => out.push(
                ChangeKind::RootTypeChanged,
                true,
                format!("schema.{op}"),
                format!("the {op} root type changed from {o} to {n}"),
            ),
            (Some(o), None) => out.push(
                ChangeKind::RootTypeChanged,
                true,
                format!("schema.{op}"),
                format!(
                    "the {op} root type {o} was removed: {op} operations are no longer possible"
                ),
            ),
            _ => {}
        }
    }
    for (name, o) in &old.types {
        match new.types.get(name) {
            None => out.push(
                ChangeKind::TypeRemoved,
                true,
                name.clone(),
                format!("{} {name} was removed", o.kind),
            ),
            Some(n) if n.kind != o.kind => out.push(
                ChangeKind::TypeKindChanged,
                true,
                name.clone(),
                format!("{name} changed from {} to {}", o.kind, n.kind),
            ),
            Some(n) => out.type_def(name, o, n),
        }
    }
    for (name, n) in &new.types {
        if !old.types.contains_key(name) {
            out.push(
                ChangeKind::TypeAdded,
                false,
                name.clone(),
                format!("{} {name} was added", n.kind),
            );
        }
    }
    out.list
}

/// The changes found so far, and what the rules need to know about the new schema.
struct Changes<'a> {
    list: Vec<Change>,
    /// Enums of the new schema used as field types (a new value is dangerous there).
    output_enums: BTreeSet<&'a str>,
}

impl Changes<'_> {
    fn push(&mut self, kind: ChangeKind, breaking: bool, path: String, message: String) {
        self.list.push(Change {
            kind,
            breaking,
            path,
            message,
        });
    }

    /// Compares two definitions of the same name and kind.
    fn type_def(&mut self, name: &str, old: &TypeDef, new: &TypeDef) {
        match old.kind {
            Kind::Scalar => {}
            Kind::Object | Kind::Interface => {
                self.fields(name, &old.fields, &new.fields);
                self.interfaces(name, &old.implements, &new.implements);
            }
            Kind::Union => self.members(name, &old.members, &new.members),
            Kind::Enum => self.values(name, &old.values, &new.values),
            Kind::InputObject => self.inputs(name, &old.inputs, &new.inputs, InputPlace::Field),
        }
    }

    fn fields(
        &mut self,
        type_name: &str,
        old: &BTreeMap<String, FieldDef>,
        new: &BTreeMap<String, FieldDef>,
    ) {
        for (name, o) in old {
            let path = format!("{type_name}.{name}");
            let Some(n) = new.get(name) else {
                let note = was_deprecated(o.deprecated.as_deref());
                self.push(
                    ChangeKind::FieldRemoved,
                    true,
                    path.clone(),
                    format!("field {path} was removed{note}"),
                );
                continue;
            };
            if o.ty != n.ty {
                let safe = output_compatible(&o.ty, &n.ty);
                let why = if safe {
                    ""
                } else if named_changed(&o.ty, &n.ty) {
                    ": clients expect the old type"
                } else if o.ty.base == n.ty.base {
                    ": clients may now receive null"
                } else {
                    ": clients expect the old list shape or nullability"
                };
                self.push(
                    ChangeKind::FieldTypeChanged,
                    !safe,
                    path.clone(),
                    format!("field {path} changed type from {} to {}{why}", o.ty, n.ty),
                );
            }
            self.deprecation(
                &path,
                "field",
                o.deprecated.as_deref(),
                n.deprecated.as_deref(),
            );
            self.inputs(&path, &o.args, &n.args, InputPlace::Argument);
        }
        for (name, n) in new {
            if !old.contains_key(name) {
                let path = format!("{type_name}.{name}");
                self.push(
                    ChangeKind::FieldAdded,
                    false,
                    path.clone(),
                    format!("field {path} of type {} was added", n.ty),
                );
            }
        }
    }

    /// Compares arguments (`owner` is `Type.field`) or input fields (`owner` is the type).
    fn inputs(
        &mut self,
        owner: &str,
        old: &BTreeMap<String, InputDef>,
        new: &BTreeMap<String, InputDef>,
        place: InputPlace,
    ) {
        let (what, removed, added, type_changed, default_changed) = match place {
            InputPlace::Argument => (
                "argument",
                ChangeKind::ArgumentRemoved,
                ChangeKind::ArgumentAdded,
                ChangeKind::ArgumentTypeChanged,
                ChangeKind::ArgumentDefaultChanged,
            ),
            InputPlace::Field => (
                "input field",
                ChangeKind::InputFieldRemoved,
                ChangeKind::InputFieldAdded,
                ChangeKind::InputFieldTypeChanged,
                ChangeKind::InputFieldDefaultChanged,
            ),
        };
        let path_of = |name: &str| match place {
            InputPlace::Argument => format!("{owner}({name}:)"),
            InputPlace::Field => format!("{owner}.{name}"),
        };
        for (name, o) in old {
            let path = path_of(name);
            let Some(n) = new.get(name) else {
                let note = was_deprecated(o.deprecated.as_deref());
                self.push(
                    removed,
                    true,
                    path.clone(),
                    format!("{what} {path} was removed{note}: clients that send it will fail"),
                );
                continue;
            };
            if o.ty != n.ty {
                let safe = input_compatible(&o.ty, &n.ty);
                let why = if safe {
                    ""
                } else if named_changed(&o.ty, &n.ty) {
                    ": clients send the old type"
                } else if o.ty.base == n.ty.base {
                    ": clients that omit it or send null will fail"
                } else {
                    ": clients send the old list shape or nullability"
                };
                self.push(
                    type_changed,
                    !safe,
                    path.clone(),
                    format!("{what} {path} changed type from {} to {}{why}", o.ty, n.ty),
                );
            }
            if o.default != n.default {
                let show = |d: &Option<async_graphql::Value>| {
                    d.as_ref()
                        .map_or_else(|| "none".to_owned(), ToString::to_string)
                };
                self.push(
                    default_changed,
                    false,
                    path.clone(),
                    format!(
                        "{what} {path} changed its default from {} to {} (dangerous: clients \
                         that omit it get a different behaviour)",
                        show(&o.default),
                        show(&n.default)
                    ),
                );
            }
            self.deprecation(
                &path,
                what,
                o.deprecated.as_deref(),
                n.deprecated.as_deref(),
            );
        }
        for (name, n) in new {
            if old.contains_key(name) {
                continue;
            }
            let path = path_of(name);
            let required = n.is_required();
            let message = if required {
                format!(
                    "required {what} {path} of type {} was added: clients that do not send it \
                     will fail",
                    n.ty
                )
            } else {
                format!("optional {what} {path} of type {} was added", n.ty)
            };
            self.push(added, required, path, message);
        }
    }

    fn values(
        &mut self,
        type_name: &str,
        old: &BTreeMap<String, Option<String>>,
        new: &BTreeMap<String, Option<String>>,
    ) {
        for (value, o) in old {
            let path = format!("{type_name}.{value}");
            match new.get(value) {
                None => {
                    let note = was_deprecated(o.as_deref());
                    self.push(
                        ChangeKind::EnumValueRemoved,
                        true,
                        path.clone(),
                        format!("enum value {path} was removed{note}"),
                    );
                }
                Some(n) => self.deprecation(&path, "enum value", o.as_deref(), n.as_deref()),
            }
        }
        for value in new.keys() {
            if old.contains_key(value) {
                continue;
            }
            let path = format!("{type_name}.{value}");
            let note = if self.output_enums.contains(type_name) {
                format!(
                    " (dangerous: {type_name} is returned by fields, and clients that switch \
                     over its values may not handle {value})"
                )
            } else {
                String::new()
            };
            self.push(
                ChangeKind::EnumValueAdded,
                false,
                path.clone(),
                format!("enum value {path} was added{note}"),
            );
        }
    }

    fn members(&mut self, union: &str, old: &BTreeSet<String>, new: &BTreeSet<String>) {
        for member in old.difference(new) {
            self.push(
                ChangeKind::UnionMemberRemoved,
                true,
                format!("{union}.{member}"),
                format!("{member} was removed from union {union}"),
            );
        }
        for member in new.difference(old) {
            self.push(
                ChangeKind::UnionMemberAdded,
                false,
                format!("{union}.{member}"),
                format!(
                    "{member} was added to union {union} (dangerous: clients may not handle \
                     the new type)"
                ),
            );
        }
    }

    fn interfaces(&mut self, type_name: &str, old: &BTreeSet<String>, new: &BTreeSet<String>) {
        for interface in old.difference(new) {
            self.push(
                ChangeKind::InterfaceRemoved,
                true,
                type_name.to_owned(),
                format!(
                    "{type_name} no longer implements {interface}: fragments on {interface} \
                     no longer apply"
                ),
            );
        }
        for interface in new.difference(old) {
            self.push(
                ChangeKind::InterfaceAdded,
                false,
                type_name.to_owned(),
                format!("{type_name} now implements {interface}"),
            );
        }
    }

    fn deprecation(&mut self, path: &str, what: &str, old: Option<&str>, new: Option<&str>) {
        match (old, new) {
            (None, Some(reason)) => self.push(
                ChangeKind::Deprecated,
                false,
                path.to_owned(),
                format!("{what} {path} was deprecated: {reason}"),
            ),
            (Some(_), None) => self.push(
                ChangeKind::DeprecationRemoved,
                false,
                path.to_owned(),
                format!("{what} {path} is no longer deprecated"),
            ),
            _ => {}
        }
    }
}

/// Arguments and input fields follow the same rules; only paths and kinds differ.
#[derive(Clone, Copy)]
enum InputPlace {
    Argument,
    Field,
}

/// " (it was deprecated: reason)" or nothing.
fn was_deprecated(reason: Option<&str>) -> String {
    reason.map_or_else(String::new, |r| format!(" (it was deprecated: {r})"))
}

/// Whether a client reading a field of type `old` can read `new`: nullability may only get
/// stricter, list levels and the named type must stay.
fn output_compatible(old: &Type, new: &Type) -> bool {
    if !old.nullable && new.nullable {
        return false;
    }
    match (&old.base, &new.base) {
        (BaseType::Named(a), BaseType::Named(b)) => a == b,
        (BaseType::List(a), BaseType::List(b)) => output_compatible(a, b),
        _ => false,
    }
}

/// Whether a client sending a value of type `old` is still accepted by `new`: nullability may
/// only get looser, list levels and the named type must stay.
fn input_compatible(old: &Type, new: &Type) -> bool {
    if old.nullable && !new.nullable {
        return false;
    }
    match (&old.base, &new.base) {
        (BaseType::Named(a), BaseType::Named(b)) => a == b,
        (BaseType::List(a), BaseType::List(b)) => input_compatible(a, b),
        _ => false,
    }
}

/// Whether the named type inside the wrappers changed.
fn named_changed(old: &Type, new: &Type) -> bool {
    super::model::named_type(old) != super::model::named_type(new)
}
