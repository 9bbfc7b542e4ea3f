//! Unit tests of `rest::router`.

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
fn verbs_holding_a_colon_as_grpc_gateway_reads_them() {
    // grpc-gateway's a_bit_of_everything.proto has both.
    let routes = [
        ("GET", "/v1/example/a_bit_of_everything/{uuid}:custom"),
        (
            "GET",
            "/v1/example/a_bit_of_everything/{uuid}:custom:custom",
        ),
        ("GET", "/v1/example/a_bit_of_everything/{uuid}"),
    ];
    both_orders(&routes, |r| {
        let (found, bindings) = matched(
            r,
            "GET",
            "/v1/example/a_bit_of_everything/abc:custom:custom",
        )
        .unwrap();
        assert_eq!(
            found,
            "GET /v1/example/a_bit_of_everything/{uuid}:custom:custom"
        );
        assert_eq!(bindings, pairs(&[("uuid", "abc")]));
        let (found, bindings) =
            matched(r, "GET", "/v1/example/a_bit_of_everything/abc:custom").unwrap();
        assert_eq!(found, "GET /v1/example/a_bit_of_everything/{uuid}:custom");
        assert_eq!(bindings, pairs(&[("uuid", "abc")]));
        // A value may hold the verb's text as long as a verb follows.
        let (found, bindings) = matched(
            r,
            "GET",
            "/v1/example/a_bit_of_everything/a:custom:custom:custom",
        )
        .unwrap();
        assert_eq!(
            found,
            "GET /v1/example/a_bit_of_everything/{uuid}:custom:custom"
        );
        assert_eq!(bindings, pairs(&[("uuid", "a:custom")]));
        // Nothing before the verb: not a match for it.
        let (found, bindings) =
            matched(r, "GET", "/v1/example/a_bit_of_everything/:custom:custom").unwrap();
        assert_eq!(found, "GET /v1/example/a_bit_of_everything/{uuid}:custom");
        assert_eq!(bindings, pairs(&[("uuid", ":custom")]));
    });
    let template: PathTemplate = "/v1/x/{uuid}:custom:custom".parse().unwrap();
    assert_eq!(template.verb(), Some("custom:custom"));
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
    let Lookup::Matched { bindings, .. } = r.lookup(&Method::GET, "/v1/users/7/books/978") else {
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
        "/", "%", "%G1", "%FF", "%2F", "%2f", "%3A", ":", "::", "a", "v1", "users", "me", "x", "é",
        "😀", "{", "*", "+", "%C3", "%A9", "publish", "go",
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
