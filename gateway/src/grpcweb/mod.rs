//! gRPC-Web: browser gRPC clients (grpc-web, Connect's grpc-web mode) calling the backends'
//! methods on the client port, through the same ingress and policy chain as every door.
//!
//! What the protocol needs outside the door lives here, in the core, so the ingress can choose
//! the door and the error renderer can answer in it: which content types are gRPC-Web
//! ([`WebContentType`]), which method a path names ([`method_of_path`]), and the wire format of
//! its bodies ([`frame`]). The door itself, the handler, is [`door`].

pub mod door;
pub mod frame;

use http::{HeaderMap, header};

/// The content type of a gRPC-Web request, as the client sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WebContentType {
    /// How the body is carried: binary, or base64 text (`-text`).
    pub mode: Mode,
    /// Whether the messages are protobuf (`+proto` or no suffix), the only codec served.
    pub proto: bool,
}

/// How a gRPC-Web body is carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `application/grpc-web[+proto]`: frames as bytes.
    Binary,
    /// `application/grpc-web-text[+proto]`: every frame base64-encoded (for clients that can
    /// only handle text bodies).
    Text,
}

impl WebContentType {
    /// The gRPC-Web content type of a `Content-Type` value (parameters ignored, case
    /// insensitive); `None` when it is not gRPC-Web.
    pub fn parse(value: &str) -> Option<Self> {
        const PREFIX: &str = "application/grpc-web";
        let essence = value.split(';').next().unwrap_or("").trim();
        // Compared ignoring ASCII case, without a lower-cased copy (every request asks).
        let head = essence.get(..PREFIX.len())?;
        if !head.eq_ignore_ascii_case(PREFIX) {
            return None;
        }
        let rest = essence.get(PREFIX.len()..)?;
        let (mode, codec) = match rest.get(..5) {
            Some(t) if t.eq_ignore_ascii_case("-text") => (Mode::Text, rest.get(5..)?),
            _ => (Mode::Binary, rest),
        };
        let proto = match codec {
            "" => true,
            c if c.eq_ignore_ascii_case("+proto") => true,
            other if other.starts_with('+') => false,
            _ => return None,
        };
        Some(Self { mode, proto })
    }

    /// The gRPC-Web content type of a request's headers, if it has one.
    pub fn of(headers: &HeaderMap) -> Option<Self> {
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(Self::parse)
    }

    /// The content type of the answer: the request's family, with the protobuf codec named.
    pub fn reply_content_type(self) -> &'static str {
        match self.mode {
            Mode::Binary => "application/grpc-web+proto",
            Mode::Text => "application/grpc-web-text+proto",
        }
    }
}

/// The full name of the method a gRPC path names: `/demo.v1.UserService/GetUser` ->
/// `demo.v1.UserService.GetUser`; `None` for a path of any other shape.
pub fn method_of_path(path: &str) -> Option<String> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    let ident = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            && !s.starts_with('.')
            && !s.ends_with('.')
    };
    (ident(service) && ident(method) && !method.contains('.'))
        .then(|| format!("{service}.{method}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_four_content_types_and_no_others() {
        let binary = Some(WebContentType {
            mode: Mode::Binary,
            proto: true,
        });
        let text = Some(WebContentType {
            mode: Mode::Text,
            proto: true,
        });
        assert_eq!(WebContentType::parse("application/grpc-web"), binary);
        assert_eq!(WebContentType::parse("application/grpc-web+proto"), binary);
        assert_eq!(
            WebContentType::parse("Application/GRPC-Web+Proto; charset=x"),
            binary
        );
        assert_eq!(WebContentType::parse("application/grpc-web-text"), text);
        assert_eq!(
            WebContentType::parse("APPLICATION/GRPC-WEB-Text+PROTO"),
            text
        );
        assert_eq!(
            WebContentType::parse("application/grpc-web-text+proto"),
            text
        );
        assert_eq!(
            WebContentType::parse("application/grpc-web+json"),
            Some(WebContentType {
                mode: Mode::Binary,
                proto: false
            })
        );
        for other in [
            "application/json",
            "application/grpc",
            "application/grpc+proto",
            "application/grpc-webx",
            "application/grpc-web-textual",
            "",
        ] {
            assert_eq!(WebContentType::parse(other), None, "{other}");
        }
    }

    #[test]
    fn paths_name_methods() {
        assert_eq!(
            method_of_path("/demo.v1.UserService/GetUser").as_deref(),
            Some("demo.v1.UserService.GetUser")
        );
        assert_eq!(method_of_path("/Svc/M").as_deref(), Some("Svc.M"));
        for bad in [
            "",
            "/",
            "/demo.v1.UserService",
            "/demo.v1.UserService/",
            "//GetUser",
            "/a/b/c",
            "/a/b.c",
            "/v1/users/1",
            "/.a/b",
            "/a b/c",
        ] {
            assert_eq!(method_of_path(bad), None, "{bad}");
        }
    }
}
