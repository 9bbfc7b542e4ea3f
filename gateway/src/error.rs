//! The error taxonomy and the single responder.
