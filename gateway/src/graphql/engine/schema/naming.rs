//! Names in the generated schema: deterministic, collision-free type names and readable root
//! field names.
//!
//! Type names: a message or enum is named by its path inside its package, joined
//! (`demo.v1.User` -> `User`, `demo.v1.Order.Item` -> `OrderItem`). When two types would get
//! the same name (the same message name in two packages, a clash with a built-in scalar or with
//! another type's `...Input`/`...Entry` name), every one of them is named by its full name
//! instead, in PascalCase (`DemoV1User`, `ShopV2User`). Input types add `Input`; map entries are
//! `<Owner><Field>Entry`; oneof inputs are `<Owner><Oneof>Input`.
//!
//! Root fields: `GetX` -> `x`, `ListX` -> `x` (lowerCamelCase), anything else its method name in
//! lowerCamelCase (`CreateUser` -> `createUser`). Two methods with the same root field name both
//! get their service's name in front (`catalogGetProduct`). A config override always wins.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Scalars the schema defines itself; no type may take these names.
pub const RESERVED: &[&str] = &[
    "Int",
    "Float",
    "String",
    "Boolean",
    "ID",
    "Int64",
    "UInt64",
    "Bytes",
    "Timestamp",
    "Duration",
    "FieldMask",
    "JSON",
    "Query",
    "Mutation",
    "Subscription",
];

/// PascalCase of a snake_case or dotted identifier (`demo.v1` -> `DemoV1`, `chat_handle` ->
/// `ChatHandle`).
pub fn pascal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut upper = true;
    for c in s.chars() {
        if c == '_' || c == '.' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// lowerCamelCase of a PascalCase or snake_case identifier (`ListUsers` -> `listUsers`).
pub fn lower_camel(s: &str) -> String {
    let p = pascal(s);
    let mut chars = p.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// One named type: its full protobuf name and package.
#[derive(Clone, Debug)]
pub struct NamedType {
    /// e.g. `demo.v1.Order.Item`.
    pub full_name: String,
    /// e.g. `demo.v1`.
    pub package: String,
}

impl NamedType {
    fn short(&self) -> String {
        let rel = self
            .full_name
            .strip_prefix(&self.package)
            .map(|r| r.trim_start_matches('.'))
            .unwrap_or(&self.full_name);
        rel.split('.').map(pascal).collect()
    }

    fn qualified(&self) -> String {
        self.full_name.split('.').map(pascal).collect()
    }
}

/// Base names of every message and enum of the schema.
#[derive(Clone, Debug, Default)]
pub struct TypeNames {
    names: HashMap<String, String>,
}

impl TypeNames {
    /// Names `types` (messages and enums together) so that no two share a name, nor clash
    /// with a reserved name or with a derived `...Input` / `...Entry` name of another type.
    pub fn new(types: &[NamedType]) -> Self {
        let mut by_short: BTreeMap<String, Vec<&NamedType>> = BTreeMap::new();
        for t in types {
            by_short.entry(t.short()).or_default().push(t);
        }
        let shorts: BTreeSet<&String> = by_short.keys().collect();
        let mut names = HashMap::new();
        for (short, group) in &by_short {
            let derived_clash = short
                .strip_suffix("Input")
                .or_else(|| short.strip_suffix("Entry"))
                .is_some_and(|base| shorts.contains(&base.to_string()));
            let clash = group.len() > 1 || RESERVED.contains(&short.as_str()) || derived_clash;
            for t in group {
                let name = if clash { t.qualified() } else { short.clone() };
                names.insert(t.full_name.clone(), name);
            }
        }
        Self { names }
    }

    /// The output (object or enum) name of a type, by full protobuf name.
    pub fn get(&self, full_name: &str) -> Option<&str> {
        self.names.get(full_name).map(String::as_str)
    }
}

/// The default root field name of a method.
pub fn root_field_name(method: &str) -> String {
    for prefix in ["Get", "List"] {
        if let Some(rest) = method.strip_prefix(prefix)
            && rest.starts_with(|c: char| c.is_ascii_uppercase())
        {
            return lower_camel(rest);
        }
    }
    lower_camel(method)
}

/// The root field name used when two methods collide: the service's short name (without a
/// `Service` suffix) in front of the method name.
pub fn qualified_root_field_name(service_short: &str, method: &str) -> String {
    let svc = service_short
        .strip_suffix("Service")
        .unwrap_or(service_short);
    lower_camel(&format!("{svc}{method}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(full: &str, pkg: &str) -> NamedType {
        NamedType {
            full_name: full.into(),
            package: pkg.into(),
        }
    }

    #[test]
    fn short_names_unless_they_collide() {
        let names = TypeNames::new(&[
            t("demo.v1.User", "demo.v1"),
            t("demo.v1.Order.Item", "demo.v1"),
            t("shop.v1.Product", "shop.v1"),
            t("other.v2.Product", "other.v2"),
            t("x.Timestamp", "x"),
            t("y.Thing", "y"),
            t("y.ThingInput", "y"),
        ]);
        assert_eq!(names.get("demo.v1.User"), Some("User"));
        assert_eq!(names.get("demo.v1.Order.Item"), Some("OrderItem"));
        assert_eq!(names.get("shop.v1.Product"), Some("ShopV1Product"));
        assert_eq!(names.get("other.v2.Product"), Some("OtherV2Product"));
        assert_eq!(names.get("x.Timestamp"), Some("XTimestamp"));
        assert_eq!(names.get("y.Thing"), Some("Thing"));
        assert_eq!(names.get("y.ThingInput"), Some("YThingInput"));
    }

    #[test]
    fn root_fields_read_well() {
        assert_eq!(root_field_name("GetUser"), "user");
        assert_eq!(root_field_name("ListUsers"), "users");
        assert_eq!(root_field_name("ListOrdersByUser"), "ordersByUser");
        assert_eq!(root_field_name("CreateUser"), "createUser");
        assert_eq!(root_field_name("Getaway"), "getaway");
        assert_eq!(root_field_name("BatchGetProducts"), "batchGetProducts");
        assert_eq!(
            qualified_root_field_name("CatalogService", "GetProduct"),
            "catalogGetProduct"
        );
        assert_eq!(lower_camel("chat_handle"), "chatHandle");
    }
}
