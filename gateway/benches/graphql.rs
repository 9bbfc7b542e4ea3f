//! Criterion bench of GraphQL execution: a query aggregating three services (users -> orders
//! -> products, products batched) against the demo backends running in process.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use async_graphql::Executor;
use criterion::{Criterion, criterion_group, criterion_main};
use portico::app::Gateway;
use portico::graphql::executor::GatewayExecutor;
use portico::snapshot::Snapshot;

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
  links:
    - on: demo.v1.User
      field: orders
      call: demo.v1.OrderService.ListOrdersByUser
      args: {{ user_id: id }}
      result: orders
    - on: demo.v1.OrderItem
      field: product
      call: demo.v1.CatalogService.GetProduct
      args: {{ id: product_id }}
      batch:
        call: demo.v1.CatalogService.BatchGetProducts
        keys: ids
        results: products
        key: id
"#,
        users = demo.users.endpoint(),
        orders = demo.orders.endpoint(),
        catalog = demo.catalog.endpoint(),
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
    let (_demo, executor) = rt.block_on(async {
        let demo = portico_demo::spawn_all([127, 0, 0, 1].into())
            .await
            .unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let cfg = portico::config::parse(&config(&demo), "bench.yaml", root).unwrap();
        let snapshot = Snapshot::build(cfg).await.unwrap();
        (demo, GatewayExecutor::new(Gateway::new(snapshot)))
    });
    for q in [FLAT, NESTED] {
        let resp = rt.block_on(executor.execute(async_graphql::Request::new(q)));
        assert!(resp.errors.is_empty(), "{:?}", resp.errors);
    }
    let mut g = c.benchmark_group("graphql");
    g.bench_function("flat_user", |b| {
        b.to_async(&rt)
            .iter(|| executor.execute(async_graphql::Request::new(FLAT)))
    });
    g.bench_function("users_orders_products", |b| {
        b.to_async(&rt)
            .iter(|| executor.execute(async_graphql::Request::new(NESTED)))
    });
    g.finish();
}

criterion_group!(benches, bench_graphql);
criterion_main!(benches);
