//! Edge concerns applied to every request before routing: request ids and the access log.

mod request_id;

pub use request_id::{REQUEST_ID_HEADER, RequestId, request_context};
