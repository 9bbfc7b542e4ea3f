//! HTTP/1 request framing watch: finds requests that carry both `Content-Length` and
//! `Transfer-Encoding`, the ambiguity request smuggling is built on.
//!
//! hyper serves such a request (RFC 9112 §6.3: the transfer coding wins, the length is dropped,
//! the connection closes after the answer), and the service never learns the length was there.
//! Envoy and most CDNs refuse it instead, so that a proxy in front that framed the request by
//! its length cannot be made to disagree with us about where the next request starts. This
//! module watches the bytes of a connection as hyper reads them ([`Watched`], an IO wrapper),
//! parses each request head with the same parser hyper uses (httparse), follows the body's
//! framing (a length, or chunks) to the next head, and notes which request was ambiguous
//! ([`Framing`]); the server stamps that request with [`AmbiguousFraming`] and the ingress
//! refuses it with 400 (hyper closes the connection after it).
//!
//! The watch is cheap (a head is parsed once it is complete; body bytes are skipped by count)
//! and gives up (stops watching the connection, serving it as before) on anything it does not
//! follow exactly as hyper does: an HTTP/2 preface, an upgrade, a head too large, a malformed
//! chunk. hyper refuses those requests itself or the connection stops speaking HTTP/1.
//!
//! [`AmbiguousFraming`]: crate::request::AmbiguousFraming

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::ingress::path::hex;

/// What the watch of one connection found, shared with the service stamping its requests.
#[derive(Debug, Default)]
pub(super) struct Framing {
    /// The 1-based number of the first request with both headers; 0 while there is none.
    ambiguous: AtomicU64,
    /// Requests handed to the service so far.
    served: AtomicU64,
}

impl Framing {
    /// Called once per request the service receives, in order: whether this one is the
    /// ambiguous request. HTTP/1 requests reach the service in the order their heads were read,
    /// and the head was read (through [`Watched`]) before hyper could parse it.
    pub(super) fn next_is_ambiguous(&self) -> bool {
        let n = self.served.fetch_add(1, Ordering::Relaxed) + 1;
        self.ambiguous.load(Ordering::Relaxed) == n
    }
}

/// An IO stream whose read bytes pass through a [`Scanner`].
pub(super) struct Watched<IO> {
    inner: IO,
    scanner: Scanner,
    framing: Arc<Framing>,
}

impl<IO> Watched<IO> {
    /// Watches `inner`; heads larger than `max_head` bytes stop the watch.
    pub(super) fn new(inner: IO, max_head: usize, max_headers: usize) -> (Self, Arc<Framing>) {
        let framing = Arc::new(Framing::default());
        let watched = Self {
            inner,
            scanner: Scanner::new(max_head, max_headers),
            framing: framing.clone(),
        };
        (watched, framing)
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled
            && !this.scanner.is_off()
            && let Some(n) = this.scanner.feed(&buf.filled()[before..])
        {
            this.framing.ambiguous.store(n, Ordering::Relaxed);
        }
        polled
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Where the scanner is in the byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a request head (bytes kept in `head` until it is complete).
    Head,
    /// Skipping this many bytes of a body framed by its length.
    Fixed(u64),
    /// In a chunked body.
    Chunked(Chunk),
    /// Not watching any more.
    Off,
}

/// Where the scanner is in a chunked body (RFC 9112 §7.1, as hyper reads it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Hex digits of a chunk size (`digits` read so far).
    Size { size: u64, digits: u8 },
    /// After the size: whitespace or an extension, up to the line's end.
    Extension { size: u64 },
    /// A CR ended the size line; LF expected.
    SizeLf { size: u64 },
    /// Skipping this many bytes of chunk data.
    Data(u64),
    /// CR expected after chunk data.
    DataCr,
    /// LF expected after chunk data.
    DataLf,
    /// At the start of a trailer line (an empty one ends the body).
    TrailerStart,
    /// Inside a trailer line.
    Trailer,
    /// A CR began the empty line ending the body; LF expected.
    EndLf,
}

/// Follows the requests of one HTTP/1 connection through its bytes.
#[derive(Debug)]
pub(super) struct Scanner {
    state: State,
    head: Vec<u8>,
    max_head: usize,
    max_headers: usize,
    /// Request heads completed so far.
    requests: u64,
}

impl Scanner {
    pub(super) fn new(max_head: usize, max_headers: usize) -> Self {
        Self {
            state: State::Head,
            head: Vec::new(),
            max_head,
            max_headers,
            requests: 0,
        }
    }

