//! Parsed operations by query text: clients send the same few documents again and again,
//! and parsing (a PEG parser) was the biggest single cost of a small GraphQL request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::parser::types::ExecutableDocument;

/// Documents longer than this (bytes of query text) are parsed every time, never kept.
const MAX_QUERY_LEN: usize = 16 * 1024;

/// A bounded cache of parsed documents, per schema (so per snapshot). When it is full it is
/// emptied, so a client sending ever-new documents costs what it did without the cache.
#[derive(Debug)]
pub struct DocumentCache {
    capacity: usize,
    docs: Mutex<HashMap<Box<str>, Arc<ExecutableDocument>>>,
}

impl DocumentCache {
    /// A cache keeping at most `capacity` documents (0: no caching).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            docs: Mutex::new(HashMap::new()),
        }
    }

    /// Gives `req` its parsed document, from the cache or parsed now (and kept). A document
    /// that does not parse is left alone: executing the request reports the error as usual.
    pub fn prime(&self, req: &mut async_graphql::Request) {
        if self.capacity == 0 || req.query.len() > MAX_QUERY_LEN {
            return;
        }
        let cached = self.lock().get(req.query.as_str()).cloned();
        if let Some(doc) = cached {
            req.set_parsed_query((*doc).clone());
            return;
        }
        let Ok(doc) = async_graphql::parser::parse_query(&req.query) else {
            return;
        };
        {
            let mut docs = self.lock();
            if docs.len() >= self.capacity {
                docs.clear();
            }
            docs.insert(req.query.as_str().into(), Arc::new(doc.clone()));
        }
        req.set_parsed_query(doc);
    }

    /// How many documents are kept.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no document is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Arc<ExecutableDocument>>> {
        self.docs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn keeps_parsed_documents_and_stays_bounded() {
        let cache = DocumentCache::new(2);
        let mut a = async_graphql::Request::new("{ a }");
        cache.prime(&mut a);
        assert_eq!(cache.len(), 1);
        let mut again = async_graphql::Request::new("{ a }");
        cache.prime(&mut again);
        assert_eq!(cache.len(), 1);
        let doc = again.parsed_query().unwrap();
        assert_eq!(doc.operations.iter().count(), 1);

        for q in ["{ b }", "{ c }"] {
            cache.prime(&mut async_graphql::Request::new(q));
        }
        assert!(cache.len() <= 2);

        // Syntax errors are not kept and leave the request to the executor.
        let mut bad = async_graphql::Request::new("{ a ");
        cache.prime(&mut bad);
        assert!(bad.parsed_query().is_err());
        assert!(DocumentCache::new(0).is_empty());
    }
}
