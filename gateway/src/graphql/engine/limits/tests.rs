//! Tests of the query limits: one table per rule, fragments, cycles, bombs and the lexer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use serde_json::json;

use super::*;

/// A small schema: Query { user, users, search, node, me } over User, Post, Comment.
struct Demo;

fn info(
    type_name: &'static str,
    is_list: bool,
    call_cost: u32,
    size_args: &[&str],
) -> FieldInfo<'static> {
    FieldInfo {
        type_name,
        is_list,
        call_cost,
        size_args: size_args.iter().map(|s| (*s).to_owned()).collect(),
    }
}

impl SchemaInfo for Demo {
    fn field(&self, type_name: &str, field: &str) -> Option<FieldInfo<'_>> {
        Some(match (type_name, field) {
            ("Query", "user") => info("User", false, 2, &[]),
            ("Query", "users") => info("User", true, 2, &["pageSize", "ids"]),
            ("Query", "me") => info("User", false, 0, &[]),
            ("Query", "node") => info("Node", false, 2, &[]),
            ("Mutation", "createUser") => info("User", false, 5, &[]),
            ("User" | "Node", "id") => info("ID", false, 0, &[]),
            ("User", "name") => info("String", false, 0, &[]),
            ("User", "best") => info("User", false, 0, &[]),
            ("User", "friends") => info("User", true, 0, &["first"]),
            ("User", "posts") => info("Post", true, 1, &["page.size"]),
            ("Post", "title") => info("String", false, 0, &[]),
            ("Post", "author") => info("User", false, 0, &[]),
            ("Post", "comments") => info("Comment", true, 0, &["limit"]),
            ("Comment", "text") => info("String", false, 0, &[]),
            _ => return None,
        })
    }

    fn root_type(&self, op: OperationKind) -> Option<&str> {
        match op {
            OperationKind::Query => Some("Query"),
            OperationKind::Mutation => Some("Mutation"),
            OperationKind::Subscription => None,
        }
    }
}

fn off() -> QueryLimits {
    QueryLimits {
        max_depth: 0,
        max_aliases: 0,
        max_root_fields: 0,
        max_tokens: 0,
        max_cost: 0,
        default_list_size: 10,
        size_args: Vec::new(),
        max_variable_values: 0,
    }
}

fn stats(query: &str) -> QueryStats {
    stats_with(query, &json!(null))
}

fn stats_with(query: &str, variables: &serde_json::Value) -> QueryStats {
    check(query, None, variables, &off(), &Demo).unwrap()
}

fn violation(query: &str, limits: &QueryLimits) -> Violation {
    check(query, None, &json!(null), limits, &Demo).unwrap_err()
}

#[test]
fn defaults_and_yaml() {
    let limits: QueryLimits = yaml_serde::from_str("max_depth: 5\n").unwrap();
    assert_eq!(limits.max_depth, 5);
    assert_eq!(limits.max_cost, 5000);
    assert_eq!(limits.default_list_size, 10);
    assert_eq!(QueryLimits::default().max_tokens, 5000);
    assert!(yaml_serde::from_str::<QueryLimits>("max_dept: 5\n").is_err());
    assert_eq!(limits.size_args, DEFAULT_SIZE_ARGS);
    let limits: QueryLimits = yaml_serde::from_str("size_args: [ids, page.size]\n").unwrap();
    assert_eq!(limits.size_args, ["ids", "page.size"]);
    assert_eq!(limits.validate(), Ok(()));
    for bad in ["", "page..size", "1st", "page-size"] {
        let limits = QueryLimits {
            size_args: vec!["first".into(), bad.into()],
            ..QueryLimits::default()
        };
        let (key, _) = limits.validate().unwrap_err();
        assert_eq!(key, "size_args[1]", "{bad:?}");
    }
}