    /// Whether the watch ended.
    pub(super) fn is_off(&self) -> bool {
        self.state == State::Off
    }

    /// Reads the next bytes of the connection; returns the number of the request that carries
    /// both `Content-Length` and `Transfer-Encoding`, when these bytes completed its head (the
    /// watch ends there: the connection closes after that request).
    pub(super) fn feed(&mut self, mut data: &[u8]) -> Option<u64> {
        while !data.is_empty() {
            match self.state {
                State::Off => return None,
                State::Head => {
                    let (found, rest) = self.head_bytes(data);
                    if found.is_some() {
                        return found;
                    }
                    data = rest;
                }
                State::Fixed(left) => {
                    let take = usize::try_from(left).map_or(data.len(), |l| l.min(data.len()));
                    data = &data[take..];
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::Head
                    } else {
                        State::Fixed(left)
                    };
                }
                State::Chunked(chunk) => {
                    data = self.chunk_bytes(chunk, data);
                }
            }
        }
        None
    }

    /// Adds head bytes; on a complete head, decides the body's framing and returns the bytes
    /// after the head. A head that arrives whole in one read is parsed where it lies; only a
    /// head split across reads is copied.
    fn head_bytes<'a>(&mut self, data: &'a [u8]) -> (Option<u64>, &'a [u8]) {
        let had = self.head.len();
        let parsed = if had == 0 {
            parse_head(data, self.max_headers)
        } else {
            self.head.extend_from_slice(data);
            parse_head(&self.head, self.max_headers)
        };
        let (len, framing) = match parsed {
            Ok(Some(done)) => done,
            Ok(None) => {
                if had == 0 {
                    self.head.extend_from_slice(data);
                }
                if self.head.len() > self.max_head {
                    self.stop();
                }
                return (None, &[]);
            }
            Err(()) => {
                self.stop();
                return (None, &[]);
            }
        };
        self.requests += 1;
        let rest = &data[len.saturating_sub(had).min(data.len())..];
        self.head.clear();
        self.state = match framing {
            BodyFraming::Ambiguous => {
                self.stop();
                return (Some(self.requests), &[]);
            }
            BodyFraming::None | BodyFraming::Length(0) => State::Head,
            BodyFraming::Length(n) => State::Fixed(n),
            BodyFraming::Chunked => State::Chunked(Chunk::Size { size: 0, digits: 0 }),
            BodyFraming::Unknown => {
                self.stop();
                return (None, &[]);
            }
        };
        (None, rest)
    }

    /// Reads chunked-body bytes from state `chunk`; returns what follows the body when it ends
    /// within `data`, or nothing.
    fn chunk_bytes<'a>(&mut self, mut chunk: Chunk, mut data: &'a [u8]) -> &'a [u8] {
        while let Some((&b, rest)) = data.split_first() {
            if let Chunk::Data(left) = chunk {
                let take = usize::try_from(left).map_or(data.len(), |l| l.min(data.len()));
                data = &data[take..];
                let left = left - take as u64;
                chunk = if left == 0 {
                    Chunk::DataCr
                } else {
                    Chunk::Data(left)
                };
                continue;
            }
            data = rest;
            let next = match chunk {
                Chunk::Size { size, digits } => match hex(b) {
                    Some(d) if digits < 16 => Some(Chunk::Size {
                        size: size << 4 | u64::from(d),
                        digits: digits + 1,
                    }),
                    Some(_) => None,
                    None if digits == 0 => None,
                    None => match b {
                        b'\r' => Some(Chunk::SizeLf { size }),
                        b'\n' => Some(after_size(size)),
                        b';' | b' ' | b'\t' => Some(Chunk::Extension { size }),
                        _ => None,
                    },
                },
                Chunk::Extension { size } => match b {
                    b'\r' => Some(Chunk::SizeLf { size }),
                    b'\n' => Some(after_size(size)),
                    _ => Some(Chunk::Extension { size }),
                },
                Chunk::SizeLf { size } => (b == b'\n').then(|| after_size(size)),
                Chunk::Data(_) => None,
                Chunk::DataCr => match b {
                    b'\r' => Some(Chunk::DataLf),
                    b'\n' => Some(Chunk::Size { size: 0, digits: 0 }),
                    _ => None,
                },
                Chunk::DataLf => (b == b'\n').then_some(Chunk::Size { size: 0, digits: 0 }),
                Chunk::TrailerStart => match b {
                    b'\r' => Some(Chunk::EndLf),
                    b'\n' => {
                        self.state = State::Head;
                        return data;
                    }
                    _ => Some(Chunk::Trailer),
                },
                Chunk::Trailer => Some(if b == b'\n' {
                    Chunk::TrailerStart
                } else {
                    Chunk::Trailer
                }),
                Chunk::EndLf => {
                    if b == b'\n' {
                        self.state = State::Head;
                        return data;
                    }
                    None
                }
            };
            match next {
                Some(c) => chunk = c,
                None => {
                    self.stop();
                    return &[];
                }
            }
        }
        self.state = State::Chunked(chunk);
        data
    }

    fn stop(&mut self) {
        self.state = State::Off;
        self.head = Vec::new();
    }
}

