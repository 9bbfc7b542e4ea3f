//! The REST door: google.api.http path templates ([`template`]), the route table ([`router`]),
//! the routes built from descriptors ([`routes`]), header rules ([`headers`]) and the handler
//! that turns a matched route into an upstream call ([`handler`]), with raw `google.api.HttpBody`
//! replies and downloads ([`binary`]) and `multipart/form-data` uploads ([`multipart`]).

mod binary;
pub mod handler;
pub mod headers;
mod multipart;
pub mod router;
pub mod routes;
mod stream;
pub mod template;
