//! The gRPC-Web wire format: length-prefixed frames (one flag byte, a 4-byte big-endian
//! length, the payload), data frames (flag `0x00`) and the trailer frame (flag `0x80`, an
//! HTTP/1-style header block), and the `-text` forms, where each frame is base64.
//!
//! Pure functions over bytes: [`request_message`] reads a request body, the rest write a
//! reply. Malformed input is a [`FrameError`] naming the problem, never a panic.

use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::{DecodePaddingMode, general_purpose};
use bytes::{BufMut, Bytes, BytesMut};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use tonic::Code;

use super::Mode;

/// The flag of a data frame.
pub const DATA: u8 = 0x00;
/// The flag bit of a compressed data frame.
pub const COMPRESSED: u8 = 0x01;
/// The flag of the trailer frame.
pub const TRAILER: u8 = 0x80;

/// What can be wrong with a gRPC-Web request body.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A `-text` body that is not base64.
    #[error("the grpc-web-text body is not valid base64 (at byte {at})")]
    Base64 {
        /// Where the bad chunk starts in the body.
        at: usize,
    },
    /// The body ends inside a frame.
    #[error("truncated gRPC-Web frame: {expected} bytes expected at byte {at}, {got} present")]
    Truncated {
        /// Where the frame (or its payload) starts in the decoded body.
        at: usize,
        /// Bytes the frame needs from there.
        expected: usize,
        /// Bytes there are.
        got: usize,
    },
    /// A frame's declared length is over the limit.
    #[error("a gRPC-Web message of {len} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// The declared length.
        len: usize,
        /// The limit (`limits.max_body_bytes`).
        limit: usize,
    },
    /// A compressed message (flag `0x01`): no `grpc-encoding` is served.
    #[error(
        "compressed gRPC-Web messages are not supported: send messages uncompressed (no grpc-encoding)"
    )]
    Compressed,
    /// A frame whose flag is neither data nor compressed data.
    #[error(
        "unexpected gRPC-Web frame flag 0x{0:02x} in a request (only message frames, 0x00, may be sent)"
    )]
    Flag(u8),
    /// No message frame at all.
    #[error("the gRPC-Web request has no message: send exactly one length-prefixed message")]
    NoMessage,
    /// More than one message, for a method that takes one.
    #[error(
        "the gRPC-Web request has {0} messages: unary and server-streaming methods take exactly one"
    )]
    SeveralMessages(usize),
}

/// Decodes a `-text` body: base64, possibly several padded chunks one after the other (a
/// client may encode each frame, or each write, on its own). A last chunk without padding is
/// accepted.
pub fn decode_text(body: &[u8]) -> Result<Vec<u8>, FrameError> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let mut out = Vec::with_capacity(body.len() / 4 * 3 + 3);
    let mut start = 0;
    while start < body.len() {
        // A chunk ends with the 4-character group that holds its padding, or with the body.
        let mut end = start;
        loop {
            let group_end = (end + 4).min(body.len());
            let padded = body[end..group_end].contains(&b'=');
            end = group_end;
            if padded || end == body.len() {
                break;
            }
        }
        LENIENT
            .decode_vec(&body[start..end], &mut out)
            .map_err(|_| FrameError::Base64 { at: start })?;
        start = end;
    }
    Ok(out)
}

/// The one message of a request body (unary and server-streaming methods take one), its
/// bytes as the client encoded them. `limit` bounds a message's declared length.
pub fn request_message(body: &[u8], mode: Mode, limit: usize) -> Result<Bytes, FrameError> {
    let decoded;
    let bytes = match mode {
        Mode::Binary => body,
        Mode::Text => {
            decoded = decode_text(body)?;
            &decoded[..]
        }
    };
    let mut messages = Vec::with_capacity(1);
    let mut at = 0;
    while at < bytes.len() {
        let header = bytes.get(at..at + 5).ok_or(FrameError::Truncated {
            at,
            expected: 5,
            got: bytes.len() - at,
        })?;
        let flag = header[0];
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        if flag & TRAILER != 0 || flag & !COMPRESSED != 0 {
            return Err(FrameError::Flag(flag));
        }
        if flag & COMPRESSED != 0 {
            return Err(FrameError::Compressed);
        }
        if len > limit {
            return Err(FrameError::TooLarge { len, limit });
        }
        let from = at + 5;
        let payload = bytes.get(from..from + len).ok_or(FrameError::Truncated {
            at: from,
            expected: len,
            got: bytes.len() - from,
        })?;
        messages.push(payload);
        at = from + len;
    }
    match messages.as_slice() {
        [] => Err(FrameError::NoMessage),
        [one] => Ok(Bytes::copy_from_slice(one)),
        many => Err(FrameError::SeveralMessages(many.len())),
    }
}

