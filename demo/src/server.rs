//! Serving a demo backend (with health and reflection) and spawning servers for tests.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};

use futures::StreamExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::codec::CompressionEncoding;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;

use crate::catalog::CatalogApi;
use crate::chat::ChatApi;
use crate::knobs::Knobs;
use crate::orders::OrdersApi;
use crate::pb::catalog_service_server::CatalogServiceServer;
use crate::pb::chat_service_server::ChatServiceServer;
use crate::pb::order_service_server::OrderServiceServer;
use crate::pb::user_service_server::UserServiceServer;
use crate::users::UsersApi;
use crate::{DESCRIPTOR_SET, DemoService};

/// Name of the gRPC health service.
const HEALTH_SERVICE: &str = "grpc.health.v1.Health";
/// The chat service, served by the users backend beside its own.
const CHAT_SERVICE: &str = "demo.v1.ChatService";
/// Names of the two reflection services.
const REFLECTION_SERVICES: [&str; 2] = [
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// Why a demo server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The transport failed (accepting connections, HTTP/2).
    #[error("gRPC transport error: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The reflection service could not be built from the descriptor set.
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// A reflection builder that knows the demo, health and reflection files and lists exactly the
/// services this server runs.
fn reflection(service: DemoService) -> tonic_reflection::server::Builder<'static> {
    let mut builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
        .with_service_name(service.grpc_name())
        .with_service_name(HEALTH_SERVICE);
    if service == DemoService::Users {
        builder = builder.with_service_name(CHAT_SERVICE);
    }
    for name in REFLECTION_SERVICES {
        builder = builder.with_service_name(name);
    }
    builder
}

/// Serves one demo backend on `listener` until `shutdown` completes, then stops gracefully.
///
/// Besides `service` (and `demo.v1.ChatService` beside the users service), the server answers `grpc.health.v1.Health` (the service and "" report
/// SERVING) and server reflection v1 and v1alpha (registered from the raw [`DESCRIPTOR_SET`], so
/// custom options such as `google.api.http` reach reflection clients). Gzip is accepted and
/// used for responses when the client accepts it.
pub async fn serve(
    service: DemoService,
    listener: TcpListener,
    knobs: Knobs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    serve_tls(service, listener, knobs, shutdown, None).await
}

/// [`serve`], over TLS when `tls` is given (a server certificate, and a client CA to require
/// client certificates): how the gateway's TLS and mTLS to backends are tested.
pub async fn serve_tls(
    service: DemoService,
    listener: TcpListener,
    knobs: Knobs,
    shutdown: impl Future<Output = ()> + Send + 'static,
    tls: Option<tonic::transport::ServerTlsConfig>,
) -> Result<(), ServeError> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status(service.grpc_name(), ServingStatus::Serving)
        .await;
    knobs.attach_health(reporter.clone(), service.grpc_name());
    let reflection_v1 = reflection(service).build_v1()?;
    let reflection_v1alpha = reflection(service).build_v1alpha()?;
    let gzip = CompressionEncoding::Gzip;
    let counted = knobs.clone();
    let mut server = Server::builder();
    if let Some(tls) = tls {
        server = server.tls_config(tls)?;
    }
    let router = server
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    let router = match service {
        DemoService::Users => router
            .add_service(
                UserServiceServer::new(UsersApi::new(knobs.clone()))
                    .accept_compressed(gzip)
                    .send_compressed(gzip),
            )
            .add_service(ChatServiceServer::new(ChatApi::new(knobs))),
        DemoService::Orders => router.add_service(
            OrderServiceServer::new(OrdersApi::new(knobs))
                .accept_compressed(gzip)
                .send_compressed(gzip),
        ),
        DemoService::Catalog => router.add_service(
            CatalogServiceServer::new(CatalogApi::new(knobs))
                .accept_compressed(gzip)
                .send_compressed(gzip),
        ),
    };
    // TcpIncoming is tonic's TcpListenerStream wrapper; TCP_NODELAY matters: with Nagle plus
    // delayed ACKs a reflection exchange took ~60 ms instead of ~1 ms.
    let incoming = TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .inspect(move |accepted| {
            if accepted.is_ok() {
                counted.count_connection();
            }
        });
    router
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    drop(reporter);
    Ok(())
}

