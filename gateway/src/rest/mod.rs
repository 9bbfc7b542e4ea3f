//! Placeholder for the `rest` module.
