//! [`Ledger`]: the memory budget — bytes, charged in whole pages, of the
//! regions tracked, the windows being mapped and the regions being
//! unmapped — and what is tracked now, for the statistics. (The handle
//! budget is the cells': `Cells::reserve`.)
//!
//! | word | moved by | how |
//! |---|---|---|
//! | `committed` | a miss, [`try_reserve`](Ledger::try_reserve) | compare-and-swap, never past `max` (`Relaxed`); [`force`](Ledger::force) adds past it (`SeqCst`; only when every region is in use) |
//! | | the unmapping thread, and a miss whose map failed, [`free`](Ledger::free) | subtraction (`Relaxed`), after the unmap |
//! | `tracked`, `memory` | the thread that publishes a region / the evictor | addition / subtraction (`Relaxed`); read for the statistics |
//! | `regions` | the thread that publishes a region (with or without the hand) / the evictor, holding the hand | addition (`Release`: the region's cell, reserved before, is counted as used for whoever sees the addition) / subtraction (`Relaxed`); read by a miss that looks for windows in flight (`Acquire`), after the room's generation and before the cells used (`Shared::reserve`) |
//!
//! Reservations are `Relaxed`: the ledger orders nothing but itself and
//! the count of regions. A
//! cursor that releases a region while the manager is over its limit must
//! see the excess, or the thread that forced the limit must see the
//! release. Both sides are `SeqCst` accesses to two words, in the
//! store-buffering shape: the release's give-back on the claim word, then
//! [`is_over`](Ledger::is_over) (`Shared::give_back`); the
//! [`force`](Ledger::force), then the hand's sweep of the claim words
//! (`Shared::reserve`). Loom treats `SeqCst` accesses as `AcqRel`, so its
//! models also put a `SeqCst` fence on each side (`sync::sc_fence`, which
//! is nothing in other builds). The forcing side's fence is real in every
//! build (`sync::sc_fence_always`): the sweep reads some claim words and
//! reservation bits with `Acquire` loads before its `SeqCst` ones, and
//! only a fence orders those after the `force`. (The argument leans on the
//! hardware for one step: that the forcing thread's load of a reservation
//! bit set by a third thread sees it, which the C++ model promises only
//! with an edge to that thread, and which x86-64's and ARMv8's
//! multi-copy-atomic stores give; loom, which does not model `SeqCst`
//! fences fully, cannot check that step.)

use crate::sync::{AtomicU64, AtomicUsize, Ordering};

/// The memory budget and what is tracked (see the module documentation).
#[derive(Debug)]
pub(crate) struct Ledger {
    /// Bytes committed: tracked, being mapped, being unmapped.
    committed: AtomicU64,
    max: u64,
    /// Bytes charged for the tracked regions.
    tracked: AtomicU64,
    /// Exact bytes of the tracked regions.
    memory: AtomicU64,
    /// Tracked regions.
    regions: AtomicUsize,
}

impl Ledger {
    pub(crate) fn new(max: u64) -> Self {
        Ledger {
            committed: AtomicU64::new(0),
            max,
            tracked: AtomicU64::new(0),
            memory: AtomicU64::new(0),
            regions: AtomicUsize::new(0),
        }
    }

    /// Commits `cost` bytes if they fit under the limit.
    pub(crate) fn try_reserve(&self, cost: u64) -> bool {
        let mut n = self.committed.load(Ordering::Relaxed);
        loop {
            let Some(next) = n.checked_add(cost).filter(|&next| next <= self.max) else {
                return false;
            };
            match self.committed.compare_exchange_weak(
                n,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => n = now,
            }
        }
    }

    /// True if `cost` more bytes would fit now (a hint: another thread may
    /// take them first).
    pub(crate) fn fits(&self, cost: u64) -> bool {
        self.committed
            .load(Ordering::Relaxed)
            .checked_add(cost)
            .is_some_and(|next| next <= self.max)
    }