/// One frame: `flag`, the payload's length, the payload; base64 in [`Mode::Text`]. `None`
/// when the payload is over 4 GiB, which no frame can carry.
pub fn frame(flag: u8, payload: &[u8], mode: Mode) -> Option<Bytes> {
    let len = u32::try_from(payload.len()).ok()?;
    let mut buf = BytesMut::with_capacity(5 + payload.len());
    buf.put_u8(flag);
    buf.put_u32(len);
    buf.put_slice(payload);
    Some(match mode {
        Mode::Binary => buf.freeze(),
        Mode::Text => Bytes::from(STANDARD.encode(&buf)),
    })
}

/// The bytes of `grpc-message`: percent-encoded as gRPC has it (every byte outside printable
/// ASCII, and `%`).
const MESSAGE_ESCAPES: &AsciiSet = &CONTROLS.add(b'%');

/// `grpc-message`'s value for `message`.
pub fn encode_message(message: &str) -> String {
    utf8_percent_encode(message, MESSAGE_ESCAPES).to_string()
}

/// The final status of a call as gRPC-Web sends it: in the trailer frame, or (for an answer
/// without messages) as the response's headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trailers {
    /// The status code.
    pub code: Code,
    /// The status message (plain text; percent-encoded when written).
    pub message: String,
    /// `grpc-status-details-bin`: an encoded `google.rpc.Status` with the backend's details.
    pub details: Bytes,
}

impl Trailers {
    /// The trailers of a call that succeeded.
    pub fn ok() -> Self {
        Self {
            code: Code::Ok,
            message: String::new(),
            details: Bytes::new(),
        }
    }

