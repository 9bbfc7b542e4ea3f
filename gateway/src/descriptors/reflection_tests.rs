//! Tests of the reflection client against real tonic servers on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use futures::Stream;
use tonic::transport::server::Router;
use tonic::transport::{Endpoint, Server};
use tonic_reflection::pb::v1 as pb;

use super::*;
use crate::descriptors::source::split_descriptor_set;
use crate::descriptors::test_support::shop_set;
use crate::descriptors::{Registry, http_bindings};

async fn spawn(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tokio::spawn(router.serve_with_incoming(incoming));
    addr
}

fn channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy()
}

fn origin(addr: SocketAddr) -> String {
    format!("reflection from backend \"shop\" (http://{addr})")
}

fn assert_shop_reflected(reflected: &Reflected) {
    assert_eq!(reflected.services, ["shop.v1.ShopService"]);
    let names: Vec<_> = reflected
        .files
        .files
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    let unique: HashSet<_> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "duplicates in {names:?}");
    for expected in [
        "shop/v1/shop.proto",
        "shop/v1/common.proto",
        "google/api/annotations.proto",
        "google/api/http.proto",
        "google/protobuf/descriptor.proto",
    ] {
        assert!(names.contains(&expected), "{expected} missing in {names:?}");
    }
    // Every received file is byte-for-byte the one registered on the server.
    let served = split_descriptor_set(shop_set(true), "served").unwrap();
    for file in &reflected.files.files {
        assert!(served.contains(file), "{} was altered", file.name);
    }
    // ... and the pool built from them still has the http option.
    let registry = Registry::build(vec![reflected.files.clone()]).unwrap();
    let service = registry
        .pool()
        .get_service_by_name("shop.v1.ShopService")
        .unwrap();
    let method = service.methods().find(|m| m.name() == "GetOrder").unwrap();
    assert_eq!(http_bindings(&method).len(), 3);
    assert_eq!(
        registry.service_origin("shop.v1.ShopService"),
        Some(reflected.files.origin.as_str())
    );
}

#[tokio::test]
async fn fetches_from_a_v1_only_tonic_server() {
    let set = shop_set(true);
    let service = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(&set)
        .build_v1()
        .unwrap();
    let addr = spawn(Server::builder().add_service(service)).await;
    let reflected = fetch_reflection(channel(addr), origin(addr)).await.unwrap();
    assert_eq!(reflected.files.origin, origin(addr));
    assert_shop_reflected(&reflected);
}

#[tokio::test]
async fn falls_back_to_v1alpha() {
    let set = shop_set(true);
    let service = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(&set)
        .build_v1alpha()
        .unwrap();
    let addr = spawn(Server::builder().add_service(service)).await;
    let reflected = fetch_reflection(channel(addr), origin(addr)).await.unwrap();
    assert_shop_reflected(&reflected);
}

/// A grpc-go-like reflection server: FileContainingSymbol answers with the defining file AND
/// its imports (skipping files already sent on the stream); it counts FileByFilename requests.
#[derive(Clone)]
struct BundlingServer {
    files: Arc<Vec<RawFile>>,
    services: Vec<String>,
    by_filename: Arc<AtomicUsize>,
}

type AnswerStream =
    Pin<Box<dyn Stream<Item = Result<pb::ServerReflectionResponse, tonic::Status>> + Send>>;

#[tonic::async_trait]
impl pb::server_reflection_server::ServerReflection for BundlingServer {
    type ServerReflectionInfoStream = AnswerStream;

    async fn server_reflection_info(
        &self,
        request: tonic::Request<tonic::Streaming<pb::ServerReflectionRequest>>,
    ) -> Result<tonic::Response<AnswerStream>, tonic::Status> {
        use pb::server_reflection_request::MessageRequest;
        use pb::server_reflection_response::MessageResponse;
        let this = self.clone();
        let mut sent: HashSet<String> = HashSet::new();
        let answers = request.into_inner().map(move |request| {
            let request = request?;
            let files = |names: Vec<&RawFile>| {
                MessageResponse::FileDescriptorResponse(pb::FileDescriptorResponse {
                    file_descriptor_proto: names.into_iter().map(|f| f.bytes.to_vec()).collect(),
                })
            };
            let answer = match request.message_request.clone() {
                Some(MessageRequest::ListServices(_)) => {
                    MessageResponse::ListServicesResponse(pb::ListServiceResponse {
                        service: this
                            .services
                            .iter()
                            .map(|name| pb::ServiceResponse { name: name.clone() })
                            .collect(),
                    })
                }
                Some(MessageRequest::FileContainingSymbol(symbol))
                    if symbol.starts_with("ghost.") =>
                {
                    MessageResponse::ErrorResponse(pb::ErrorResponse {
                        error_code: tonic::Code::NotFound as i32,
                        error_message: format!("symbol {symbol} not found"),
                    })
                }
                Some(MessageRequest::FileContainingSymbol(_)) => {
                    // The defining file first, then everything else as "imports".
                    let mut bundle: Vec<&RawFile> = this
                        .files
                        .iter()
                        .filter(|f| f.name == "shop/v1/shop.proto")
                        .chain(this.files.iter().filter(|f| f.name != "shop/v1/shop.proto"))
                        .collect();
                    bundle.retain(|f| sent.insert(f.name.clone()));
                    files(bundle)
                }
                Some(MessageRequest::FileByFilename(name)) => {
                    this.by_filename.fetch_add(1, Ordering::SeqCst);
                    files(this.files.iter().filter(|f| f.name == name).collect())
                }
                _ => return Err(tonic::Status::invalid_argument("unexpected request")),
            };
            Ok(pb::ServerReflectionResponse {
                valid_host: String::new(),
                original_request: Some(request),
                message_response: Some(answer),
            })
        });
        Ok(tonic::Response::new(Box::pin(answers) as AnswerStream))
    }
}

