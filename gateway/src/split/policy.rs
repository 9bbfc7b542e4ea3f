//! The split stage of the policy chain (after the limits, before the cache, which keys each
//! variant's answers apart): picks the variant of every call to a split backend, whichever
//! door planned it, and notes it for the request's access line.
//!
//! When the request comes in, it keeps the headers the splits read (sticky and override
//! headers; the subject is in the context already). A GraphQL request's calls each choose:
//! a sticky caller gets the same variant for all of them, calls without a key take the
//! round robin's turns one by one.

use std::sync::{Arc, Mutex, PoisonError};

use futures::FutureExt;
use futures::future::BoxFuture;
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue};

use super::Split;
use crate::error::GatewayError;
use crate::request::RequestCtx;
use crate::request::policy::{CallSite, Next, Outcome, Policy};
use crate::upstream::{Call, Upstream};

/// What the split stage knows of one request: the headers a choice may read, and the
/// variants its calls went to. Shared by the clones of a context.
#[derive(Debug, Default)]
pub struct SplitNotes {
    headers: HeaderMap,
    chosen: Mutex<Vec<Chosen>>,
}

/// A variant a request's call went to, and the response header that may say so.
#[derive(Debug)]
struct Chosen {
    backend: Arc<str>,
    variant: Arc<str>,
    reveal: Option<HeaderName>,
}

impl SplitNotes {
    fn note(&self, split: &Split, variant: &Arc<str>) {
        let mut chosen = self.chosen.lock().unwrap_or_else(PoisonError::into_inner);
        if !chosen
            .iter()
            .any(|c| &*c.backend == split.name() && Arc::ptr_eq(&c.variant, variant))
        {
            chosen.push(Chosen {
                backend: split.name().into(),
                variant: variant.clone(),
                reveal: split.response_header().cloned(),
            });
        }
    }

    /// Writes the variants that answered into the response headers of the splits that
    /// configure one (`response_header`), one value per variant.
    pub fn write(&self, headers: &mut HeaderMap) {
        let chosen = self.chosen.lock().unwrap_or_else(PoisonError::into_inner);
        for c in chosen.iter() {
            if let (Some(name), Ok(value)) = (&c.reveal, HeaderValue::from_str(&c.variant)) {
                headers.append(name.clone(), value);
            }
        }
    }

    /// The variants the request's calls went to, as `backend:variant` in the order first
    /// chosen, comma-separated (`None` when no call went to a split backend).
    pub fn chosen(&self) -> Option<String> {
        let chosen = self.chosen.lock().unwrap_or_else(PoisonError::into_inner);
        (!chosen.is_empty()).then(|| {
            chosen
                .iter()
                .map(|c| format!("{}:{}", c.backend, c.variant))
                .collect::<Vec<_>>()
                .join(",")
        })
    }
}

/// Chooses the variant of every call to a split backend (installed only when there is one).
#[derive(Debug)]
pub struct SplitStage {
    upstream: Arc<Upstream>,
}

impl SplitStage {
    /// The stage over the splits of `upstream`.
    pub fn new(upstream: Arc<Upstream>) -> Self {
        Self { upstream }
    }
}

impl Policy for SplitStage {
    fn name(&self) -> &str {
        "traffic split"
    }

    fn on_request<'a>(
        &'a self,
        parts: &'a Parts,
        ctx: &'a mut RequestCtx,
    ) -> BoxFuture<'a, Result<(), GatewayError>> {
        let mut headers = HeaderMap::new();
        for name in self.upstream.splits().flat_map(|s| s.headers()) {
            for value in parts.headers.get_all(name) {
                headers.append(name.clone(), value.clone());
            }
        }
        ctx.split = Some(Arc::new(SplitNotes {
            headers,
            chosen: Mutex::default(),
        }));
        futures::future::ready(Ok(())).boxed()
    }

    fn on_call<'a>(
        &'a self,
        ctx: &'a RequestCtx,
        site: &'a CallSite,
        mut call: Call,
        next: Next<'a>,
    ) -> BoxFuture<'a, Result<Outcome, GatewayError>> {
        let service = call.method.parent_service().full_name();
        let Some(split) = self.upstream.split_for(service) else {
            return next.run(ctx, site, call);
        };
        let empty = HeaderMap::new();
        let headers = ctx.split.as_ref().map_or(&empty, |n| &n.headers);
        let subject = ctx.identity.as_ref().map(|i| i.subject.as_str());
        match split.choose(subject, headers) {
            Ok((variant, reason)) => {
                tracing::debug!(
                    backend = split.name(),
                    variant = &*variant.name,
                    reason = reason.as_str(),
                    method = call.method.full_name(),
                    "variant chosen"
                );
                if let Some(notes) = &ctx.split {
                    notes.note(split, &variant.name);
                }
                call.backend = Some(variant.backend.clone());
                next.run(ctx, site, call)
            }
            Err(e) => futures::future::ready(Err(e)).boxed(),
        }
    }
}