#[test]
fn depth_table() {
    let cases = [
        ("{ me { id } }", 2),
        ("{ __typename }", 0),
        ("{ me { __typename } }", 1),
        ("{ me { id } user { best { best { id } } } }", 4),
        ("{ me { ... on User { best { id } } } }", 3),
        (
            "{ me { ...F } } fragment F on User { best { best { id } } }",
            4,
        ),
        (
            "{ __schema { types { fields { type { ofType { name } } } } } }",
            0,
        ),
        (
            "{ me { id } __type(name: \"User\") { fields { name } } }",
            2,
        ),
        ("{ me { ...I } } fragment I on User { id } ", 2),
    ];
    for (query, depth) in cases {
        assert_eq!(stats(query).depth, depth, "{query}");
    }
}

#[test]
fn depth_limit() {
    let limits = QueryLimits {
        max_depth: 3,
        ..off()
    };
    assert!(check("{ me { best { id } } }", None, &json!(null), &limits, &Demo).is_ok());
    let v = violation("{ me { best { best { id } } } }", &limits);
    assert_eq!(v.kind, codes::QUERY_TOO_DEEP);
    assert_eq!(v.message, "query depth 4 exceeds the limit of 3");
}

#[test]
fn deep_nesting_is_rejected_not_overflowing() {
    // 60 levels of nesting (the parser's own limit is 64).
    let query = format!("{{ me {} id {} }}", "{ best ".repeat(60), "}".repeat(60));
    let v = violation(&query, &QueryLimits::default());
    assert_eq!(v.kind, codes::QUERY_TOO_DEEP);
    assert!(v.message.contains("query depth 61"), "{}", v.message);
    // A long chain of fragments, each one level deeper, stops at the analysis cap.
    let mut doc = String::from("{ me { ...F0 } }\n");
    for i in 0..400 {
        doc.push_str(&format!(
            "fragment F{i} on User {{ best {{ ...F{} }} }}\n",
            i + 1
        ));
    }
    doc.push_str("fragment F400 on User { id }\n");
    let v = violation(&doc, &off());
    assert_eq!(v.kind, codes::QUERY_TOO_DEEP);
    assert!(v.message.contains("256"), "{}", v.message);
}

#[test]
fn alias_table() {
    let cases = [
        ("{ me { id } }", 0),
        ("{ a: me { b: id c: name } }", 3),
        ("{ t: __typename }", 1),
        ("{ me { ...F ...F } } fragment F on User { x: id }", 2),
        ("{ me { ... on User { x: id y: name } } }", 2),
    ];
    for (query, aliases) in cases {
        assert_eq!(stats(query).aliases, aliases, "{query}");
    }
}

#[test]
fn alias_bomb_is_rejected() {
    let fields: String = (0..2000).map(|i| format!("a{i}: __typename ")).collect();
    let query = format!("{{ {fields} }}");
    let limits = QueryLimits {
        max_tokens: 0,
        ..QueryLimits::default()
    };
    let v = check(&query, None, &json!(null), &limits, &Demo).unwrap_err();
    assert_eq!(v.kind, codes::TOO_MANY_ALIASES);
    assert_eq!(
        v.message,
        "query has 2000 aliases, more than the limit of 30"
    );
    // With the default token limit the lexer already refuses it (3 tokens per alias).
    let v = violation(&query, &QueryLimits::default());
    assert_eq!(v.kind, codes::TOO_MANY_TOKENS);
}

#[test]
fn root_field_table() {
    let cases = [
        ("{ me { id } }", 1),
        ("{ me { id } user { id } __typename }", 3),
        ("{ ...R } fragment R on Query { me { id } user { id } }", 2),
        ("{ ... on Query { me { id } } me { name } }", 2),
    ];
    for (query, roots) in cases {
        assert_eq!(stats(query).root_fields, roots, "{query}");
    }
    let limits = QueryLimits {
        max_root_fields: 2,
        ..off()
    };
    let v = violation("{ a: me { id } b: me { id } c: me { id } }", &limits);
    assert_eq!(v.kind, codes::TOO_MANY_ROOT_FIELDS);
    assert_eq!(
        v.message,
        "query selects 3 root fields, more than the limit of 2"
    );
}

