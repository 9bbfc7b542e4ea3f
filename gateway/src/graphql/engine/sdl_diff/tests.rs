//! Tests of the SDL diff: one case per rule, ordering, parse errors, and a real generated SDL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

const BASE: &str = r#"
schema { query: Query mutation: Mutation }
interface Node { id: ID! }
type Query {
  user(id: ID!, verbose: Boolean = false): User
  users(first: Int, filter: UserFilter): [User!]!
  search(text: String!): [SearchResult!]!
}
type Mutation { createUser(input: UserInput!): User! }
type User implements Node {
  id: ID!
  name: String!
  email: String
  role: Role!
  tags: [String!]
  legacy: String @deprecated(reason: "use name")
}
type Photo { url: String! }
union SearchResult = User | Photo
enum Role { ADMIN USER }
enum Sort { ASC DESC }
input UserFilter { role: Role, sort: Sort = ASC }
input UserInput { name: String!, email: String }
scalar Date
"#;

/// The changes between `BASE` and `BASE` with `from` replaced by `to`.
fn changes(from: &str, to: &str) -> Vec<Change> {
    assert!(BASE.contains(from), "{from}");
    diff(BASE, &BASE.replacen(from, to, 1)).unwrap()
}

/// The single change between `BASE` and `BASE` with `from` replaced by `to`.
fn one(from: &str, to: &str) -> Change {
    let list = changes(from, to);
    assert_eq!(list.len(), 1, "{list:#?}");
    list.into_iter().next().unwrap()
}

fn check(change: &Change, kind: ChangeKind, breaking: bool, path: &str) {
    assert_eq!(
        (change.kind, change.breaking, change.path.as_str()),
        (kind, breaking, path),
        "{change:?}"
    );
}

#[test]
fn identical_sdls_have_no_changes() {
    assert!(diff(BASE, BASE).unwrap().is_empty());
    // Order, whitespace and comments do not matter.
    let shuffled = "# comment\nscalar Date\n".to_owned() + &BASE.replace("scalar Date", "");
    assert!(diff(BASE, &shuffled).unwrap().is_empty());
}

#[test]
fn types_added_removed_and_kind_changes() {
    let c = one("scalar Date", "");
    check(&c, ChangeKind::TypeRemoved, true, "Date");
    assert_eq!(c.message, "scalar Date was removed");
    check(
        &one("scalar Date", "scalar Date scalar Time"),
        ChangeKind::TypeAdded,
        false,
        "Time",
    );
    let c = one(
        "type Photo { url: String! }",
        "interface Photo { url: String! }",
    );
    check(&c, ChangeKind::TypeKindChanged, true, "Photo");
    assert_eq!(c.message, "Photo changed from object type to interface");
}

#[test]
fn fields_added_and_removed() {
    let c = one("  email: String\n", "");
    check(&c, ChangeKind::FieldRemoved, true, "User.email");
    let c = one("  legacy: String @deprecated(reason: \"use name\")\n", "");
    check(&c, ChangeKind::FieldRemoved, true, "User.legacy");
    assert!(
        c.message.contains("it was deprecated: use name"),
        "{}",
        c.message
    );
    check(
        &one("  email: String\n", "  email: String\n  age: Int\n"),
        ChangeKind::FieldAdded,
        false,
        "User.age",
    );
    check(
        &one(
            "interface Node { id: ID! }",
            "interface Node { id: ID! v: Int }",
        ),
        ChangeKind::FieldAdded,
        false,
        "Node.v",
    );
}

#[test]
fn field_type_changes_follow_output_rules() {
    let table = [
        ("  name: String!\n", "  name: String\n", true),
        ("  email: String\n", "  email: String!\n", false),
        ("  email: String\n", "  email: Int\n", true),
        ("  email: String\n", "  email: [String]\n", true),
        ("  tags: [String!]\n", "  tags: String\n", true),
        ("  tags: [String!]\n", "  tags: [String]\n", true),
        ("  tags: [String!]\n", "  tags: [String!]!\n", false),
        ("  tags: [String!]\n", "  tags: [[String!]]\n", true),
    ];
    for (from, to, breaking) in table {
        let c = one(from, to);
        assert_eq!(c.kind, ChangeKind::FieldTypeChanged, "{from} -> {to}");
        assert_eq!(c.breaking, breaking, "{from} -> {to}: {}", c.message);
    }
    let c = one("  name: String!\n", "  name: String\n");
    assert_eq!(
        c.message,
        "field User.name changed type from String! to String: clients may now receive null"
    );
}

