//! Which of the gateway's runtimes the current thread belongs to, so that with one runtime per
//! core (`runtime.mode: per_core`, [`crate::server::Cores`]) each runtime calls its backends
//! over connections of its own.
//!
//! Slot 0 is everything else: the multi-threaded runtime, the control plane's thread (reloads,
//! the admin port, health checks), tests. Core `i` (1-based) marks its thread with
//! [`enter`]; [`crate::resilience::Endpoint::channel`] then hands out the channel of that slot,
//! made on first use from inside the core's runtime, so its connection task and buffer worker
//! run there: a call never crosses threads. A tonic channel created on one runtime works from
//! another, but every request and reply then wakes a task on the other thread.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The most cores one gateway serves with `per_core` (`runtime.threads` is checked against it).
pub const MAX_CORES: usize = 256;

thread_local! {
    static SLOT: Cell<usize> = const { Cell::new(0) };
}

/// Slots endpoints made from now on have room for (1 + the most cores reserved so far).
static SLOTS: AtomicUsize = AtomicUsize::new(1);

/// Makes room for `cores` per-core slots in the endpoints built from now on; call it before
/// the snapshot is built (an endpoint built earlier serves every core from slot 0).
pub fn reserve(cores: usize) {
    SLOTS.fetch_max(cores.min(MAX_CORES) + 1, Ordering::AcqRel);
}

/// How many slots an endpoint built now has.
pub fn slots() -> usize {
    SLOTS.load(Ordering::Acquire)
}

/// Marks the current thread as core `core` (1-based) for the rest of its life.
pub fn enter(core: usize) {
    SLOT.with(|s| s.set(core));
}

/// The current thread's slot: its core, or 0.
pub fn current() -> usize {
    SLOT.with(Cell::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_start_in_slot_zero_and_keep_the_core_they_enter() {
        assert_eq!(current(), 0);
        std::thread::spawn(|| {
            enter(3);
            assert_eq!(current(), 3);
        })
        .join()
        .unwrap_or_else(|_| panic!("the thread panicked"));
        assert_eq!(current(), 0, "another thread's slot is its own");
    }

    #[test]
    fn reserving_only_grows() {
        reserve(2);
        assert!(slots() >= 3);
        let before = slots();
        reserve(1);
        assert_eq!(slots(), before);
    }
}