    /// The trailers as `(name, value)` pairs: `grpc-status`, then `grpc-message` and
    /// `grpc-status-details-bin` when they are not empty.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![("grpc-status", (self.code as i32).to_string())];
        if !self.message.is_empty() {
            out.push(("grpc-message", encode_message(&self.message)));
        }
        if !self.details.is_empty() {
            out.push((
                "grpc-status-details-bin",
                general_purpose::STANDARD_NO_PAD.encode(&self.details),
            ));
        }
        out
    }

    /// The trailer frame: `grpc-status: N\r\ngrpc-message: ...\r\n`.
    pub fn frame(&self, mode: Mode) -> Bytes {
        let block: String = self
            .pairs()
            .into_iter()
            .map(|(name, value)| format!("{name}: {value}\r\n"))
            .collect();
        // A header block is a few hundred bytes: always under a frame's limit.
        frame(TRAILER, block.as_bytes(), mode).unwrap_or_default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn framed(flag: u8, payload: &[u8]) -> Vec<u8> {
        frame(flag, payload, Mode::Binary).unwrap().to_vec()
    }

    #[test]
    fn one_message_in_binary_and_text() {
        let body = framed(DATA, b"\x08\x01");
        assert_eq!(body, b"\x00\x00\x00\x00\x02\x08\x01");
        assert_eq!(
            request_message(&body, Mode::Binary, 100).unwrap(),
            &b"\x08\x01"[..]
        );
        let text = STANDARD.encode(&body);
        assert_eq!(
            request_message(text.as_bytes(), Mode::Text, 100).unwrap(),
            &b"\x08\x01"[..]
        );
        // An empty message is a message.
        assert_eq!(
            request_message(&framed(DATA, b""), Mode::Binary, 100).unwrap(),
            Bytes::new()
        );
    }

    #[test]
    fn text_bodies_may_be_several_padded_chunks() {
        let body = framed(DATA, b"hello world");
        // Split at a point where each part needs padding.
        let (a, b) = body.split_at(4);
        let text = format!("{}{}", STANDARD.encode(a), STANDARD.encode(b));
        assert!(text[..8].contains('='), "{text}");
        assert_eq!(decode_text(text.as_bytes()).unwrap(), body);
        assert_eq!(
            request_message(text.as_bytes(), Mode::Text, 100).unwrap(),
            &b"hello world"[..]
        );
        // Unpadded last chunk.
        let bare = general_purpose::STANDARD_NO_PAD.encode(&body);
        assert_eq!(decode_text(bare.as_bytes()).unwrap(), body);
        assert_eq!(decode_text(b"").unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn bad_base64_is_named() {
        assert_eq!(
            decode_text(b"AAAA!!!!").unwrap_err(),
            FrameError::Base64 { at: 0 }
        );
        let good = STANDARD.encode(b"ab"); // "YWI=": one padded chunk
        let bad = format!("{good}####");
        assert_eq!(
            decode_text(bad.as_bytes()).unwrap_err(),
            FrameError::Base64 { at: 4 }
        );
        assert!(
            request_message(b"%%%%", Mode::Text, 10)
                .unwrap_err()
                .to_string()
                .contains("not valid base64")
        );
    }

    #[test]
    fn malformed_framing_is_named_not_panicked_on() {
        // A header cut short.
        assert_eq!(
            request_message(b"\x00\x00\x00", Mode::Binary, 100).unwrap_err(),
            FrameError::Truncated {
                at: 0,
                expected: 5,
                got: 3
            }
        );
        // A payload cut short.
        assert_eq!(
            request_message(b"\x00\x00\x00\x00\x09abc", Mode::Binary, 100).unwrap_err(),
            FrameError::Truncated {
                at: 5,
                expected: 9,
                got: 3
            }
        );
        // A declared length over the limit, whatever follows.
        assert_eq!(
            request_message(b"\x00\xff\xff\xff\xff", Mode::Binary, 100).unwrap_err(),
            FrameError::TooLarge {
                len: u32::MAX as usize,
                limit: 100
            }
        );
        assert_eq!(
            request_message(&framed(COMPRESSED, b"x"), Mode::Binary, 100).unwrap_err(),
            FrameError::Compressed
        );
        assert_eq!(
            request_message(&framed(TRAILER, b"x"), Mode::Binary, 100).unwrap_err(),
            FrameError::Flag(0x80)
        );
        assert_eq!(
            request_message(&framed(0x02, b"x"), Mode::Binary, 100).unwrap_err(),
            FrameError::Flag(0x02)
        );
        assert_eq!(
            request_message(b"", Mode::Binary, 100).unwrap_err(),
            FrameError::NoMessage
        );
        let mut two = framed(DATA, b"a");
        two.extend(framed(DATA, b"b"));
        assert_eq!(
            request_message(&two, Mode::Binary, 100).unwrap_err(),
            FrameError::SeveralMessages(2)
        );
    }

    #[test]
    fn every_prefix_of_a_body_is_an_error_or_the_message() {
        let body = framed(DATA, b"0123456789");
        for cut in 0..body.len() {
            assert!(request_message(&body[..cut], Mode::Binary, 100).is_err());
            let text = STANDARD.encode(&body[..cut]);
            assert!(request_message(text.as_bytes(), Mode::Text, 100).is_err());
        }
    }

    #[test]
    fn trailers_are_an_escaped_header_block() {
        let t = Trailers {
            code: Code::NotFound,
            message: "no user 42: ça 100%\r\n".into(),
            details: Bytes::from_static(b"\x08\x05"),
        };
        let f = t.frame(Mode::Binary);
        assert_eq!(f[0], TRAILER);
        let len = u32::from_be_bytes([f[1], f[2], f[3], f[4]]) as usize;
        let block = std::str::from_utf8(&f[5..]).unwrap();
        assert_eq!(block.len(), len);
        assert_eq!(
            block,
            "grpc-status: 5\r\ngrpc-message: no user 42: %C3%A7a 100%25%0D%0A\r\ngrpc-status-details-bin: CAU\r\n"
        );
        assert_eq!(
            Trailers::ok().frame(Mode::Binary),
            framed(TRAILER, b"grpc-status: 0\r\n")
        );
        // In text mode the frame is base64 on its own (padded).
        let text = Trailers::ok().frame(Mode::Text);
        assert_eq!(
            STANDARD.decode(&text).unwrap(),
            framed(TRAILER, b"grpc-status: 0\r\n")
        );
    }
}
