//! Per-operation call deduplication: the same method with the same request bytes is called
//! once; every asker awaits the one shared result. It runs after the policy chain, so every
//! call site is still authorized, limited and cached on its own.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use prost::Message;

use crate::error::GatewayError;
use crate::upstream::{Call, CallBody, Reply};

/// The shared outcome of one call.
pub type CallResult = Result<Reply, GatewayError>;

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
    /// Returns the result of `call`: the first asker's `make(call)` runs, later askers of the
    /// same method with the same request share its result.
    pub async fn call<F, Fut>(&self, call: Call, make: F) -> CallResult
    where
        F: FnOnce(Call) -> Fut,
        Fut: Future<Output = CallResult> + Send + 'static,
    {
        let bytes = match &call.body {
            CallBody::Unary(m) => m.encode_to_vec(),
            CallBody::Wire(b) => b.to_vec(),
            CallBody::Stream(ms) => ms.iter().fold(Vec::new(), |mut key, m| {
                // Each message length-delimited, so that ["ab"] and ["a", "b"] differ.
                prost::encoding::encode_varint(m.len() as u64, &mut key);
                key.extend_from_slice(m);
                key
            }),
            // A live stream is read once: never shared.
            CallBody::Live(_) => return make(call).await,
        };
        let key = (call.method.full_name().to_string(), bytes);
        let shared = {
            let mut calls = match self.calls.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            calls
                .entry(key)
                .or_insert_with(|| make(call).boxed().shared())
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
