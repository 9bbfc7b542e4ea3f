//! google.api.http path templates: parses `/v1/{name=shelves/*}:verb` into segments, variables and a verb.
//!
//! The grammar (from `google/api/http.proto`, "Path template syntax"):
//!
//! ```text
//! Template = "/" Segments [ Verb ] ;
//! Segments = Segment { "/" Segment } ;
//! Segment  = "*" | "**" | LITERAL | Variable ;
//! Variable = "{" FieldPath [ "=" Segments ] "}" ;
//! FieldPath = IDENT { "." IDENT } ;
//! Verb     = ":" LITERAL ;
//! ```
//!
//! Extra rules enforced here: `{id}` means `{id=*}`; `**` may only be the last segment; variables
//! do not nest; a field path is bound at most once. A LITERAL is made of unreserved characters,
//! sub-delimiters (`!$&'()+,;=`), `@` and `%XX` escapes; it is stored percent-decoded. `:` only
//! introduces the verb (it is not allowed inside literals); as grpc-gateway reads templates, a
//! verb after a variable is everything after that `:`, colons included
//! (`/v1/{uuid}:custom:custom` has the verb `custom:custom`). As an extension, the bare template `/`
//! (no segment) is accepted and matches only the path `/`.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// One segment of a path template, with variable names stripped (the "route shape").
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Segment {
    /// Literal text, stored percent-decoded; matches a path segment that decodes to the same text.
    Literal(String),
    /// `*` (also `{var}`): exactly one non-empty path segment.
    Single,
    /// `**`: zero or more non-empty path segments. Only ever the last segment of a template.
    Multi,
}

/// A `{field.path=...}` variable of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateVariable {
    /// The dotted field path, split on `.` (`{user.id}` gives `["user", "id"]`).
    pub field_path: Vec<String>,
    /// The indices in [`PathTemplate::segments`] that the variable covers (never empty).
    pub segments: Range<usize>,
}

impl TemplateVariable {
    /// The field path joined with `.`, as written in the template.
    pub fn dotted(&self) -> String {
        self.field_path.join(".")
    }
}

/// A parsed google.api.http path template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathTemplate {
    text: String,
    segments: Vec<Segment>,
    variables: Vec<TemplateVariable>,
    verb: Option<String>,
}

/// Why a path template was rejected: quotes the template, says what is wrong and at which byte.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid path template {template:?}: {reason} at byte {position}")]
pub struct TemplateError {
    /// The template text as given.
    pub template: String,
    /// What is wrong, e.g. `unclosed '{'`.
    pub reason: String,
    /// Byte offset in `template` where the problem was found.
    pub position: usize,
}

impl PathTemplate {
    /// Parses a template such as `/v1/{name=shelves/*/books/*}:publish`.
    pub fn parse(template: &str) -> Result<Self, TemplateError> {
        Parser {
            text: template,
            bytes: template.as_bytes(),
            pos: 0,
            open_brace: None,
            segments: Vec::new(),
            starts: Vec::new(),
            variables: Vec::new(),
        }
        .parse()
    }

    /// The original template text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The custom verb (`batchGet` in `/v1/products:batchGet`), percent-decoded, if any.
    pub fn verb(&self) -> Option<&str> {
        self.verb.as_deref()
    }

    /// The variables, in template order.
    pub fn variables(&self) -> &[TemplateVariable] {
        &self.variables
    }

    /// The segments, variables flattened into the segments they cover (`{id}` is [`Segment::Single`]).
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// A canonical text for the route shape: variables are erased, so `/v1/users/{id}` and
    /// `/v1/users/{user_id}` (and `/v1/users/*`) give the same key, `/v1/users/*`. The verb is kept.
    /// Two templates have the same key exactly when they match the same paths.
    pub fn shape_key(&self) -> String {
        let mut key = String::with_capacity(self.text.len());
        for segment in &self.segments {
            key.push('/');
            match segment {
                Segment::Literal(text) => key.extend(utf8_percent_encode(text, KEY_ESCAPES)),
                Segment::Single => key.push('*'),
                Segment::Multi => key.push_str("**"),
            }
        }
        if self.segments.is_empty() {
            key.push('/');
        }
        if let Some(verb) = &self.verb {
            key.push(':');
            key.extend(utf8_percent_encode(verb, KEY_ESCAPES));
        }
        key
    }

