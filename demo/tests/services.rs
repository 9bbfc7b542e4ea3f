//! End-to-end tests of the demo backends over real sockets, with the generated tonic clients.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use portico_demo::pb::catalog_service_client::CatalogServiceClient;
use portico_demo::pb::order_service_client::OrderServiceClient;
use portico_demo::pb::user_service_client::UserServiceClient;
use portico_demo::pb::{
    BatchGetProductsRequest, GetOrderRequest, GetUserRequest, Order, OrderItem, WatchOrdersRequest,
};
use portico_demo::{DemoService, RunningService, spawn, spawn_all};
use prost::Message;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};
use tonic_types::StatusExt;

fn localhost() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)
}

async fn start(service: DemoService) -> (RunningService, Channel) {
    let server = spawn(service, localhost()).await.unwrap();
    let channel = Channel::from_shared(server.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    (server, channel)
}

#[tokio::test]
async fn users_answers_and_records_metadata() {
    let (server, channel) = start(DemoService::Users).await;
    let mut client = UserServiceClient::new(channel);
    let mut request = tonic::Request::new(GetUserRequest { id: 1 });
    request
        .metadata_mut()
        .insert("x-request-id", "req-123".parse().unwrap());
    let ada = client.get_user(request).await.unwrap().into_inner();
    assert_eq!(ada.display_name, "Ada Lovelace");
    assert_eq!(ada.loyalty_points, 18_446_744_073_709_551_000);
    assert_eq!(server.knobs.calls("GetUser"), 1);
    let metadata = server.knobs.last_metadata("GetUser").unwrap();
    assert_eq!(metadata.get("x-request-id").unwrap(), "req-123");
}

#[tokio::test]
async fn not_found_carries_resource_info() {
    let (_server, channel) = start(DemoService::Users).await;
    let mut client = UserServiceClient::new(channel);
    let status = client
        .get_user(GetUserRequest { id: 42 })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.message(), "user 42 not found");
    let details = status.get_error_details();
    let info = details.resource_info().unwrap();
    assert_eq!(info.resource_type, "demo.v1.User");
    assert_eq!(info.resource_name, "users/42");

    let status = client
        .get_user(GetUserRequest { id: -1 })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let details = status.get_error_details();
    assert_eq!(
        details.bad_request().unwrap().field_violations[0].field,
        "id"
    );
}

#[tokio::test]
async fn fail_next_uses_configured_code_and_counts() {
    let (server, channel) = start(DemoService::Catalog).await;
    let mut client = CatalogServiceClient::new(channel);
    server.knobs.set_fail_with(Some(Code::ResourceExhausted));
    server.knobs.fail_next(2);
    let request = || BatchGetProductsRequest {
        ids: vec!["p-1".to_owned(), "p-404".to_owned(), "p-2".to_owned()],
    };
    for _ in 0..2 {
        let status = client.batch_get_products(request()).await.unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted);
    }
    let found = client
        .batch_get_products(request())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.products.len(), 2);
    assert_eq!(server.knobs.calls("BatchGetProducts"), 3);
    assert_eq!(server.knobs.total_calls(), 3);

    server.knobs.reset();
    server.knobs.fail_next(1);
    let status = client.batch_get_products(request()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "default code after reset");
    assert_eq!(server.knobs.total_calls(), 1);
}

