//! A GraphQL lexer that only counts tokens, so an oversized document is rejected before parsing.

/// Counts the lexical tokens of a GraphQL document, without parsing it.
///
/// Tokens are what the GraphQL lexer produces: punctuators (`! $ & ( ) ... : = @ [ ] { | }`),
/// names, numbers (`-12`, `1.5e3` are one token each), strings and block strings (one token
/// each, whatever their escapes or length). Whitespace, line terminators, commas, comments and
/// the byte-order mark are ignored, as in the GraphQL specification.
///
/// The count is lenient about invalid input, because the parser reports syntax errors later:
/// any character that starts no token (a lone `.`, `%`, a non-ASCII character outside a
/// string) counts as one token, and an unterminated string runs to the end of its line (a block
/// string to the end of the document).
///
/// Counting stops as soon as the count exceeds `stop_after`, so the result is at most
/// `stop_after + 1` (saturating) and a huge document costs only as much as its first tokens.
/// Pass `u32::MAX` to count everything.
#[must_use]
pub fn count_tokens(query: &str, stop_after: u32) -> u32 {
    let bytes = query.as_bytes();
    let mut i = 0;
    let mut count: u32 = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
                continue;
            }
            // U+FEFF, the byte-order mark, is ignored like whitespace.
            0xEF if bytes.get(i + 1) == Some(&0xBB) && bytes.get(i + 2) == Some(&0xBF) => {
                i += 3;
                continue;
            }
            b'"' => i = skip_string(bytes, i),
            b'.' => i += if bytes[i..].starts_with(b"...") { 3 } else { 1 },
            b'-' | b'0'..=b'9' => i = skip_number(bytes, i),
            b'_' | b'a'..=b'z' | b'A'..=b'Z' => {
                i += 1;
                while i < bytes.len() && (bytes[i] == b'_' || bytes[i].is_ascii_alphanumeric()) {
                    i += 1;
                }
            }
            0x80.. => {
                // One token per non-ASCII character: skip its continuation bytes.
                i += 1;
                while i < bytes.len() && (0x80..0xC0).contains(&bytes[i]) {
                    i += 1;
                }
            }
            // Punctuators and any other ASCII character.
            _ => i += 1,
        }
        count = count.saturating_add(1);
        if count > stop_after {
            return count;
        }
    }
    count
}

/// Skips a string or block string starting at `start` (on its first `"`); returns the index
/// just past it.
fn skip_string(bytes: &[u8], start: usize) -> usize {
    if bytes[start..].starts_with(b"\"\"\"") {
        let mut i = start + 3;
        while i < bytes.len() {
            if bytes[i..].starts_with(b"\\\"\"\"") {
                i += 4;
            } else if bytes[i..].starts_with(b"\"\"\"") {
                return i + 3;
            } else {
                i += 1;
            }
        }
        return i;
    }
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            b'\n' | b'\r' => return i,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// Skips a number (`-?digits(.digits)?([eE][+-]?digits)?`) starting at `start`; a lone `-`
/// is one character long. Returns the index just past it.
fn skip_number(bytes: &[u8], start: usize) -> usize {
    let digits = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let mut i = start;
    if bytes[i] == b'-' {
        i += 1;
    }
    let int_end = digits(i);
    if int_end == i {
        return i;
    }
    i = int_end;
    if bytes.get(i) == Some(&b'.') && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
        i = digits(i + 1);
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(bytes.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let exp_end = digits(j);
        if exp_end > j {
            i = exp_end;
        }
    }
    i
}
