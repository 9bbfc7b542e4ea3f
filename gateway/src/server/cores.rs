//! One runtime per core (`runtime.mode: per_core`): N threads, each with a single-threaded tokio
//! runtime and its own listener on the same address.
//!
//! The listeners share the port through `SO_REUSEPORT`: the kernel hashes each new connection
//! to one of them, and the connection stays on that thread from accept to close, with its
//! requests' backend calls going over the core's own backend connections
//! ([`crate::cores`]). No work stealing and no wake-ups across threads: on the peer benchmark
//! this is what made the difference (README, Performance). Everything else is shared: the
//! snapshot and its reloads, the connection limits (one [`Admission`]), readiness and drain,
//! rate-limit counts, the cache, metrics. The price is balance: connections, not requests, are
//! spread, so a few long-lived busy connections can load one core more than another.
//!
//! [`Cores::bind`] starts the threads and binds (so the address is known, and a port in use is
//! reported, before anything is served); [`Cores::serve`] hands them the app and runs until the
//! shutdown future resolves, then every core drains as [`super::serve_tls`] does.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{oneshot, watch};

use super::{Admission, Drain, ServerTls, serve_admitted};
use crate::config::LimitsConfig;

/// What a core is handed to start serving.
struct Start {
    app: axum::Router,
    limits: LimitsConfig,
    drain: Drain,
    tls: Option<Arc<ServerTls>>,
    admission: Admission,
    stop: watch::Receiver<bool>,
}

/// One core's thread, bound and waiting for [`Start`].
struct Core {
    start: oneshot::Sender<Start>,
    ended: oneshot::Receiver<std::io::Result<()>>,
}

/// The per-core threads and their listeners, bound but not serving yet.
pub struct Cores {
    local: SocketAddr,
    cores: Vec<Core>,
}

impl std::fmt::Debug for Cores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cores")
            .field("local", &self.local)
            .field("cores", &self.cores.len())
            .finish()
    }
}

impl Cores {
    /// Starts `cores` threads (`portico-core-1`...), each with a single-threaded runtime and a
    /// listener on `addr` (port 0: the first one picks the port, the others join it). Also
    /// reserves the cores' slots for backend channels ([`crate::cores::reserve`]): build the
    /// snapshot after this, or call that first. Dropping the result stops the threads.
    pub async fn bind(addr: SocketAddr, cores: usize) -> std::io::Result<Self> {
        let count = cores.clamp(1, crate::cores::MAX_CORES);
        crate::cores::reserve(count);
        let mut local = addr;
        let mut started = Vec::with_capacity(count);
        for core in 1..=count {
            let (bound_tx, bound_rx) = oneshot::channel();
            let (start_tx, start_rx) = oneshot::channel();
            let (ended_tx, ended_rx) = oneshot::channel();
            let at = local;
            std::thread::Builder::new()
                .name(format!("portico-core-{core}"))
                .spawn(move || run_core(core, at, bound_tx, start_rx, ended_tx))?;
            local = bound_rx
                .await
                .map_err(|_| std::io::Error::other("a core's thread ended before binding"))??;
            started.push(Core {
                start: start_tx,
                ended: ended_rx,
            });
        }
        Ok(Self {
            local,
            cores: started,
        })
    }

    /// The address the cores listen on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// How many cores serve.
    pub fn len(&self) -> usize {
        self.cores.len()
    }

    /// Always false: there is at least one core.
    pub fn is_empty(&self) -> bool {
        self.cores.is_empty()
    }

    /// Serves `app` on every core until `shutdown` resolves (or this future is dropped), then
    /// drains each as `drain` says; returns once every core has stopped, with the first error.
    /// The limits (`max_connections`, `max_connections_per_ip`) count the cores' connections
    /// together.
    pub async fn serve(
        self,
        app: axum::Router,
        limits: &LimitsConfig,
        shutdown: impl Future<Output = ()>,
        drain: Drain,
        tls: Option<Arc<ServerTls>>,
    ) -> std::io::Result<()> {
        let admission = Admission::new(limits.max_connections, limits.max_connections_per_ip);
        let (stop, stopping) = watch::channel(false);
        let mut ended = Vec::with_capacity(self.cores.len());
        for core in self.cores {
            let start = Start {
                app: app.clone(),
                limits: limits.clone(),
                drain: drain.clone(),
                tls: tls.clone(),
                admission: admission.clone(),
                stop: stopping.clone(),
            };
            if core.start.send(start).is_ok() {
                ended.push(core.ended);
            }
        }
        drop(stopping);
        shutdown.await;
        let _ = stop.send(true);
        let mut first_error = None;
        for end in ended {
            match end.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error.get_or_insert(std::io::Error::other("a core's thread panicked"));
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// The life of core `core`'s thread: a runtime, a listener on `addr` (its address sent on
/// `bound`), then, once started, serving until told to stop.
fn run_core(
    core: usize,
    addr: SocketAddr,
    bound: oneshot::Sender<std::io::Result<SocketAddr>>,
    start: oneshot::Receiver<Start>,
    ended: oneshot::Sender<std::io::Result<()>>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = bound.send(Err(e));
            return;
        }
    };
    crate::cores::enter(core);
    let served = rt.block_on(async move {
        let listener = match reuse_port_listener(addr).and_then(|l| Ok((l.local_addr()?, l))) {
            Ok((local, listener)) => {
                if bound.send(Ok(local)).is_err() {
                    return Ok(());
                }
                listener
            }
            Err(e) => {
                let _ = bound.send(Err(e));
                return Ok(());
            }
        };
        // Never started (the `Cores` was dropped): nothing to serve.
        let Ok(start) = start.await else {
            return Ok(());
        };
        let mut stop = start.stop;
        let shutdown = async move {
            // A dropped sender (the serving future dropped) stops too.
            let _ = stop.wait_for(|s| *s).await;
        };
        serve_admitted(
            listener,
            start.app,
            &start.limits,
            shutdown,
            start.drain,
            start.tls,
            start.admission,
        )
        .await
    });
    // The drain already waited for what it waits for; what is left (connections past the
    // grace) is cut here.
    rt.shutdown_timeout(Duration::from_secs(1));
    let _ = ended.send(served);
}

/// A listener on `addr` that other sockets of this process may bind too (`SO_REUSEPORT`),
/// registered with the current runtime.
fn reuse_port_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cores_share_one_port_and_a_port_in_use_is_reported() {
        let cores = Cores::bind("127.0.0.1:0".parse().unwrap(), 2)
            .await
            .unwrap();
        assert_eq!(cores.len(), 2);
        assert_ne!(cores.local_addr().port(), 0);
        // A plain listener (no SO_REUSEPORT) cannot take the port from them.
        assert!(std::net::TcpListener::bind(cores.local_addr()).is_err());
        // Nor can they take a port a plain listener holds.
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let err = Cores::bind(taken.local_addr().unwrap(), 2)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    }
}
