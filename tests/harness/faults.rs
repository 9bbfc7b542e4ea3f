//! Network faults between the gateway and a backend: a fault-injecting TCP proxy, and a raw
//! gRPC backend that answers whatever bytes it is given.
//!
//! [`FaultProxy`] listens on 127.0.0.1:0 and forwards each connection it accepts to its target
//! (a demo backend's socket) over real sockets; point a backend's `endpoints` at
//! [`FaultProxy::endpoint`]. It reads the HTTP/2 frames going each way (each a 9-byte header:
//! a 24-bit length, the type, the flags and a 31-bit stream id; the gateway's side starts with
//! the 24-byte client preface) to count the calls it carries and the streams the gateway
//! cancels ([`Counts`]), and to break a response at a chosen frame. The fault is switched at
//! run time with [`FaultProxy::set_fault`]:
//!
//! - [`Fault::None`]: both ways forwarded untouched.
//! - [`Fault::Latency`]: every chunk the backend sends waits that long before it is forwarded.
//! - [`Fault::ResetMidResponse`]: a response's HEADERS frame is forwarded, then half of its
//!   first DATA frame, then the connection to the gateway is reset (SO_LINGER 0, so an RST, not
//!   a FIN) and the one to the backend closed.
//! - [`Fault::TruncateFrames`]: a response is forwarded up to its trailers (the HEADERS frame
//!   with END_STREAM after its DATA), then half of the trailers frame, then the connection to
//!   the gateway is closed (a FIN in the middle of a frame).
//! - [`Fault::NoTrailers`]: a response is forwarded, but its trailers frame (the one carrying
//!   `grpc-status`) is replaced by an empty DATA frame ending the stream: the body ends cleanly
//!   without a status. A GOAWAY follows, so the gateway's next call opens a new connection: the
//!   dropped frame may have added entries to the backend's HPACK table that the gateway never
//!   saw.
//! - [`Fault::BlackHole`]: the connection never reaches the backend; what the gateway sends is
//!   read (and counted) and discarded, and nothing is ever answered.
//! - [`Fault::Garbage`]: the connection never reaches the backend; its first call is answered
//!   with bytes that are not HTTP/2 (an HTTP/1.1 status line, then pseudo-random bytes), and
//!   what the gateway sends is read and discarded.
//!
//! The response faults (`Latency`, `ResetMidResponse`, `TruncateFrames`, `NoTrailers`) apply to
//! open connections too, from the next chunk the backend sends. The connection faults
//! (`BlackHole`, `Garbage`) apply to the connections accepted while they are set: an open
//! connection goes on forwarding (set them before the gateway's first call, or break the open
//! connection with a response fault first).
//!
//! [`raw_grpc_backend`] is the other kind of faulty backend: a real h2c server whose every
//! answer is the same reply message bytes, whatever the method.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// What the proxy does to the traffic between the gateway and the backend (see the module
/// documentation for each).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    /// Forward untouched.
    #[default]
    None,
    /// Hold every chunk from the backend this long before forwarding it.
    Latency(Duration),
    /// Reset the connection in the middle of a response's first DATA frame.
    ResetMidResponse,
    /// Close the connection (FIN) in the middle of a response's trailers frame.
    TruncateFrames,
    /// Replace a response's trailers by an empty DATA frame ending the stream, then GOAWAY.
    NoTrailers,
    /// New connections are accepted, read and never answered.
    BlackHole,
    /// New connections answer their first call with bytes that are not HTTP/2.
    Garbage,
}

/// What the proxy has seen so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections open now (accepted and not closed yet).
    pub open: u64,
    /// Calls the gateway started (HEADERS frames opening a stream).
    pub calls: u64,
    /// Streams the gateway cancelled (RST_STREAM frames it sent).
    pub cancels: u64,
}

/// A fault-injecting TCP proxy on 127.0.0.1 (see the module documentation). Stops, and closes
/// every connection it holds, when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

struct Shared {
    target: SocketAddr,
    fault: Mutex<Fault>,
    accepted: AtomicU64,
    open: AtomicU64,
    calls: AtomicU64,
    cancels: AtomicU64,
    /// Woken whenever a count changes.
    changed: Notify,
}

