//! The HTTP server: accepts connections with protective limits and drains them on shutdown.
//!
//! Drain order on shutdown: readiness ([`Readiness`], served at `/readyz`) turns not-ready
//! first; after `drain.delay` the listener closes (no new connections); in-flight requests and
//! streams get `drain.grace` to finish (HTTP/2 clients get a GOAWAY, HTTP/1 keep-alive ends
//! after the current response); then `serve` returns.
//!
//! Built on hyper-util's auto (HTTP/1.1 + h2c) connection builder rather than `axum::serve`,
//! because the connection limits live there: the header-read timeout, the HTTP/2 stream and
//! reset limits, and a hard cap on header count and size at twice `limits.max_headers` /
//! `limits.max_header_bytes`. The configured header limits themselves are enforced by the
//! ingress, which can answer them with a JSON body; hyper's own 431 (past the hard cap) has
//! none, and its header-read timeout closes the connection without an answer. Every request
//! carries its TCP peer's address (`ConnectInfo<SocketAddr>`) for the ingress.
//!
//! Two guards sit between the listener and hyper: connection admission (`connections`: at
//! most `limits.max_connections` open, and `limits.max_connections_per_ip` per client address;
//! past them a new connection is closed at once while the open ones are served), and the
//! HTTP/1 framing watch (`framing`: a request with both `Content-Length` and
//! `Transfer-Encoding` is refused with 400 and the connection closed, as Envoy does).
//!
//! [`serve_tls`] serves one listener on the current runtime; [`Cores`] serves one listener per
//! core, each on a single-threaded runtime of its own (`runtime.mode: per_core`).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use prometheus_client::metrics::counter::Counter;
use tokio::net::{TcpListener, TcpStream};

use crate::config::LimitsConfig;
use crate::request::{AmbiguousFraming, ConnectionHold, PeerCertificates, ShuttingDown};
use connections::{Admission, Refusal};
pub use cores::Cores;
use framing::{Framing, Watched};
pub use tls::{ServerTls, TlsError};

mod connections;
mod cores;
mod framing;
mod tls;

/// The fuzz entry point of the framing watch: the verdict on `data` is the same in one read as
/// in reads split where the first byte says, and as byte by byte.
#[cfg(any(test, feature = "fuzzing"))]
pub fn fuzz_framing(data: &[u8]) {
    framing::fuzz(data);
}

/// How long in-flight requests get to finish after shutdown is requested, by default.
pub const DRAIN_GRACE: Duration = Duration::from_secs(30);

/// What the server tells the rest of the gateway: whether it takes new traffic (ready until
/// shutdown starts), how many client connections are open and how many it refused. Cheap to
/// clone; all clones share the state.
#[derive(Clone, Debug, Default)]
pub struct Readiness {
    draining: Arc<AtomicBool>,
    open: Arc<std::sync::atomic::AtomicI64>,
    refused_full: Counter,
    refused_per_address: Counter,
}

impl Readiness {
    /// A ready flag.
    pub fn new() -> Self {
        Self::default()
    }

    /// A ready flag counting refused connections in these counters (past `max_connections`,
    /// past `max_connections_per_ip`): the metrics' counters, shared.
    pub fn counting_refusals(full: Counter, per_address: Counter) -> Self {
        Self {
            refused_full: full,
            refused_per_address: per_address,
            ..Self::default()
        }
    }

    /// Connections refused so far: past `max_connections`, past `max_connections_per_ip`.
    pub fn refusals(&self) -> (u64, u64) {
        (self.refused_full.get(), self.refused_per_address.get())
    }

    fn refused(&self, why: Refusal) {
        match why {
            Refusal::Full => self.refused_full.inc(),
            Refusal::PerAddress => self.refused_per_address.inc(),
        };
    }

    /// True until [`Readiness::set_draining`].
    pub fn is_ready(&self) -> bool {
        !self.draining.load(Ordering::Acquire)
    }

    /// Marks the gateway as draining: `/readyz` answers 503 from now on.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Client connections open now (TLS handshakes in progress included).
    pub fn open_connections(&self) -> i64 {
        self.open.load(Ordering::Relaxed)
    }