    /// Whether `other` has the same route shape (see [`PathTemplate::shape_key`]).
    pub fn same_shape(&self, other: &PathTemplate) -> bool {
        self.segments == other.segments && self.verb == other.verb
    }
}

impl FromStr for PathTemplate {
    type Err = TemplateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for PathTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A request path the template matches, written from it (literals escaped, `*` and `**`
/// filled with made-up segments, the verb appended), and the values its variables bind (dotted
/// field path, value) as the router decodes them. For the fuzz and property tests.
#[cfg(any(test, feature = "fuzzing"))]
pub fn example_path(template: &PathTemplate) -> (String, Vec<(String, String)>) {
    let mut raw: Vec<String> = Vec::new();
    let mut decoded: Vec<Vec<String>> = Vec::new();
    for (i, segment) in template.segments().iter().enumerate() {
        match segment {
            Segment::Literal(text) => {
                raw.push(utf8_percent_encode(text, KEY_ESCAPES).to_string());
                decoded.push(vec![text.clone()]);
            }
            Segment::Single => {
                raw.push(format!("s{i}"));
                decoded.push(vec![format!("s{i}")]);
            }
            Segment::Multi => {
                raw.push(format!("m{i}a/m{i}b"));
                decoded.push(vec![format!("m{i}a"), format!("m{i}b")]);
            }
        }
    }
    let mut path = format!("/{}", raw.join("/"));
    if let Some(verb) = template.verb() {
        path.push(':');
        path.extend(utf8_percent_encode(verb, KEY_ESCAPES));
    }
    let bindings = template
        .variables()
        .iter()
        .map(|v| {
            let parts: Vec<&String> = v.segments.clone().flat_map(|i| &decoded[i]).collect();
            let value = if parts.len() == 1 {
                parts[0].clone()
            } else {
                // Several segments: joined with `/`, a `/` inside one kept escaped.
                parts
                    .iter()
                    .map(|p| p.replace('/', "%2F"))
                    .collect::<Vec<_>>()
                    .join("/")
            };
            (v.dotted(), value)
        })
        .collect();
    (path, bindings)
}

/// Characters escaped in [`PathTemplate::shape_key`]: everything but `[A-Za-z0-9-._~]`.
const KEY_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Whether `b` may appear unescaped in a template literal (unreserved, sub-delims minus `*`, `@`).
fn is_literal_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'+'
                | b','
                | b';'
                | b'='
                | b'@'
        )
}

/// A failure to percent-decode a path segment or template literal.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DecodeError {
    /// A `%` not followed by two hex digits.
    #[error("invalid percent-encoding at byte {0}")]
    BadEscape(usize),
    /// The decoded bytes are not UTF-8.
    #[error("not valid UTF-8 after percent-decoding")]
    NotUtf8,
}

/// Percent-decodes `raw` strictly (`%` must be followed by two hex digits; `+` stays `+`).
/// With `keep_encoded_slash`, `%2F`/`%2f` is left as `%2F` (for multi-segment variables).
/// Borrows when there is nothing to decode.
pub(crate) fn percent_decode(
    raw: &str,
    keep_encoded_slash: bool,
) -> Result<Cow<'_, str>, DecodeError> {
    if !raw.contains('%') {
        return Ok(Cow::Borrowed(raw));
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b != b'%' {
            out.push(b);
            i += 1;
            continue;
        }
        let hi = bytes.get(i + 1).copied().and_then(hex_value);
        let lo = bytes.get(i + 2).copied().and_then(hex_value);
        let (Some(hi), Some(lo)) = (hi, lo) else {
            return Err(DecodeError::BadEscape(i));
        };
        let value = hi * 16 + lo;
        if keep_encoded_slash && value == b'/' {
            out.extend_from_slice(b"%2F");
        } else {
            out.push(value);
        }
        i += 3;
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| DecodeError::NotUtf8)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Recursive-descent parser over the template bytes.
struct Parser<'t> {
    text: &'t str,
    bytes: &'t [u8],
    pos: usize,
    /// Byte offset of the `{` of the variable being parsed, if any.
    open_brace: Option<usize>,
    segments: Vec<Segment>,
    /// Byte offset where each segment starts (for error positions).
    starts: Vec<usize>,
    variables: Vec<TemplateVariable>,
}

