//! Placeholder for the `transcode` module.
