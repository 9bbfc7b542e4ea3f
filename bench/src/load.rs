//! The load client: closed-loop workers (each one connection, one request at a time) over
//! gRPC (tonic, the demo's generated client) or HTTP/1.1 (hyper), for a warm-up then a
//! measuring window.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use portico_demo::pb::GetUserRequest;
use portico_demo::pb::user_service_client::UserServiceClient;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tonic::transport::Channel;

use crate::stats::Summary;

/// What a worker sends, again and again.
#[derive(Clone, Debug)]
pub enum Target {
    /// `demo.v1.UserService/GetUser {id: 1}` straight to the backend.
    Grpc {
        /// The backend's URL, `http://127.0.0.1:PORT`.
        endpoint: String,
    },
    /// An HTTP/1.1 request to the BFF.
    Http(HttpRequest),
}

/// One HTTP request, kept ready to send.
#[derive(Clone, Debug)]
pub struct HttpRequest {
    /// Where the BFF listens.
    pub addr: SocketAddr,
    /// `GET` or `POST`.
    pub method: http::Method,
    /// Path and query.
    pub path: String,
    /// JSON body (POST).
    pub body: Option<Bytes>,
    /// The response is GraphQL: a body holding `"errors"` counts as a failure.
    pub graphql: bool,
}

/// One connection's worth of client.
enum Conn {
    Grpc(UserServiceClient<Channel>),
    Http(SendRequest<Full<Bytes>>),
}

/// Opens one HTTP/1.1 keep-alive connection.
pub async fn http_connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

impl Target {
    async fn connect(&self) -> anyhow::Result<Conn> {
        Ok(match self {
            Target::Grpc { endpoint } => {
                // One channel (one HTTP/2 connection) per worker, like one HTTP/1.1
                // connection per worker on the BFF side.
                let channel = Channel::from_shared(endpoint.clone())?
                    .tcp_nodelay(true)
                    .connect()
                    .await
                    .with_context(|| format!("connecting to {endpoint}"))?;
                Conn::Grpc(UserServiceClient::new(channel))
            }
            Target::Http(req) => Conn::Http(http_connect(req.addr).await?),
        })
    }
}

/// Sends one request on `conn`; Ok(false) when the answer is wrong.
async fn one(conn: &mut Conn, target: &Target) -> anyhow::Result<bool> {
    match (conn, target) {
        (Conn::Grpc(client), _) => {
            let user = client
                .get_user(GetUserRequest { id: 1 })
                .await?
                .into_inner();
            Ok(user.id == 1)
        }
        (Conn::Http(sender), Target::Http(req)) => {
            let resp = send(sender, req).await?;
            let (parts, body) = resp.into_parts();
            let body = body.collect().await?.to_bytes();
            let ok = parts.status == http::StatusCode::OK
                && !body.is_empty()
                && !(req.graphql && contains(&body, b"\"errors\""));
            Ok(ok)
        }
        (Conn::Http(_), Target::Grpc { .. }) => bail!("internal: HTTP connection for gRPC"),
    }
}

/// Sends `req` on an HTTP/1.1 connection.
pub async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    req: &HttpRequest,
) -> anyhow::Result<http::Response<hyper::body::Incoming>> {
    sender.ready().await?;
    let mut builder = http::Request::builder()
        .method(req.method.clone())
        .uri(&req.path)
        .header(http::header::HOST, "127.0.0.1");
    if req.body.is_some() {
        builder = builder
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json");
    }
    let request = builder.body(Full::new(req.body.clone().unwrap_or_default()))?;
    Ok(sender.send_request(request).await?)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Checks that `target` answers correctly once; returns the answer's body (HTTP) for the log.
pub async fn probe(target: &Target) -> anyhow::Result<()> {
    let mut conn = target.connect().await?;
    if !one(&mut conn, target).await? {
        if let Target::Http(req) = target {
            let mut sender = http_connect(req.addr).await?;
            let body = send(&mut sender, req).await?.into_body().collect().await?;
            bail!(
                "{} {} answered: {}",
                req.method,
                req.path,
                String::from_utf8_lossy(&body.to_bytes())
            );
        }
        bail!("{target:?} answered wrongly");
    }
    Ok(())
}

/// When the phase's windows start and end.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// Measuring starts here (warm-up before).
    pub start: Instant,
    /// Everything stops here.
    pub end: Instant,
}

/// The running workers of a phase.
pub struct Workers {
    tasks: Vec<tokio::task::JoinHandle<(Vec<u64>, u64)>>,
    window: Window,
}

/// Connects `concurrency` closed-loop workers and starts them; they run until `window.end`
/// and keep the latencies of requests made inside the window.
pub async fn start(target: &Target, concurrency: usize, window: Window) -> anyhow::Result<Workers> {
    let target = Arc::new(target.clone());
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let target = target.clone();
        let mut conn = target.connect().await?;
        tasks.push(tokio::spawn(async move {
            let mut samples: Vec<u64> = Vec::with_capacity(64 * 1024);
            let mut errors = 0u64;
            loop {
                let t0 = Instant::now();
                if t0 >= window.end {
                    break;
                }
                let ok = one(&mut conn, &target).await;
                let t1 = Instant::now();
                if t0 < window.start || t1 > window.end {
                    if ok.is_err() {
                        // A broken connection: open a new one.
                        if let Ok(c) = target.connect().await {
                            conn = c;
                        }
                    }
                    continue;
                }
                match ok {
                    Ok(true) => samples.push((t1 - t0).as_nanos() as u64),
                    Ok(false) => errors += 1,
                    Err(_) => {
                        errors += 1;
                        if let Ok(c) = target.connect().await {
                            conn = c;
                        }
                    }
                }
            }
            (samples, errors)
        }));
    }
    Ok(Workers { tasks, window })
}

/// Waits for the workers and sums up what they measured.
pub async fn finish(workers: Workers) -> anyhow::Result<Summary> {
    let Workers { tasks, window } = workers;
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (samples, e) = t.await.context("a load worker panicked")?;
        all.extend(samples);
        errors += e;
    }
    Ok(Summary::from_samples(
        all,
        errors,
        window.end.saturating_duration_since(window.start),
    ))
}

/// Opens `n` keep-alive connections to `req.addr`, each making one request; returns them
/// open (dropping the list closes them). Fails if any request fails.
pub async fn open_connections(
    req: &HttpRequest,
    n: usize,
) -> anyhow::Result<Vec<SendRequest<Full<Bytes>>>> {
    use futures::StreamExt;
    let results: Vec<anyhow::Result<SendRequest<Full<Bytes>>>> = futures::stream::iter(0..n)
        .map(|_| async move {
            let mut sender = http_connect(req.addr).await?;
            let resp = send(&mut sender, req).await?;
            let status = resp.status();
            resp.into_body().collect().await?;
            if status != http::StatusCode::OK {
                bail!("status {status}");
            }
            Ok(sender)
        })
        .buffer_unordered(64)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Sleeps until `t`.
pub async fn until(t: Instant) {
    tokio::time::sleep_until(t).await;
}

/// `Duration` in microseconds, as a float.
pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
