//! Compiled query plans against async-graphql's executor: the same operations over the same
//! demo data through a gateway with `graphql.execution: compiled` (the default) and one with
//! `interpreted` give the same answers (data, nulls, errors with their messages, locations and
//! paths), the same backend calls, and each planned operation really ran on its plan: the
//! first time inside async-graphql (which validates it), the second time on its own.

use portico_demo::DemoService;
use portico_e2e::{DEMO_LINKS, DEMO_SIZE_ARGS, TestEnv};
use serde_json::{Value, json};

/// Both gateways, each over its own demo cluster (same data).
async fn pair(extra: &str) -> (TestEnv, TestEnv) {
    let graphql = |mode: &str| {
        format!(
            "graphql:\n  execution: {mode}\n  limits: {{ size_args: {DEMO_SIZE_ARGS} }}\n  links:{DEMO_LINKS}\n{extra}"
        )
    };
    (
        TestEnv::start_with(&graphql("compiled")).await,
        TestEnv::start_with(&graphql("interpreted")).await,
    )
}

/// The answer with its errors in a stable order (async-graphql adds them as fields complete).
fn normalized(mut r: Value) -> Value {
    if let Some(errors) = r.get_mut("errors").and_then(Value::as_array_mut) {
        errors.sort_by_key(|e| e.to_string());
    }
    r
}

/// Runs `query` on both and checks the answers are the same; `planned` says whether the
/// compiled gateway must have run it on a plan. Returns the answer.
async fn same(
    envs: &(TestEnv, TestEnv),
    query: &str,
    name: Option<&str>,
    variables: Value,
    planned: bool,
) -> Value {
    let body = |env: &TestEnv| {
        let mut b = json!({ "query": query, "variables": variables });
        if let Some(n) = name {
            b["operationName"] = json!(n);
        }
        env.client.post(env.url("/graphql")).json(&b)
    };
    let a = normalized(envs.0.send(body(&envs.0)).await.json());
    let b = normalized(envs.1.send(body(&envs.1)).await.json());
    assert_eq!(a, b, "compiled vs interpreted answers differ for {query}");
    // The second time, a planned document validated before runs without async-graphql.
    let again = normalized(envs.0.send(body(&envs.0)).await.json());
    let b = normalized(envs.1.send(body(&envs.1)).await.json());
    assert_eq!(again, b, "the second answer differs for {query}");
    let snapshot = envs.0.gateway.snapshot();
    let plans = &snapshot.graphql.as_ref().expect("graphql on").plans;
    assert_eq!(
        plans.planned(query, name),
        Some(planned),
        "planned? {query}"
    );
    let interp = envs.1.gateway.snapshot();
    assert_eq!(
        interp
            .graphql
            .as_ref()
            .expect("graphql on")
            .plans
            .planned(query, name),
        None,
        "the interpreted gateway compiles nothing"
    );
    a
}

const EVERY_KIND: &str = r#"{
  user(id: "1") {
    __typename id displayName email role createdAt tags nickname loyaltyPoints verified rating
    preferences
    address { street city countryCode __typename }
    attributes { key value __typename }
  }
  searchProducts(query: "") {
    products { id title status shippingTime reviewScore price { units currencyCode } attributes { key value } }
    categoryCounts { key value }
  }
}"#;

/// [`EVERY_KIND`] without map fields: the replies are projected from their wire bytes (a map
/// sends its root field the general way).
const EVERY_KIND_FROM_THE_WIRE: &str = r#"{
  user(id: "1") {
    __typename id displayName email role createdAt tags nickname loyaltyPoints verified rating
    preferences
    address { street city countryCode __typename }
    again: displayName
  }
  searchProducts(query: "") {
    products { id title status shippingTime reviewScore price { units currencyCode } }
  }
  nobody: user(id: "3") { id nickname address { city } }
}"#;

#[tokio::test]
async fn every_field_kind_reads_the_same() {
    let envs = pair("").await;
    let r = same(&envs, EVERY_KIND_FROM_THE_WIRE, None, json!({}), true).await;
    assert!(r.get("errors").is_none(), "{r}");
    assert_eq!(r["data"]["user"]["again"], "Ada Lovelace");
    let r = same(&envs, EVERY_KIND, None, json!({}), true).await;
    assert!(r.get("errors").is_none(), "{r}");
    assert_eq!(r["data"]["user"]["displayName"], "Ada Lovelace");
    assert_eq!(r["data"]["user"]["__typename"], "User");
    // Users without a nickname: a null wrapper.
    let r = same(
        &envs,
        r#"{ user(id: "3") { nickname attributes { key value } } }"#,
        None,
        json!({}),
        true,
    )
    .await;
    assert_eq!(r["data"]["user"]["nickname"], Value::Null, "{r}");
}