impl Shared {
    fn fault(&self) -> Fault {
        *self.fault.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn bump(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_waiters();
    }
}

/// Counts a connection as open while it lives.
struct OpenGuard(Arc<Shared>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
        self.0.changed.notify_waiters();
    }
}

impl FaultProxy {
    /// A proxy to `target`, forwarding untouched until a fault is set.
    pub async fn start(target: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fault proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let shared = Arc::new(Shared {
            target,
            fault: Mutex::new(Fault::None),
            accepted: AtomicU64::new(0),
            open: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            cancels: AtomicU64::new(0),
            changed: Notify::new(),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        FaultProxy {
            addr,
            shared,
            accept,
        }
    }

    /// `http://127.0.0.1:PORT`, for a backend's `endpoints`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Switches the fault (see the module documentation for when it applies).
    pub fn set_fault(&self, fault: Fault) {
        *self
            .shared
            .fault
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = fault;
    }

    /// What it has seen so far.
    pub fn counts(&self) -> Counts {
        let s = &self.shared;
        Counts {
            accepted: s.accepted.load(Ordering::SeqCst),
            open: s.open.load(Ordering::SeqCst),
            calls: s.calls.load(Ordering::SeqCst),
            cancels: s.cancels.load(Ordering::SeqCst),
        }
    }

    /// Waits (10 seconds at most, then panics naming `what`) until `ready` holds for the
    /// counts, and returns them.
    pub async fn wait_for(&self, what: &str, ready: impl Fn(&Counts) -> bool) -> Counts {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let counts = self.counts();
            if ready(&counts) {
                return counts;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                panic!("the proxy never saw {what}; it has {counts:?}");
            }
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // The accept loop owns the connections' tasks: aborting it aborts them.
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                shared.open.fetch_add(1, Ordering::SeqCst);
                shared.bump(&shared.accepted);
                let guard = OpenGuard(shared.clone());
                conns.spawn(async move {
                    let shared = guard.0.clone();
                    serve(client, &shared).await;
                    drop(guard);
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// How a connection's forwarding ended.
enum End {
    /// One side closed (or failed): close both.
    Closed,
    /// Reset the connection to the gateway.
    Reset,
}

async fn serve(mut client: TcpStream, shared: &Shared) {
    let _ = client.set_nodelay(true);
    match shared.fault() {
        Fault::BlackHole => {
            let (mut from, _) = client.split();
            upstream(&mut from, Sink::<TcpStream>::Discard, shared).await;
        }
        Fault::Garbage => {
            let (mut from, mut to) = client.split();
            upstream(&mut from, Sink::Garbage(&mut to), shared).await;
        }
        _ => {
            let Ok(mut backend) = TcpStream::connect(shared.target).await else {
                return;
            };
            let _ = backend.set_nodelay(true);
            let end = {
                let (mut cr, mut cw) = client.split();
                let (mut br, mut bw) = backend.split();
                let up = upstream(&mut cr, Sink::Forward(&mut bw), shared);
                let down = downstream(&mut br, &mut cw, shared);
                tokio::pin!(up, down);
                tokio::select! {
                    end = &mut down => {
                        if let End::Closed = end {
                            // Closed with a FIN: read what the gateway still sends until it
                            // closes too (closing a socket with unread bytes would reset it).
                            let _ = tokio::time::timeout(Duration::from_secs(5), &mut up).await;
                        }
                        end
                    }
                    () = &mut up => {
                        // The gateway closed its side (passed on to the backend as a FIN):
                        // let the backend finish.
                        down.await
                    }
                }
            };
            if let End::Reset = end {
                let _ = client.set_zero_linger();
            }
        }
    }
}

/// An HTTP/1.1 status line and 4 KiB of pseudo-random bytes.
fn garbage() -> Vec<u8> {
    let mut out = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n".to_vec();
    let mut x: u32 = 0x2545_f491;
    for _ in 0..4096 {
        // xorshift32
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out.push(x.to_le_bytes()[0]);
    }
    out
}

/// The HTTP/2 client preface, before the gateway's first frame.
const PREFACE_LEN: usize = 24;

/// Frame types and flags this proxy looks at.
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

/// A frame header.
#[derive(Clone, Copy, Debug)]
struct Head {
    len: usize,
    kind: u8,
    flags: u8,
    stream: u32,
}

impl Head {
    fn parse(b: &[u8]) -> Head {
        Head {
            len: (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]),
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        }
    }

    fn write(self, out: &mut BytesMut) {
        let len = u32::try_from(self.len)
            .expect("a frame length")
            .to_be_bytes();
        out.put_slice(&len[1..]);
        out.put_u8(self.kind);
        out.put_u8(self.flags);
        out.put_u32(self.stream);
    }
}

/// Where [`upstream`] puts what the gateway sends.
enum Sink<'a, W> {
    /// To the backend.
    Forward(&'a mut W),
    /// Nowhere (a black hole).
    Discard,
    /// Nowhere; the first call is answered with [`garbage`] on this, the gateway's side.
    Garbage(&'a mut W),
}

/// Reads what the gateway sends into `sink`, counting the calls it starts and the streams it
/// cancels; when the gateway closes its side, closes the backend's write side.
async fn upstream<R, W>(from: &mut R, mut sink: Sink<'_, W>, shared: &Shared)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut frames = Requests::default();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let called = frames.feed(&buf[..n], shared);
        match &mut sink {
            Sink::Forward(to) => {
                if to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
            Sink::Discard => {}
            Sink::Garbage(to) => {
                if called {
                    let _ = to.write_all(&garbage()).await;
                    sink = Sink::Discard;
                }
            }
        }
    }
    if let Sink::Forward(to) = sink {
        let _ = to.shutdown().await;
    }
}

/// Follows the frames the gateway sends (after its preface) without holding them.
struct Requests {
    /// Preface bytes still to skip.
    preface: usize,
    /// The frame header being read.
    head: Vec<u8>,
    /// Payload bytes of the current frame still to skip.
    skip: usize,
    /// The highest stream the gateway opened.
    last_stream: u32,
}

impl Default for Requests {
    fn default() -> Self {
        Requests {
            preface: PREFACE_LEN,
            head: Vec::with_capacity(9),
            skip: 0,
            last_stream: 0,
        }
    }
}

impl Requests {
    /// Reads `data`, counting calls and cancellations in `shared`; whether a call started.
    fn feed(&mut self, mut data: &[u8], shared: &Shared) -> bool {
        let mut called = false;
        while !data.is_empty() {
            let take = if self.preface > 0 {
                let k = self.preface.min(data.len());
                self.preface -= k;
                k
            } else if self.skip > 0 {
                let k = self.skip.min(data.len());
                self.skip -= k;
                k
            } else {
                let k = (9 - self.head.len()).min(data.len());
                self.head.extend_from_slice(&data[..k]);
                if self.head.len() == 9 {
                    let h = Head::parse(&self.head);
                    self.head.clear();
                    self.skip = h.len;
                    if h.kind == HEADERS && h.stream > self.last_stream {
                        self.last_stream = h.stream;
                        called = true;
                        shared.bump(&shared.calls);
                    } else if h.kind == RST_STREAM && h.stream != 0 {
                        shared.bump(&shared.cancels);
                    }
                }
                k
            };
            data = &data[take..];
        }
        called
    }
}

/// Where responses stand on one connection, for the response faults.
#[derive(Default)]
struct Responses {
    /// Streams whose response headers went through.
    started: std::collections::HashSet<u32>,
    /// A stream whose trailers were dropped without END_HEADERS: its CONTINUATION frames are
    /// dropped too.
    dropping: Option<u32>,
}

/// What to do with one frame from the backend.
enum Act {
    Forward,
    Drop,
    /// Send these bytes instead.
    Replace(BytesMut),
    /// Send this many bytes of the frame, then reset the connection.
    CutAndReset(usize),
    /// Send this many bytes of the frame, then close the connection.
    CutAndClose(usize),
}

impl Responses {
    fn act(&mut self, fault: Fault, h: Head) -> Act {
        if h.stream == 0 {
            return Act::Forward;
        }
        if h.kind == CONTINUATION && self.dropping == Some(h.stream) {
            if h.flags & END_HEADERS != 0 {
                self.dropping = None;
            }
            return Act::Drop;
        }
        let ends = h.flags & END_STREAM != 0 && matches!(h.kind, DATA | HEADERS);
        let started = self.started.contains(&h.stream);
        if ends {
            self.started.remove(&h.stream);
        }
        match (h.kind, fault) {
            (HEADERS, _) if !started => {
                if !ends {
                    self.started.insert(h.stream);
                }
                Act::Forward
            }
            (DATA, Fault::ResetMidResponse) if started => Act::CutAndReset(9 + h.len / 2),
            (HEADERS, Fault::TruncateFrames) => Act::CutAndClose(9 + h.len / 2),
            (HEADERS, Fault::NoTrailers) => {
                if h.flags & END_HEADERS == 0 {
                    self.dropping = Some(h.stream);
                }
                let mut out = BytesMut::new();
                Head {
                    len: 0,
                    kind: DATA,
                    flags: END_STREAM,
                    stream: h.stream,
                }
                .write(&mut out);
                // GOAWAY: the last stream the gateway may count on, NO_ERROR.
                Head {
                    len: 8,
                    kind: GOAWAY,
                    flags: 0,
                    stream: 0,
                }
                .write(&mut out);
                out.put_u32(h.stream);
                out.put_u32(0);
                Act::Replace(out)
            }
            _ => Act::Forward,
        }
    }
}

/// Forwards what the backend sends to the gateway, frame by frame, under the current fault.
async fn downstream<R, W>(from: &mut R, to: &mut W, shared: &Shared) -> End
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = BytesMut::with_capacity(32 * 1024);
    let mut responses = Responses::default();
    loop {
        match from.read_buf(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return End::Closed;
            }
            Ok(_) => {}
        }
        let fault = shared.fault();
        if let Fault::Latency(d) = fault {
            tokio::time::sleep(d).await;
        }
        let mut out = BytesMut::new();
        while buf.len() >= 9 {
            let h = Head::parse(&buf[..9]);
            if buf.len() < 9 + h.len {
                break;
            }
            let frame = buf.split_to(9 + h.len);
            match responses.act(fault, h) {
                Act::Forward => out.extend_from_slice(&frame),
                Act::Drop => {}
                Act::Replace(bytes) => out.extend_from_slice(&bytes),
                Act::CutAndReset(n) => {
                    out.extend_from_slice(&frame[..n]);
                    let _ = to.write_all(&out).await;
                    let _ = to.flush().await;
                    return End::Reset;
                }
                Act::CutAndClose(n) => {
                    out.extend_from_slice(&frame[..n]);
                    let _ = to.write_all(&out).await;
                    let _ = to.shutdown().await;
                    return End::Closed;
                }
            }
        }
        if !out.is_empty() && to.write_all(&out).await.is_err() {
            return End::Closed;
        }
        buf.reserve(16 * 1024);
    }
}

/// Waits until `ready` holds, asking again every 10ms; panics naming `what` after 10 seconds.
pub async fn wait_until(what: &str, mut ready: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !ready().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited 10s for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Starts an h2c backend (axum) that answers every call, whatever the method, with `payload`
/// as its reply message, framed and trailed as gRPC (`grpc-status: 0`); returns
/// `http://127.0.0.1:PORT`. It serves until the test's runtime ends.
pub async fn raw_grpc_backend(payload: &'static [u8]) -> String {
    use axum::body::Body;
    use http_body_util::StreamBody;

    let app = axum::Router::new().fallback(move || async move {
        let mut frame = vec![0u8];
        frame.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
        frame.extend_from_slice(payload);
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        let frames = futures::stream::iter([
            Ok::<_, std::convert::Infallible>(http_body::Frame::data(bytes::Bytes::from(frame))),
            Ok(http_body::Frame::trailers(trailers)),
        ]);
        http::Response::builder()
            .header("content-type", "application/grpc")
            .body(Body::new(StreamBody::new(frames)))
            .unwrap()
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}