#[test]
fn cost_table() {
    let cases = [
        // me (1) + id (1)
        ("{ me { id } }", 2),
        // user costs 1 + 2
        ("{ user(id: 1) { id name } }", 5),
        // users: 3, each of its 10 (default) users: id 1 + friends 1 + 5 friends x name 1
        (
            "{ users { id friends(first: 5) { name } } }",
            3 + 10 * (1 + 1 + 5),
        ),
        // ids literal: 3 users
        ("{ users(ids: [1, 2, 3]) { id } }", 3 + 3),
        ("{ users(ids: []) { id } }", 3),
        // pageSize 0 means the server's default
        ("{ users(pageSize: 0) { id } }", 3 + 10),
        ("{ users(pageSize: -4) { id } }", 3 + 10),
        // size arg inside an input object: posts costs 2, with 4 posts of title 1
        ("{ me { posts(page: {size: 4}) { title } } }", 1 + 2 + 4),
        ("{ me { posts(page: {}) { title } } }", 1 + 2 + 10),
        // unknown fields: 1 each, no multiplier
        ("{ nope { a b c } }", 4),
        ("{ __typename me { __typename } }", 1),
        // nested lists multiply
        (
            "{ users(pageSize: 2) { friends(first: 3) { friends(first: 4) { id } } } }",
            3 + 2 * (1 + 3 * (1 + 4)),
        ),
        // fragments cost as if written in place
        (
            "{ users(pageSize: 2) { ...F } } fragment F on User { id name }",
            3 + 2 * 2,
        ),
        ("mutation { createUser { id } }", 7),
        // no subscription root in the schema: fields unknown
        ("subscription { tick { n } }", 2),
    ];
    for (query, cost) in cases {
        assert_eq!(stats(query).cost, cost, "{query}");
    }
}

#[test]
fn variable_driven_list_sizes() {
    let query = "query Q($n: Int, $ids: [ID!], $p: Int = 7, $page: PageIn) {
        a: users(pageSize: $n) { id }
        b: users(ids: $ids) { id }
        c: users(pageSize: $p) { id }
        me { posts(page: $page) { title } }
    }";
    let s = stats_with(
        query,
        &json!({"n": 20, "ids": ["x", "y", "z", "w"], "page": {"size": 5}}),
    );
    assert_eq!(s.cost, (3 + 20) + (3 + 4) + (3 + 7) + (1 + 2 + 5));
    // Missing variables: defaults, then default_list_size.
    let s = stats_with(query, &json!({}));
    assert_eq!(s.cost, (3 + 10) + (3 + 10) + (3 + 7) + (1 + 2 + 10));
    // Explicit null falls back to the declared default; strings hold int64 sizes.
    let s = stats_with(query, &json!({"p": null, "n": "100"}));
    assert_eq!(s.cost, (3 + 100) + (3 + 10) + (3 + 7) + (1 + 2 + 10));
    // A size variable inside an object literal.
    let s = stats_with(
        "query($s: Int) { me { posts(page: {size: $s}) { title } } }",
        &json!({"s": 3}),
    );
    assert_eq!(s.cost, 1 + 2 + 3);
    // The figures say whether they depend on the variables (the gateway keeps them per
    // document only when they do not).
    assert!(s.variables_read);
    let s = stats_with(
        "query($s: Int) { me { posts(page: {size: 3}) { title } } }",
        &json!({"s": 9}),
    );
    assert!(!s.variables_read, "declared but not read for a size");
    assert!(!stats_with("{ users(pageSize: 4) { id } }", &json!({})).variables_read);
}

#[test]
fn cost_limit() {
    let limits = QueryLimits {
        max_cost: 100,
        ..off()
    };
    let v = check(
        "query($n: Int) { users(pageSize: $n) { id } }",
        None,
        &json!({"n": 1000}),
        &limits,
        &Demo,
    )
    .unwrap_err();
    assert_eq!(v.kind, codes::QUERY_TOO_COSTLY);
    assert_eq!(v.message, "query cost 1003 exceeds the limit of 100");
}

#[test]
fn cost_saturates() {
    let query = format!(
        "{{ users(pageSize: 4000000000) {} id {} }}",
        "{ friends(first: 4000000000) ".repeat(5),
        "}".repeat(5)
    );
    assert_eq!(stats(&query).cost, u32::MAX);
}

