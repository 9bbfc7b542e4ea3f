//! Lists the changes between two GraphQL SDLs and which of them break clients (for
//! `bff-web schema --check FILE`).
//!
//! What counts as breaking is judged from a client's side:
//! - output positions (field types) may only get *stricter*: `T` → `T!` is safe, `T!` → `T`
//!   breaks; inside lists the same rule applies level by level;
//! - input positions (argument and input-field types) may only get *looser*: `T!` → `T` is
//!   safe, `T` → `T!` breaks;
//! - any change of named type, or between list and non-list, breaks;
//! - removing a type, field, argument, input field, enum value, union member or implemented
//!   interface breaks; so does changing a type's kind, and adding a required argument or
//!   input field (non-null without a default);
//! - additions are safe. Some are *dangerous* (a client may not handle the new value): a new
//!   value of an enum used in output positions, a new union member, a changed default value.
//!   They are reported with `breaking: false` and the message says "dangerous".
//! - Directives are ignored except `@deprecated`: a newly deprecated field, argument, input
//!   field or enum value is reported (not breaking), as is a deprecation lifted.
//!
//! The changes are sorted by path, then kind, then message, so the output is deterministic.

mod compare;
mod model;

#[cfg(test)]
mod tests;

use std::fmt;

use async_graphql::parser::parse_schema;
use serde::Serialize;

use model::Schema;

/// What changed. The paths name the place: `User` (a type), `User.email` (a field, an input
/// field or an enum value), `Query.user(id:)` (an argument), `SearchResult.Photo` (a union
/// member), `schema.query` (a root operation type).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum ChangeKind {
    /// A type was added.
    TypeAdded,
    /// A type was removed.
    TypeRemoved,
    /// A type changed kind (e.g. object to interface).
    TypeKindChanged,
    /// The root type of an operation changed or disappeared.
    RootTypeChanged,
    /// A field was added to an object or interface.
    FieldAdded,
    /// A field was removed from an object or interface.
    FieldRemoved,
    /// A field's type changed.
    FieldTypeChanged,
    /// An argument was added.
    ArgumentAdded,
    /// An argument was removed.
    ArgumentRemoved,
    /// An argument's type changed.
    ArgumentTypeChanged,
    /// An argument's default value changed, appeared or disappeared.
    ArgumentDefaultChanged,
    /// A field was added to an input object.
    InputFieldAdded,
    /// A field was removed from an input object.
    InputFieldRemoved,
    /// An input field's type changed.
    InputFieldTypeChanged,
    /// An input field's default value changed, appeared or disappeared.
    InputFieldDefaultChanged,
    /// A value was added to an enum.
    EnumValueAdded,
    /// A value was removed from an enum.
    EnumValueRemoved,
    /// A member was added to a union.
    UnionMemberAdded,
    /// A member was removed from a union.
    UnionMemberRemoved,
    /// An object or interface now implements an interface.
    InterfaceAdded,
    /// An object or interface no longer implements an interface.
    InterfaceRemoved,
    /// A field, argument, input field or enum value became `@deprecated`.
    Deprecated,
    /// A field, argument, input field or enum value is no longer `@deprecated`.
    DeprecationRemoved,
}

/// One change between the old and the new SDL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    /// What changed.
    pub kind: ChangeKind,
    /// Whether clients written against the old SDL may fail against the new one.
    pub breaking: bool,
    /// Where: `User`, `User.email`, `Query.user(id:)`, `Role.ADMIN`, `schema.query`.
    pub path: String,
    /// A sentence for frontend teams, e.g. "field User.email changed type from String! to
    /// String: clients may now receive null".
    pub message: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = if self.breaking { "BREAKING" } else { "safe" };
        write!(f, "[{tag}] {}: {}", self.path, self.message)
    }
}

/// Which of the two SDLs an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The previous (committed) SDL.
    Old,
    /// The newly generated SDL.
    New,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Old => "old",
            Side::New => "new",
        })
    }
}

/// Why two SDLs could not be compared.
#[derive(Debug, thiserror::Error)]
pub enum SdlDiffError {
    /// One side is not a valid SDL document.
    #[error("the {side} SDL does not parse at {line}:{column}: {message}")]
    Parse {
        /// Which SDL.
        side: Side,
        /// One-based line of the error (0 if the parser gives no position).
        line: usize,
        /// One-based column of the error (0 if the parser gives no position).
        column: usize,
        /// The parser's message.
        message: String,
    },
}

/// Compares the `old_sdl` (committed) with the `new_sdl` (generated) and lists every change,
/// breaking or not, sorted by path.
///
/// # Errors
/// [`SdlDiffError::Parse`] if either document does not parse; it names the side and position.
pub fn diff(old_sdl: &str, new_sdl: &str) -> Result<Vec<Change>, SdlDiffError> {
    let old = parse(old_sdl, Side::Old)?;
    let new = parse(new_sdl, Side::New)?;
    let mut changes = compare::compare(&old, &new);
    changes.sort_by(|a, b| {
        (a.path.as_str(), a.kind, a.message.as_str()).cmp(&(
            b.path.as_str(),
            b.kind,
            b.message.as_str(),
        ))
    });
    Ok(changes)
}

/// Parses one side.
fn parse(sdl: &str, side: Side) -> Result<Schema, SdlDiffError> {
    let document = parse_schema(sdl).map_err(|e| {
        let pos = e.positions().next().unwrap_or_default();
        let message = match &e {
            // pest's message repeats the position and draws the line; keep its last line,
            // which says what was expected.
            async_graphql::parser::Error::Syntax { message, .. } => message
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map_or_else(
                    || e.to_string(),
                    |l| l.trim().trim_start_matches("= ").to_owned(),
                ),
            _ => e.to_string(),
        };
        SdlDiffError::Parse {
            side,
            line: pos.line,
            column: pos.column,
            message,
        }
    })?;
    Ok(Schema::from_document(document))
}
