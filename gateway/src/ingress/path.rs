//! The one normalisation of a request path, used by routing and by every policy alike.
//!
//! - Percent-escapes of unreserved characters (`A-Z a-z 0-9 - . _ ~`, RFC 3986 section 2.3)
//!   are decoded: `/v1/us%65rs` is `/v1/users`.
//! - Other escapes keep their meaning and get uppercase hex digits: `%2f` is `%2F`, so a
//!   decoded `/` inside a segment never becomes a separator and `%3A` never splits a custom
//!   verb.
//! - A `.` or `..` segment (also written `%2E`/`%2e`) is refused: no route has one, clients
//!   resolve them before sending, and resolving them here would let a path mean one thing to
//!   a policy and another to whoever reads the raw request line.
//! - Nothing else changes: empty segments (`//`, a trailing `/`) stay, and match no route.
//!
//! - A malformed escape (a `%` not followed by two hex digits) is refused: left as it was, it
//!   could combine with decoded characters into a new escape (`%%32%46` would become `%2F`),
//!   and the normal form would not be normal any more (normalising it again would change it).

use std::borrow::Cow;

/// Why a path is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// A `.` or `..` segment.
    #[error("the path has a {0:?} segment: send the path with dot segments resolved")]
    DotSegment(&'static str),
    /// A `%` not followed by two hex digits.
    #[error(
        "the path has a malformed percent-escape at byte {0}: a % must be followed by two hex digits (write % itself as %25)"
    )]
    MalformedEscape(usize),
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// The value of a hex digit.
pub(crate) fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The normalised form of `path` (borrowed when it is already normal, which is the common
/// case and costs one scan).
pub fn normalize(path: &str) -> Result<Cow<'_, str>, PathError> {
    let out = if path.contains('%') {
        Cow::Owned(decode_unreserved(path)?)
    } else {
        Cow::Borrowed(path)
    };
    for segment in out.split('/') {
        match segment {
            "." => return Err(PathError::DotSegment(".")),
            ".." => return Err(PathError::DotSegment("..")),
            _ => {}
        }
    }
    Ok(out)
}

fn decode_unreserved(path: &str) -> Result<String, PathError> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(&a), Some(&b)) = (bytes.get(i + 1), bytes.get(i + 2))
            && let (Some(ha), Some(hb)) = (hex(a), hex(b))
        {
            let c = ha * 16 + hb;
            if unreserved(c) {
                out.push(char::from(c));
            } else {
                out.push('%');
                out.push(char::from(a.to_ascii_uppercase()));
                out.push(char::from(b.to_ascii_uppercase()));
            }
            i += 3;
            continue;
        }
        if bytes[i] == b'%' {
            return Err(PathError::MalformedEscape(i));
        }
        // Everything up to the next `%` as it is: the request line may carry raw UTF-8 (hyper
        // accepts bytes above 0x7F in a path), and `%` is ASCII, so the run ends on a
        // character boundary.
        let end = bytes[i..]
            .iter()
            .position(|&b| b == b'%')
            .map_or(bytes.len(), |p| i + p);
        out.push_str(&path[i..end]);
        i = end;
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn n(p: &str) -> String {
        normalize(p).unwrap().into_owned()
    }

    #[test]
    fn unreserved_escapes_are_decoded_others_uppercased() {
        assert_eq!(n("/v1/us%65rs/1"), "/v1/users/1");
        assert_eq!(n("/v1/%7Euser%2d1"), "/v1/~user-1");
        assert_eq!(n("/v1/files/a%2fb"), "/v1/files/a%2Fb");
        assert_eq!(n("/v1/products%3abatchGet"), "/v1/products%3AbatchGet");
        assert_eq!(n("/v1/a%20b%2a"), "/v1/a%20b%2A");
        assert_eq!(n("/v1/a+b"), "/v1/a+b");
    }

    #[test]
    fn malformed_escapes_are_refused() {
        for (path, at) in [("/v1/%zz", 4), ("/v1/a/%4", 6), ("/%", 1), ("/%%610", 1)] {
            assert_eq!(
                normalize(path),
                Err(PathError::MalformedEscape(at)),
                "{path}"
            );
        }
        // Found by the fuzz tests: once decoded, `%%32%46` would have been `%2F`.
        assert!(normalize("/v1/files/%%32%46etc").is_err());
    }

    #[test]
    fn raw_utf8_is_kept_as_it_is() {
        // Found by cargo-fuzz (`path`): bytes were copied one by one as Latin-1 characters.
        assert_eq!(n("/v1/caf\u{e9}/%41\u{fffd}"), "/v1/caf\u{e9}/A\u{fffd}");
        assert_eq!(n("\u{fffd}%D1/\0]"), "\u{fffd}%D1/\0]");
        assert_eq!(n(&n("\u{fffd}%D1/\0]")), n("\u{fffd}%D1/\0]"));
    }

    #[test]
    fn normal_paths_are_borrowed() {
        assert!(matches!(
            normalize("/v1/users/1").unwrap(),
            Cow::Borrowed(_)
        ));
        assert!(matches!(normalize("/").unwrap(), Cow::Borrowed(_)));
        assert_eq!(n("/v1//users/"), "/v1//users/");
    }

    #[test]
    fn dot_segments_are_refused_however_written() {
        for p in [
            "/v1/users/../admin",
            "/v1/./users",
            "/v1/%2e%2E/admin",
            "/v1/%2E",
            "/..",
        ] {
            assert!(normalize(p).is_err(), "{p}");
        }
        assert_eq!(n("/v1/files/..."), "/v1/files/...");
        assert_eq!(n("/v1/files/a..b"), "/v1/files/a..b");
    }
}
