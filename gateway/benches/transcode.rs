//! Criterion benches of the REST transcoding hot path: JSON -> protobuf -> JSON for small,
//! medium and large messages of the demo descriptors.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use portico::transcode::{DecodeOptions, EncodeOptions, decode_json, encode_response};
use portico_demo::pb;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};

/// mimalloc (`no_thp`), as in the BFF binaries, so these numbers match what they run with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One benchmark input: a message type and a JSON document of it.
struct Case {
    name: &'static str,
    desc: MessageDescriptor,
    json: Vec<u8>,
}

fn pool() -> DescriptorPool {
    DescriptorPool::decode(portico_demo::DESCRIPTOR_SET).expect("demo descriptors decode")
}

/// The canonical JSON of a generated message, through the dynamic path.
fn json_of(desc: &MessageDescriptor, msg: &impl Message) -> Vec<u8> {
    let dynamic = DynamicMessage::decode(desc.clone(), msg.encode_to_vec().as_slice()).unwrap();
    encode_response(&dynamic, None, &EncodeOptions::default()).unwrap()
}

fn cases() -> Vec<Case> {
    let pool = pool();
    let user = pool.get_message_by_name("demo.v1.User").unwrap();
    let orders = pool
        .get_message_by_name("demo.v1.ListOrdersByUserResponse")
        .unwrap();
    let users = pool
        .get_message_by_name("demo.v1.ListUsersResponse")
        .unwrap();

    // Small: five fields.
    let small = pb::User {
        id: 42,
        display_name: "Ada Lovelace".into(),
        email: "ada@example.com".into(),
        role: pb::UserRole::Admin as i32,
        verified: true,
        ..Default::default()
    };
    // Medium: nested and repeated, about 2 KB of JSON.
    let medium = pb::ListOrdersByUserResponse {
        orders: (1..=3)
            .filter_map(|n| portico_demo::data::seed_order(1, n))
            .collect(),
        next_page_token: "page-2".into(),
    };
    // Large: about 200 KB of JSON (users cycling through the seed data, fresh ids).
    let mut large = pb::ListUsersResponse {
        users: Vec::new(),
        next_page_token: "next".into(),
        total_size: 0,
    };
    let mut json_len = 0;
    let mut id = 0i64;
    while json_len < 200_000 {
        let mut u = portico_demo::data::seed_user(id % portico_demo::data::USER_COUNT + 1).unwrap();
        id += 1;
        u.id = id;
        json_len += json_of(&user, &u).len() + 1;
        large.users.push(u);
    }
    large.total_size = i32::try_from(large.users.len()).unwrap();
    vec![
        Case {
            name: "small",
            json: json_of(&user, &small),
            desc: user,
        },
        Case {
            name: "medium",
            json: json_of(&orders, &medium),
            desc: orders,
        },
        Case {
            name: "large",
            json: json_of(&users, &large),
            desc: users,
        },
    ]
}

/// JSON in -> message -> protobuf bytes -> message -> JSON out: what a REST call costs the
/// gateway apart from I/O.
fn round_trip(c: &Case, dopts: &DecodeOptions, eopts: &EncodeOptions) -> Vec<u8> {
    let msg = decode_json(&c.desc, &c.json, dopts).unwrap();
    let wire = msg.encode_to_vec();
    let back = DynamicMessage::decode(c.desc.clone(), wire.as_slice()).unwrap();
    encode_response(&back, None, eopts).unwrap()
}

fn bench_transcode(cr: &mut Criterion) {
    let dopts = DecodeOptions::default();
    let eopts = EncodeOptions::default();
    let cases = cases();
    for case in &cases {
        // Sanity: the round trip is lossless (map entries may come out in another order).
        let back: serde_json::Value =
            serde_json::from_slice(&round_trip(case, &dopts, &eopts)).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&case.json).unwrap();
        assert!(back == json, "{} does not round-trip", case.name);
    }

    let mut g = cr.benchmark_group("json_proto_json");
    for case in &cases {
        g.throughput(Throughput::Bytes(case.json.len() as u64));
        g.bench_with_input(
            BenchmarkId::new(case.name, case.json.len()),
            case,
            |b, case| b.iter(|| round_trip(black_box(case), &dopts, &eopts)),
        );
    }
    g.finish();

    let mut g = cr.benchmark_group("json_to_proto");
    for case in &cases {
        g.throughput(Throughput::Bytes(case.json.len() as u64));
        g.bench_with_input(
            BenchmarkId::new(case.name, case.json.len()),
            case,
            |b, case| {
                b.iter(|| {
                    decode_json(&case.desc, black_box(&case.json), &dopts)
                        .unwrap()
                        .encode_to_vec()
                })
            },
        );
    }
    g.finish();

    let mut g = cr.benchmark_group("proto_to_json");
    for case in &cases {
        let wire = decode_json(&case.desc, &case.json, &dopts)
            .unwrap()
            .encode_to_vec();
        g.throughput(Throughput::Bytes(case.json.len() as u64));
        g.bench_with_input(
            BenchmarkId::new(case.name, case.json.len()),
            &wire,
            |b, wire| {
                b.iter(|| {
                    let msg = DynamicMessage::decode(case.desc.clone(), black_box(wire.as_slice()))
                        .unwrap();
                    encode_response(&msg, None, &eopts).unwrap()
                })
            },
        );
    }
    g.finish();

    // The direct path: wire bytes to JSON with a per-message plan, no DynamicMessage.
    let mut g = cr.benchmark_group("proto_to_json_direct");
    for case in &cases {
        let wire = decode_json(&case.desc, &case.json, &dopts)
            .unwrap()
            .encode_to_vec();
        let plans = portico::transcode::direct::Plans::new(&case.desc);
        // Sanity: the same JSON as the dynamic path.
        let direct: serde_json::Value = serde_json::from_slice(
            &portico::transcode::direct::encode(&plans, &wire, &eopts).unwrap(),
        )
        .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&case.json).unwrap();
        assert!(direct == json, "{}: the direct path differs", case.name);
        g.throughput(Throughput::Bytes(case.json.len() as u64));
        g.bench_with_input(
            BenchmarkId::new(case.name, case.json.len()),
            &wire,
            |b, wire| {
                b.iter(|| {
                    portico::transcode::direct::encode(&plans, black_box(wire.as_slice()), &eopts)
                        .unwrap()
                })
            },
        );
    }
    g.finish();
}

