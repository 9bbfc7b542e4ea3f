//! Request ids: the client's `x-request-id` when it is sane (1-128 characters of
//! `[A-Za-z0-9._:-]`), else a fresh random one.

use http::{HeaderMap, HeaderValue};

use crate::request::{REQUEST_ID_HEADER, RequestId};

fn sane(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-'))
}

/// 32 random lowercase hex digits.
fn fresh() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let n: u128 = rand::random();
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = HEX[((n >> (124 - 4 * i)) & 0xf) as usize];
    }
    HeaderValue::from_bytes(&out).unwrap_or(HeaderValue::from_static("0"))
}

/// The id of a request with these headers.
pub fn assign(headers: &HeaderMap) -> RequestId {
    RequestId(
        headers
            .get(REQUEST_ID_HEADER)
            .filter(|v| sane(v))
            .cloned()
            .unwrap_or_else(fresh),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sane_ids_are_kept() {
        assert!(sane(&HeaderValue::from_static("abc-123_x.y:z")));
        assert!(!sane(&HeaderValue::from_static("")));
        assert!(!sane(&HeaderValue::from_static("has space")));
        assert!(!sane(&HeaderValue::from_static("semi;colon")));
        let long = "a".repeat(129);
        assert!(!sane(&HeaderValue::from_str(&long).unwrap_or(fresh())));
        assert_eq!(fresh().len(), 32);
        assert!(fresh().as_bytes().iter().all(u8::is_ascii_hexdigit));
        assert_ne!(fresh(), fresh());
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID_HEADER, HeaderValue::from_static("rid-1"));
        assert_eq!(assign(&h).as_str(), "rid-1");
        h.insert(REQUEST_ID_HEADER, HeaderValue::from_static("bad id"));
        assert_eq!(assign(&h).as_str().len(), 32);
    }
}
