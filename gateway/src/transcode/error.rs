//! The one error type of transcoding: what went wrong, which field, and a human message.

/// What kind of transcoding failure happened; the HTTP layer maps every kind to a 400-class
/// response except [`TranscodeErrorKind::Encode`], which is a server-side failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TranscodeErrorKind {
    /// The body is not well-formed JSON (syntax error, trailing garbage, invalid UTF-8...).
    MalformedJson,
    /// A JSON object key names no field of the target message.
    UnknownField,
    /// The same key appears twice in one JSON object (also a field given under both its JSON
    /// name and its proto name).
    DuplicateKey,
    /// The JSON nests objects/arrays deeper than [`super::DecodeOptions::max_depth`].
    TooDeep,
    /// More values inside `google.protobuf.Struct`/`Value`/`ListValue` fields than
    /// [`super::DecodeOptions::max_struct_values`].
    TooManyValues,
    /// A value has the wrong type or cannot be converted to the field's type.
    InvalidValue,
    /// The same field gets two different values from two sources (path vs body, path vs
    /// query, two members of one oneof).
    Conflict,
    /// A query parameter names no field that the query string may set.
    UnknownQueryParameter,
    /// A singular field is given more than once in the query string.
    RepeatedQueryParameter,
    /// A dotted field path does not resolve on the message type.
    InvalidFieldPath,
    /// Serialising a message to JSON failed.
    Encode,
}

/// A transcoding failure. `Display` is the human message only.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TranscodeError {
    /// The kind of failure.
    pub kind: TranscodeErrorKind,
    /// The field concerned, when known: a dotted path as the client wrote it (JSON path of the
    /// body, URL template variable, or query key), e.g. `user.address.city` or `tags[2]`.
    pub field: Option<String>,
    /// A human-readable message, safe to return to the client.
    pub message: String,
}

impl TranscodeError {
    /// Builds an error that concerns no particular field.
    pub fn new(kind: TranscodeErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            field: None,
            message: message.into(),
        }
    }

    /// Builds an error about `field`.
    pub fn with_field(
        kind: TranscodeErrorKind,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            field: Some(field.into()),
            message: message.into(),
        }
    }
}
