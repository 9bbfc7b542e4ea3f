//! The route table: matches (HTTP method, raw request path) against google.api.http templates.
//!
//! Routes live in one segment trie shared by all methods; each trie node lists the routes that
//! end there. Matching rules:
//!
//! - The path is the raw request path (percent-encoded, starts with `/`, no query). It is split
//!   on `/` and every segment is percent-decoded strictly; a bad escape or non-UTF-8 result gives
//!   [`Lookup::BadPath`]. `+` is a literal plus. `/` alone has no segment.
//! - Precedence does not depend on insertion order: at each segment a literal beats `*` (a
//!   single-segment variable), which beats `**`. The search backtracks, so when the more specific
//!   branch fails deeper down the less specific one is tried.
//! - Empty segments (`//`, trailing `/`) match nothing, not even `*` or `**`: `/v1/users/` does
//!   not match `/v1/users` nor `/v1/users/{id}`.
//! - `**` matches zero or more segments (as http.proto says).
//! - Custom verbs (as grpc-gateway does it): if the last raw segment contains `:`, the path is first
//!   split at that last `:` and the part before it is matched against the routes having that verb
//!   (`/v1/products:batchGet` matches `/v1/products:batchGet`). If that finds nothing, the whole
//!   path is matched against routes without a verb, so a `:` can still be part of a variable
//!   (`/v1/users/a:b` gives `id = "a:b"` for `/v1/users/{id}`). An escaped `%3A` never splits.
//! - Literal segments compare with the decoded segment (`/v1/us%65rs/1` matches `/v1/users/{id}`).
//!   A single-segment variable gets its segment fully decoded (`%2F` becomes `/`); a variable
//!   spanning several segments (or `**`) gets the segments joined with `/`, each decoded except
//!   that `%2F`/`%2f` stays `%2F`.
//! - When nothing matches under the request method but the path matches under other methods, the
//!   answer is [`Lookup::MethodNotAllowed`] with those methods, deduplicated and sorted by name.

use std::borrow::Cow;
use std::fmt;

use http::Method;

use super::template::{DecodeError, PathTemplate, Segment, percent_decode};

/// A route table from (method, path template) to values of type `T`.
pub struct Router<T> {
    /// All routes, in insertion order; trie leaves index into it.
    routes: Vec<Route<T>>,
    root: Node,
    /// The verbs that hold a `:` (`custom:custom`), longest first: the last-colon split cannot
    /// find them, so a path ending in `:<verb>` is tried against them first.
    colon_verbs: Vec<String>,
}

#[derive(Debug)]
struct Route<T> {
    method: Method,
    template: PathTemplate,
    value: T,
}

/// A trie node: the segments matched so far lead here.
#[derive(Debug, Default)]
struct Node {
    /// Literal children, sorted by text for binary search.
    literals: Vec<(Box<str>, Node)>,
    /// The `*` child.
    single: Option<Box<Node>>,
    /// The `**` child (it only ever has leaves, `**` being last).
    multi: Option<Box<Node>>,
    /// Indices into `Router::routes` of the routes whose template ends at this node.
    leaves: Vec<usize>,
}

impl Node {
    fn child_mut(&mut self, segment: &Segment) -> &mut Node {
        match segment {
            Segment::Literal(text) => {
                let index = match self
                    .literals
                    .binary_search_by(|(key, _)| (**key).cmp(text.as_str()))
                {
                    Ok(index) => index,
                    Err(index) => {
                        self.literals
                            .insert(index, (text.as_str().into(), Node::default()));
                        index
                    }
                };
                &mut self.literals[index].1
            }
            Segment::Single => self.single.get_or_insert_with(Box::default),
            Segment::Multi => self.multi.get_or_insert_with(Box::default),
        }
    }

    fn literal(&self, text: &str) -> Option<&Node> {
        self.literals
            .binary_search_by(|(key, _)| (**key).cmp(text))
            .ok()
            .and_then(|index| self.literals.get(index))
            .map(|(_, node)| node)
    }
}

/// Returned by [`Router::insert`] when the method already has a route of the same shape
/// (same segments once variable names are erased, same verb).
#[derive(Debug)]
pub struct DuplicateRoute<T> {
    /// The HTTP method of both routes.
    pub method: Method,
    /// The template text of the new route.
    pub template: String,
    /// The template text of the route already in the table.
    pub existing_template: String,
    /// The value of the route already in the table.
    pub existing: T,
    /// The value that was not inserted.
    pub new: T,
}

impl<T> fmt::Display for DuplicateRoute<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "duplicate route: {} {} has the same shape as {} {}",
            self.method, self.template, self.method, self.existing_template
        )
    }
}

impl<T: fmt::Debug> std::error::Error for DuplicateRoute<T> {}

