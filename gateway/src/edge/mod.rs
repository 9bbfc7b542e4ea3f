//! Placeholder for the `edge` module.
