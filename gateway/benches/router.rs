//! Criterion benches of REST route matching: a generated table of 500 routes of realistic
//! shapes (collections, items, sub-resources, custom verbs, resource names, `**`).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use http::Method;
use portico::rest::router::{Lookup, Router};
use portico::rest::template::PathTemplate;

/// mimalloc (`no_thp`), as in the BFF binaries, so these numbers match what they run with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// 50 resources x 10 route shapes = 500 routes, like 25 services of two resources each.
fn table() -> Router<usize> {
    let mut router = Router::new();
    let mut n = 0;
    let mut add = |method: Method, template: String| {
        router
            .insert(method, PathTemplate::parse(&template).unwrap(), n)
            .unwrap();
        n += 1;
    };
    for r in 0..50 {
        let res = format!("res{r}s");
        let sub = format!("sub{r}s");
        add(Method::GET, format!("/v1/{res}"));
        add(Method::POST, format!("/v1/{res}"));
        add(Method::GET, format!("/v1/{res}/{{id}}"));
        add(Method::PATCH, format!("/v1/{res}/{{item.id}}"));
        add(Method::DELETE, format!("/v1/{res}/{{id}}"));
        add(Method::GET, format!("/v1/{res}/{{parent}}/{sub}"));
        add(Method::GET, format!("/v1/{res}/{{parent}}/{sub}/{{id}}"));
        add(Method::POST, format!("/v1/{res}:batchGet"));
        add(
            Method::GET,
            format!("/v2/{{name=projects/*/locations/*/{res}/*}}"),
        );
        add(Method::GET, format!("/v1/{res}/{{id}}/files/{{path=**}}"));
    }
    router
}

fn bench_router(c: &mut Criterion) {
    let router = table();
    assert_eq!(router.len(), 500);
    let requests: Vec<(Method, &str)> = vec![
        (Method::GET, "/v1/res25s/12345"),
        (Method::GET, "/v1/res49s"),
        (Method::GET, "/v1/res7s/abc/sub7s/def"),
        (Method::POST, "/v1/res31s:batchGet"),
        (Method::GET, "/v2/projects/p1/locations/eu/res3s/x9"),
        (Method::GET, "/v1/res18s/42/files/a/b/c.png"),
        (Method::PATCH, "/v1/res0s/7"),
    ];
    for (m, p) in &requests {
        assert!(
            matches!(router.lookup(m, p), Lookup::Matched { .. }),
            "{m} {p} should match"
        );
    }
    let mut g = c.benchmark_group("router_500");
    g.bench_function("item", |b| {
        b.iter(|| router.lookup(black_box(&Method::GET), black_box("/v1/res25s/12345")))
    });
    g.bench_function("mix_of_7", |b| {
        b.iter(|| {
            for (m, p) in &requests {
                black_box(router.lookup(m, black_box(p)));
            }
        })
    });
    g.bench_function("not_found", |b| {
        b.iter(|| router.lookup(black_box(&Method::GET), black_box("/v1/nothing/here")))
    });
    g.bench_function("method_not_allowed", |b| {
        b.iter(|| router.lookup(black_box(&Method::PUT), black_box("/v1/res25s/1")))
    });
    g.finish();
}

criterion_group!(benches, bench_router);
criterion_main!(benches);