#[test]
fn arguments() {
    let c = one("user(id: ID!, verbose: Boolean = false)", "user(id: ID!)");
    check(
        &c,
        ChangeKind::ArgumentRemoved,
        true,
        "Query.user(verbose:)",
    );
    let c = one("users(first: Int, ", "users(first: Int, after: String, ");
    check(&c, ChangeKind::ArgumentAdded, false, "Query.users(after:)");
    let c = one("users(first: Int, ", "users(first: Int, after: String!, ");
    check(&c, ChangeKind::ArgumentAdded, true, "Query.users(after:)");
    let c = one(
        "users(first: Int, ",
        "users(first: Int, after: String! = \"\", ",
    );
    check(&c, ChangeKind::ArgumentAdded, false, "Query.users(after:)");
    // Input rules: stricter breaks, looser is safe, another type breaks.
    let table = [
        ("users(first: Int,", "users(first: Int!,", true),
        ("user(id: ID!,", "user(id: ID,", false),
        ("user(id: ID!,", "user(id: String!,", true),
        ("user(id: ID!,", "user(id: [ID!]!,", true),
    ];
    for (from, to, breaking) in table {
        let c = one(from, to);
        assert_eq!(c.kind, ChangeKind::ArgumentTypeChanged, "{from} -> {to}");
        assert_eq!(c.breaking, breaking, "{from} -> {to}: {}", c.message);
    }
    let c = one("verbose: Boolean = false", "verbose: Boolean = true");
    check(
        &c,
        ChangeKind::ArgumentDefaultChanged,
        false,
        "Query.user(verbose:)",
    );
    assert!(c.message.contains("from false to true"), "{}", c.message);
    assert!(c.message.contains("dangerous"), "{}", c.message);
}

#[test]
fn enums() {
    let c = one("enum Role { ADMIN USER }", "enum Role { ADMIN }");
    check(&c, ChangeKind::EnumValueRemoved, true, "Role.USER");
    // Role is returned by User.role: a new value is dangerous.
    let c = one("enum Role { ADMIN USER }", "enum Role { ADMIN USER GUEST }");
    check(&c, ChangeKind::EnumValueAdded, false, "Role.GUEST");
    assert!(c.message.contains("dangerous"), "{}", c.message);
    // Sort is input only: a new value is plainly safe.
    let c = one("enum Sort { ASC DESC }", "enum Sort { ASC DESC RANDOM }");
    check(&c, ChangeKind::EnumValueAdded, false, "Sort.RANDOM");
    assert!(!c.message.contains("dangerous"), "{}", c.message);
    let c = one(
        "enum Sort { ASC DESC }",
        "enum Sort { ASC DESC @deprecated }",
    );
    check(&c, ChangeKind::Deprecated, false, "Sort.DESC");
    assert_eq!(
        c.message,
        "enum value Sort.DESC was deprecated: No longer supported"
    );
}

#[test]
fn input_objects() {
    let c = one(
        "input UserInput { name: String!, email: String }",
        "input UserInput { name: String! }",
    );
    check(&c, ChangeKind::InputFieldRemoved, true, "UserInput.email");
    let c = one("email: String }", "email: String, age: Int }");
    check(&c, ChangeKind::InputFieldAdded, false, "UserInput.age");
    let c = one("email: String }", "email: String, age: Int! }");
    check(&c, ChangeKind::InputFieldAdded, true, "UserInput.age");
    assert!(
        c.message.starts_with("required input field"),
        "{}",
        c.message
    );
    let c = one("email: String }", "email: String, age: Int! = 0 }");
    check(&c, ChangeKind::InputFieldAdded, false, "UserInput.age");
    let c = one("email: String }", "email: String! }");
    check(
        &c,
        ChangeKind::InputFieldTypeChanged,
        true,
        "UserInput.email",
    );
    let c = one("name: String!,", "name: String,");
    check(
        &c,
        ChangeKind::InputFieldTypeChanged,
        false,
        "UserInput.name",
    );
    let c = one("sort: Sort = ASC", "sort: Sort = DESC");
    check(
        &c,
        ChangeKind::InputFieldDefaultChanged,
        false,
        "UserFilter.sort",
    );
}

#[test]
fn unions_and_interfaces() {
    let c = one(
        "union SearchResult = User | Photo",
        "union SearchResult = User",
    );
    check(
        &c,
        ChangeKind::UnionMemberRemoved,
        true,
        "SearchResult.Photo",
    );
    let c = one(
        "union SearchResult = User | Photo",
        "union SearchResult = User | Photo | Node",
    );
    check(&c, ChangeKind::UnionMemberAdded, false, "SearchResult.Node");
    assert!(c.message.contains("dangerous"), "{}", c.message);
    let c = one("type User implements Node {", "type User {");
    check(&c, ChangeKind::InterfaceRemoved, true, "User");
    let all = changes("type Photo {", "type Photo implements Node { id: ID!");
    assert_eq!(all.len(), 2, "{all:#?}");
    check(&all[0], ChangeKind::InterfaceAdded, false, "Photo");
    check(&all[1], ChangeKind::FieldAdded, false, "Photo.id");
}