/// The direct paths both ways: JSON -> wire bytes -> JSON with the per-message plans, no
/// `DynamicMessage`; what a REST call through the gateway costs with `rest.decoder: direct`
/// and `rest.encoder: direct`.
fn bench_direct(cr: &mut Criterion) {
    let dopts = DecodeOptions::default();
    let eopts = EncodeOptions::default();
    let cases = cases();
    let plans: Vec<_> = cases
        .iter()
        .map(|c| {
            portico::transcode::direct::Plans::new(&c.desc)
                .type_plan(&c.desc)
                .unwrap()
        })
        .collect();
    for (case, plan) in cases.iter().zip(&plans) {
        // Sanity: the message the dynamic path decodes (compared as JSON: map entries come in
        // another order).
        let want = decode_json(&case.desc, &case.json, &dopts).unwrap();
        let got = DynamicMessage::decode(
            case.desc.clone(),
            plan.decode(&case.json, &dopts).unwrap().as_slice(),
        )
        .unwrap();
        let json = |m: &DynamicMessage| -> serde_json::Value {
            serde_json::from_slice(&encode_response(m, None, &eopts).unwrap()).unwrap()
        };
        assert_eq!(json(&got), json(&want), "{}", case.name);
    }

    let mut g = cr.benchmark_group("json_to_proto_direct");
    for (case, plan) in cases.iter().zip(&plans) {
        g.throughput(Throughput::Bytes(case.json.len() as u64));
        g.bench_with_input(
            BenchmarkId::new(case.name, case.json.len()),
            case,
            |b, case| b.iter(|| plan.decode(black_box(&case.json), &dopts).unwrap()),
        );
    }
    g.finish();

    // What the REST door runs (`encode_request`): the direct decoder with the checks of the
    // scan pass folded in (the scan itself runs only after a refusal, to name the problem).
    let mut g = cr.benchmark_group("json_to_proto_direct_checked");
    for (case, plan) in cases.iter().zip(&plans) {
        let target = portico::transcode::BodyTarget::Whole;
        g.throughput(Throughput::Bytes(case.json.len() as u64));
        g.bench_with_input(
            BenchmarkId::new(case.name, case.json.len()),
            case,
            |b, case| {
                b.iter(|| {
                    let parts = portico::transcode::HttpRequestParts {
                        body: black_box(&case.json),
                        body_target: &target,
                        path_bindings: &[],
                        query: None,
                        fill_update_mask: false,
                    };
                    let e =
                        portico::transcode::encode_request(&case.desc, Some(plan), &parts, &dopts)
                            .unwrap();
                    assert!(e.direct);
                    e.bytes
                })
            },
        );
    }
    g.finish();

    let mut g = cr.benchmark_group("json_proto_json_direct");
    for (case, plan) in cases.iter().zip(&plans) {
        g.throughput(Throughput::Bytes(case.json.len() as u64));
        g.bench_with_input(
            BenchmarkId::new(case.name, case.json.len()),
            case,
            |b, case| {
                b.iter(|| {
                    let target = portico::transcode::BodyTarget::Whole;
                    let parts = portico::transcode::HttpRequestParts {
                        body: black_box(&case.json),
                        body_target: &target,
                        path_bindings: &[],
                        query: None,
                        fill_update_mask: false,
                    };
                    let wire =
                        portico::transcode::encode_request(&case.desc, Some(plan), &parts, &dopts)
                            .unwrap()
                            .bytes;
                    plan.encode(&wire, &eopts).unwrap()
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, bench_transcode, bench_direct);
criterion_main!(benches);
