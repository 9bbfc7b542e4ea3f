//! `demo.v2.UserService`: version 2 of the user profiles, on a server of its own, so that a
//! gateway can be shown serving `/v1/users/{id}` and `/v2/users/{id}` from two backends.
//!
//! It answers from the same seed data as `demo.v1.UserService` (read-only), in the v2 shape:
//! `full_name` and `contact_email`. Its replies carry `x-demo-served-by: users-v2`.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};
use tonic_health::ServingStatus;

use crate::data::seed_user;
use crate::pb_v2::user_service_server::{UserService, UserServiceServer};
use crate::pb_v2::{GetUserRequest, User};
use crate::rpc;

/// The fully-qualified name of the service.
pub const SERVICE: &str = "demo.v2.UserService";

/// The service, answering from the seed users.
#[derive(Debug, Default, Clone, Copy)]
pub struct UsersV2Api;

#[tonic::async_trait]
impl UserService for UsersV2Api {
    async fn get_user(&self, request: Request<GetUserRequest>) -> Result<Response<User>, Status> {
        let id = request.get_ref().id;
        if id <= 0 {
            return Err(rpc::invalid_field("id", "must be a positive user id"));
        }
        let user = seed_user(id).ok_or_else(|| {
            rpc::not_found(
                "demo.v2.User",
                &format!("users/{id}"),
                format!("user {id} not found"),
            )
        })?;
        let mut resp = Response::new(User {
            id: user.id,
            full_name: user.display_name,
            contact_email: user.email,
            created_at: user.created_at,
        });
        resp.metadata_mut().insert(
            "x-demo-served-by",
            tonic::metadata::MetadataValue::from_static("users-v2"),
        );
        Ok(resp)
    }
}

/// `demo.v2.UserService` running in a tokio task (with gRPC health); dropping it stops it.
#[derive(Debug)]
pub struct RunningUsersV2 {
    /// The address it listens on.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl RunningUsersV2 {
    /// The URL clients connect to, e.g. `"http://127.0.0.1:50054"`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server gracefully and waits until it has stopped.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take()
            && let Err(err) = task.await
        {
            tracing::warn!(error = %err, "demo v2 server task failed");
        }
    }
}

impl Drop for RunningUsersV2 {
    fn drop(&mut self) {
        self.stop.take();
    }
}

/// Binds `addr` (port 0 for a free port) and serves `demo.v2.UserService` there.
pub async fn spawn(addr: SocketAddr) -> std::io::Result<RunningUsersV2> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter
            .set_service_status(SERVICE, ServingStatus::Serving)
            .await;
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let served = Server::builder()
            .add_service(health)
            .add_service(UserServiceServer::new(UsersV2Api))
            .serve_with_incoming_shutdown(incoming, async move {
                let _ = stopped.await;
            })
            .await;
        if let Err(err) = served {
            tracing::error!(error = %err, "demo v2 server failed");
        }
    });
    Ok(RunningUsersV2 {
        addr,
        stop: Some(stop),
        task: Some(task),
    })
}
