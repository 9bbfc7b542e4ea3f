//! Batching the link lookups of one operation, without a timer.
//!
//! A resolver asks the operation's [`Batcher`] for a key and waits. The operation's future
//! (or subscription stream) runs inside [`Driven`], which, each time it has polled the
//! operation and the operation is waiting, sends every key asked for during that poll as one
//! load: one round of resolution (all the `product` fields of a list of order items, say)
//! becomes one batch call, however long that round took and whatever else the runtime was
//! doing. A timed window (async-graphql's dataloader waits 1 ms) both adds its delay to every
//! nested query and splits a round whose polling outlasts it.
//!
//! The loads run inside the operation's own task: no spawned task, no cross-thread wake-up
//! between the resolvers and the call that serves them. Dropping the operation drops its
//! loads.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures::channel::oneshot;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, Stream, StreamExt};

/// Loads a batch of distinct keys; a key missing from the answer has no value (`None` to
/// its waiters).
pub type LoadFn<K, V> = Arc<dyn Fn(Vec<K>) -> BoxFuture<'static, HashMap<K, V>> + Send + Sync>;

/// The keys waiting for the next batch of one operation, and how to load a batch.
pub struct Batcher<K, V> {
    pending: Mutex<HashMap<K, Vec<oneshot::Sender<Option<V>>>>>,
    load: LoadFn<K, V>,
}

impl<K, V> std::fmt::Debug for Batcher<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher").finish_non_exhaustive()
    }
}

/// A load was abandoned before it answered (the operation was dropped, or it was not run
/// under [`Driven`], which is a bug).
#[derive(Clone, Copy, Debug, thiserror::Error, PartialEq, Eq)]
#[error("internal: a batched lookup was abandoned")]
pub struct Abandoned;

impl<K, V> Batcher<K, V>
where
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    /// A batcher loading with `load`.
    pub fn new(load: LoadFn<K, V>) -> Self {
        Self {
            pending: Mutex::new(HashMap::new()),
            load,
        }
    }

    /// The value of `key`, loaded in the batch of the current round of resolution. Only
    /// resolves when the operation runs under [`Driven`].
    pub async fn load_one(&self, key: K) -> Result<Option<V>, Abandoned> {
        let (tx, rx) = oneshot::channel();
        self.lock().entry(key).or_default().push(tx);
        rx.await.map_err(|_| Abandoned)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, Vec<oneshot::Sender<Option<V>>>>> {
        // Nothing panics while holding the lock; a poisoned map is still consistent.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The load of every key asked for since the last call, or `None` when there is none.
    fn take_batch(&self) -> Option<BoxFuture<'static, ()>> {
        let waiters = std::mem::take(&mut *self.lock());
        if waiters.is_empty() {
            return None;
        }
        let keys: Vec<K> = waiters.keys().cloned().collect();
        let load = (self.load)(keys);
        Some(Box::pin(async move {
            let mut values = load.await;
            for (key, senders) in waiters {
                let mut value = values.remove(&key);
                let last = senders.len().saturating_sub(1);
                for (i, tx) in senders.into_iter().enumerate() {
                    // The last waiter takes the value itself; the others get copies.
                    let v = if i == last {
                        value.take()
                    } else {
                        value.clone()
                    };
                    // A waiter that is gone (its field was cancelled) needs nothing.
                    let _ = tx.send(v);
                }
            }
        }))
    }
}

/// An operation (future or stream) whose batched lookups are sent each time it waits; see
/// the module docs.
pub struct Driven<T, K, V> {
    inner: T,
    batcher: Arc<Batcher<K, V>>,
    loads: FuturesUnordered<BoxFuture<'static, ()>>,
}

impl<T, K, V> Driven<T, K, V>
where
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    /// Runs `inner` with the loads of `batcher`.
    pub fn new(inner: T, batcher: Arc<Batcher<K, V>>) -> Self {
        Self {
            inner,
            batcher,
            loads: FuturesUnordered::new(),
        }
    }

    /// Hands out what finished loading (before the operation is polled, so that it sees
    /// the values at once).
    fn poll_loads(&mut self, cx: &mut Context<'_>) {
        while let Poll::Ready(Some(())) = self.loads.poll_next_unpin(cx) {}
    }

    /// After the operation was polled and is waiting: start the batch of this round.
    fn flush(&mut self, cx: &mut Context<'_>) {
        if let Some(load) = self.batcher.take_batch() {
            self.loads.push(load);
            self.poll_loads(cx);
        }
    }
}

