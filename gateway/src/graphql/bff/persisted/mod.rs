//! Persisted operations: trusted documents (the operations folder's manifest, by id) and
//! automatic persisted queries (Apollo's APQ protocol), resolved before anything is parsed.
//!
//! A request names a document by id with `extensions.persistedQuery.sha256Hash` (Apollo, with
//! `version: 1`) or a top-level `documentId` (GraphQL over HTTP's trusted documents; `sha256:`
//! prefix optional). Ids are the lowercase hex SHA-256 of the document text. The rules, in order:
//!
//! | request | mode / APQ | outcome |
//! |---|---|---|
//! | no id, a document | `persisted_only` | 400 `PERSISTED_QUERY_REQUIRED` (not parsed) |
//! | no id, a document | otherwise | runs |
//! | id of the manifest (+ document or not) | `allow`, `persisted_only` | the manifest's document runs (a document sent along must hash to the id) |
//! | unknown id | `persisted_only` | 404 `PERSISTED_QUERY_NOT_FOUND` |
//! | id + document whose SHA-256 differs | any | 400 `PERSISTED_QUERY_HASH_MISMATCH` |
//! | unknown id, no document | APQ on | 200 `PERSISTED_QUERY_NOT_FOUND` (the client resends with the document) |
//! | unknown id + document | APQ on | verified, run, stored once it passed the limits |
//! | id registered by APQ | APQ on | runs |
//! | unknown id, no document | APQ off | 404 `PERSISTED_QUERY_NOT_FOUND` |
//! | unknown id + document | APQ off | verified and run, not stored |
//!
//! A failing APQ store (Redis down) is logged and treated as "not registered": hash-only requests
//! get `PERSISTED_QUERY_NOT_FOUND`, clients resend the document, and it runs unstored.

pub mod store;

use std::any::TypeId;
use std::sync::Arc;

use async_graphql::Value;

use crate::config::{PersistedConfig, PersistedMode};
use crate::error::{ErrorKind, GatewayError};
use crate::graphql::bff::operations::{Operations, document_id};
use crate::graphql::transport::DocumentId;
pub use store::{ApqStore, StoreError};

/// The error kinds of persisted operations (their codes are `extensions.code`).
pub mod codes {
    use crate::error::ErrorKind;

    /// The id is not known (`PERSISTED_QUERY_NOT_FOUND`, 404).
    pub const NOT_FOUND: ErrorKind = ErrorKind::PersistedQueryNotFound;
    /// APQ: the id is not registered yet; resend with the document (the same code, 200).
    pub const NOT_REGISTERED: ErrorKind = ErrorKind::PersistedQueryNotRegistered;
    /// The document sent does not hash to the id sent with it.
    pub const HASH_MISMATCH: ErrorKind = ErrorKind::PersistedQueryHashMismatch;
    /// This BFF only runs its trusted documents, by id.
    pub const REQUIRED: ErrorKind = ErrorKind::PersistedQueryRequired;
    /// The id is malformed, or two different ids are given.
    pub const BAD_ID: ErrorKind = ErrorKind::PersistedQueryBadRequest;
}

/// The persisted-operations policy of a snapshot.
#[derive(Debug)]
pub struct Persisted {
    mode: PersistedMode,
    operations: Option<Arc<Operations>>,
    apq: Option<ApqStore>,
}

/// A document to register in the APQ store once it passed the limits.
#[derive(Clone, Debug)]
pub struct Pending {
    hash: String,
    document: Arc<str>,
}

impl Persisted {
    /// The policy `cfg` describes over the operations folder (if any).
    pub fn new(cfg: &PersistedConfig, operations: Option<Arc<Operations>>) -> Result<Self, String> {
        let apq = if cfg.apq {
            Some(ApqStore::new(cfg)?)
        } else {
            None
        };
        Ok(Self {
            mode: cfg.mode,
            operations,
            apq,
        })
    }

    /// No persisted operations at all (GraphQL disabled).
    pub fn none() -> Self {
        Self {
            mode: PersistedMode::Off,
            operations: None,
            apq: None,
        }
    }

    /// Whether a request names its document by id (`extensions.persistedQuery` or
    /// `documentId`).
    pub fn names_an_id(req: &async_graphql::Request) -> bool {
        matches!(requested_id(req), Ok(Some(_)))
    }

