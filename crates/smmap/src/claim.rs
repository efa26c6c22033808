//! [`Claims`]: who uses a mapped region, in one atomic word, so that a
//! cursor can take back a window it released, and release it again, without
//! the manager's lock, while the manager evicts only what nobody uses.
//!
//! The word holds the region's clients (the manager's one plus one per
//! cursor using it), whether the manager lists it among the regions it may
//! evict, whether it was evicted, and how often it was taken back without
//! the lock since the manager last looked (its heat, and its second chance).
//!
//! The rules that make this sound:
//!
//! - Only the manager, under its lock, sets [`LISTED`](Claims::list) and
//!   evicts ([`try_evict`](Claims::try_evict)), and it evicts only a word
//!   with one client, its own. A cursor counted in the word therefore keeps
//!   the region tracked, and mapped, until its count is given back.
//! - Listing is undone only by eviction, so a cursor counted in the word
//!   that sees it listed knows it stays listed: it may give its count back
//!   without the lock ([`park`](Claims::park)), and the region, unused, is
//!   already where the evictor looks.
//! - A count is taken back without the lock ([`unpark`](Claims::unpark))
//!   only from a word that is not evicted; the compare-and-swap makes that
//!   and the evictor's own exclusive.

use std::sync::atomic::{AtomicU64, Ordering};

const CLIENTS: u64 = 0xffff_ffff;
const LISTED: u64 = 1 << 32;
const EVICTED: u64 = 1 << 33;
const HIT_SHIFT: u32 = 48;
const HIT: u64 = 1 << HIT_SHIFT;
const HITS: u64 = 0xffff << HIT_SHIFT;

/// The claim word of one region (see the module documentation).
#[derive(Debug)]
pub(crate) struct Claims {
    word: AtomicU64,
}

/// What [`Claims::try_evict`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Eviction {
    /// Evicted: no client counted, never to be taken back.
    Done,
    /// Used, or taken back without the lock `hits` times since last asked
    /// (now reset): it stays.
    Spared { hits: u64 },
}

impl Claims {
    /// A word with one client, the region's creator.
    pub(crate) fn new() -> Self {
        Claims {
            word: AtomicU64::new(1),
        }
    }

    /// Clients counted: 0 once evicted.
    pub(crate) fn clients(&self) -> usize {
        (self.word.load(Ordering::Acquire) & CLIENTS) as usize
    }

    /// True if the manager lists the region among those it may evict.
    pub(crate) fn is_listed(&self) -> bool {
        self.word.load(Ordering::Acquire) & LISTED != 0
    }

    /// One more client; returns the count now. The manager's, under its
    /// lock, on a region it tracks.
    pub(crate) fn acquire(&self) -> usize {
        let was = self.word.fetch_add(1, Ordering::AcqRel);
        debug_assert!(was & EVICTED == 0, "acquired an evicted region");
        ((was & CLIENTS) + 1) as usize
    }

    /// One client fewer; returns the count now. The manager's, under its
    /// lock.
    pub(crate) fn release(&self) -> usize {
        let was = self.word.fetch_sub(1, Ordering::SeqCst);
        debug_assert!(was & CLIENTS > 1, "released the manager's own client");
        ((was & CLIENTS) - 1) as usize
    }

    /// Marks the region listed (the manager, under its lock, as it puts the
    /// region in its list).
    pub(crate) fn list(&self) {
        self.word.fetch_or(LISTED, Ordering::SeqCst);
    }

