//! [`Room`]: where a miss waits when the room it needs is held by windows
//! other threads are mapping right now — the only wait that is not for the
//! miss's own file, and only when every handle or byte is committed.
//!
//! | word | how it changes | ordering, and why it suffices |
//! |---|---|---|
//! | `generation` | read by a miss **before** it looks at what it would wait for ([`watch`](Room::watch)) | `SeqCst` load: an acquire, so a look made after a change reads what the change published |
//! | | g → g + 1 by every change (a window published, a reserved cell or its bytes freed — a window whose map failed among them —, a region unmapped), **after** the state it changes | `SeqCst` add: a release of that state, and one side of the pairing below |
//! | | read again by the waiter, holding the lock, after it counted itself | `SeqCst` load, the other side of the pairing |
//! | `waiters` | n → n + 1 by a waiter, holding the lock, before it reads the generation again; n + 1 → n when it leaves, holding it again | `SeqCst` |
//! | | read by a change after its add; not 0 means take the lock and notify | `SeqCst` load |
//! | `landings` | l → l + 1 when a window leaves flight (published, or given up with its room), **after** the state it changes, before [`changed`](Room::changed) | `SeqCst` add: a release of the cell it published |
//! | | read by a miss before the evictor's walk and again when the walk evicted nothing and nothing is in flight ([`landings`](Room::landings)) | `SeqCst` load, an acquire: a window landed before the first is published to the walk; a landing that happened before the second is seen by it (below) |
//!
//! **A window that lands during the walk is walked again.** The walk skips
//! a cell reserved for a window in flight; if that window is published and
//! released before the miss looks for windows in flight, the look finds
//! none in flight, and the walk never saw the idle region. So a miss that
//! is about to fail ([`Error::HandleLimit`](crate::Error::HandleLimit)) or
//! pass the memory limit first compares the landings with those it read
//! before the walk, and walks again if any window landed. A cursor
//! releases its window only after the window's landing, so a release that
//! happens before the miss's second load comes with a landing that the
//! load sees; if the count did not move, each window that was in flight
//! during the walk was still held at the look: in use, as the error says
//! (`miss::loom_tests`). (The generation will not do: every failed
//! reservation moves it, and a miss that walked again on each would chase
//! the others' retries.)
//!
//! No wake-up is lost. A look that missed a change still read the
//! generation before it, so the waiter waits on a generation that the
//! change has moved past or will. The waiter then counts itself and reads
//! the generation; the change adds to the generation and reads the count:
//! two threads that each write one word and then read the other's, which
//! only a total order over the four accesses makes safe (`SeqCst`: one of
//! the two reads sees the other's write). If the waiter sees the new
//! generation it does not sleep. If the change sees the waiter, it takes
//! the lock before notifying, and the waiter holds that lock from its count
//! until `wait` gives it up asleep, so the notification cannot fall
//! between the waiter's look and its sleep. Loom treats `SeqCst` accesses
//! as `AcqRel`, so both sides also carry [`sc_fence`] for its models
//! (`loom_a_change_wakes_every_waiter`,
//! `loom_a_change_between_the_look_and_the_wait_is_not_lost`); without
//! the fences both models find the lost wake-up.

use super::shared_lock::SharedLock;
use crate::sync::{sc_fence, AtomicU64, AtomicUsize, Condvar, Ordering};

/// The wait for room (see the module documentation).
#[derive(Debug, Default)]
pub(crate) struct Room {
    generation: AtomicU64,
    landings: AtomicU64,
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
        sc_fence();
        while self.generation.load(Ordering::SeqCst) == seen {
            g = self.lock.wait(&self.changed, g);
        }
        self.waiters.fetch_sub(1, Ordering::SeqCst);
    }

    /// How many windows have left flight, to compare before and after the
    /// evictor's walk (see the module documentation).
    pub(crate) fn landings(&self) -> u64 {
        self.landings.load(Ordering::SeqCst)
    }

    /// A window left flight (published, or given up with the room
    /// reserved for it): counts it, then [`changed`](Self::changed).
    pub(crate) fn landed(&self) {
        self.landings.fetch_add(1, Ordering::SeqCst);
        self.changed();
    }

    /// Room was freed, or a window being mapped is done: wakes the waiters,
    /// if any (most changes have nobody to wake, and skip the lock).
    pub(crate) fn changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        sc_fence();
        if self.waiters.load(Ordering::SeqCst) > 0 {
            drop(self.lock.lock());
            self.changed.notify_all();
        }
    }
}

#[cfg(all(test, not(loom)))]
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

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;

    /// A window in flight, and the room's wait for it.
    #[derive(Default)]
    struct Flight {
        in_flight: AtomicUsize,
        room: Room,
    }

    impl Flight {
        /// A miss that found no room: waits while a window is in flight.
        fn wait_for_room(&self) {
            if let Some(seen) = self
                .room
                .watch(|| self.in_flight.load(Ordering::Acquire) > 0)
            {
                self.room.wait(seen);
            }
        }

        /// The window is published (or abandoned), then the change said.
        fn land(&self) {
            self.in_flight.fetch_sub(1, Ordering::Release);
            self.room.changed();
        }
    }

    /// Two misses wait while one window is in flight, which lands in
    /// any order with their looks and waits: a lost wake-up would leave a
    /// waiter blocked for good, which loom reports as a deadlock.
    #[test]
    fn loom_a_change_wakes_every_waiter() {
        // Three threads and a condition variable: bounded to three
        // preemptions (which still finds the lost wake-up without the
        // fences) to keep the model to seconds.
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(3);
        model.check(|| {
            let f = Arc::new(Flight::default());
            f.in_flight.store(1, Ordering::Relaxed);
            let waiters: Vec<_> = (0..2)
                .map(|_| {
                    let f = f.clone();
                    loom::thread::spawn(move || f.wait_for_room())
                })
                .collect();
            f.land();
            for w in waiters {
                w.join().unwrap();
            }
            assert_eq!(f.room.waiters.load(Ordering::Relaxed), 0);
        });
    }

    /// Two windows in flight land one after the other while a miss
    /// waits: whichever landing its look missed, the wait ends, and a
    /// miss that looks after both finds nothing to wait for.
    #[test]
    fn loom_a_change_between_the_look_and_the_wait_is_not_lost() {
        loom::model(|| {
            let f = Arc::new(Flight::default());
            f.in_flight.store(2, Ordering::Relaxed);
            let lander = {
                let f = f.clone();
                loom::thread::spawn(move || {
                    f.land();
                    f.land();
                })
            };
            f.wait_for_room();
            lander.join().unwrap();
            assert_eq!(
                f.room.watch(|| f.in_flight.load(Ordering::Acquire) > 0),
                None
            );
        });
    }
}
