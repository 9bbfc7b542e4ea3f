//! Placeholder for the `upstream` module.
