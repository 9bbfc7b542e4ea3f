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
        let Self { routes, root } = self;
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
        // Phase 1: the verb split off the last segment, against routes with that verb.
        let with_verb = match split_verb(path) {
            None => None,
            Some((base, verb)) => match (PathView::new(base), percent_decode(verb, false)) {
                (Ok(view), Ok(verb)) => Some((view, verb)),
                (Err(reason), _) => return Lookup::BadPath { reason },
                (_, Err(e)) => {
                    return Lookup::BadPath {
                        reason: format!("verb {verb:?}: {e}"),
                    };
                }
            },
        };
        // Phase 2: the whole path, against routes without a verb.
        let phases = with_verb
            .as_ref()
            .map(|(view, verb)| (view, Some(verb.as_ref())))
            .into_iter()
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
mod tests {
    use super::*;

    fn router(routes: &[(&str, &str)]) -> Router<String> {
        let mut router = Router::new();
        for (method, template) in routes {
            let value = format!("{method} {template}");
            router
                .insert(method.parse().unwrap(), template.parse().unwrap(), value)
                .unwrap();
        }
        router
    }

    /// The matched route's value and its bindings as (dotted path, value).
    fn matched(
        router: &Router<String>,
        method: &str,
        path: &str,
    ) -> Option<(String, Vec<(String, String)>)> {
        match router.lookup(&method.parse().unwrap(), path) {
            Lookup::Matched {
                value,
                template,
                bindings,
            } => {
                assert_eq!(bindings.len(), template.variables().len());
                let bindings = bindings
                    .into_iter()
                    .map(|b| (b.field_path.join("."), b.value))
                    .collect();
                Some((value.clone(), bindings))
            }
            _ => None,
        }
    }

    fn value(router: &Router<String>, method: &str, path: &str) -> Option<String> {
        matched(router, method, path).map(|(value, _)| value)
    }