/// The outcome of [`Router::lookup`].
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup<'a, T> {
    /// The path matched a route under the request method.
    Matched {
        /// The route's value.
        value: &'a T,
        /// The route's template.
        template: &'a PathTemplate,
        /// One binding per template variable, in template order.
        bindings: Vec<Binding<'a>>,
    },
    /// The path matches under other methods only (for a 405 with an `Allow` header).
    MethodNotAllowed {
        /// The methods under which the path matches, deduplicated, sorted by name.
        allowed: Vec<Method>,
    },
    /// No route matches the path under any method.
    NotFound,
    /// The path could not be decoded (bad percent-encoding, not UTF-8 once decoded, no leading `/`).
    BadPath {
        /// What is wrong with the path.
        reason: String,
    },
}

/// The value a path gave to one template variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding<'a> {
    /// The variable's field path (`["user", "id"]` for `{user.id}`).
    pub field_path: &'a [String],
    /// The decoded value (see the module docs for the `%2F` rule).
    pub value: String,
}

/// A request path split into segments: raw and decoded.
struct PathView<'p> {
    raw: Vec<&'p str>,
    decoded: Vec<Cow<'p, str>>,
    /// Index of the last empty segment, if any (`**` cannot match past it).
    last_empty: Option<usize>,
}

