//! Lean payloads: remove null members and empty lists, and flatten single-member wrappers at
//! configured response paths, in place and in one pass over a GraphQL result or a JSON value.
//!
//! Paths are response keys joined by dots (`user.orders.items.product`); list indices are
//! transparent (a path goes through every element of a list) and `*` matches any key. Only
//! object members are removed, never list elements (that would shift indices). Children are
//! shaped before their parent, so a wrapper whose only other member was null is flattened.
//! A null that a GraphQL error points at (`errors[].path`) is kept, so clients can still match
//! errors to fields. The root introspection fields (`__schema`, `__type`) are never touched.

use std::borrow::Cow;
use std::collections::HashMap;

use async_graphql::{PathSegment, Value as Gql};

/// A configured flatten path is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("shaping.flatten[{index}]: {message}")]
pub struct FlattenPathError {
    /// Position in `shaping.flatten`.
    pub index: usize,
    /// What is wrong.
    pub message: String,
}

/// A node of the path trie: the paths going through one key.
#[derive(Clone, Debug, Default)]
struct Node {
    children: HashMap<String, Node>,
    any: Option<Box<Node>>,
    flatten: bool,
    keep_null: bool,
}

impl Node {
    fn insert<'a>(&mut self, segments: impl Iterator<Item = &'a str>) -> &mut Node {
        let mut node = self;
        for s in segments {
            node = if s == "*" {
                node.any.get_or_insert_with(Box::default)
            } else {
                node.children.entry(s.to_string()).or_default()
            };
        }
        node
    }
}

/// The lean-payload settings of a profile, compiled.
#[derive(Clone, Debug, Default)]
pub struct Lean {
    omit_nulls: bool,
    omit_empty_lists: bool,
    paths: Node,
    has_paths: bool,
}

/// The trie nodes matching the path one key further.
fn advance<'a>(states: &[&'a Node], key: &str) -> Vec<&'a Node> {
    let mut next = Vec::new();
    for n in states {
        if let Some(c) = n.children.get(key) {
            next.push(c);
        }
        if let Some(a) = &n.any {
            next.push(a);
        }
    }
    next
}

impl Lean {
    /// Compiles the settings; `flatten` paths are checked.
    pub fn new(
        omit_nulls: bool,
        omit_empty_lists: bool,
        flatten: &[String],
    ) -> Result<Self, FlattenPathError> {
        let mut paths = Node::default();
        for (index, p) in flatten.iter().enumerate() {
            if p.trim().is_empty() || p.split('.').any(|s| s.trim().is_empty()) {
                return Err(FlattenPathError {
                    index,
                    message: format!(
                        "{p:?} is not a path: write response keys separated by dots, e.g. \"user.orders.items.product\""
                    ),
                });
            }
            paths.insert(p.split('.').map(str::trim)).flatten = true;
        }
        Ok(Self {
            omit_nulls,
            omit_empty_lists,
            has_paths: !flatten.is_empty(),
            paths,
        })
    }

    /// Whether shaping changes nothing (the web profile): callers skip the traversal.
    pub fn is_noop(&self) -> bool {
        !self.omit_nulls && !self.omit_empty_lists && !self.has_paths
    }

    /// Shapes the `data` of a GraphQL response in place, keeping nulls that errors point at.
    pub fn apply_graphql(&self, response: &mut async_graphql::Response) {
        if self.is_noop() {
            return;
        }
        let trie = if response.errors.is_empty() || !self.omit_nulls {
            Cow::Borrowed(&self.paths)
        } else {
            let mut t = self.paths.clone();
            for e in &response.errors {
                let fields = e.path.iter().filter_map(|s| match s {
                    PathSegment::Field(f) => Some(f.as_str()),
                    PathSegment::Index(_) => None,
                });
                t.insert(fields).keep_null = true;
            }
            Cow::Owned(t)
        };
        self.shape(&mut response.data, &[trie.as_ref()], false, true);
    }

