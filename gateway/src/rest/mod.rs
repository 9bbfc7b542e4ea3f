//! The REST door: google.api.http path templates ([`template`]), the route table ([`router`]),
//! and (later) the handler that turns a matched route into an upstream call.

pub mod router;
pub mod template;