    /// Counts a connection until the guard drops.
    fn connection(&self) -> OpenConnection {
        self.open.fetch_add(1, Ordering::Relaxed);
        OpenConnection(self.open.clone())
    }
}

/// One open connection, counted until dropped.
struct OpenConnection(Arc<std::sync::atomic::AtomicI64>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How the server drains on shutdown.
#[derive(Clone, Debug)]
pub struct Drain {
    /// Flipped to not-ready first.
    pub readiness: Readiness,
    /// Time between readiness flipping and the listener closing.
    pub delay: Duration,
    /// Time in-flight requests get to finish after the listener closed.
    pub grace: Duration,
}

impl Default for Drain {
    fn default() -> Self {
        Self {
            readiness: Readiness::new(),
            delay: Duration::ZERO,
            grace: DRAIN_GRACE,
        }
    }
}

fn builder(limits: &LimitsConfig) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    // Hard caps: twice the limits the ingress answers with a body.
    let header_bytes = limits.max_header_bytes.as_usize().saturating_mul(2);
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout.get())
        .max_headers(limits.max_headers.saturating_mul(2))
        .max_buf_size(header_bytes.max(8192));
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.http2_max_concurrent_streams)
        .max_pending_accept_reset_streams(limits.http2_max_pending_accept_reset_streams)
        .max_local_error_reset_streams(limits.http2_max_local_error_reset_streams)
        .max_header_list_size(u32::try_from(header_bytes).unwrap_or(u32::MAX));
    b
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting and lets
/// in-flight requests finish (up to [`DRAIN_GRACE`]).
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: &LimitsConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    serve_with(listener, app, limits, shutdown, Drain::default()).await
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains as `drain` says:
/// readiness off, wait `delay` (still accepting), stop accepting, let in-flight requests
/// finish for up to `grace`.
pub async fn serve_with(
    listener: TcpListener,
    app: axum::Router,
    limits: &LimitsConfig,
    shutdown: impl Future<Output = ()> + Send,
    drain: Drain,
) -> std::io::Result<()> {
    serve_tls(listener, app, limits, shutdown, drain, None).await
}

/// [`serve_with`], speaking TLS when `tls` is given: each connection's handshake runs in its
/// own task (bounded by `limits.header_read_timeout`), and the verified client certificates
/// travel with every request of the connection ([`PeerCertificates`]).
pub async fn serve_tls(
    listener: TcpListener,
    app: axum::Router,
    limits: &LimitsConfig,
    shutdown: impl Future<Output = ()> + Send,
    drain: Drain,
    tls: Option<Arc<ServerTls>>,
) -> std::io::Result<()> {
    let admission = Admission::new(limits.max_connections, limits.max_connections_per_ip);
    serve_admitted(listener, app, limits, shutdown, drain, tls, admission).await
}