#[test]
fn deprecations_are_reported_not_breaking() {
    let c = one(
        "  email: String\n",
        "  email: String @deprecated(reason: \"gone soon\")\n",
    );
    check(&c, ChangeKind::Deprecated, false, "User.email");
    assert_eq!(c.message, "field User.email was deprecated: gone soon");
    let c = one(
        "legacy: String @deprecated(reason: \"use name\")",
        "legacy: String",
    );
    check(&c, ChangeKind::DeprecationRemoved, false, "User.legacy");
    let c = one(
        "user(id: ID!, verbose: Boolean = false)",
        "user(id: ID!, verbose: Boolean = false @deprecated)",
    );
    check(&c, ChangeKind::Deprecated, false, "Query.user(verbose:)");
    // Other directives are ignored.
    assert!(changes("  email: String\n", "  email: String @external\n").is_empty());
}

#[test]
fn root_types() {
    let c = one(
        "schema { query: Query mutation: Mutation }",
        "schema { query: Query }",
    );
    check(&c, ChangeKind::RootTypeChanged, true, "schema.mutation");
    // Without a schema definition the conventional names are the roots.
    let implicit = BASE.replace("schema { query: Query mutation: Mutation }", "");
    assert!(diff(BASE, &implicit).unwrap().is_empty());
}

#[test]
fn extensions_merge_into_their_type() {
    let extended = BASE.replace("  email: String\n", "") + "extend type User { email: String }";
    assert!(diff(BASE, &extended).unwrap().is_empty());
}

#[test]
fn output_is_sorted_by_path() {
    let new = BASE
        .replace("scalar Date", "")
        .replace("  email: String\n", "")
        .replace("enum Role { ADMIN USER }", "enum Role { ADMIN }")
        .replace("user(id: ID!, verbose: Boolean = false)", "user(id: ID!)")
        + "type Zebra { a: Int }";
    let list = diff(BASE, &new).unwrap();
    let paths: Vec<&str> = list.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "Date",
            "Query.user(verbose:)",
            "Role.USER",
            "User.email",
            "Zebra"
        ]
    );
    assert_eq!(list.iter().filter(|c| c.breaking).count(), 4);
    assert_eq!(
        list[4].to_string(),
        "[safe] Zebra: object type Zebra was added"
    );
    assert_eq!(
        list[0].to_string(),
        "[BREAKING] Date: scalar Date was removed"
    );
    // Same input, same output.
    assert_eq!(diff(BASE, &new).unwrap(), list);
}

#[test]
fn parse_errors_name_the_side_and_position() {
    let err = diff("type A { a: Int", BASE).unwrap_err();
    let SdlDiffError::Parse {
        side, line, column, ..
    } = &err;
    assert_eq!((*side, *line), (Side::Old, 1));
    assert!(*column > 1, "{err}");
    let err = diff(BASE, "type A {\n  a: Int\n  b: \n}").unwrap_err();
    let SdlDiffError::Parse { side, line, .. } = &err;
    assert_eq!((*side, *line), (Side::New, 4));
    assert!(
        err.to_string()
            .starts_with("the new SDL does not parse at 4:"),
        "{err}"
    );
}

#[test]
fn generated_sdl_round_trips() {
    use async_graphql::dynamic::{
        Enum, Field, FieldFuture, InputObject, InputValue, Object, Schema as Dyn, TypeRef,
    };
    let build = |extra_value: bool, email_required: bool| {
        let mut role = Enum::new("Role").item("ADMIN").item("USER");
        if extra_value {
            role = role.item("GUEST");
        }
        let user = Object::new("User")
            .field(Field::new(
                "name",
                TypeRef::named_nn(TypeRef::STRING),
                |_| FieldFuture::new(async { Ok(None::<async_graphql::Value>) }),
            ))
            .field(Field::new("role", TypeRef::named("Role"), |_| {
                FieldFuture::new(async { Ok(None::<async_graphql::Value>) })
            }));
        let email = if email_required {
            TypeRef::named_nn(TypeRef::STRING)
        } else {
            TypeRef::named(TypeRef::STRING)
        };
        let input = InputObject::new("UserInput").field(InputValue::new("email", email));
        let query = Object::new("Query").field(
            Field::new("user", TypeRef::named("User"), |_| {
                FieldFuture::new(async { Ok(None::<async_graphql::Value>) })
            })
            .argument(InputValue::new("input", TypeRef::named("UserInput")))
            .description("Finds a user."),
        );
        Dyn::build("Query", None, None)
            .register(role)
            .register(user)
            .register(input)
            .register(query)
            .finish()
            .unwrap()
            .sdl()
    };
    let old = build(false, false);
    assert!(diff(&old, &old).unwrap().is_empty(), "{old}");
    let new = build(true, true);
    let list = diff(&old, &new).unwrap();
    let summary: Vec<(&str, bool)> = list.iter().map(|c| (c.path.as_str(), c.breaking)).collect();
    assert_eq!(
        summary,
        [("Role.GUEST", false), ("UserInput.email", true)],
        "{list:#?}"
    );
}
