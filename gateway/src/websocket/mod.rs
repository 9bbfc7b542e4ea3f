//! Streaming methods over WebSocket: a browser's client-streaming, bidirectional (or
//! server-streaming) call, one WebSocket per call, JSON messages both ways.
//!
//! What the ingress needs to choose the door lives here ([`is_call`]), with the wire
//! protocol, pure and tested alone: the client's frames ([`ClientFrame`]), the gateway's
//! ([`result_frame`], [`status_frame`]) and the close code of a final status ([`close_of`]).
//! The door itself, the session that moves messages between the socket and the call, is
//! [`door`].
//!
//! The protocol (the README's "WebSocket streaming" section says it for clients):
//! - client -> gateway: each text frame is one request message as proto3 JSON (always a JSON
//!   object); an empty (or all-whitespace) text frame is the half-close: no message is ever
//!   empty, so it cannot be mistaken for one. A Close frame before the final status cancels
//!   the call. Binary frames are refused.
//! - gateway -> client: each reply message as `{"result": MESSAGE}`, then one
//!   `{"status": STATUS}` (a `google.rpc.Status`, code 0 for OK), then a Close frame: 1000
//!   for OK, `4000 + code` for an error, the code's name as the reason.

pub mod door;

use http::{HeaderMap, Method, header};
use tonic::Code;

use crate::error::{StatusBody, code_name};
use crate::grpcweb::method_of_path;

/// Whether a request asks to open a WebSocket call: `GET` of a gRPC method path
/// (`/package.Service/Method`) with `Upgrade: websocket`.
pub fn is_call(method: &Method, path: &str, headers: &HeaderMap) -> bool {
    method == Method::GET
        && headers
            .get_all(header::UPGRADE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("websocket"))
            })
        && method_of_path(path).is_some()
}

/// What a client's text frame is.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientFrame<'a> {
    /// A request message, as JSON.
    Message(&'a str),
    /// The end of the client's messages.
    HalfClose,
}

impl<'a> ClientFrame<'a> {
    /// The meaning of a text frame.
    pub fn of(text: &'a str) -> Self {
        if text.trim().is_empty() {
            ClientFrame::HalfClose
        } else {
            ClientFrame::Message(text)
        }
    }
}

/// A reply message's frame: `{"result": MESSAGE}`.
pub fn result_frame(json: &[u8]) -> String {
    let mut out = String::with_capacity(json.len() + 11);
    out.push_str("{\"result\":");
    out.push_str(&String::from_utf8_lossy(json));
    out.push('}');
    out
}

/// The final status frame: `{"status": STATUS}`.
pub fn status_frame(status: &StatusBody) -> String {
    format!("{{\"status\":{status}}}")
}

/// The final status of a call that succeeded.
pub fn ok_status() -> StatusBody {
    StatusBody {
        code: 0,
        message: String::new(),
        details: Vec::new(),
    }
}

/// The Close frame's code and reason for a final gRPC status code: 1000 (normal closure) for
/// OK, `4000 + code` otherwise (4000-4999 is the range RFC 6455 leaves to applications), with
/// the code's name (`INVALID_ARGUMENT`) as the reason: short, and nothing from the message.
pub fn close_of(code: i32) -> (u16, &'static str) {
    if code == 0 {
        return (1000, "");
    }
    let code = Code::from_i32(code);
    (4000 + code as u16, code_name(code))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn an_upgrade_of_a_method_path_is_a_call() {
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, "WebSocket".parse().unwrap());
        assert!(is_call(&Method::GET, "/demo.v1.ChatService/Chat", &h));
        assert!(!is_call(&Method::POST, "/demo.v1.ChatService/Chat", &h));
        assert!(!is_call(&Method::GET, "/v1/users/1", &h));
        assert!(!is_call(
            &Method::GET,
            "/demo.v1.ChatService/Chat",
            &HeaderMap::new()
        ));
        h.insert(header::UPGRADE, "h2c".parse().unwrap());
        assert!(!is_call(&Method::GET, "/demo.v1.ChatService/Chat", &h));
    }

    #[test]
    fn an_empty_frame_is_the_half_close_and_anything_else_a_message() {
        assert_eq!(ClientFrame::of(""), ClientFrame::HalfClose);
        assert_eq!(ClientFrame::of(" \n"), ClientFrame::HalfClose);
        assert_eq!(ClientFrame::of("{}"), ClientFrame::Message("{}"));
        // Not JSON of a message, but not a half-close either: it fails as bad JSON.
        assert_eq!(ClientFrame::of("null"), ClientFrame::Message("null"));
    }

    #[test]
    fn frames_and_close_codes() {
        assert_eq!(result_frame(br#"{"a":1}"#), r#"{"result":{"a":1}}"#);
        assert_eq!(
            status_frame(&ok_status()),
            r#"{"status":{"code":0,"message":"","details":[]}}"#
        );
        assert_eq!(close_of(0), (1000, ""));
        assert_eq!(close_of(3), (4003, "INVALID_ARGUMENT"));
        assert_eq!(close_of(1), (4001, "CANCELLED"));
        assert_eq!(close_of(16), (4016, "UNAUTHENTICATED"));
    }
}
