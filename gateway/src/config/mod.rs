//! Placeholder for the `config` module.
