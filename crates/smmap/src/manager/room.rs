//! [`Room`]: where a miss waits when the room it needs is held by windows
//! other threads are mapping right now — the only wait that is not for the
//! miss's own file, and only when every handle or byte is committed.
//!
//! No wake-up is lost: a waiter counts itself under the lock before it
//! looks at the generation, and a change bumps the generation before it
//! looks for waiters (both `SeqCst`), so either the waiter sees the new
//! generation or the changer sees the waiter and notifies under the lock.

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
    /// The generation now, to wait on.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
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
            let seen = room.generation();
            let waiter = {
                let room = room.clone();
                std::thread::spawn(move || room.wait(seen))
            };
            room.changed();
            waiter.join().unwrap();
        }
        room.wait(room.generation() + 1);
    }
}
