//! Placeholder for the `server` module.