    /// Shapes a JSON value in place (e.g. a REST endpoint's body built from `data`); paths
    /// start at `value`.
    pub fn apply_json(&self, value: &mut serde_json::Value) {
        if self.is_noop() {
            return;
        }
        self.shape(value, &[&self.paths], false, false);
    }

    /// Shapes `v`, found at the path `states` match; `root` skips introspection members.
    fn shape<T: Tree>(&self, v: &mut T, states: &[&Node], flatten_here: bool, root: bool) {
        if let Some(items) = v.list_mut() {
            for item in items {
                self.shape(item, states, flatten_here, false);
            }
            return;
        }
        if !v.is_object() {
            return;
        }
        v.for_each_member(&mut |k, child| {
            if root && (k == "__schema" || k == "__type") {
                return;
            }
            let next = advance(states, k);
            let flat = next.iter().any(|n| n.flatten);
            self.shape(child, &next, flat, false);
        });
        if self.omit_nulls || self.omit_empty_lists {
            v.retain_members(&mut |k, child| {
                if self.omit_empty_lists && child.is_empty_list() {
                    return false;
                }
                if self.omit_nulls && child.is_null() {
                    return advance(states, k).iter().any(|n| n.keep_null);
                }
                true
            });
        }
        if flatten_here && let Some(inner) = v.take_single_member() {
            *v = inner;
        }
    }
}

/// A JSON-like tree: GraphQL values and serde_json values.
trait Tree: Sized {
    fn is_null(&self) -> bool;
    fn is_object(&self) -> bool;
    fn is_empty_list(&self) -> bool;
    fn list_mut(&mut self) -> Option<&mut Vec<Self>>;
    fn for_each_member(&mut self, f: &mut dyn FnMut(&str, &mut Self));
    fn retain_members(&mut self, keep: &mut dyn FnMut(&str, &Self) -> bool);
    /// Takes the value of the only member of an object with exactly one member.
    fn take_single_member(&mut self) -> Option<Self>;
}

impl Tree for Gql {
    fn is_null(&self) -> bool {
        matches!(self, Gql::Null)
    }
    fn is_object(&self) -> bool {
        matches!(self, Gql::Object(_))
    }
    fn is_empty_list(&self) -> bool {
        matches!(self, Gql::List(l) if l.is_empty())
    }
    fn list_mut(&mut self) -> Option<&mut Vec<Self>> {
        match self {
            Gql::List(l) => Some(l),
            _ => None,
        }
    }
    fn for_each_member(&mut self, f: &mut dyn FnMut(&str, &mut Self)) {
        if let Gql::Object(m) = self {
            for (k, v) in m.iter_mut() {
                f(k.as_str(), v);
            }
        }
    }
    fn retain_members(&mut self, keep: &mut dyn FnMut(&str, &Self) -> bool) {
        if let Gql::Object(m) = self {
            m.retain(|k, v| keep(k.as_str(), v));
        }
    }
    fn take_single_member(&mut self) -> Option<Self> {
        match self {
            Gql::Object(m) if m.len() == 1 => m.pop().map(|(_, v)| v),
            _ => None,
        }
    }
}

