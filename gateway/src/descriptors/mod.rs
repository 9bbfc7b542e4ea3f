//! Placeholder for the `descriptors` module.