impl<T, K, V> Future for Driven<T, K, V>
where
    T: Future + Unpin,
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    type Output = T::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T::Output> {
        let this = self.get_mut();
        this.poll_loads(cx);
        if let Poll::Ready(out) = Pin::new(&mut this.inner).poll(cx) {
            return Poll::Ready(out);
        }
        this.flush(cx);
        Poll::Pending
    }
}

impl<T, K, V> Stream for Driven<T, K, V>
where
    T: Stream + Unpin,
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    type Item = T::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T::Item>> {
        let this = self.get_mut();
        this.poll_loads(cx);
        if let Poll::Ready(item) = Pin::new(&mut this.inner).poll_next(cx) {
            return Poll::Ready(item);
        }
        this.flush(cx);
        Poll::Pending
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use futures::future::join_all;

    /// Every batch a test batcher was asked for, keys sorted.
    type Seen = Arc<Mutex<Vec<Vec<u32>>>>;

    /// A batcher doubling its keys (13 has no value), recording every batch.
    fn doubling() -> (Arc<Batcher<u32, u32>>, Seen) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let load: LoadFn<u32, u32> = Arc::new(move |mut keys: Vec<u32>| {
            keys.sort_unstable();
            log.lock().unwrap().push(keys.clone());
            async move {
                // Answer after a real wait, as a backend call would.
                tokio::task::yield_now().await;
                keys.into_iter()
                    .filter(|k| *k != 13)
                    .map(|k| (k, k * 2))
                    .collect()
            }
            .boxed()
        });
        (Arc::new(Batcher::new(load)), seen)
    }

    #[tokio::test]
    async fn one_round_is_one_batch_and_duplicates_share_it() {
        let (b, seen) = doubling();
        let op = async {
            join_all([1, 2, 2, 3, 13].map(|k| {
                let b = b.clone();
                async move { b.load_one(k).await }
            }))
            .await
        };
        let got = Driven::new(Box::pin(op), b.clone()).await;
        assert_eq!(
            got,
            vec![Ok(Some(2)), Ok(Some(4)), Ok(Some(4)), Ok(Some(6)), Ok(None)]
        );
        assert_eq!(*seen.lock().unwrap(), vec![vec![1, 2, 3, 13]]);
    }

    #[tokio::test]
    async fn each_level_of_nesting_is_its_own_batch() {
        let (b, seen) = doubling();
        let op = async {
            // Parents first, then children of every parent: two rounds.
            let parents = join_all([1, 2].map(|k| b.load_one(k))).await;
            let children = join_all(
                parents
                    .into_iter()
                    .map(|p| b.load_one(p.unwrap().unwrap() + 100)),
            )
            .await;
            children.into_iter().map(|c| c.unwrap()).collect::<Vec<_>>()
        };
        let got = Driven::new(Box::pin(op), b.clone()).await;
        assert_eq!(got, vec![Some(204), Some(208)]);
        assert_eq!(*seen.lock().unwrap(), vec![vec![1, 2], vec![102, 104]]);
    }

    #[tokio::test]
    async fn a_stream_is_driven_per_item() {
        let (b, seen) = doubling();
        let items = futures::stream::iter([5u32, 6]).then({
            let b = b.clone();
            move |k| {
                let b = b.clone();
                async move { b.load_one(k).await.unwrap() }
            }
        });
        let got: Vec<_> = Driven::new(Box::pin(items), b.clone()).collect().await;
        assert_eq!(got, vec![Some(10), Some(12)]);
        assert_eq!(*seen.lock().unwrap(), vec![vec![5], vec![6]]);
    }

    #[tokio::test]
    async fn a_batch_dropped_unrun_abandons_its_waiters_instead_of_hanging() {
        let (b, _) = doubling();
        let waiter = tokio::spawn({
            let b = b.clone();
            async move { b.load_one(7).await }
        });
        // Nothing drives `b`: take the batch once the waiter asked, and drop it unrun, as a
        // dropped operation does.
        let mut batch = None;
        for _ in 0..1000 {
            tokio::task::yield_now().await;
            batch = b.take_batch();
            if batch.is_some() {
                break;
            }
        }
        assert!(batch.is_some(), "the waiter never asked");
        drop(batch);
        assert_eq!(waiter.await.unwrap(), Err(Abandoned));
    }
}