impl Tree for serde_json::Value {
    fn is_null(&self) -> bool {
        serde_json::Value::is_null(self)
    }
    fn is_object(&self) -> bool {
        serde_json::Value::is_object(self)
    }
    fn is_empty_list(&self) -> bool {
        matches!(self, serde_json::Value::Array(l) if l.is_empty())
    }
    fn list_mut(&mut self) -> Option<&mut Vec<Self>> {
        self.as_array_mut()
    }
    fn for_each_member(&mut self, f: &mut dyn FnMut(&str, &mut Self)) {
        if let Some(m) = self.as_object_mut() {
            for (k, v) in m.iter_mut() {
                f(k.as_str(), v);
            }
        }
    }
    fn retain_members(&mut self, keep: &mut dyn FnMut(&str, &Self) -> bool) {
        if let Some(m) = self.as_object_mut() {
            m.retain(|k, v| keep(k.as_str(), v));
        }
    }
    fn take_single_member(&mut self) -> Option<Self> {
        match self {
            serde_json::Value::Object(m) if m.len() == 1 => {
                let key = m.keys().next().cloned()?;
                m.remove(&key)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn lean(nulls: bool, empty: bool, flatten: &[&str]) -> Lean {
        let f: Vec<String> = flatten.iter().map(|s| s.to_string()).collect();
        Lean::new(nulls, empty, &f).unwrap()
    }

    #[test]
    fn omits_nulls_and_empty_lists_but_not_list_elements() {
        let mut v = json!({"a": null, "b": [], "c": [null, {"d": null, "e": 1}], "f": {"g": []}});
        lean(true, true, &[]).apply_json(&mut v);
        assert_eq!(v, json!({"c": [null, {"e": 1}], "f": {}}));
        let mut v = json!({"a": null, "b": []});
        lean(true, false, &[]).apply_json(&mut v);
        assert_eq!(v, json!({"b": []}));
        let mut v = json!({"a": null, "b": []});
        lean(false, false, &[]).apply_json(&mut v);
        assert_eq!(v, json!({"a": null, "b": []}));
    }

    #[test]
    fn flattens_single_member_wrappers_through_lists_and_wildcards() {
        let mut v = json!({"user": {"orders": [
            {"id": "o-1", "items": [{"quantity": 1, "product": {"title": "Cup"}},
                                    {"quantity": 2, "product": {"title": "Pot", "id": "p-2"}}]},
            {"id": "o-2", "items": []}
        ]}});
        lean(false, false, &["user.orders.items.product"]).apply_json(&mut v);
        assert_eq!(v["user"]["orders"][0]["items"][0]["product"], json!("Cup"));
        assert_eq!(
            v["user"]["orders"][0]["items"][1]["product"],
            json!({"title": "Pot", "id": "p-2"})
        );
        let mut v = json!({"a": {"x": {"v": 1}, "y": {"v": 2, "w": 3}}});
        lean(false, false, &["a.*"]).apply_json(&mut v);
        assert_eq!(v, json!({"a": {"x": 1, "y": {"v": 2, "w": 3}}}));
        // Children first: a wrapper whose other member was null becomes single.
        let mut v = json!({"p": {"title": "Cup", "note": null}});
        lean(true, false, &["p"]).apply_json(&mut v);
        assert_eq!(v, json!({"p": "Cup"}));
        // A list of single-member objects becomes a list of values.
        let mut v = json!({"ids": [{"id": 1}, {"id": 2}]});
        lean(false, false, &["ids"]).apply_json(&mut v);
        assert_eq!(v, json!({"ids": [1, 2]}));
    }

    #[test]
    fn graphql_keeps_error_nulls_and_introspection() {
        let data = Gql::from_json(json!({
            "user": null, "other": null, "__schema": {"description": null}
        }))
        .unwrap();
        let mut resp = async_graphql::Response::new(data);
        let mut err = async_graphql::ServerError::new("boom", None);
        err.path = vec![PathSegment::Field("user".into())];
        resp.errors.push(err);
        lean(true, true, &[]).apply_graphql(&mut resp);
        assert_eq!(
            resp.data.into_json().unwrap(),
            json!({"user": null, "__schema": {"description": null}})
        );
    }

    #[test]
    fn bad_paths_are_named() {
        let e = Lean::new(false, false, &["a..b".to_string()]).unwrap_err();
        assert_eq!(e.index, 0);
        assert!(e.to_string().starts_with("shaping.flatten[0]:"), "{e}");
        assert!(lean(false, false, &[]).is_noop());
        assert!(!lean(false, false, &["a"]).is_noop());
    }
}