    /// Fills in the document of a request that names one by id, or refuses the request;
    /// never parses. Returns the request and what to register in the APQ store afterwards.
    pub async fn resolve(
        &self,
        mut req: async_graphql::Request,
    ) -> Result<(async_graphql::Request, Option<Pending>), GatewayError> {
        let Some(id) = requested_id(&req)? else {
            if self.mode == PersistedMode::PersistedOnly {
                return Err(GatewayError::rejected(
                    codes::REQUIRED,
                    "this endpoint only runs persisted operations: send \
                     `extensions.persistedQuery.sha256Hash` or `documentId` instead of a document",
                ));
            }
            return Ok((req, None));
        };
        let sent = (!req.query.is_empty()).then(|| req.query.clone());
        if let Some(text) = &sent
            && document_id(text) != id
        {
            return Err(GatewayError::rejected(
                codes::HASH_MISMATCH,
                format!("the document's SHA-256 is not {id}"),
            ));
        }
        if self.mode != PersistedMode::Off
            && let Some(op) = self.operations.as_ref().and_then(|o| o.by_id(&id))
        {
            req.query = op.document.to_string();
            return Ok((req, None));
        }
        if self.mode == PersistedMode::PersistedOnly {
            return Err(not_found(codes::NOT_FOUND));
        }
        let Some(store) = &self.apq else {
            return match sent {
                Some(_) => Ok((req, None)),
                None => Err(not_found(codes::NOT_FOUND)),
            };
        };
        let stored = match store.get(&id).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "APQ lookup failed; the document counts as unknown");
                None
            }
        };
        match (stored, sent) {
            (Some(doc), _) => {
                req.query = doc.to_string();
                Ok((req, None))
            }
            (None, Some(text)) => Ok((
                req,
                Some(Pending {
                    hash: id,
                    document: text.into(),
                }),
            )),
            (None, None) => Err(not_found(codes::NOT_REGISTERED)),
        }
    }

    /// Registers an APQ document (after it passed the limits); a store failure is logged.
    pub async fn register(&self, pending: Pending) {
        if let Some(store) = &self.apq
            && let Err(e) = store.put(&pending.hash, pending.document).await
        {
            tracing::warn!(error = %e, "APQ registration failed; the document ran unstored");
        }
    }
}

/// Apollo clients recognise the message `PersistedQueryNotFound` (older ones only that).
fn not_found(kind: ErrorKind) -> GatewayError {
    GatewayError::rejected(kind, "PersistedQueryNotFound")
}

fn bad_id(message: impl Into<String>) -> GatewayError {
    GatewayError::rejected(codes::BAD_ID, message)
}

/// The id a request names (lowercase hex), from `extensions.persistedQuery` or `documentId`.
fn requested_id(req: &async_graphql::Request) -> Result<Option<String>, GatewayError> {
    let apollo = match req.extensions.0.get("persistedQuery") {
        None | Some(Value::Null) => None,
        Some(Value::Object(pq)) => {
            match pq.get("version") {
                Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
                _ => {
                    return Err(bad_id(
                        "unsupported `extensions.persistedQuery.version`: send 1",
                    ));
                }
            }
            match pq.get("sha256Hash") {
                Some(Value::String(h)) => Some(h.clone()),
                _ => {
                    return Err(bad_id(
                        "`extensions.persistedQuery.sha256Hash` must be a string",
                    ));
                }
            }
        }
        Some(_) => return Err(bad_id("`extensions.persistedQuery` must be an object")),
    };
    let document = req
        .data
        .get(&TypeId::of::<DocumentId>())
        .and_then(|d| d.downcast_ref::<DocumentId>())
        .map(|d| d.0.strip_prefix("sha256:").unwrap_or(&d.0).to_string());
    let id = match (apollo, document) {
        (None, None) => return Ok(None),
        (Some(a), Some(d)) if !a.eq_ignore_ascii_case(&d) => {
            return Err(bad_id(
                "`documentId` and `extensions.persistedQuery.sha256Hash` name different documents",
            ));
        }
        (Some(a), _) => a,
        (None, Some(d)) => d,
    };
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad_id(format!(
            "{id:?} is not a document id: send the 64 hex digits of the document's SHA-256"
        )));
    }
    Ok(Some(id.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests;