fn bundling(services: &[&str]) -> BundlingServer {
    BundlingServer {
        files: Arc::new(split_descriptor_set(shop_set(true), "served").unwrap()),
        services: services.iter().map(|s| (*s).to_owned()).collect(),
        by_filename: Arc::new(AtomicUsize::new(0)),
    }
}

#[tokio::test]
async fn a_server_sending_imports_along_needs_no_extra_requests() {
    let server = bundling(&[
        "shop.v1.ShopService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ]);
    let by_filename = server.by_filename.clone();
    let service = pb::server_reflection_server::ServerReflectionServer::new(server);
    let addr = spawn(Server::builder().add_service(service)).await;
    let reflected = fetch_reflection(channel(addr), origin(addr)).await.unwrap();
    assert_shop_reflected(&reflected);
    assert_eq!(by_filename.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_error_response_is_reported_with_the_request() {
    let server = bundling(&["shop.v1.ShopService", "ghost.v1.Ghost"]);
    let service = pb::server_reflection_server::ServerReflectionServer::new(server);
    let addr = spawn(Server::builder().add_service(service)).await;
    let err = fetch_reflection(channel(addr), origin(addr))
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "{}: FileContainingSymbol \"ghost.v1.Ghost\" failed: the server answered error 5: symbol ghost.v1.Ghost not found",
            origin(addr)
        )
    );
}

#[tokio::test]
async fn a_missing_symbol_on_a_tonic_server_is_reported() {
    // tonic ends the stream with NOT_FOUND instead of an error_response.
    let set = shop_set(true);
    let service = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(&set)
        .with_service_name("ghost.v1.Ghost")
        .build_v1()
        .unwrap();
    let addr = spawn(Server::builder().add_service(service)).await;
    let err = fetch_reflection(channel(addr), origin(addr))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!(
            "{}: FileContainingSymbol \"ghost.v1.Ghost\" failed: NotFound",
            origin(addr)
        )),
        "{err}"
    );
}

/// A gRPC service that is not reflection: every other path gets UNIMPLEMENTED from tonic.
#[derive(Clone)]
struct Dummy;

impl tonic::server::NamedService for Dummy {
    const NAME: &'static str = "test.v1.Dummy";
}

impl tower::Service<http::Request<tonic::body::Body>> for Dummy {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: http::Request<tonic::body::Body>) -> Self::Future {
        std::future::ready(Ok(tonic::Status::unimplemented("dummy").into_http()))
    }
}

#[tokio::test]
async fn a_server_without_reflection_is_reported_as_such() {
    let addr = spawn(Server::builder().add_service(Dummy)).await;
    let err = fetch_reflection(channel(addr), origin(addr))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::Reflection {
                failure: ReflectionFailure::Unimplemented,
                ..
            }
        ),
        "{err}"
    );
    let err = err.to_string();
    assert!(err.starts_with(&origin(addr)), "{err}");
    assert!(
        err.contains("does not serve gRPC server reflection"),
        "{err}"
    );
}

#[tokio::test]
async fn nothing_listening_is_a_connect_error_not_a_hang() {
    // Bind then drop to get a port with nothing behind it.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let err = fetch_reflection_with_timeout(channel(addr), origin(addr), Duration::from_secs(30))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::Reflection {
                failure: ReflectionFailure::Connect(_),
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().starts_with(&origin(addr)), "{err}");
    assert!(err.to_string().contains("Connection refused"), "{err}");
}

#[tokio::test]
async fn a_hung_backend_times_out() {
    // Accepts TCP (kernel backlog) but never speaks HTTP/2.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let timeout = Duration::from_millis(300);
    let err = fetch_reflection_with_timeout(channel(addr), origin(addr), timeout)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::Reflection {
                failure: ReflectionFailure::Timeout(_),
                ..
            }
        ),
        "{err}"
    );
    drop(listener);
}