/// [`serve_tls`] with connections admitted by `admission` (shared by the listeners of
/// [`Cores`]).
async fn serve_admitted(
    listener: TcpListener,
    app: axum::Router,
    limits: &LimitsConfig,
    shutdown: impl Future<Output = ()>,
    drain: Drain,
    tls: Option<Arc<ServerTls>>,
    admission: Admission,
) -> std::io::Result<()> {
    let builder = builder(limits);
    let handshake_timeout = limits.header_read_timeout.get();
    // The framing watch follows heads up to the size hyper's parser accepts.
    let max_head = limits
        .max_header_bytes
        .as_usize()
        .saturating_mul(2)
        .max(8192);
    let max_headers = limits.max_headers.saturating_mul(2);
    let graceful = GracefulShutdown::new();
    // Upgraded sockets outlive hyper's connections: they are told when the drain starts, and
    // the drain waits for them too (every receiver gone: the connections and their sockets).
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let accept = |accepted: std::io::Result<(TcpStream, SocketAddr)>| {
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: keep serving.
                tracing::warn!(error = %e, "accept failed");
                return false;
            }
        };
        let open = match admission.admit(&drain.readiness, peer.ip()) {
            Ok(open) => open,
            Err(why) => {
                // Closed at once; the open connections go on being served.
                tracing::debug!(%peer, reason = ?why, "connection refused");
                drop(stream);
                return true;
            }
        };
        let _ = stream.set_nodelay(true);
        match &tls {
            None => {
                let (io, framing) = Watched::new(stream, max_head, max_headers);
                // The connection's place under the limits: released when the connection and
                // every upgraded socket of it are gone.
                let hold = ConnectionHold(Arc::new(open));
                let svc = TowerToHyperService::new(Stamped::new(
                    &app,
                    peer,
                    None,
                    framing,
                    hold.clone(),
                    ShuttingDown(stopping.clone()),
                ));
                let conn = builder
                    .serve_connection_with_upgrades(TokioIo::new(io), svc)
                    .into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _open = hold;
                    if let Err(e) = conn.await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
            Some(tls) => {
                let (tls, builder, watcher) = (tls.clone(), builder.clone(), graceful.watcher());
                let app = app.clone();
                let hold = ConnectionHold(Arc::new(open));
                let stopping = ShuttingDown(stopping.clone());
                tokio::spawn(async move {
                    let _open = hold.clone();
                    let (io, certs) = match tls.accept(stream, handshake_timeout).await {
                        Ok(accepted) => accepted,
                        Err(e) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                    };
                    let (io, framing) = Watched::new(io, max_head, max_headers);
                    let svc = TowerToHyperService::new(Stamped::new(
                        &app, peer, certs, framing, hold, stopping,
                    ));
                    let conn = builder
                        .serve_connection_with_upgrades(TokioIo::new(io), svc)
                        .into_owned();
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
        }
        true
    };
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if !accept(accepted) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            () = &mut shutdown => break,
        }
    }
    drain.readiness.set_draining();
    if !drain.delay.is_zero() {
        tracing::info!(delay = ?drain.delay, "not ready any more; still accepting during the drain delay");
        let mut delay = std::pin::pin!(tokio::time::sleep(drain.delay));
        loop {
            tokio::select! {
                accepted = listener.accept() => { accept(accepted); }
                () = &mut delay => break,
            }
        }
    }
    drop(listener);
    tracing::info!(connections = graceful.count(), "draining");
    drop(stopping);
    let _ = stop.send(true);
    let all_gone = async {
        graceful.shutdown().await;
        stop.closed().await;
    };
    if tokio::time::timeout(drain.grace, all_gone).await.is_err() {
        tracing::warn!("drain grace period over; closing remaining connections");
    }
    Ok(())
}

/// The app, stamping every request of one connection with what the connection knows: the
/// peer's address (`ConnectInfo<SocketAddr>`), over TLS the client's verified certificates,
/// and [`AmbiguousFraming`] on the request the framing watch found ambiguous.
#[derive(Clone)]
struct Stamped {
    app: axum::Router,
    peer: SocketAddr,
    certs: Option<PeerCertificates>,
    framing: Arc<Framing>,
    hold: ConnectionHold,
    stopping: ShuttingDown,
}

impl Stamped {
    fn new(
        app: &axum::Router,
        peer: SocketAddr,
        certs: Option<PeerCertificates>,
        framing: Arc<Framing>,
        hold: ConnectionHold,
        stopping: ShuttingDown,
    ) -> Self {
        Self {
            app: app.clone(),
            peer,
            certs,
            framing,
            hold,
            stopping,
        }
    }
}

impl tower::Service<http::Request<hyper::body::Incoming>> for Stamped {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = <axum::Router as tower::Service<http::Request<hyper::body::Incoming>>>::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        tower::Service::<http::Request<hyper::body::Incoming>>::poll_ready(&mut self.app, cx)
    }

    fn call(&mut self, mut req: http::Request<hyper::body::Incoming>) -> Self::Future {
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(self.peer));
        req.extensions_mut().insert(self.hold.clone());
        req.extensions_mut().insert(self.stopping.clone());
        if let Some(certs) = &self.certs {
            req.extensions_mut().insert(certs.clone());
        }
        if self.framing.next_is_ambiguous() {
            req.extensions_mut().insert(AmbiguousFraming);
        }
        self.app.call(req)
    }
}