const HOME: &str = r#"
query Home($id: Int64!) {
  user(id: $id) {
    displayName
    orders {
      id status placedAt deliveryEstimate metadata { key value }
      total { currencyCode units }
      user { displayName }
      items { quantity product { id title price { units } } }
    }
  }
}
query Other { product(id: "p-2") { title } }"#;

#[tokio::test]
async fn links_batched_and_unbatched_read_the_same_with_the_same_calls() {
    let envs = pair("").await;
    let r = same(&envs, HOME, Some("Home"), json!({"id": "1"}), true).await;
    assert!(r.get("errors").is_none(), "{r}");
    assert_eq!(
        r["data"]["user"]["orders"][0]["user"]["displayName"],
        "Ada Lovelace"
    );
    for s in [
        DemoService::Users,
        DemoService::Orders,
        DemoService::Catalog,
    ] {
        for m in [
            "GetUser",
            "ListOrdersByUser",
            "BatchGetProducts",
            "GetProduct",
        ] {
            assert_eq!(
                envs.0.knobs(s).calls(m),
                envs.1.knobs(s).calls(m),
                "{s:?} {m}"
            );
        }
    }
    // Twice the query: one batch call and one GetUser (deduplicated) per request.
    assert_eq!(
        envs.0.knobs(DemoService::Catalog).calls("BatchGetProducts"),
        2
    );
    assert_eq!(envs.0.knobs(DemoService::Users).calls("GetUser"), 2);
    same(&envs, HOME, Some("Other"), json!({}), true).await;
}

#[tokio::test]
async fn aliases_fragments_typename_and_conditions_read_the_same() {
    let envs = pair("").await;
    let q = r#"
query Q($withEmail: Boolean!, $skipTags: Boolean = false) {
  a: user(id: "2") { ...Basic email @include(if: $withEmail) }
  b: user(id: "2") { id ... on User { name: displayName tags @skip(if: $skipTags) } }
  user(id: "4") { ...Basic ...Basic address { city } }
  product(id: "p-1") @skip(if: $withEmail) { title }
}
fragment Basic on User { id displayName __typename address { street } }"#;
    for vars in [
        json!({"withEmail": true}),
        json!({"withEmail": false, "skipTags": true}),
        json!({"withEmail": false, "skipTags": false}),
    ] {
        let r = same(&envs, q, None, vars.clone(), true).await;
        assert!(r.get("errors").is_none(), "{vars}: {r}");
    }
}