#[tokio::test]
async fn latency_applies() {
    let (server, channel) = start(DemoService::Orders).await;
    let mut client = OrderServiceClient::new(channel);
    let latency = Duration::from_millis(150);
    server.knobs.set_latency(latency);
    let started = Instant::now();
    let order = client
        .get_order(GetOrderRequest {
            id: "o-1001".to_owned(),
            user_id: 1,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(started.elapsed() >= latency);
    assert_eq!(order.user_id, 1);
    assert_eq!(order.internal_notes, "fragile");
}

#[tokio::test]
async fn watch_orders_streams_events() {
    let (server, channel) = start(DemoService::Orders).await;
    let mut client = OrderServiceClient::new(channel);
    let watch = |user_id, max_events| WatchOrdersRequest {
        user_id,
        max_events,
        interval: Some(prost_types::Duration {
            seconds: 0,
            nanos: 1_000_000,
        }),
    };
    let stream = client.watch_orders(watch(1, 0)).await.unwrap().into_inner();
    let events: Vec<_> = stream.collect::<Result<_, _>>().await.unwrap();
    let sequences: Vec<i64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, [1, 2, 3]);
    assert!(
        events
            .iter()
            .all(|e| e.order.as_ref().unwrap().user_id == 1)
    );

    // An error after the first message.
    server.knobs.set_fail_with(Some(Code::Aborted));
    server.knobs.fail_stream_after(Some(1));
    let mut stream = client.watch_orders(watch(1, 5)).await.unwrap().into_inner();
    assert_eq!(stream.message().await.unwrap().unwrap().sequence, 1);
    assert_eq!(stream.message().await.unwrap_err().code(), Code::Aborted);

    // Failures that happen before the first message.
    server.knobs.reset();
    server.knobs.fail_next(1);
    let status = client.watch_orders(watch(1, 3)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    let status = client.watch_orders(watch(777, 3)).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = client.watch_orders(watch(1, -1)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(server.knobs.calls("WatchOrders"), 3);
}

#[tokio::test]
async fn import_orders_sums() {
    let (_server, channel) = start(DemoService::Orders).await;
    let mut client = OrderServiceClient::new(channel);
    let order = |id: &str, units, quantity| Order {
        id: id.to_owned(),
        total: Some(portico_demo::data::eur(units, 0)),
        items: vec![OrderItem {
            product_id: "p-1".to_owned(),
            quantity,
            unit_price: None,
        }],
        ..Order::default()
    };
    let orders = vec![order("x-1", 10, 1), order("", 5, 2), order("", 7, 1)];
    let summary = client
        .import_orders(tokio_stream::iter(orders))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summary.imported, 3);
    assert_eq!(summary.order_ids, ["x-1", "o-imp-2", "o-imp-3"]);
    assert_eq!(summary.total_units, 22);

    let bad = vec![order("ok", 1, 1), order("bad", 1, 0)];
    let status = client
        .import_orders(tokio_stream::iter(bad))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn health_reports_serving() {
    let (_server, channel) = start(DemoService::Catalog).await;
    let mut health = HealthClient::new(channel);
    for service in ["", "demo.v1.CatalogService"] {
        let reply = health
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reply.status, ServingStatus::Serving as i32, "{service:?}");
    }
    let status = health
        .check(HealthCheckRequest {
            service: "demo.v1.UserService".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

/// Sends one reflection request over the v1 protocol and returns the reply.
async fn reflect(channel: Channel, request: MessageRequest) -> MessageResponse {
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut replies = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let reply: ServerReflectionResponse = replies.message().await.unwrap().unwrap();
    reply.message_response.unwrap()
}

#[tokio::test]
async fn reflection_lists_service_and_keeps_http_options() {
    let (_server, channel) = start(DemoService::Users).await;
    let MessageResponse::ListServicesResponse(list) =
        reflect(channel.clone(), MessageRequest::ListServices(String::new())).await
    else {
        panic!("expected a list of services");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"demo.v1.UserService"), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");
    assert!(!names.contains(&"demo.v1.OrderService"), "{names:?}");

    let MessageResponse::FileDescriptorResponse(files) = reflect(
        channel.clone(),
        MessageRequest::FileContainingSymbol("demo.v1.UserService".to_owned()),
    )
    .await
    else {
        panic!("expected file descriptors");
    };
    let users_file = files
        .file_descriptor_proto
        .iter()
        .find(|raw| {
            prost_types::FileDescriptorProto::decode(raw.as_slice())
                .unwrap()
                .name()
                == "demo/v1/users.proto"
        })
        .expect("users.proto in the reply");
    let needle = b"/v1/users/{id}";
    assert!(users_file.windows(needle.len()).any(|w| w == needle));

    // Rebuild a pool from reflection replies (the file, then its imports) and read the option.
    let mut pool = prost_reflect::DescriptorPool::new();
    add_with_imports(&channel, &mut pool, "demo/v1/users.proto").await;
    let http = pool.get_extension_by_name("google.api.http").unwrap();
    let method = pool
        .get_service_by_name("demo.v1.UserService")
        .unwrap()
        .methods()
        .find(|m| m.name() == "GetUser")
        .unwrap();
    assert!(method.options().has_extension(&http));
}

/// Adds a file and (first) its imports to `pool`, fetching each by name over reflection.
async fn add_with_imports(channel: &Channel, pool: &mut prost_reflect::DescriptorPool, name: &str) {
    let mut pending = vec![(name.to_owned(), false)];
    while let Some((file, deps_done)) = pending.pop() {
        if pool.get_file_by_name(&file).is_some() {
            continue;
        }
        let MessageResponse::FileDescriptorResponse(reply) = reflect(
            channel.clone(),
            MessageRequest::FileByFilename(file.clone()),
        )
        .await
        else {
            panic!("expected {file}");
        };
        let raw = reply.file_descriptor_proto[0].clone();
        if deps_done {
            pool.decode_file_descriptor_proto(raw.as_slice()).unwrap();
        } else {
            let proto = prost_types::FileDescriptorProto::decode(raw.as_slice()).unwrap();
            pending.push((file, true));
            for dep in proto.dependency {
                pending.push((dep, false));
            }
        }
    }
}

#[tokio::test]
async fn reflection_v1alpha_lists_service() {
    use tonic_reflection::pb::v1alpha as alpha;
    let (_server, channel) = start(DemoService::Orders).await;
    let mut client = alpha::server_reflection_client::ServerReflectionClient::new(channel);
    let request = alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let reply = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner()
        .message()
        .await
        .unwrap()
        .unwrap();
    let Some(alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        reply.message_response
    else {
        panic!("expected a list of services");
    };
    assert!(
        list.service
            .iter()
            .any(|s| s.name == "demo.v1.OrderService")
    );
}

#[tokio::test]
async fn cluster_serves_all_three_and_shuts_down() {
    let cluster = spawn_all(IpAddr::V4(Ipv4Addr::LOCALHOST)).await.unwrap();
    let users = UserServiceClient::connect(cluster.get(DemoService::Users).endpoint());
    let grace = users
        .await
        .unwrap()
        .get_user(GetUserRequest { id: 2 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(grace.display_name, "Grace Hopper");
    let mut catalog = CatalogServiceClient::connect(cluster.catalog.endpoint())
        .await
        .unwrap();
    let found = catalog
        .batch_get_products(BatchGetProductsRequest {
            ids: vec!["p-1".to_owned()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.products[0].title, "Espresso Cup");
    assert_eq!(
        cluster.get(DemoService::Orders).service,
        DemoService::Orders
    );

    let addrs: Vec<SocketAddr> = DemoService::ALL
        .iter()
        .map(|s| cluster.get(*s).addr)
        .collect();
    drop(catalog);
    cluster.shutdown().await;
    for addr in addrs {
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "{addr}"
        );
    }
}