    /// Evicts the region if only the manager's client is counted and it was
    /// not taken back since the last look (or `force`); otherwise resets
    /// the hits counted since then and says how many there were. The
    /// manager's, under its lock, on a listed region.
    pub(crate) fn try_evict(&self, force: bool) -> Eviction {
        let mut w = self.word.load(Ordering::SeqCst);
        loop {
            let unused = w & CLIENTS == 1 && (force || w & HITS == 0);
            let next = if unused { EVICTED } else { w & !HITS };
            match self
                .word
                .compare_exchange_weak(w, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) if unused => return Eviction::Done,
                Ok(_) => {
                    return Eviction::Spared {
                        hits: (w & HITS) >> HIT_SHIFT,
                    }
                }
                Err(now) => w = now,
            }
        }
    }

    /// For the evictor's look ahead: `None` if only the manager's client is
    /// counted and no hit since the last look (the next to go); else the
    /// hits since then, now reset.
    pub(crate) fn sweep(&self) -> Option<u64> {
        let mut w = self.word.load(Ordering::SeqCst);
        loop {
            if w & CLIENTS == 1 && w & HITS == 0 {
                return None;
            }
            match self
                .word
                .compare_exchange_weak(w, w & !HITS, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return Some((w & HITS) >> HIT_SHIFT),
                Err(now) => w = now,
            }
        }
    }

    /// Gives back a cursor's client without the lock, if the region is
    /// listed (else the manager must list it: false, nothing changed).
    ///
    /// The caller must have dropped its own handle to the mapping first: once
    /// the count is back the region may be evicted and unmapped at once, and
    /// the manager counts its room free when its own handle goes.
    pub(crate) fn park(&self) -> bool {
        let w = self.word.load(Ordering::Acquire);
        debug_assert!(w & CLIENTS > 1, "parked a region the cursor did not use");
        if w & LISTED == 0 {
            return false;
        }
        // Listed stays listed while this client is counted (only eviction
        // unlists), so the check above still holds.
        self.word.fetch_sub(1, Ordering::SeqCst);
        true
    }

    /// Counts a client again without the lock, unless the region was
    /// evicted; counts a hit for the second chance. True if counted.
    pub(crate) fn unpark(&self) -> bool {
        let mut w = self.word.load(Ordering::Relaxed);
        loop {
            if w & EVICTED != 0 || w & CLIENTS == 0 {
                return false;
            }
            let hit = if w & HITS == HITS { 0 } else { HIT };
            match self.word.compare_exchange_weak(
                w,
                w + 1 + hit,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => w = now,
            }
        }
    }

    /// Gives back a count [`unpark`](Self::unpark) took when the region it
    /// was for could not be reached after all.
    pub(crate) fn unpark_undo(&self) {
        self.word.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn park_unpark_and_evict() {
        let c = Claims::new();
        assert_eq!((c.clients(), c.is_listed()), (1, false));
        assert_eq!(c.acquire(), 2);
        assert!(!c.park(), "an unlisted region goes back under the lock");
        assert_eq!(c.release(), 1);
        c.list();
        assert!(c.is_listed());
        assert!(c.unpark());
        assert_eq!(c.clients(), 2);
        assert_eq!(c.try_evict(false), Eviction::Spared { hits: 1 });
        assert!(c.park());
        assert_eq!(c.clients(), 1);
        assert!(c.unpark() && c.park());
        // Hit once since the last look: spared once, then evicted.
        assert_eq!(c.try_evict(false), Eviction::Spared { hits: 1 });
        assert_eq!(c.try_evict(false), Eviction::Done);
        assert_eq!((c.clients(), c.is_listed()), (0, false));
        assert!(!c.unpark(), "an evicted region is not taken back");
        let forced = Claims::new();
        forced.list();
        assert!(forced.unpark() && forced.park());
        assert_eq!(forced.try_evict(true), Eviction::Done, "hits do not count");
    }

    #[test]
    fn an_unpark_and_an_eviction_race_and_one_wins() {
        for _ in 0..200 {
            let c = std::sync::Arc::new(Claims::new());
            c.list();
            let t = {
                let c = c.clone();
                std::thread::spawn(move || c.unpark())
            };
            let evicted = c.try_evict(false) == Eviction::Done;
            let unparked = t.join().unwrap();
            if unparked {
                // The unpark came first: it is in use, and so it stays.
                assert!(!evicted);
                assert_eq!(c.clients(), 2);
                assert!(c.park());
                assert_eq!(c.try_evict(false), Eviction::Done);
            } else {
                assert!(evicted);
                assert_eq!(c.clients(), 0);
            }
        }
    }
}
