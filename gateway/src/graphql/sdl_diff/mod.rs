//! Breaking changes between two GraphQL SDLs (work in progress).
