//! The REST door: google.api.http path templates ([`template`]), the route table ([`router`]),
//! the routes built from descriptors ([`routes`]), header rules ([`headers`]) and the handler
//! that turns a matched route into an upstream call ([`handler`]), with raw `google.api.HttpBody`
//! replies and downloads ([`binary`]), `multipart/form-data` uploads ([`multipart`]), and a
//! client stream fed from its NDJSON body line by line while the call runs (`ndjson`).

mod binary;
pub mod handler;
pub mod headers;
mod multipart;
mod ndjson;
pub mod router;
pub mod routes;
mod stream;
pub mod template;
