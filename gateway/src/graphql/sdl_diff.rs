//! Placeholder for `graphql::sdl_diff`.