impl<'p> PathView<'p> {
    fn new(path: &'p str) -> Result<Self, String> {
        let Some(rest) = path.strip_prefix('/') else {
            return Err(format!("path {path:?} does not start with '/'"));
        };
        let raw: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').collect()
        };
        let decoded = raw
            .iter()
            .map(|segment| {
                percent_decode(segment, false).map_err(|e| format!("path segment {segment:?}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let last_empty = decoded.iter().rposition(|s| s.is_empty());
        Ok(Self {
            raw,
            decoded,
            last_empty,
        })
    }

    fn len(&self) -> usize {
        self.decoded.len()
    }

    /// Whether segments `from..` are all non-empty (so `**` may take them).
    fn rest_non_empty(&self, from: usize) -> bool {
        self.last_empty.is_none_or(|last| last < from)
    }
}

/// Splits `/a/b:verb` into (`/a/b`, `verb`) when the last segment holds a `:`.
fn split_verb(path: &str) -> Option<(&str, &str)> {
    let last_segment_start = path.rfind('/').map_or(0, |i| i + 1);
    let colon = path.get(last_segment_start..)?.rfind(':')? + last_segment_start;
    Some((path.get(..colon)?, path.get(colon + 1..)?))
}

impl<T> Default for Router<T> {
    fn default() -> Self {
        Self {
            routes: Vec::new(),
            root: Node::default(),
            colon_verbs: Vec::new(),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Router<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

impl<T: Clone> Router<T> {
    /// Adds a route. Fails when the same method already has a template of the same shape
    /// (variable names don't matter, the verb does); the table is then unchanged.
    pub fn insert(
        &mut self,
        method: Method,
        template: PathTemplate,
        value: T,
    ) -> Result<(), DuplicateRoute<T>> {
        let Self {
            routes,
            root,
            colon_verbs,
        } = self;
        let mut node = root;
        for segment in template.segments() {
            node = node.child_mut(segment);
        }
        let existing = node
            .leaves
            .iter()
            .filter_map(|&index| routes.get(index))
            .find(|route| route.method == method && route.template.verb() == template.verb());
        if let Some(existing) = existing {
            return Err(DuplicateRoute {
                method,
                template: template.as_str().to_owned(),
                existing_template: existing.template.as_str().to_owned(),
                existing: existing.value.clone(),
                new: value,
            });
        }
        if let Some(verb) = template.verb().filter(|v| v.contains(':'))
            && !colon_verbs.iter().any(|v| v == verb)
        {
            colon_verbs.push(verb.to_owned());
            colon_verbs.sort_by_key(|v| std::cmp::Reverse(v.len()));
        }
        node.leaves.push(routes.len());
        routes.push(Route {
            method,
            template,
            value,
        });
        Ok(())
    }
}

impl<T> Router<T> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether the table has no route.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// All routes in insertion order (for printing).
    pub fn routes(&self) -> impl Iterator<Item = (&Method, &PathTemplate, &T)> {
        self.routes
            .iter()
            .map(|route| (&route.method, &route.template, &route.value))
    }

    /// Finds the route for `method` and the raw request `path` (see the module docs for the rules).
    pub fn lookup(&self, method: &Method, path: &str) -> Lookup<'_, T> {
        let full = match PathView::new(path) {
            Ok(view) => view,
            Err(reason) => return Lookup::BadPath { reason },
        };
        // Phase 1: a verb holding a `:` that the last segment ends with, against routes with
        // that verb; then the verb split off at the last `:`, against routes with that verb.
        let mut with_verb: Vec<(PathView<'_>, Cow<'_, str>)> = Vec::new();
        for verb in &self.colon_verbs {
            let last_segment = path.rfind('/').map_or(path, |i| &path[i + 1..]);
            if last_segment.len() > verb.len() + 1
                && last_segment.ends_with(verb.as_str())
                && last_segment[..last_segment.len() - verb.len()].ends_with(':')
                && let Ok(view) = PathView::new(&path[..path.len() - verb.len() - 1])
            {
                with_verb.push((view, Cow::Borrowed(verb.as_str())));
            }
        }
        match split_verb(path) {
            None => {}
            Some((base, verb)) => match (PathView::new(base), percent_decode(verb, false)) {
                (Ok(view), Ok(verb)) => with_verb.push((view, verb)),
                (Err(reason), _) => return Lookup::BadPath { reason },
                (_, Err(e)) => {
                    return Lookup::BadPath {
                        reason: format!("verb {verb:?}: {e}"),
                    };
                }
            },
        }
        // Phase 2: the whole path, against routes without a verb.
        let phases = with_verb
            .iter()
            .map(|(view, verb)| (view, Some(verb.as_ref())))
            .chain([(&full, None)]);

        let mut allowed = Vec::new();
        for (view, verb) in phases.clone() {
            let mut accept =
                |route: &Route<T>| route.method == *method && route.template.verb() == verb;
            if let Some(route) = self.search(&self.root, view, 0, &mut accept) {
                return match bindings(&route.template, view) {
                    Ok(bindings) => Lookup::Matched {
                        value: &route.value,
                        template: &route.template,
                        bindings,
                    },
                    Err(e) => Lookup::BadPath {
                        reason: e.to_string(),
                    },
                };
            }
        }
        for (view, verb) in phases {
            let mut collect = |route: &Route<T>| {
                if route.template.verb() == verb && !allowed.contains(&route.method) {
                    allowed.push(route.method.clone());
                }
                false
            };
            self.search(&self.root, view, 0, &mut collect);
        }
        if allowed.is_empty() {
            Lookup::NotFound
        } else {
            allowed.sort_by(|a, b| a.as_str().cmp(b.as_str()));
            Lookup::MethodNotAllowed { allowed }
        }
    }

    /// Depth-first search from `node` with segments `index..` left, by precedence (literal, `*`,
    /// `**`); returns the first route ending on a matching node that `accept` takes. The depth is
    /// bounded by the longest template, whatever the path length.
    fn search<'r>(
        &'r self,
        node: &'r Node,
        view: &PathView<'_>,
        index: usize,
        accept: &mut impl FnMut(&Route<T>) -> bool,
    ) -> Option<&'r Route<T>> {
        match view.decoded.get(index) {
            None => {
                if let Some(route) = self.accept_leaf(node, accept) {
                    return Some(route);
                }
            }
            Some(segment) if !segment.is_empty() => {
                if let Some(child) = node.literal(segment)
                    && let Some(route) = self.search(child, view, index + 1, accept)
                {
                    return Some(route);
                }
                if let Some(child) = &node.single
                    && let Some(route) = self.search(child, view, index + 1, accept)
                {
                    return Some(route);
                }
            }
            Some(_) => {}
        }
        match &node.multi {
            Some(child) if view.rest_non_empty(index) => self.accept_leaf(child, accept),
            _ => None,
        }
    }

    fn accept_leaf<'r>(
        &'r self,
        node: &'r Node,
        accept: &mut impl FnMut(&Route<T>) -> bool,
    ) -> Option<&'r Route<T>> {
        node.leaves
            .iter()
            .filter_map(|&index| self.routes.get(index))
            .find(|route| accept(route))
    }
}

/// The bindings of `template`'s variables for a path it matched.
fn bindings<'a>(
    template: &'a PathTemplate,
    view: &PathView<'_>,
) -> Result<Vec<Binding<'a>>, DecodeError> {
    let segments = template.segments();
    let ends_with_multi = segments.last() == Some(&Segment::Multi);
    template
        .variables()
        .iter()
        .map(|variable| {
            let range = &variable.segments;
            let single = range.len() == 1 && segments.get(range.start) != Some(&Segment::Multi);
            let value = if single {
                view.decoded
                    .get(range.start)
                    .map(|s| s.as_ref().to_owned())
                    .unwrap_or_default()
            } else {
                let end = if ends_with_multi && range.end == segments.len() {
                    view.len()
                } else {
                    range.end
                };
                let mut value = String::new();
                for (i, raw) in view
                    .raw
                    .get(range.start..end)
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                {
                    if i > 0 {
                        value.push('/');
                    }
                    value.push_str(&percent_decode(raw, true)?);
                }
                value
            };
            Ok(Binding {
                field_path: &variable.field_path,
                value,
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
#[path = "router_tests.rs"]
mod tests;
