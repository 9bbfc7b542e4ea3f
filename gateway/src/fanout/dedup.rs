//! Per-request call deduplication: the same method with the same request bytes is called once;
//! every asker awaits the one shared result.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use prost::Message;
use prost_reflect::{DynamicMessage, MethodDescriptor};

use crate::error::GatewayError;

/// The shared outcome of one call.
pub type CallResult = Result<Arc<DynamicMessage>, Arc<GatewayError>>;

type SharedCall = Shared<BoxFuture<'static, CallResult>>;

/// The calls of one request, by (method, encoded request).
#[derive(Default)]
pub struct Dedup {
    calls: Mutex<HashMap<(String, Vec<u8>), SharedCall>>,
}

impl std::fmt::Debug for Dedup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dedup").finish_non_exhaustive()
    }
}

impl Dedup {
    /// Returns the result of calling `method` with `request`: the first asker's `make` runs,
    /// later identical askers share its result.
    pub async fn call<F, Fut>(
        &self,
        method: &MethodDescriptor,
        request: &DynamicMessage,
        make: F,
    ) -> CallResult
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = CallResult> + Send + 'static,
    {
        let key = (method.full_name().to_string(), request.encode_to_vec());
        let shared = {
            let mut calls = match self.calls.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            calls
                .entry(key)
                .or_insert_with(|| make().boxed().shared())
                .clone()
        };
        shared.await
    }

    /// How many distinct calls were made.
    pub fn len(&self) -> usize {
        self.calls.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// Whether no call was made.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
