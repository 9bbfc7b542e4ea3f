//! JSON text in and out, fast where it is plain: strings written as serde_json writes them
//! but copied whole when nothing in them needs escaping, protobuf string bytes checked for
//! UTF-8 and escaping in one pass, and JSON bodies validated as UTF-8 once (SIMD) so serde_json
//! reads them as `&str` instead of validating every string again.
//!
//! Everything here gives byte for byte what serde_json gives (the tests compare them); the
//! fast paths only skip work that would not change the result.

use serde::de::DeserializeOwned;

/// Eight copies of byte `b`.
const fn splat(b: u8) -> u64 {
    u64::from_ne_bytes([b; 8])
}

/// Whether any byte of `w` is zero (exact as a yes/no).
fn has_zero(w: u64) -> bool {
    w.wrapping_sub(splat(0x01)) & !w & splat(0x80) != 0
}

/// Whether the 8 bytes of `w` are all plain: printable or DEL ASCII (`0x20..=0x7f`) other
/// than `"` and `\`: what serde_json writes as it is, and valid UTF-8.
fn plain_word(w: u64) -> bool {
    // High bit set: not ASCII. Below 0x20 (for ASCII bytes, `w - 0x20` borrows into the high
    // bit exactly when some byte is below 0x20; the first check ruled out bytes >= 0x80).
    let non_ascii = w & splat(0x80) != 0;
    let control = w.wrapping_sub(splat(0x20)) & !w & splat(0x80) != 0;
    !(non_ascii || control || has_zero(w ^ splat(b'"')) || has_zero(w ^ splat(b'\\')))
}

/// Whether `b` is plain: valid UTF-8 that serde_json writes between quotes unchanged.
pub fn is_plain(b: &[u8]) -> bool {
    let mut words = b.chunks_exact(8);
    for chunk in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        if !plain_word(u64::from_ne_bytes(w)) {
            return false;
        }
    }
    words
        .remainder()
        .iter()
        .all(|&c| (0x20..0x80).contains(&c) && c != b'"' && c != b'\\')
}

/// Writes `s` as a JSON string, exactly as serde_json writes it.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    if is_plain(s.as_bytes()) {
        write_plain(out, s.as_bytes());
    } else {
        let _ = serde_json::to_writer(out, s);
    }
}

/// Writes plain bytes ([`is_plain`]) between quotes.
pub fn write_plain(out: &mut Vec<u8>, b: &[u8]) {
    out.reserve(b.len() + 2);
    out.push(b'"');
    out.extend_from_slice(b);
    out.push(b'"');
}

/// Writes the protobuf string `b` as a JSON string (as serde_json writes the `&str`);
/// `None`, and nothing written, when it is not UTF-8.
pub fn write_utf8(out: &mut Vec<u8>, b: &[u8]) -> Option<()> {
    if is_plain(b) {
        write_plain(out, b);
    } else {
        write_str(out, std::str::from_utf8(b).ok()?);
    }
    Some(())
}

/// `json` as a `&str` when it is UTF-8, checked once for the whole body (SIMD): serde_json then
/// reads it with [`serde_json::Deserializer::from_str`], which does not check each string
/// again as `from_slice` does. A body that is not UTF-8 gives `None`: read it with
/// `from_slice`, whose error names the place.
pub fn utf8_body(json: &[u8]) -> Option<&str> {
    simdutf8::basic::from_utf8(json).ok()
}

/// [`serde_json::from_slice`], reading a UTF-8 body through `from_str` ([`utf8_body`]): the
/// same value, the same errors.
pub fn from_slice<T: DeserializeOwned>(json: &[u8]) -> serde_json::Result<T> {
    match utf8_body(json) {
        Some(text) => serde_json::from_str(text),
        None => serde_json::from_slice(json),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive_plain(b: &[u8]) -> bool {
        b.iter()
            .all(|&c| (0x20..0x80).contains(&c) && c != b'"' && c != b'\\')
    }

    #[test]
    fn every_byte_in_every_position_is_classified_as_byte_by_byte() {
        for len in [1usize, 7, 8, 9, 16, 23] {
            for at in 0..len {
                for c in 0..=255u8 {
                    let mut b = vec![b'a'; len];
                    b[at] = c;
                    assert_eq!(is_plain(&b), naive_plain(&b), "{c:#x} at {at} of {len}");
                }
            }
        }
        assert!(is_plain(b""));
    }

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        for s in [
            "",
            "plain text, with commas: and {braces}",
            "quote \" inside",
            "back\\slash",
            "tab\tnew\nline\u{0}nul\u{1f}unit\u{7f}del",
            "é ü 漢字 🙂",
            "exactly8",
        ] {
            let mut out = Vec::new();
            write_str(&mut out, s);
            assert_eq!(out, serde_json::to_vec(s).unwrap(), "{s:?}");
            let mut out = Vec::new();
            write_utf8(&mut out, s.as_bytes()).unwrap();
            assert_eq!(out, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
        let mut out = b"kept".to_vec();
        assert!(write_utf8(&mut out, b"bad \xff byte").is_none());
        assert_eq!(out, b"kept");
    }

    #[test]
    fn a_body_that_is_not_utf8_gives_serde_jsons_own_error() {
        let body = b"{\"a\": \"x\xffy\"}";
        assert!(utf8_body(body).is_none());
        let ours = from_slice::<serde_json::Value>(body)
            .unwrap_err()
            .to_string();
        let theirs = serde_json::from_slice::<serde_json::Value>(body)
            .unwrap_err()
            .to_string();
        assert_eq!(ours, theirs);
        let ok: serde_json::Value = from_slice(br#"{"a": "\u00e9", "b": [1, 2.5]}"#).unwrap();
        assert_eq!(ok, serde_json::json!({"a": "é", "b": [1, 2.5]}));
    }

    proptest! {
        #[test]
        fn random_strings_match_serde_json(s in ".{0,40}", bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let mut out = Vec::new();
            write_str(&mut out, &s);
            prop_assert_eq!(&out, &serde_json::to_vec(&s).unwrap());
            prop_assert_eq!(is_plain(&bytes), naive_plain(&bytes));
            let mut out = Vec::new();
            match std::str::from_utf8(&bytes) {
                Ok(text) => {
                    write_utf8(&mut out, &bytes).unwrap();
                    prop_assert_eq!(&out, &serde_json::to_vec(text).unwrap());
                }
                Err(_) => prop_assert!(write_utf8(&mut out, &bytes).is_none()),
            }
        }
    }
}
