//! Placeholder for `graphql::limits`.
