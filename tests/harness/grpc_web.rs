//! A small gRPC-Web client for the tests, written from the protocol (PROTOCOL-WEB.md), not from
//! the gateway's codec: length-prefixed frames in, binary or base64 text; data frames and the
//! trailer frame out, or a trailers-only answer (the status in the headers).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use percent_encoding::percent_decode_str;
use reqwest::header::HeaderMap;

use crate::TestEnv;

/// Binary (`application/grpc-web+proto`) or text (`application/grpc-web-text`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebMode {
    /// Frames as bytes.
    Binary,
    /// Frames as base64.
    Text,
}

impl WebMode {
    /// The request's content type.
    pub fn content_type(self) -> &'static str {
        match self {
            WebMode::Binary => "application/grpc-web+proto",
            WebMode::Text => "application/grpc-web-text",
        }
    }
}

/// One frame: flag, 4-byte big-endian length, payload.
pub fn frame(flag: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![flag];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The body of a call sending `message` in `mode`.
pub fn request_body(message: &impl prost::Message, mode: WebMode) -> Vec<u8> {
    let framed = frame(0x00, &message.encode_to_vec());
    match mode {
        WebMode::Binary => framed,
        WebMode::Text => STANDARD.encode(framed).into_bytes(),
    }
}

/// A gRPC-Web answer, read whole.
#[derive(Debug)]
pub struct WebReply {
    /// The HTTP status (200 for every gRPC outcome).
    pub http: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The payloads of the data frames, in order.
    pub messages: Vec<Bytes>,
    /// The trailers: from the trailer frame, or from the headers of a trailers-only answer.
    pub trailers: Vec<(String, String)>,
    /// Whether the answer was trailers-only (no body, the status in the headers).
    pub trailers_only: bool,
    /// The raw body.
    pub body: Bytes,
}

impl WebReply {
    /// A trailer's value ("" when absent).
    pub fn trailer(&self, name: &str) -> &str {
        self.trailers
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// `grpc-status` (panics when there is none).
    pub fn code(&self) -> i32 {
        self.trailer("grpc-status")
            .parse()
            .unwrap_or_else(|_| panic!("no grpc-status: {self:?}"))
    }

    /// `grpc-message`, percent-decoded.
    pub fn message(&self) -> String {
        percent_decode_str(self.trailer("grpc-message"))
            .decode_utf8_lossy()
            .into_owned()
    }

    /// The data frames decoded as `T`.
    pub fn decode<T: prost::Message + Default>(&self) -> Vec<T> {
        self.messages
            .iter()
            .map(|m| T::decode(m.clone()).expect("a data frame holds a message"))
            .collect()
    }

    /// Asserts the call failed with `code` and a message containing `fragment`, before any
    /// message (trailers-only).
    pub fn assert_status(&self, code: i32, fragment: &str) {
        assert_eq!(self.http, 200, "{self:?}");
        assert_eq!(self.code(), code, "{}: {self:?}", self.message());
        assert!(
            self.message().contains(fragment),
            "{:?} does not contain {fragment:?}",
            self.message()
        );
        assert!(self.messages.is_empty(), "{self:?}");
    }
}

/// Decodes a text body: base64 chunks one after the other, each padded.
fn decode_text(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chunk = Vec::new();
    for group in body.chunks(4) {
        chunk.extend_from_slice(group);
        if group.contains(&b'=') {
            out.extend(STANDARD.decode(&chunk).expect("a padded base64 chunk"));
            chunk.clear();
        }
    }
    if !chunk.is_empty() {
        out.extend(STANDARD.decode(&chunk).expect("a base64 chunk"));
    }
    out
}

/// Parses an answer's body into data frames and the trailer frame's header block.
pub fn parse_body(body: &[u8], text: bool) -> (Vec<Bytes>, Vec<(String, String)>) {
    let bytes = if text {
        decode_text(body)
    } else {
        body.to_vec()
    };
    let mut messages = Vec::new();
    let mut trailers = Vec::new();
    let mut at = 0;
    let mut seen_trailer = false;
    while at < bytes.len() {
        assert!(!seen_trailer, "a frame after the trailer frame: {bytes:?}");
        assert!(at + 5 <= bytes.len(), "a cut frame header: {bytes:?}");
        let flag = bytes[at];
        let len = u32::from_be_bytes(bytes[at + 1..at + 5].try_into().unwrap()) as usize;
        let payload = &bytes[at + 5..at + 5 + len];
        at += 5 + len;
        if flag & 0x80 != 0 {
            seen_trailer = true;
            let block = std::str::from_utf8(payload).expect("a text header block");
            for line in block.split("\r\n").filter(|l| !l.is_empty()) {
                let (name, value) = line.split_once(':').expect("name: value");
                trailers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        } else {
            assert_eq!(flag, 0, "an uncompressed data frame");
            messages.push(Bytes::copy_from_slice(payload));
        }
    }
    (messages, trailers)
}

impl TestEnv {
    /// Calls `path` (`/package.Service/Method`) over gRPC-Web with `message`, with extra
    /// request headers.
    pub async fn grpc_web(
        &self,
        path: &str,
        message: &impl prost::Message,
        mode: WebMode,
        headers: &[(&str, &str)],
    ) -> WebReply {
        self.grpc_web_raw(path, request_body(message, mode), mode, headers)
            .await
    }

    /// Sends `body` as it is to `path` with the content type of `mode`.
    pub async fn grpc_web_raw(
        &self,
        path: &str,
        body: Vec<u8>,
        mode: WebMode,
        headers: &[(&str, &str)],
    ) -> WebReply {
        let mut req = self
            .client
            .post(self.url(path))
            .header("content-type", mode.content_type())
            .header("x-grpc-web", "1")
            .body(body);
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        let resp = req.send().await.expect("request sent");
        let http = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.expect("body read");
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let text = content_type.starts_with("application/grpc-web-text");
        let (messages, trailers, trailers_only) =
            if !content_type.starts_with("application/grpc-web") {
                // Not a gRPC-Web answer at all (another door's): nothing to parse.
                (Vec::new(), Vec::new(), false)
            } else if body.is_empty() {
                let from_headers = ["grpc-status", "grpc-message", "grpc-status-details-bin"]
                    .into_iter()
                    .filter_map(|n| {
                        headers
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .map(|v| (n.to_string(), v.to_string()))
                    })
                    .collect();
                (Vec::new(), from_headers, true)
            } else {
                let (m, t) = parse_body(&body, text);
                (m, t, false)
            };
        WebReply {
            http,
            headers,
            messages,
            trailers,
            trailers_only,
            body,
        }
    }
}