/// Parses a request head as hyper does (httparse, default settings): its length and body
/// framing when complete, `None` while partial, an error when hyper would refuse it.
fn parse_head(bytes: &[u8], max_headers: usize) -> Result<Option<(usize, BodyFraming)>, ()> {
    // Most heads fit the stack; a larger table only for the rare head with more headers.
    let mut few = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut few);
    match req.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => return Ok(Some((len, BodyFraming::of(&req)))),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) if max_headers > few.len() => {}
        Err(_) => return Err(()),
    }
    let mut many = vec![httparse::EMPTY_HEADER; max_headers];
    let mut req = httparse::Request::new(&mut many);
    match req.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => Ok(Some((len, BodyFraming::of(&req)))),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(_) => Err(()),
    }
}

/// The chunk state after a size line: data, or the trailers after the last chunk.
fn after_size(size: u64) -> Chunk {
    if size == 0 {
        Chunk::TrailerStart
    } else {
        Chunk::Data(size)
    }
}

/// How a request head says its body is framed.
#[derive(Debug, PartialEq, Eq)]
enum BodyFraming {
    /// No body.
    None,
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding` ending in `chunked`.
    Chunked,
    /// Both headers.
    Ambiguous,
    /// Anything hyper refuses, or after which the connection stops speaking HTTP/1 (an
    /// upgrade, CONNECT): the watch ends.
    Unknown,
}

impl BodyFraming {
    fn of(req: &httparse::Request<'_, '_>) -> Self {
        let mut length: Option<u64> = None;
        let (mut has_length, mut coding) = (false, None::<&[u8]>);
        for h in req.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                has_length = true;
                let Some(n) = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok())
                else {
                    return Self::Unknown;
                };
                if length.is_some_and(|l| l != n) {
                    return Self::Unknown;
                }
                length = Some(n);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                coding = Some(h.value);
            } else if h.name.eq_ignore_ascii_case("upgrade") {
                return Self::Unknown;
            }
        }
        if req.method == Some("CONNECT") {
            return Self::Unknown;
        }
        match (coding, has_length) {
            (Some(_), true) => Self::Ambiguous,
            (Some(coding), false) => {
                let last = coding.rsplit(|&b| b == b',').next().unwrap_or_default();
                if last.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                    Self::Chunked
                } else {
                    Self::Unknown
                }
            }
            (None, _) => length.map_or(Self::None, Self::Length),
        }
    }
}

/// See [`super::fuzz_framing`].
#[cfg(any(test, feature = "fuzzing"))]
pub(super) fn fuzz(data: &[u8]) {
    let Some((&step, bytes)) = data.split_first() else {
        return;
    };
    let verdict = |sizes: &mut dyn Iterator<Item = usize>| {
        let mut s = Scanner::new(64 << 10, 200);
        let (mut at, mut found) = (0, None);
        while at < bytes.len() {
            let to = (at + sizes.next().unwrap_or(1).max(1)).min(bytes.len());
            if let Some(n) = s.feed(&bytes[at..to]) {
                found.get_or_insert(n);
            }
            at = to;
        }
        (found, s.requests, s.is_off())
    };
    let whole = verdict(&mut std::iter::once(bytes.len()));
    let split = verdict(&mut std::iter::repeat(usize::from(step)));
    let bytewise = verdict(&mut std::iter::repeat(1));
    assert_eq!(whole, split, "reads of {step} bytes");
    assert_eq!(whole, bytewise, "reads of 1 byte");
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn scan(bytes: &[u8]) -> (Option<u64>, Scanner) {
        let mut s = Scanner::new(64 << 10, 200);
        let found = s.feed(bytes);
        (found, s)
    }

    /// Feeds `bytes` split at every position given; the verdict must not depend on the splits.
    fn scan_split(bytes: &[u8], cuts: &[usize]) -> Option<u64> {
        let mut s = Scanner::new(64 << 10, 200);
        let mut at = 0;
        let mut found = None;
        for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
            let cut = cut.clamp(at, bytes.len());
            if let Some(n) = s.feed(&bytes[at..cut]) {
                found.get_or_insert(n);
            }
            at = cut;
        }
        found
    }

    const GET: &[u8] = b"GET /a HTTP/1.1\r\nhost: x\r\n\r\n";
    const POST_LEN: &[u8] = b"POST /a HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello";
    const POST_CHUNKED: &[u8] = b"POST /a HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\nx-trailer: 1\r\n\r\n";
    const BOTH: &[u8] = b"POST /a HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n";
    const BOTH_REVERSED: &[u8] = b"POST /a HTTP/1.1\r\nhost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n";

    #[test]
    fn both_headers_are_found_in_either_order() {
        assert_eq!(scan(BOTH).0, Some(1));
        assert_eq!(scan(BOTH_REVERSED).0, Some(1));
    }

    #[test]
    fn pipelined_requests_are_followed_through_their_bodies() {
        let stream = [GET, POST_LEN, POST_CHUNKED, GET, BOTH, GET].concat();
        let (found, s) = scan(&stream);
        assert_eq!(found, Some(5));
        assert!(s.is_off(), "the watch ends at the ambiguous request");

        let clean = [GET, POST_LEN, POST_CHUNKED, GET].concat();
        let (found, s) = scan(&clean);
        assert_eq!(found, None);
        assert_eq!(s.requests, 4);
        assert_eq!(s.state, State::Head);
        assert!(s.head.is_empty());
    }

    #[test]
    fn header_text_inside_a_body_is_not_a_head() {
        // A body that looks like a request with both headers.
        let body = BOTH;
        let head = format!(
            "POST /a HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        let stream = [head.as_bytes(), body, GET].concat();
        let (found, s) = scan(&stream);
        assert_eq!(found, None);
        assert_eq!(s.requests, 2);
        // The same inside a chunk.
        let chunked = format!(
            "POST /a HTTP/1.1\r\ntransfer-encoding: gzip, chunked\r\n\r\n{:x}\r\n",
            body.len()
        );
        let stream = [chunked.as_bytes(), body, b"\r\n0\r\n\r\n", GET].concat();
        let (found, s) = scan(&stream);
        assert_eq!(found, None);
        assert_eq!(s.requests, 2);
    }

    #[test]
    fn the_verdict_does_not_depend_on_how_reads_split_the_bytes() {
        let stream = [POST_CHUNKED, POST_LEN, GET, BOTH_REVERSED].concat();
        for a in 0..stream.len() {
            assert_eq!(scan_split(&stream, &[a]), Some(4), "cut at {a}");
        }
        // Every byte on its own.
        let cuts: Vec<usize> = (0..stream.len()).collect();
        assert_eq!(scan_split(&stream, &cuts), Some(4));
    }

    #[test]
    fn what_the_watch_does_not_follow_ends_it() {
        // HTTP/2 prior knowledge.
        let (found, s) = scan(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        assert_eq!(found, None);
        assert!(s.is_off());
        // An upgrade: the bytes after it are not HTTP/1.
        let (_, s) = scan(b"GET /ws HTTP/1.1\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n");
        assert!(s.is_off());
        // A malformed chunk, an unknown coding, a bad length.
        let (_, s) = scan(b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n");
        assert!(s.is_off());
        let (_, s) = scan(b"POST / HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\n");
        assert!(s.is_off());
        let (_, s) = scan(b"POST / HTTP/1.1\r\ncontent-length: 1, 2\r\n\r\n");
        assert!(s.is_off());
        // A chunk size past 64 bits.
        let (_, s) =
            scan(b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n11111111111111111\r\n");
        assert!(s.is_off());
        // A head larger than the bound, never completed.
        let mut s = Scanner::new(100, 20);
        s.feed(b"GET / HTTP/1.1\r\n");
        for _ in 0..10 {
            s.feed(b"x-long: aaaaaaaaaaaaaaaaaaaa\r\n");
        }
        assert!(s.is_off());
        assert!(s.head.capacity() == 0, "the kept head is released");
    }

    #[test]
    fn the_service_side_counts_requests_in_order() {
        let f = Framing::default();
        f.ambiguous.store(3, Ordering::Relaxed);
        assert!(!f.next_is_ambiguous());
        assert!(!f.next_is_ambiguous());
        assert!(f.next_is_ambiguous());
        assert!(!f.next_is_ambiguous());
    }
}