#[test]
fn fragments_inline_and_named() {
    let query = "
        query { me { ...A ... on User { name } ... { id } } }
        fragment A on User { best { ...B } }
        fragment B on User { id name }
        fragment Unused on User { x: id }
    ";
    let s = stats(query);
    assert_eq!(s.depth, 3);
    assert_eq!(s.aliases, 0);
    // me 1, best 1, B 2, name 1, id 1
    assert_eq!(s.cost, 6);
}

#[test]
fn fragment_cycles_are_violations() {
    for query in [
        "{ me { ...A } } fragment A on User { best { ...A } }",
        "{ me { ...A } } fragment A on User { ...B } fragment B on User { id ...A }",
    ] {
        let v = violation(query, &QueryLimits::default());
        assert_eq!(v.kind, codes::FRAGMENT_CYCLE, "{query}");
        assert!(v.message.contains("A -> "), "{}", v.message);
    }
    // A fragment spread twice is not a cycle; an unknown fragment is left to validation.
    assert!(
        check(
            "{ me { ...A ...A ...Nope } } fragment A on User { id }",
            None,
            &json!(null),
            &QueryLimits::default(),
            &Demo
        )
        .is_ok()
    );
}

/// Fragments that double at each of `levels` levels, with `leaf` at the bottom.
fn fragment_bomb(levels: usize, leaf: &str) -> String {
    let mut doc = String::from("{ me { ...F0 } }\n");
    for i in 0..levels {
        doc.push_str(&format!(
            "fragment F{i} on User {{ ...F{n} ...F{n} }}\n",
            n = i + 1
        ));
    }
    doc.push_str(&format!("fragment F{levels} on User {{ {leaf} }}\n"));
    doc
}

