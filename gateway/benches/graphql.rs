//! Criterion bench of GraphQL execution: a query aggregating three services (users -> orders
//! -> products, products batched) against the demo backends running in process.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use std::hint::black_box;

use async_graphql::indexmap::IndexMap;
use async_graphql::{Executor, Name, Value};
use criterion::{Criterion, criterion_group, criterion_main};
use portico::app::Gateway;
use portico::graphql::engine::schema::input::args_to_message;
use portico::graphql::run::executor::GatewayExecutor;
use portico::snapshot::Snapshot;

/// mimalloc (`no_thp`), as in the BFF binaries, so these numbers match what they run with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Users, orders (with a link to users) and products (batched), as in the example configs.
fn config(demo: &portico_demo::DemoCluster) -> String {
    format!(
        r#"
listen: 127.0.0.1:0
descriptors:
  - file: descriptors/demo.binpb
backends:
  users: {{ endpoints: [{users}], services: [demo.v1.UserService] }}
  orders: {{ endpoints: [{orders}], services: [demo.v1.OrderService] }}
  catalog: {{ endpoints: [{catalog}], services: [demo.v1.CatalogService] }}
graphql:
  links:{links}
"#,
        users = demo.users.endpoint(),
        orders = demo.orders.endpoint(),
        catalog = demo.catalog.endpoint(),
        links = portico_demo::GRAPHQL_LINKS_YAML,
    )
}

const FLAT: &str = r#"{ user(id: "1") { id displayName email role createdAt verified } }"#;

const NESTED: &str = r#"{ user(id: "1") { displayName orders { id status total { currencyCode units }
  items { quantity product { title price { units } } } } } }"#;

fn bench_graphql(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (_demo, gateway, executor) = rt.block_on(async {
        let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
            .await
            .unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let cfg = portico::config::parse(&config(&demo), "bench.yaml", root).unwrap();
        let snapshot = Snapshot::build(cfg).await.unwrap();
        let gateway = Gateway::new(snapshot);
        let executor = GatewayExecutor::new(gateway.current().clone());
        (demo, gateway, executor)
    });
    let schema = gateway.snapshot().graphql.clone().unwrap();
    // What the HTTP door does: the document comes from the parsed-document cache.
    let cached = |q: &str| {
        let mut req = async_graphql::Request::new(q);
        schema.documents.prime(&mut req);
        req
    };
    for q in [FLAT, NESTED] {
        let resp = rt.block_on(executor.execute(async_graphql::Request::new(q)));
        assert!(resp.errors.is_empty(), "{:?}", resp.errors);
    }
    let mut g = c.benchmark_group("graphql");
    g.bench_function("flat_user/parsed_each_time", |b| {
        b.to_async(&rt)
            .iter(|| executor.execute(async_graphql::Request::new(FLAT)))
    });
    g.bench_function("flat_user/document_cached", |b| {
        b.to_async(&rt).iter(|| executor.execute(cached(FLAT)))
    });
    g.bench_function("users_orders_products/parsed_each_time", |b| {
        b.to_async(&rt)
            .iter(|| executor.execute(async_graphql::Request::new(NESTED)))
    });
    g.bench_function("users_orders_products/document_cached", |b| {
        b.to_async(&rt).iter(|| executor.execute(cached(NESTED)))
    });
    g.finish();

    // The input path alone: GraphQL arguments -> request message.
    let pool = gateway.snapshot().registry.pool().clone();
    let mut g = c.benchmark_group("graphql_input");
    let get_user = pool.get_message_by_name("demo.v1.GetUserRequest").unwrap();
    let mut args = IndexMap::new();
    args.insert(Name::new("id"), Value::String("1".into()));
    g.bench_function("get_user", |b| {
        b.iter(|| args_to_message(&get_user, black_box(&args), 10_000).unwrap())
    });
    let list_users = pool
        .get_message_by_name("demo.v1.ListUsersRequest")
        .unwrap();
    let mut filter = IndexMap::new();
    filter.insert(Name::new("role"), Value::Enum(Name::new("USER_ROLE_ADMIN")));
    let mut args = IndexMap::new();
    args.insert(Name::new("pageSize"), Value::from(20));
    args.insert(Name::new("pageToken"), Value::String("abc".into()));
    args.insert(Name::new("filter"), Value::Object(filter));
    g.bench_function("list_users_filtered", |b| {
        b.iter(|| args_to_message(&list_users, black_box(&args), 10_000).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench_graphql);
criterion_main!(benches);
