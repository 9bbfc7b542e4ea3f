//! The Backend-for-Frontend layer over the GraphQL engine: the BFF's named operations
//! ([`operations`]), persisted operations (trusted documents and APQ, [`persisted`]), and
//! operations published as REST endpoints ([`endpoints`]).

pub mod endpoints;
pub mod operations;
pub mod persisted;