#[tokio::test]
async fn errors_nulls_and_paths_are_the_same() {
    let envs = pair("").await;
    // Unknown ids: errors at the root fields, the other root answers.
    let r = same(
        &envs,
        r#"{ user(id: "999") { id } product(id: "p-1") { title } }"#,
        None,
        json!({}),
        true,
    )
    .await;
    assert_eq!(r["data"]["user"], Value::Null, "{r}");
    assert!(r["data"]["product"]["title"].is_string(), "{r}");
    // A failing batch: every product of the round is null with its error and path.
    let q = r#"{ user(id: "1") { displayName orders { id items { product { title } } } } }"#;
    envs.0.knobs(DemoService::Catalog).fail_next(1);
    envs.1.knobs(DemoService::Catalog).fail_next(1);
    let r = same(&envs, q, None, json!({}), true).await;
    let errors = r["errors"].as_array().expect("errors");
    assert!(!errors.is_empty(), "{r}");
    assert!(errors.iter().all(|e| e["path"].is_array()), "{r}");
    // A failing unbatched link.
    let q = r#"{ user(id: "1") { orders { id user { displayName } } } }"#;
    envs.0.knobs(DemoService::Users).fail_next(1);
    envs.1.knobs(DemoService::Users).fail_next(1);
    same(&envs, q, None, json!({}), true).await;
    // A nullable variable the request does not give: async-graphql's error, field left out.
    let q = r#"query ($id: Int64) { user(id: $id) { id } product(id: "p-1") { id } }"#;
    let r = same(&envs, q, None, json!({}), true).await;
    assert!(
        r["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("$id")
            || r["errors"][0]["message"]
                .as_str()
                .unwrap_or("")
                .contains("id"),
        "{r}"
    );
    // Invalid input for the backend call.
    same(
        &envs,
        r#"{ user(id: "not-a-number") { id } }"#,
        None,
        json!({}),
        true,
    )
    .await;
    // Validation errors never reach a plan.
    same(
        &envs,
        r#"{ user(id: "1") { nope } }"#,
        None,
        json!({}),
        false,
    )
    .await;
}

#[tokio::test]
async fn redactions_apply_on_plans() {
    let envs =
        pair("shaping:\n  redact:\n    Card.cardNumber: last4\n    Order.internalNotes: drop\n")
            .await;
    let r = same(
        &envs,
        r#"{ order(id: "o-1001") { id internalNotes card { brand cardNumber } } user(id: "1") { orders { card { cardNumber } } } }"#,
        None,
        json!({}),
        true,
    )
    .await;
    assert!(r.get("errors").is_none(), "{r}");
    assert_eq!(
        r["data"]["order"]["card"]["cardNumber"], "************1111",
        "{r}"
    );
    assert_eq!(r["data"]["order"]["internalNotes"], Value::Null, "{r}");
}

#[tokio::test]
async fn what_a_plan_cannot_express_runs_on_the_executor() {
    let envs = pair("").await;
    same(&envs, r#"{ __typename }"#, None, json!({}), false).await;
    same(
        &envs,
        r#"{ __type(name: "User") { name } user(id: "1") { id } }"#,
        None,
        json!({}),
        false,
    )
    .await;
    // Mutations run on plans, their root fields one after the other.
    let r = same(
        &envs,
        r#"mutation { a: createUser(user: { displayName: "X", email: "x@example.com" }, validateOnly: true) { displayName } b: createUser(user: { displayName: "Y" }, validateOnly: true) { displayName } }"#,
        None,
        json!({}),
        true,
    )
    .await;
    assert!(r["data"].is_object(), "{r}");
    // Subscriptions stream through async-graphql.
    let q = r#"subscription { watchOrders(userId: "1", maxEvents: 1) { sequence } }"#;
    let body = json!({ "query": q });
    let a = envs
        .0
        .send(envs.0.client.post(envs.0.url("/graphql")).json(&body))
        .await;
    let b = envs
        .1
        .send(envs.1.client.post(envs.1.url("/graphql")).json(&body))
        .await;
    assert_eq!((a.status, a.text), (b.status, b.text));
    let snapshot = envs.0.gateway.snapshot();
    let plans = &snapshot.graphql.as_ref().expect("graphql on").plans;
    assert_eq!(plans.planned(q, None), Some(false));
}

#[tokio::test]
async fn a_document_validated_before_is_checked_again_with_new_variables() {
    let envs = pair("").await;
    let q = r#"query ($id: Int64!, $on: Boolean!, $f: UserFilterInput) {
  user(id: $id) { id displayName @include(if: $on) }
  users(filter: $f) { users { id } }
}"#;
    let cases = [
        json!({"id": "1", "on": true}),
        json!({"id": "oops", "on": true}),
        json!({"id": "2", "on": "yes"}),
        json!({"id": "2", "on": false, "f": {"role": "NOT_A_ROLE"}}),
        json!({"id": "2", "on": false, "f": {"city": "Lisbon"}}),
        json!({"on": true}),
        json!({"id": 3, "on": true}),
    ];
    let mut refused = 0;
    for vars in cases {
        let request = |env: &TestEnv| {
            env.client
                .post(env.url("/graphql"))
                .json(&json!({"query": q, "variables": vars}))
        };
        let a = envs.0.send(request(&envs.0)).await;
        let b = envs.1.send(request(&envs.1)).await;
        assert_eq!(a.status, b.status, "{vars}: {} / {}", a.text, b.text);
        assert_eq!(normalized(a.json()), normalized(b.json()), "{vars}");
        // A request error: no `data` at all.
        refused += usize::from(a.json().get("data").is_none());
    }
    // "oops", "yes" and NOT_A_ROLE; a missing `$id` is an execution error (async-graphql's
    // validation does not check variables that are not given).
    assert_eq!(refused, 3, "the bad variables are refused every time");
}

#[tokio::test]
async fn kept_limit_figures_give_the_same_verdicts() {
    // Figures that do not depend on variables are kept per document: the verdicts stay.
    // (Figures read from variables are measured for every request: see the limits unit
    // tests; the demo APIs have no list field that takes a size argument.)
    let env = TestEnv::start_with(&format!(
        "graphql:\n  limits: {{ size_args: {DEMO_SIZE_ARGS}, max_cost: 60 }}\n  links:{DEMO_LINKS}\n"
    ))
    .await;
    let code = |r: &Value| r["errors"][0]["extensions"]["code"].clone();
    let costly = r#"{ users(pageSize: 2) { users { id orders { id user { id } } } } }"#;
    let fine = r#"{ users(pageSize: 2) { users { id } } }"#;
    for _ in 0..3 {
        let r = env.graphql(costly, json!({})).await;
        assert_eq!(code(&r), "QUERY_TOO_COSTLY", "{r}");
        let r = env.graphql(fine, json!({})).await;
        assert!(r.get("errors").is_none(), "{r}");
    }
    let snapshot = env.gateway.snapshot();
    let plans = &snapshot.graphql.as_ref().expect("graphql on").plans;
    assert_eq!(plans.planned(fine, None), Some(true));
}