#[test]
fn exponential_fragment_bombs_are_fast() {
    let start = Instant::now();
    let v = violation(&fragment_bomb(30, "id"), &QueryLimits::default());
    assert_eq!(v.kind, codes::QUERY_TOO_COSTLY);
    assert_eq!(
        v.message,
        format!("query cost {} exceeds the limit of 5000", 1 + (1u64 << 30))
    );
    let v = violation(&fragment_bomb(30, "x: id"), &QueryLimits::default());
    assert_eq!(v.kind, codes::TOO_MANY_ALIASES);
    assert!(
        v.message.contains(&(1u64 << 30).to_string()),
        "{}",
        v.message
    );
    // 64 levels: everything saturates.
    let s = check(
        &fragment_bomb(64, "x: id"),
        None,
        &json!(null),
        &off(),
        &Demo,
    )
    .unwrap();
    assert_eq!((s.aliases, s.cost), (u32::MAX, u32::MAX));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn operation_selection() {
    let doc = "query A { me { id } } query B { users { id } }";
    let a = check(doc, Some("A"), &json!(null), &off(), &Demo).unwrap();
    assert_eq!(a.cost, 2);
    let b = check(doc, Some("B"), &json!(null), &off(), &Demo).unwrap();
    assert_eq!(b.cost, 13);
    for (doc, name) in [(doc, None), (doc, Some("C")), ("{ me { id } }", Some("A"))] {
        let v = check(doc, name, &json!(null), &off(), &Demo).unwrap_err();
        assert_eq!(
            v.kind,
            codes::OPERATION_RESOLUTION_FAILURE,
            "{doc} {name:?}"
        );
    }
    let single = check(
        "query Only { me { id } }",
        None,
        &json!(null),
        &off(),
        &Demo,
    );
    assert_eq!(single.unwrap().cost, 2);
}

#[test]
fn parse_errors_are_reported_as_such() {
    let v = violation("{ me { id }", &QueryLimits::default());
    assert_eq!(v.kind, codes::GRAPHQL_PARSE_FAILED);
    assert!(
        v.message.starts_with("query does not parse at 1:"),
        "{}",
        v.message
    );
}

#[test]
fn token_limit_comes_before_parsing() {
    let limits = QueryLimits {
        max_tokens: 10,
        ..off()
    };
    // Not even valid GraphQL: the lexer rejects it before the parser sees it.
    let garbage = "{ a b c d e f g h i j k l m n o p ".repeat(100_000);
    let start = Instant::now();
    let v = violation(&garbage, &limits);
    assert!(start.elapsed() < Duration::from_millis(100));
    assert_eq!(v.kind, codes::TOO_MANY_TOKENS);
    assert_eq!(
        v.message,
        "query has at least 11 tokens, more than the limit of 10"
    );
    // Exactly at the limit passes: { me { id } } is 6 tokens.
    let limits = QueryLimits {
        max_tokens: 6,
        ..off()
    };
    let s = check("{ me { id } }", None, &json!(null), &limits, &Demo).unwrap();
    assert_eq!(s.tokens, 6);
}

#[test]
fn token_counting() {
    let cases: &[(&str, u32)] = &[
        ("", 0),
        ("   \t\n\r\n,,, ", 0),
        ("# only a comment", 0),
        ("{ me # comment { } \n { id } }", 6),
        ("\u{feff}{ a }", 3),
        ("{a,b,c}", 5),
        ("...", 1),
        ("... on User", 3),
        ("..", 2),
        ("! $ & ( ) : = @ [ ] { | }", 13),
        ("1.5e3", 1),
        ("-12 0 3.25 4E+10 5e-2", 5),
        ("1.", 2),
        ("-", 1),
        ("name_1 _x Y2", 3),
        (r#""a \" b""#, 1),
        (r#""a \\" b"#, 2),
        (r#""\u00e9 \n""#, 1),
        (r#""""block "" with " quotes""""#, 1),
        ("\"\"\"multi\nline \\\"\"\" escaped\n\"\"\"", 1),
        ("\"\"", 1),
        ("\"\" \"\"", 2),
        ("\"unterminated\n{ a }", 4),
        ("\"\"\"unterminated block { a }", 1),
        ("\"héllo wörld 日本\"", 1),
        ("é 日", 2),
        ("f(a: \"x\", b: [1, 2])", 12),
        ("query Q($id: ID = \"x\") { user(id: $id) { ...F } }", 23),
    ];
    for (query, expected) in cases {
        assert_eq!(count_tokens(query, u32::MAX), *expected, "{query:?}");
    }
    assert_eq!(count_tokens("a b c d e", 2), 3);
    assert_eq!(count_tokens("a b c d e", 0), 1);
    assert_eq!(count_tokens("", 0), 0);
}

#[test]
fn introspection_query_passes_default_limits() {
    let query = r"
        query IntrospectionQuery {
          __schema {
            queryType { name } mutationType { name } subscriptionType { name }
            types { ...FullType }
            directives { name description locations args { ...InputValue } }
          }
        }
        fragment FullType on __Type {
          kind name description
          fields(includeDeprecated: true) {
            name description args { ...InputValue } type { ...TypeRef }
            isDeprecated deprecationReason
          }
          inputFields { ...InputValue }
          interfaces { ...TypeRef }
          enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
          possibleTypes { ...TypeRef }
        }
        fragment InputValue on __InputValue {
          name description type { ...TypeRef } defaultValue
        }
        fragment TypeRef on __Type {
          kind name
          ofType { kind name ofType { kind name ofType { kind name ofType { kind name
            ofType { kind name ofType { kind name ofType { kind name ofType { kind name
          } } } } } } } }
        }
    ";
    let s = check(query, None, &json!(null), &QueryLimits::default(), &Demo).unwrap();
    assert_eq!(s.depth, 0);
    assert!(s.cost < 5000, "{s:?}");
}

#[test]
fn introspection_is_noticed_wherever_it_hides() {
    assert!(stats("{ __schema { types { name } } }").introspection);
    assert!(stats("{ a: __type(name: \"User\") { name } }").introspection);
    assert!(stats("query { ...F } fragment F on Query { ... on Query { __schema { queryType { name } } } }").introspection);
    assert!(!stats("{ __typename }").introspection);
    assert!(!stats("{ user(id: 1) { __typename name } }").introspection);
}
