//! [`Room`]: where a miss waits when the room it needs is held by windows
//! other threads are mapping right now — the only wait that is not for the
//! miss's own file, and only when every handle or byte is committed.
//!
//! No wake-up is lost: a waiter reads the generation *before* it looks at
//! what it would wait for ([`Room::watch`]: a window being mapped), and a
//! change (a window published or abandoned, a cell freed) comes after the
//! state it changes, so a change the look missed still moves the
//! generation past the one the waiter waits on. The waiter counts itself
//! under the lock before it looks at the generation again, and a change
//! bumps the generation before it looks for waiters (both `SeqCst`), so
//! either the waiter sees the new generation or the changer sees the waiter
//! and notifies under the lock.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::shared_lock::SharedLock;
use crate::sync::Condvar;

/// The wait for room (see the module documentation).
#[derive(Debug, Default)]
pub(crate) struct Room {
    generation: AtomicU64,
    waiters: AtomicUsize,
    lock: SharedLock<()>,
    changed: Condvar,
}

impl Room {
    /// The generation to [`wait`](Self::wait) on if `busy()` says that
    /// room is held by work in flight; `None` if it says not. The
    /// generation is read *before* `busy` looks, so that work which ends
    /// (and calls [`changed`](Self::changed)) after the look, even before
    /// this returns, ends the wait too: read after the look, a change
    /// between the two would be lost, and the waiter would sleep until an
    /// unrelated one.
    pub(crate) fn watch(&self, busy: impl FnOnce() -> bool) -> Option<u64> {
        let seen = self.generation.load(Ordering::SeqCst);
        busy().then_some(seen)
    }

    /// Waits until the generation is no longer `seen`.
    pub(crate) fn wait(&self, seen: u64) {
        let mut g = self.lock.lock();
        self.waiters.fetch_add(1, Ordering::SeqCst);
        while self.generation.load(Ordering::SeqCst) == seen {
            g = self.lock.wait(&self.changed, g);
        }
        self.waiters.fetch_sub(1, Ordering::SeqCst);
    }

    /// Room was freed, or a window being mapped is done: wakes the waiters,
    /// if any (most changes have nobody to wake, and skip the lock).
    pub(crate) fn changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            drop(self.lock.lock());
            self.changed.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_wakes_the_waiter() {
        let room = std::sync::Arc::new(Room::default());
        for _ in 0..50 {
            let seen = room.watch(|| true).expect("busy");
            let waiter = {
                let room = room.clone();
                std::thread::spawn(move || room.wait(seen))
            };
            room.changed();
            waiter.join().unwrap();
        }
        let now = room.watch(|| true).expect("busy");
        room.wait(now + 1);
    }

    /// The work in flight ends, and says so, right after `busy` has found
    /// it in flight: the wait that follows returns at once instead of
    /// sleeping until an unrelated change.
    #[test]
    fn work_that_ends_after_the_look_ends_the_wait() {
        let room = Room::default();
        let mut in_flight = true;
        let seen = room.watch(|| {
            let busy = in_flight;
            // The mapping thread publishes, between the look and the wait.
            in_flight = false;
            room.changed();
            busy
        });
        let seen = seen.expect("busy when looked at");
        assert_ne!(seen, room.watch(|| true).unwrap(), "the change is seen");
        // Returns at once: the generation has moved on from `seen`.
        room.wait(seen);
        assert_eq!(room.watch(|| in_flight), None, "nothing in flight now");
    }
}