impl Parser<'_> {
    fn err(&self, position: usize, reason: impl Into<String>) -> TemplateError {
        TemplateError {
            template: self.text.to_owned(),
            reason: reason.into(),
            position,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Describes the character at the current position, for error messages.
    fn current_char(&self) -> String {
        match self.text.get(self.pos..).and_then(|s| s.chars().next()) {
            Some(c) => format!("{c:?}"),
            None => "end of template".to_owned(),
        }
    }

    fn parse(mut self) -> Result<PathTemplate, TemplateError> {
        if self.peek() != Some(b'/') {
            return Err(self.err(0, "must start with '/'"));
        }
        self.pos = 1;
        if self.text.len() > 1 {
            self.parse_segments(false)?;
        }
        let verb = match self.peek() {
            None => None,
            Some(b':') => {
                self.pos += 1;
                // As grpc-gateway reads it, after a variable everything after the `:` is the
                // verb, colons included (`{uuid}:custom:custom`).
                let after_variable = self
                    .variables
                    .last()
                    .is_some_and(|v| v.segments.end == self.segments.len());
                let mut verb = self.parse_literal("verb")?;
                while after_variable && self.peek() == Some(b':') {
                    self.pos += 1;
                    verb.push(':');
                    verb.push_str(&self.parse_literal("verb")?);
                }
                if self.peek().is_some() {
                    return Err(self.err(
                        self.pos,
                        format!("unexpected {} after the verb", self.current_char()),
                    ));
                }
                Some(verb)
            }
            Some(b'}') => return Err(self.err(self.pos, "unmatched '}'")),
            Some(_) => {
                return Err(self.err(self.pos, format!("unexpected {}", self.current_char())));
            }
        };
        let last = self.segments.len().saturating_sub(1);
        for (i, segment) in self.segments.iter().enumerate() {
            if *segment == Segment::Multi && i != last {
                let at = self.starts.get(i).copied().unwrap_or(0);
                return Err(self.err(at, "'**' must be the last segment"));
            }
        }
        Ok(PathTemplate {
            text: self.text.to_owned(),
            segments: self.segments,
            variables: self.variables,
            verb,
        })
    }

    /// `Segment { "/" Segment }`; stops before anything else (end, `:`, `}`), the caller checks.
    fn parse_segments(&mut self, in_variable: bool) -> Result<(), TemplateError> {
        loop {
            self.parse_segment(in_variable)?;
            if self.peek() == Some(b'/') {
                self.pos += 1;
            } else {
                return Ok(());
            }
        }
    }

    fn parse_segment(&mut self, in_variable: bool) -> Result<(), TemplateError> {
        let start = self.pos;
        match self.peek() {
            None => match self.open_brace {
                Some(open) if in_variable => Err(self.err(open, "unclosed '{'")),
                _ => Err(self.err(start, "empty segment (trailing '/')")),
            },
            Some(b'/' | b':' | b'}') => Err(self.err(start, "empty segment")),
            Some(b'{') if in_variable => Err(self.err(start, "variables cannot nest")),
            Some(b'{') => self.parse_variable(),
            Some(b'*') => {
                self.pos += 1;
                let segment = if self.peek() == Some(b'*') {
                    self.pos += 1;
                    Segment::Multi
                } else {
                    Segment::Single
                };
                if !matches!(self.peek(), None | Some(b'/' | b':' | b'}')) {
                    return Err(self.err(start, "'*' and '**' must be whole segments"));
                }
                self.push(segment, start);
                Ok(())
            }
            Some(_) => {
                let literal = self.parse_literal("segment")?;
                self.push(Segment::Literal(literal), start);
                Ok(())
            }
        }
    }

    fn push(&mut self, segment: Segment, start: usize) {
        self.segments.push(segment);
        self.starts.push(start);
    }

    /// A LITERAL (segment or verb); must end at `/`, `:`, `}` or the end.
    fn parse_literal(&mut self, what: &str) -> Result<String, TemplateError> {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if is_literal_byte(b) {
                self.pos += 1;
            } else if b == b'%' {
                let valid = [1, 2].iter().all(|k| {
                    self.bytes
                        .get(self.pos + k)
                        .is_some_and(|h| h.is_ascii_hexdigit())
                });
                if !valid {
                    return Err(self.err(self.pos, "invalid percent-encoding"));
                }
                self.pos += 3;
            } else {
                break;
            }
        }
        if !matches!(self.peek(), None | Some(b'/' | b':' | b'}')) {
            return Err(self.err(
                self.pos,
                format!("unexpected {} in {what}", self.current_char()),
            ));
        }
        if self.pos == start {
            return Err(self.err(start, format!("empty {what}")));
        }
        let raw = self.text.get(start..self.pos).unwrap_or_default();
        match percent_decode(raw, false) {
            Ok(decoded) => Ok(decoded.into_owned()),
            Err(e) => Err(self.err(start, e.to_string())),
        }
    }

    /// `"{" FieldPath [ "=" Segments ] "}"`, positioned on the `{`.
    fn parse_variable(&mut self) -> Result<(), TemplateError> {
        let open = self.pos;
        self.pos += 1;
        let field_path = self.parse_field_path(open)?;
        let first = self.segments.len();
        match self.peek() {
            Some(b'}') => {
                self.pos += 1;
                self.push(Segment::Single, open);
            }
            Some(b'=') => {
                self.pos += 1;
                self.open_brace = Some(open);
                self.parse_segments(true)?;
                self.open_brace = None;
                match self.peek() {
                    Some(b'}') => self.pos += 1,
                    None => return Err(self.err(open, "unclosed '{'")),
                    Some(_) => {
                        return Err(self.err(
                            self.pos,
                            format!("unexpected {} in variable", self.current_char()),
                        ));
                    }
                }
            }
            None => return Err(self.err(open, "unclosed '{'")),
            Some(_) => {
                return Err(self.err(
                    self.pos,
                    format!(
                        "unexpected {} in variable, expected '=' or '}}'",
                        self.current_char()
                    ),
                ));
            }
        }
        if self.variables.iter().any(|v| v.field_path == field_path) {
            return Err(self.err(
                open,
                format!("field path \"{}\" is bound twice", field_path.join(".")),
            ));
        }
        self.variables.push(TemplateVariable {
            field_path,
            segments: first..self.segments.len(),
        });
        Ok(())
    }

    /// `IDENT { "." IDENT }` with IDENT = `[A-Za-z_][A-Za-z0-9_]*`.
    fn parse_field_path(&mut self, open: usize) -> Result<Vec<String>, TemplateError> {
        let mut parts = Vec::new();
        loop {
            let start = self.pos;
            if !self
                .peek()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            {
                return Err(match self.peek() {
                    None => self.err(open, "unclosed '{'"),
                    Some(b'}') if parts.is_empty() => self.err(start, "empty variable"),
                    _ if parts.is_empty() => self.err(
                        start,
                        format!("expected a field name, found {}", self.current_char()),
                    ),
                    _ => self.err(
                        start,
                        format!(
                            "expected a field name after '.', found {}",
                            self.current_char()
                        ),
                    ),
                });
            }
            while self
                .peek()
                .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                self.pos += 1;
            }
            parts.push(
                self.text
                    .get(start..self.pos)
                    .unwrap_or_default()
                    .to_owned(),
            );
            if self.peek() == Some(b'.') {
                self.pos += 1;
            } else {
                return Ok(parts);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
#[path = "template_tests.rs"]
mod tests;
