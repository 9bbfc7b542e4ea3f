//! Demo gRPC backends.