    fn binding(router: &Router<String>, path: &str) -> Vec<(String, String)> {
        matched(router, "GET", path)
            .unwrap_or_else(|| panic!("no match for {path}"))
            .1
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    /// Builds the table in both insertion orders and runs `check` on each.
    fn both_orders(routes: &[(&str, &str)], check: impl Fn(&Router<String>)) {
        check(&router(routes));
        let reversed: Vec<_> = routes.iter().rev().copied().collect();
        check(&router(&reversed));
    }

    #[test]
    fn literal_beats_variable_beats_multi_in_any_order() {
        let routes = [
            ("GET", "/v1/users/{rest=**}"),
            ("GET", "/v1/users/{id}"),
            ("GET", "/v1/users/me"),
        ];
        both_orders(&routes, |r| {
            assert_eq!(value(r, "GET", "/v1/users/me").unwrap(), "GET /v1/users/me");
            assert_eq!(
                value(r, "GET", "/v1/users/42").unwrap(),
                "GET /v1/users/{id}"
            );
            assert_eq!(
                value(r, "GET", "/v1/users/42/x").unwrap(),
                "GET /v1/users/{rest=**}"
            );
            assert_eq!(
                value(r, "GET", "/v1/users").unwrap(),
                "GET /v1/users/{rest=**}"
            );
        });
    }

    #[test]
    fn backtracks_to_less_specific_branch() {
        let routes = [
            ("GET", "/v1/users/me/settings"),
            ("GET", "/v1/users/{id}/orders"),
        ];
        both_orders(&routes, |r| {
            let (found, bindings) = matched(r, "GET", "/v1/users/me/orders").unwrap();
            assert_eq!(found, "GET /v1/users/{id}/orders");
            assert_eq!(bindings, pairs(&[("id", "me")]));
            assert_eq!(
                value(r, "GET", "/v1/users/me/settings").unwrap(),
                "GET /v1/users/me/settings"
            );
        });
        // Backtracking from `*` to `**`, and across methods and verbs.
        let routes = [
            ("GET", "/v1/{a}/x"),
            ("GET", "/v1/{b=**}"),
            ("POST", "/v1/{a}/y"),
        ];
        both_orders(&routes, |r| {
            assert_eq!(value(r, "GET", "/v1/q/x").unwrap(), "GET /v1/{a}/x");
            assert_eq!(value(r, "GET", "/v1/q/y").unwrap(), "GET /v1/{b=**}");
            assert_eq!(value(r, "POST", "/v1/q/y").unwrap(), "POST /v1/{a}/y");
        });
    }

    #[test]
    fn duplicates_by_shape() {
        let mut r = router(&[("GET", "/v1/users/{id}")]);
        let err = r
            .insert(
                Method::GET,
                "/v1/users/{user_id}".parse().unwrap(),
                "new".to_owned(),
            )
            .unwrap_err();
        assert_eq!(err.method, Method::GET);
        assert_eq!(err.template, "/v1/users/{user_id}");
        assert_eq!(err.existing_template, "/v1/users/{id}");
        assert_eq!(err.existing, "GET /v1/users/{id}");
        assert_eq!(err.new, "new");
        assert_eq!(
            err.to_string(),
            "duplicate route: GET /v1/users/{user_id} has the same shape as GET /v1/users/{id}"
        );
        let boxed: Box<dyn std::error::Error> = Box::new(err);
        assert!(boxed.to_string().starts_with("duplicate route"));
        assert!(
            r.insert(Method::GET, "/v1/users/*".parse().unwrap(), String::new())
                .is_err()
        );
        assert_eq!(r.len(), 1);
        // Same template, other method: fine. Same path, other verbs: fine.
        r.insert(
            Method::DELETE,
            "/v1/users/{id}".parse().unwrap(),
            String::new(),
        )
        .unwrap();
        r.insert(
            Method::GET,
            "/v1/users/{id}:watch".parse().unwrap(),
            String::new(),
        )
        .unwrap();
        r.insert(
            Method::GET,
            "/v1/users/{id}:peek".parse().unwrap(),
            String::new(),
        )
        .unwrap();
        assert!(
            r.insert(
                Method::GET,
                "/v1/users/{x}:peek".parse().unwrap(),
                String::new()
            )
            .is_err()
        );
        assert_eq!(r.len(), 4);
        assert!(!r.is_empty());
        let listed: Vec<_> = r.routes().map(|(m, t, _)| format!("{m} {t}")).collect();
        assert_eq!(
            listed,
            [
                "GET /v1/users/{id}",
                "DELETE /v1/users/{id}",
                "GET /v1/users/{id}:watch",
                "GET /v1/users/{id}:peek"
            ]
        );
        assert!(format!("{r:?}").starts_with("Router"));
        assert!(Router::<u8>::default().is_empty());
    }

    #[test]
    fn method_not_allowed_lists_sorted_methods() {
        let r = router(&[
            ("POST", "/v1/users"),
            ("GET", "/v1/users"),
            ("PUT", "/v1/users/{id}"),
            ("DELETE", "/v1/users/{id}"),
            ("PATCH", "/v1/{name=users/*}"),
            ("GET", "/v1/users/me"),
            ("POST", "/v1/users/{id}:watch"),
            ("POST", "/v1/users/{id}/x:watch"),
        ]);
        let allowed = |method: &str, path: &str| match r.lookup(&method.parse().unwrap(), path) {
            Lookup::MethodNotAllowed { allowed } => allowed,
            other => panic!("{method} {path}: {other:?}"),
        };
        assert_eq!(allowed("DELETE", "/v1/users"), [Method::GET, Method::POST]);
        assert_eq!(
            allowed("GET", "/v1/users/7"),
            [Method::DELETE, Method::PATCH, Method::PUT]
        );
        // `me` is also matched by the variable routes under other methods.
        assert_eq!(
            allowed("POST", "/v1/users/me"),
            [Method::DELETE, Method::GET, Method::PATCH, Method::PUT]
        );
        // POST through its verb, the others through the verb-less fallback (`id = "7:watch"`).
        assert_eq!(
            allowed("GET", "/v1/users/7:watch"),
            [Method::DELETE, Method::PATCH, Method::POST, Method::PUT]
        );
        assert_eq!(allowed("GET", "/v1/users/7/x:watch"), [Method::POST]);
        assert_eq!(r.lookup(&Method::GET, "/v1/nothing"), Lookup::NotFound);
        assert_eq!(
            r.lookup(&Method::GET, "/v1/users/7/x:nope"),
            Lookup::NotFound
        );
    }

    #[test]
    fn single_segment_variables_are_fully_decoded() {
        let r = router(&[("GET", "/v1/users/{id}"), ("GET", "/v1/x/{a=*}/{b}")]);
        assert_eq!(binding(&r, "/v1/users/a%2Fb"), pairs(&[("id", "a/b")]));
        assert_eq!(binding(&r, "/v1/users/a%20b+c"), pairs(&[("id", "a b+c")]));
        assert_eq!(
            binding(&r, "/v1/users/%C3%A9t%C3%A9"),
            pairs(&[("id", "été")])
        );
        assert_eq!(binding(&r, "/v1/users/%3A%2f"), pairs(&[("id", ":/")]));
        assert_eq!(
            binding(&r, "/v1/x/%2F/%25"),
            pairs(&[("a", "/"), ("b", "%")])
        );
    }

    #[test]
    fn multi_segment_variables_keep_encoded_slashes() {
        let r = router(&[
            ("GET", "/v1/{name=shelves/*/books/*}"),
            ("GET", "/v2/{path=**}"),
        ]);
        assert_eq!(
            binding(&r, "/v1/shelves/s%2F1/books/b%20%2f2"),
            pairs(&[("name", "shelves/s%2F1/books/b %2F2")])
        );
        assert_eq!(
            binding(&r, "/v2/a%2Fb/c%41"),
            pairs(&[("path", "a%2Fb/cA")])
        );
        assert_eq!(binding(&r, "/v2/a%2Fb"), pairs(&[("path", "a%2Fb")]));
        assert!(value(&r, "GET", "/v1/shelves/1/books").is_none());
        assert!(value(&r, "GET", "/v1/shelves/1/books/2/x").is_none());
    }

    #[test]
    fn literals_compare_decoded() {
        let r = router(&[
            ("GET", "/v1/users/{id}"),
            ("GET", "/v1/a+b"),
            ("GET", "/v1/sp%20ace"),
        ]);
        assert_eq!(binding(&r, "/v1/us%65rs/1"), pairs(&[("id", "1")]));
        assert!(value(&r, "GET", "/v1/a+b").is_some());
        assert!(value(&r, "GET", "/v1/a%2Bb").is_some());
        assert!(value(&r, "GET", "/v1/a%20b").is_none(), "+ is not a space");
        assert!(value(&r, "GET", "/v1/sp%20ace").is_some());
        assert!(value(&r, "GET", "/v1/Users/1").is_none(), "case-sensitive");
    }

    #[test]
    fn bad_paths() {
        let r = router(&[("GET", "/v1/users/{id}")]);
        for path in [
            "/v1/users/%",
            "/v1/users/%G1",
            "/v1/users/%FF",
            "/v1/%C3",
            "v1/users/1",
            "",
            "/x/%zz:y",
        ] {
            assert!(
                matches!(r.lookup(&Method::GET, path), Lookup::BadPath { .. }),
                "{path}"
            );
        }
        // Decoding errors are reported even when no route could match.
        let Lookup::BadPath { reason } = r.lookup(&Method::GET, "/nope/%G1") else {
            panic!()
        };
        assert_eq!(
            reason,
            r#"path segment "%G1": invalid percent-encoding at byte 0"#
        );
    }

    #[test]
    fn custom_verbs() {
        let routes = [
            ("POST", "/v1/products:batchGet"),
            ("GET", "/v1/products"),
            ("GET", "/v1/users/{id}"),
            ("POST", "/v1/users/{user_id}/orders:watch"),
            ("POST", "/v1/{name=**}:publish"),
        ];
        both_orders(&routes, |r| {
            assert_eq!(
                value(r, "POST", "/v1/products:batchGet").unwrap(),
                "POST /v1/products:batchGet"
            );
            assert!(value(r, "POST", "/v1/products").is_none());
            // A verb route does not match without its verb, a verb-less one not with a verb.
            assert!(value(r, "GET", "/v1/products:batchGet").is_none());
            assert_eq!(
                r.lookup(&Method::GET, "/v1/products:other"),
                Lookup::NotFound
            );
            let (found, bindings) = matched(r, "POST", "/v1/users/u1/orders:watch").unwrap();
            assert_eq!(found, "POST /v1/users/{user_id}/orders:watch");
            assert_eq!(bindings, pairs(&[("user_id", "u1")]));
            // Verb-less fallback: the ':' belongs to the variable.
            assert_eq!(binding(r, "/v1/users/a:b"), pairs(&[("id", "a:b")]));
            assert_eq!(binding(r, "/v1/users/a:b:c"), pairs(&[("id", "a:b:c")]));
            // An escaped ':' never splits a verb.
            assert_eq!(
                binding(r, "/v1/users/x%3AbatchGet"),
                pairs(&[("id", "x:batchGet")])
            );
            assert!(value(r, "POST", "/v1/products%3AbatchGet").is_none());
            // Verb split at the last ':' of the last segment only.
            assert!(value(r, "POST", "/v1/products:batchGet/x").is_none());
            let (_, bindings) = matched(r, "POST", "/v1/a:b/c:publish").unwrap();
            assert_eq!(bindings, pairs(&[("name", "a:b/c")]));
            let (_, bindings) = matched(r, "POST", "/v1/a/b:c:publish").unwrap();
            assert_eq!(bindings, pairs(&[("name", "a/b:c")]));
            // Encoded verb text is decoded.
            assert!(value(r, "POST", "/v1/products:batch%47et").is_some());
        });
    }

    #[test]
    fn multi_matches_zero_or_more_segments() {
        let r = router(&[
            ("GET", "/v1/a/**"),
            ("GET", "/v2/{path=**}"),
            ("POST", "/v3/{x=**}:run"),
        ]);
        assert!(value(&r, "GET", "/v1/a").is_some());
        assert!(value(&r, "GET", "/v1/a/b").is_some());
        assert!(value(&r, "GET", "/v1/a/b/c/d").is_some());
        assert_eq!(binding(&r, "/v2"), pairs(&[("path", "")]));
        assert_eq!(binding(&r, "/v2/x"), pairs(&[("path", "x")]));
        assert_eq!(binding(&r, "/v2/x/y/z"), pairs(&[("path", "x/y/z")]));
        assert_eq!(
            matched(&r, "POST", "/v3:run").unwrap().1,
            pairs(&[("x", "")])
        );
        assert_eq!(
            matched(&r, "POST", "/v3/p/q:run").unwrap().1,
            pairs(&[("x", "p/q")])
        );
        // Empty segments stop `**` too.
        assert!(value(&r, "GET", "/v2/x//y").is_none());
        assert!(value(&r, "GET", "/v2/x/").is_none());
        assert!(value(&r, "GET", "/v2/").is_none());
    }

    #[test]
    fn trailing_and_empty_segments() {
        let r = router(&[
            ("GET", "/v1/users"),
            ("GET", "/v1/users/{id}/x"),
            ("GET", "/"),
        ]);
        assert!(value(&r, "GET", "/v1/users").is_some());
        assert_eq!(r.lookup(&Method::GET, "/v1/users/"), Lookup::NotFound);
        assert_eq!(r.lookup(&Method::GET, "/v1/users//x"), Lookup::NotFound);
        assert_eq!(r.lookup(&Method::GET, "//v1/users"), Lookup::NotFound);
        assert!(value(&r, "GET", "/").is_some());
        assert!(value(&r, "GET", "/v1/users/1/x").is_some());
    }

    #[test]
    fn nested_field_paths() {
        let r = router(&[("GET", "/v1/users/{user.id}/books/{book.meta.isbn}")]);
        let Lookup::Matched { bindings, .. } = r.lookup(&Method::GET, "/v1/users/7/books/978")
        else {
            panic!()
        };
        assert_eq!(bindings[0].field_path, ["user", "id"]);
        assert_eq!(bindings[0].value, "7");
        assert_eq!(bindings[1].field_path, ["book", "meta", "isbn"]);
        assert_eq!(bindings[1].value, "978");
    }

    #[test]
    fn never_panics_on_adversarial_paths() {
        let r = router(&[
            ("GET", "/"),
            ("GET", "/v1/users/{id}"),
            ("GET", "/v1/users/me"),
            ("POST", "/v1/{name=**}:publish"),
            ("GET", "/v1/{a=x/*}/{b=**}"),
            ("PUT", "/v1/*/users/{u.v}:go"),
            ("GET", "/{x}"),
        ]);
        let fixed = [
            "%",
            "%G1",
            "%FF",
            "///",
            ":",
            "::",
            "/:",
            "/::",
            "/%",
            "/é/€/😀",
            "/v1/users/%C3%A9",
            "/v1/users/:",
            "/v1/:publish",
            "/v1/users/%3A:",
        ];
        let long = format!("/{}", "a/".repeat(10_000));
        let long_verb = format!("/v1/{}:publish", "seg/".repeat(5_000));
        let pieces = [
            "/", "%", "%G1", "%FF", "%2F", "%2f", "%3A", ":", "::", "a", "v1", "users", "me", "x",
            "é", "😀", "{", "*", "+", "%C3", "%A9", "publish", "go",
        ];
        let methods = [Method::GET, Method::POST, Method::PUT, Method::DELETE];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut paths: Vec<String> = fixed.iter().map(|s| (*s).to_owned()).collect();
        paths.push(long);
        paths.push(long_verb);
        for _ in 0..5_000 {
            let mut path = String::from("/");
            for _ in 0..next() % 12 {
                path.push_str(pieces[(next() % pieces.len() as u64) as usize]);
            }
            paths.push(path);
        }
        for path in &paths {
            for method in &methods {
                match r.lookup(method, path) {
                    Lookup::Matched {
                        template, bindings, ..
                    } => {
                        assert_eq!(bindings.len(), template.variables().len());
                    }
                    Lookup::MethodNotAllowed { allowed } => {
                        assert!(!allowed.is_empty() && !allowed.contains(method));
                    }
                    Lookup::NotFound | Lookup::BadPath { .. } => {}
                }
            }
        }
    }
}