/// A demo backend running in a tokio task. Dropping it stops the server (gracefully, in the
/// background); [`RunningService::shutdown`] stops it and waits for the end.
#[derive(Debug)]
pub struct RunningService {
    /// Which backend this is.
    pub service: DemoService,
    /// The address it listens on (with the real port when bound to port 0).
    pub addr: SocketAddr,
    /// Whether it serves over TLS.
    pub https: bool,
    /// Its knobs, shared with the running server.
    pub knobs: Knobs,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl RunningService {
    /// The URL clients connect to, e.g. `"http://127.0.0.1:50051"` (`https://` over TLS).
    pub fn endpoint(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Stops the server gracefully and waits until it has stopped.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            // An error means the server already stopped, which is what we want.
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take()
            && let Err(err) = task.await
        {
            tracing::warn!(service = %self.service, error = %err, "demo server task failed");
        }
    }
}

impl Drop for RunningService {
    fn drop(&mut self) {
        // Dropping the sender resolves the shutdown future; the task then stops on its own.
        self.stop.take();
    }
}

/// Binds `addr` (use port 0 for a free port) and serves `service` there in a new tokio task,
/// with fresh knobs and fresh seed data.
pub async fn spawn(service: DemoService, addr: SocketAddr) -> std::io::Result<RunningService> {
    spawn_tls(service, addr, None).await
}

/// [`spawn`], over TLS when `tls` is given ([`RunningService::endpoint`] is then `https://`).
pub async fn spawn_tls(
    service: DemoService,
    addr: SocketAddr,
    tls: Option<tonic::transport::ServerTlsConfig>,
) -> std::io::Result<RunningService> {
    let https = tls.is_some();
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let knobs = Knobs::new();
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async move {
        // Ok (explicit stop) and Err (handle dropped) both mean: stop.
        let _ = stopped.await;
    };
    let task = tokio::spawn({
        let knobs = knobs.clone();
        async move {
            if let Err(err) = serve_tls(service, listener, knobs, shutdown, tls).await {
                tracing::error!(service = %service, error = %err, "demo server failed");
            }
        }
    });
    tracing::debug!(service = %service, %addr, "demo server spawned");
    Ok(RunningService {
        service,
        addr,
        https,
        knobs,
        stop: Some(stop),
        task: Some(task),
    })
}

/// All three demo backends, each on its own port.
#[derive(Debug)]
pub struct DemoCluster {
    /// `demo.v1.UserService`.
    pub users: RunningService,
    /// `demo.v1.OrderService`.
    pub orders: RunningService,
    /// `demo.v1.CatalogService`.
    pub catalog: RunningService,
}

impl DemoCluster {
    /// The running backend of this kind.
    pub fn get(&self, service: DemoService) -> &RunningService {
        match service {
            DemoService::Users => &self.users,
            DemoService::Orders => &self.orders,
            DemoService::Catalog => &self.catalog,
        }
    }

    /// Stops all three gracefully and waits until they have stopped.
    pub async fn shutdown(self) {
        futures::join!(
            self.users.shutdown(),
            self.orders.shutdown(),
            self.catalog.shutdown()
        );
    }
}

/// Starts all three backends on free ports of `host` (e.g. 127.0.0.1).
pub async fn spawn_all(host: IpAddr) -> std::io::Result<DemoCluster> {
    let addr = SocketAddr::new(host, 0);
    Ok(DemoCluster {
        users: spawn(DemoService::Users, addr).await?,
        orders: spawn(DemoService::Orders, addr).await?,
        catalog: spawn(DemoService::Catalog, addr).await?,
    })
}