    /// Commits `cost` bytes past the limit: every region is in use. The
    /// caller sweeps the claim words next (`SeqCst`: see
    /// [`is_over`](Self::is_over)), first filtering cells by `Acquire`
    /// loads (reserved? used lately?), which the `SeqCst` order does not
    /// cover: so a real fence follows, in every build (this path is cold).
    pub(crate) fn force(&self, cost: u64) {
        self.committed.fetch_add(cost, Ordering::SeqCst);
        crate::sync::sc_fence_always();
    }

    /// Gives back `cost` committed bytes (unmapped, or never mapped).
    pub(crate) fn free(&self, cost: u64) {
        let was = self.committed.fetch_sub(cost, Ordering::Relaxed);
        debug_assert!(was >= cost, "freed more than was committed");
    }

    /// Bytes committed now.
    pub(crate) fn committed(&self) -> u64 {
        self.committed.load(Ordering::Relaxed)
    }

    /// True if more is committed than the limit allows (possible only
    /// while every region was in use). `SeqCst`: a cursor that released a
    /// region reads this next, and a thread that [forced](Self::force)
    /// bytes past the limit sweeps the claim words next, so one of them
    /// sees the other.
    pub(crate) fn is_over(&self) -> bool {
        self.committed.load(Ordering::SeqCst) > self.max
    }

    /// Bytes committed past the limit, and how many must be freed for
    /// `cost` more to fit.
    pub(crate) fn short_by(&self, cost: u64) -> u64 {
        self.committed
            .load(Ordering::Relaxed)
            .saturating_add(cost)
            .saturating_sub(self.max)
    }

    /// A region of `size` bytes charged `cost` is tracked now; returns the
    /// tracked regions and exact bytes, for the peaks.
    pub(crate) fn track(&self, size: u64, cost: u64) -> (usize, u64, u64) {
        let regions = self.regions.fetch_add(1, Ordering::Release) + 1;
        let tracked = self.tracked.fetch_add(cost, Ordering::Relaxed) + cost;
        let memory = self.memory.fetch_add(size, Ordering::Relaxed) + size;
        (regions, tracked, memory)
    }

    /// A tracked region of `size` bytes charged `cost` is no longer
    /// tracked (evicted: its bytes stay committed until unmapped).
    pub(crate) fn untrack(&self, size: u64, cost: u64) {
        self.regions.fetch_sub(1, Ordering::Relaxed);
        self.tracked.fetch_sub(cost, Ordering::Relaxed);
        self.memory.fetch_sub(size, Ordering::Relaxed);
    }

    /// Tracked regions, their charged bytes and their exact bytes.
    pub(crate) fn tracked(&self) -> (usize, u64, u64) {
        (
            self.regions.load(Ordering::Acquire),
            self.tracked.load(Ordering::Relaxed),
            self.memory.load(Ordering::Relaxed),
        )
    }

    /// The memory limit.
    pub(crate) fn max(&self) -> u64 {
        self.max
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn reservations_stay_under_the_limit_unless_forced() {
        let l = Ledger::new(10);
        assert!(l.try_reserve(6) && l.fits(4) && !l.fits(5));
        assert!(!l.try_reserve(5), "past the limit");
        assert_eq!((l.committed(), l.short_by(5)), (6, 1));
        l.force(5);
        assert!(l.is_over());
        l.free(5);
        assert!(!l.is_over() && l.try_reserve(4));
        assert!(!l.try_reserve(u64::MAX), "no overflow");
        assert_eq!(l.track(3000, 4096), (1, 4096, 3000));
        l.untrack(3000, 4096);
        assert_eq!(l.tracked(), (0, 0, 0));
    }
}

/// Every interleaving of two reservations racing (`RUSTFLAGS="--cfg loom"`).
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;

    /// Two threads reserve 6 of 10 bytes each: exactly one gets them, and
    /// freeing gives them back whole.
    #[test]
    fn loom_two_reservations_never_pass_the_limit() {
        loom::model(|| {
            let l = Arc::new(Ledger::new(10));
            let other = {
                let l = l.clone();
                loom::thread::spawn(move || l.try_reserve(6))
            };
            let mine = l.try_reserve(6);
            let theirs = other.join().unwrap();
            assert!(mine != theirs);
            assert_eq!(l.committed(), 6);
            l.free(6);
            assert_eq!(l.committed(), 0);
        });
    }
}
