//! Request coalescing across requests: concurrent identical calls share one in-flight call.
//! The first caller leads (makes the call); the others follow (wait for its outcome). A leader
//! that goes away without an outcome (its client left, its future was dropped) frees the key:
//! its followers try again, one of them leading.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::key::Key;
use super::store::Entry;
use crate::error::GatewayError;

/// The outcome a leader shares.
pub type Shared = Result<Arc<Entry>, GatewayError>;

type Slot = watch::Receiver<Option<Shared>>;

/// The calls in flight, by key.
#[derive(Debug, Default)]
pub struct InFlight {
    calls: Mutex<HashMap<Key, Slot>>,
    /// Signalled whenever a call ends.
    ended: tokio::sync::Notify,
}

/// Whose turn it is.
pub enum Turn {
    /// Make the call, then [`Leader::finish`].
    Lead(Leader),
    /// Another caller is making it: wait with [`follow`].
    Follow(Slot),
}

/// The caller making a call others wait for (it may hand the call to a background task).
pub struct Leader {
    flight: Arc<InFlight>,
    key: Key,
    tx: watch::Sender<Option<Shared>>,
}

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Slot>> {
        match self.calls.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Joins the call under `key`: leads it when none is in flight.
    pub fn join(self: &Arc<Self>, key: &Key) -> Turn {
        let mut calls = self.lock();
        if let Some(rx) = calls.get(key)
            && rx.has_changed().is_ok()
        {
            return Turn::Follow(rx.clone());
        }
        let (tx, rx) = watch::channel(None);
        calls.insert(key.clone(), rx);
        Turn::Lead(Leader {
            flight: self.clone(),
            key: key.clone(),
            tx,
        })
    }

    /// How many calls are in flight.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no call is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until no call is in flight (background revalidations included).
    pub async fn idle(&self) {
        loop {
            let ended = self.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            if self.is_empty() {
                return;
            }
            ended.await;
        }
    }
}

impl Leader {
    /// Shares the outcome with the followers (and frees the key).
    pub fn finish(self, outcome: Shared) {
        self.tx.send_replace(Some(outcome));
        // Drop frees the key.
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        let mut calls = self.flight.lock();
        if calls
            .get(&self.key)
            .is_some_and(|rx| rx.same_channel(&self.tx.subscribe()))
        {
            calls.remove(&self.key);
        }
        drop(calls);
        self.flight.ended.notify_waiters();
    }
}

/// Waits for the leader's outcome; `None` when it went away without one (try again).
pub async fn follow(mut slot: Slot) -> Option<Shared> {
    match slot.wait_for(Option::is_some).await {
        Ok(v) => v.clone(),
        Err(_) => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn key() -> Key {
        b"k".to_vec().into()
    }

    #[tokio::test]
    async fn followers_get_the_leaders_outcome_and_the_key_is_freed() {
        let f = Arc::new(InFlight::default());
        let Turn::Lead(leader) = f.join(&key()) else {
            panic!("the first caller leads")
        };
        let Turn::Follow(slot) = f.join(&key()) else {
            panic!("the second follows")
        };
        let entry = Arc::new(Entry::new(
            bytes::Bytes::from_static(b"x"),
            Default::default(),
            std::time::Duration::from_secs(1),
        ));
        leader.finish(Ok(entry));
        let got = follow(slot).await.expect("an outcome").expect("ok");
        assert_eq!(&got.bytes[..], b"x");
        assert!(f.is_empty());
        assert!(matches!(f.join(&key()), Turn::Lead(_)));
    }

    #[tokio::test]
    async fn a_leader_that_goes_away_lets_a_follower_lead() {
        let f = Arc::new(InFlight::default());
        let Turn::Lead(leader) = f.join(&key()) else {
            panic!()
        };
        let Turn::Follow(slot) = f.join(&key()) else {
            panic!()
        };
        drop(leader);
        assert!(follow(slot).await.is_none());
        assert!(f.is_empty());
        assert!(matches!(f.join(&key()), Turn::Lead(_)));
    }
}
