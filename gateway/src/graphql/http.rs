//! Placeholder for `graphql::http`.
