//! [`Claim`]: who uses a region cell, in one atomic word, so that a cursor
//! takes a mapped window, and gives it back, without any lock, while the
//! evictor takes only what nobody uses.
//!
//! # The word
//!
//! | bits   | name      | meaning |
//! |--------|-----------|---------|
//! | 0..24  | `CLIENTS` | the manager's client (1 while the region is tracked) plus one per cursor using it; 0 when the cell holds no readable region |
//! | 24..32 | `REFS`    | times a cursor took the region since the evictor's hand last passed (saturating at 255): CLOCK's reference bit, counted |
//! | 32..64 | `GEN`     | the generation: bumped each time a region is published in the cell |
//!
//! # States and transitions
//!
//! | state | word | who moves it out, and how |
//! |---|---|---|
//! | empty (free, or reserved for a window being mapped) | `gen, refs 0, clients 0` | the mapping thread: [`publish`](Claim::publish) → live with `gen + 1`, its own client counted |
//! | live, unused | `gen, refs r, clients 1` | a cursor: [`try_take`](Claim::try_take) → in use (refs + 1); the evictor: [`sweep`](Claim::sweep) → refs 0 (`r > 0`, spared) or empty (`r == 0`, or any `r` when forced: evicted) |
//! | live, in use | `gen, refs r, clients n > 1` | a cursor: `try_take`/[`try_add`](Claim::try_add) → `n + 1` (refused at `n == CLIENTS`, full), [`give_back`](Claim::give_back) → `n - 1`, or [`give_back_unused`](Claim::give_back_unused) (a take that found another region than the one it looked for) → `n - 1` and its use taken back (refs − 1, unless 0 or saturated); the evictor: `sweep` → refs 0 (spared) |
//!
//! # Why it is sound
//!
//! - **Evicted only unused.** The evictor's compare-and-swap to empty
//!   succeeds only from exactly one client, its own, and no cursor can take
//!   a client from an empty word. A cursor counted in the word therefore
//!   keeps the region tracked, and its mapping alive, until it gives its
//!   client back.
//! - **No stale region.** A cursor takes a client by compare-and-swap from
//!   a word it loaded, so the generation it saw is the one it counts on; a
//!   cell evicted and refilled meanwhile has another generation and the
//!   swap fails. (A cursor would have to sleep between its load and its
//!   swap while the same cell is refilled 2³² times for a stale swap to
//!   succeed.)
//! - **No carry.** The count is full at `CLIENTS` (the manager's and
//!   16,777,214 cursors', reached only by cursors leaked with
//!   `mem::forget`): `try_take` and `try_add` refuse to count another
//!   rather than carry into `REFS` (a carry would make a region in use
//!   look empty, and the next give-back borrow from the uses). The miss
//!   path turns a refusal at a full count into `Error::TooManyCursors`.
//! - **Orderings.** [`publish`](Claim::publish) is a `Release` store after
//!   the cell's fields are written; `try_take` is an `Acquire` swap, so a
//!   cursor that counts itself sees those fields. `give_back` is a
//!   `Release` subtraction (the cursor's reads of the mapping happen before
//!   it) and the evictor's swap to empty is `Acquire` (so the unmapping
//!   after it happens after every read); both are `SeqCst` for the memory
//!   limit's sake (below). Cursors adding to a word they are
//!   already counted in need no ordering (`Relaxed`). The loads that only
//!   look ([`seen`](Claim::seen), `clients_of`) are `Acquire`, so a
//!   region seen live is seen whole; the load of the next generation is
//!   `Relaxed` (its mapping thread owns the empty cell).
//! - **Over the memory limit.** A release that leaves a region unused reads
//!   the ledger next, and a thread that commits bytes past the limit sweeps
//!   the claim words next; the release's two accesses and the commit are
//!   `SeqCst`, and the commit is followed by a `SeqCst` fence in every
//!   build (the sweep first filters cells with `Acquire` loads, such as
//!   [`seen`](Claim::seen), which the `SeqCst` order alone does not
//!   cover; loom, which does not model `SeqCst` accesses, fences the
//!   release's side too), so either the sweep sees the region unused or
//!   the release sees the limit passed and evicts.

use crate::sync::{AtomicU64, Ordering};

const CLIENTS: u64 = (1 << 24) - 1;
/// The most cursors one region counts (the word's count less the
/// manager's own client).
pub(crate) const MAX_CURSORS: usize = CLIENTS as usize - 1;
const REF_SHIFT: u32 = 24;
const REF: u64 = 1 << REF_SHIFT;
const REFS: u64 = 0xff << REF_SHIFT;
const GEN_SHIFT: u32 = 32;

/// The claim word of one region cell (see the module documentation).
#[derive(Debug, Default)]
pub(crate) struct Claim {
    word: AtomicU64,
}

/// What the evictor's hand found at a cell ([`Claim::sweep`]).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Sweep {
    /// No readable region: free, or a window being mapped.
    Empty,
    /// Used since the hand last passed (`refs` times, now cleared) or in
    /// use now: it stays.
    Spared { refs: u32, in_use: bool },
    /// Evicted: the caller owns the cell's region now.
    Evicted,
}

/// A generation and client count as loaded, for a cursor that means to
/// take the region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Seen(u64);

impl Seen {
    /// The generation of the region seen.
    #[inline]
    pub(crate) fn generation(self) -> u32 {
        (self.0 >> GEN_SHIFT) as u32
    }

    /// True if a region was readable.
    #[inline]
    pub(crate) fn is_live(self) -> bool {
        self.0 & CLIENTS != 0
    }

    /// True if the region was unused and not used since the hand last
    /// passed: the next the hand would evict.
    #[inline]
    pub(crate) fn is_idle(self) -> bool {
        self.0 & (CLIENTS | REFS) == 1
    }

    /// True if the region counted as many clients as the word holds: no
    /// cursor can take it until one gives it back.
    #[inline]
    pub(crate) fn is_full(self) -> bool {
        self.0 & CLIENTS == CLIENTS
    }
}

impl Claim {
    /// An empty word of generation 0.
    pub(crate) fn new() -> Self {
        Claim {
            word: AtomicU64::new(0),
        }
    }

    /// The word as it is now, for [`try_take`](Self::try_take).
    #[inline]
    pub(crate) fn seen(&self) -> Seen {
        Seen(self.word.load(Ordering::Acquire))
    }

    /// Clients counted on the region of generation `gen`: 0 if the cell
    /// holds another generation or none.
    pub(crate) fn clients_of(&self, gen: u32) -> usize {
        let w = self.word.load(Ordering::Acquire);
        if (w >> GEN_SHIFT) as u32 == gen {
            (w & CLIENTS) as usize
        } else {
            0
        }
    }

    /// The generation the next [`publish`](Self::publish) gives (for the
    /// thread that reserved the cell).
    pub(crate) fn next_generation(&self) -> u32 {
        ((self.word.load(Ordering::Relaxed) >> GEN_SHIFT) as u32).wrapping_add(1)
    }

    /// Makes the region just written into an empty cell readable: the next
    /// generation, with `clients` counted (the manager's and the mapping
    /// cursor's). Only the thread that reserved the cell calls it. Returns
    /// the new generation.
    pub(crate) fn publish(&self, clients: u64) -> u32 {
        let w = self.word.load(Ordering::Relaxed);
        debug_assert_eq!(w & CLIENTS, 0, "published over a live region");
        let gen = ((w >> GEN_SHIFT) as u32).wrapping_add(1);
        self.word
            .store((u64::from(gen) << GEN_SHIFT) | clients, Ordering::Release);
        gen
    }

    /// Counts one more client on the region of generation `gen`, if it is
    /// still readable and its count is not full, and one more use since the
    /// hand passed. `seen` is the caller's last load of the word. True if
    /// counted.
    #[inline]
    pub(crate) fn try_take(&self, gen: u32, seen: Seen) -> bool {
        let mut w = seen.0;
        loop {
            // Clients 0 (nothing readable) or `CLIENTS` (full), in one
            // comparison: 0 wraps to the largest value.
            if (w >> GEN_SHIFT) as u32 != gen || (w & CLIENTS).wrapping_sub(1) >= CLIENTS - 1 {
                return false;
            }
            let used = if w & REFS == REFS { 0 } else { REF };
            match self.word.compare_exchange_weak(
                w,
                w + 1 + used,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => w = now,
            }
        }
    }

    /// One more client on a region the caller is already counted on (a
    /// cloned cursor): it cannot be evicted meanwhile. False, counting
    /// nothing, if the count is full.
    pub(crate) fn try_add(&self) -> bool {
        let mut w = self.word.load(Ordering::Relaxed);
        loop {
            debug_assert!(w & CLIENTS > 1, "added to a region the caller did not use");
            if Seen(w).is_full() {
                return false;
            }
            match self
                .word
                .compare_exchange_weak(w, w + 1, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => w = now,
            }
        }
    }

    /// Gives one cursor's client back; returns the clients left (1: the
    /// region is unused now). `SeqCst`, with the fence loom needs, so that
    /// a release and the memory limit passed are seen in one order by the
    /// releasing cursor and the evictor (see `Shared::give_back`).
    #[inline]
    pub(crate) fn give_back(&self) -> u64 {
        let was = self.word.fetch_sub(1, Ordering::SeqCst);
        crate::sync::sc_fence();
        debug_assert!(was & CLIENTS > 1, "gave back the manager's own client");
        (was & CLIENTS) - 1
    }

    /// Gives back the client of a [`try_take`](Self::try_take) that found
    /// the region was not the one it looked for (another file's, or not
    /// holding the offset), and the use that take counted, so that a look
    /// gives no region a second chance it did not earn. The use stays if
    /// the hand has cleared the uses since (none to take back) or they are
    /// saturated (the take may have counted none). Otherwise as
    /// [`give_back`](Self::give_back), orderings included.
    #[cold]
    pub(crate) fn give_back_unused(&self) -> u64 {
        let mut w = self.word.load(Ordering::Relaxed);
        loop {
            debug_assert!(w & CLIENTS > 1, "gave back the manager's own client");
            let uses = w & REFS;
            let unmark = if uses != 0 && uses != REFS { REF } else { 0 };
            match self.word.compare_exchange_weak(
                w,
                w - 1 - unmark,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(was) => {
                    crate::sync::sc_fence();
                    return (was & CLIENTS) - 1;
                }
                Err(now) => w = now,
            }
        }
    }

    /// The evictor's hand at this cell: evicts the region if only the
    /// manager's client is counted and no cursor took it since the hand
    /// last passed (or `force`); otherwise clears its uses and says how
    /// many there were. Only the evictor (one thread at a time) calls it.
    pub(crate) fn sweep(&self, force: bool) -> Sweep {
        let mut w = self.word.load(Ordering::SeqCst);
        loop {
            let clients = w & CLIENTS;
            if clients == 0 {
                return Sweep::Empty;
            }
            let refs = ((w & REFS) >> REF_SHIFT) as u32;
            let evict = clients == 1 && (force || refs == 0);
            let next = if evict {
                w & !(CLIENTS | REFS)
            } else {
                w & !REFS
            };
            if !evict && refs == 0 {
                // In use and not used since: nothing to clear.
                return Sweep::Spared { refs, in_use: true };
            }
            match self
                .word
                .compare_exchange_weak(w, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) if evict => return Sweep::Evicted,
                Ok(_) => {
                    return Sweep::Spared {
                        refs,
                        in_use: clients > 1,
                    }
                }
                Err(now) => w = now,
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn take_give_back_and_evict() {
        let c = Claim::new();
        assert!(!c.seen().is_live());
        assert!(!c.try_take(0, c.seen()), "nothing to take");
        assert_eq!(c.sweep(false), Sweep::Empty);
        let gen = c.publish(2);
        assert_eq!((gen, c.clients_of(gen), c.clients_of(gen + 1)), (1, 2, 0));
        assert_eq!(c.give_back(), 1);
        // Unused, not taken since: evicted.
        assert_eq!(c.sweep(false), Sweep::Evicted);
        assert_eq!(c.clients_of(gen), 0);
        assert!(!c.try_take(gen, c.seen()), "an evicted region is not taken");
        // Published again: a new generation; the old one is not taken.
        let gen2 = c.publish(1);
        assert_eq!(gen2, 2);
        assert!(!c.try_take(gen, c.seen()));
        assert!(c.try_take(gen2, c.seen()));
        assert_eq!(
            c.sweep(false),
            Sweep::Spared {
                refs: 1,
                in_use: true
            }
        );
        assert_eq!(c.give_back(), 1);
        // Taken and given back since the hand passed: a second chance.
        assert!(c.try_take(gen2, c.seen()));
        assert_eq!(c.give_back(), 1);
        assert_eq!(
            c.sweep(false),
            Sweep::Spared {
                refs: 1,
                in_use: false
            }
        );
        assert_eq!(c.sweep(false), Sweep::Evicted);
        // `force` ignores the uses.
        let gen3 = c.publish(1);
        assert!(c.try_take(gen3, c.seen()));
        assert!(c.try_add());
        assert_eq!(c.clients_of(gen3), 3);
        c.give_back();
        c.give_back();
        assert_eq!(c.sweep(true), Sweep::Evicted);
    }

    /// A take that looked at the wrong region gives back its client and
    /// its use: an unused region it looked at is evicted at the hand's
    /// next pass, as if nobody had looked. A use the hand cleared
    /// meanwhile is not taken twice, and a saturated count stays.
    #[test]
    fn a_look_at_the_wrong_region_leaves_no_use() {
        let c = Claim::new();
        let gen = c.publish(1);
        assert!(c.try_take(gen, c.seen()));
        assert_eq!(c.give_back_unused(), 1);
        assert_eq!(c.clients_of(gen), 1);
        assert_eq!(c.sweep(false), Sweep::Evicted);
        // Taken by a cursor that reads it, then looked at: one use stays.
        let gen = c.publish(1);
        assert!(c.try_take(gen, c.seen()));
        assert!(c.try_take(gen, c.seen()));
        assert_eq!(c.give_back_unused(), 2);
        assert_eq!(c.give_back(), 1);
        assert_eq!(
            c.sweep(false),
            Sweep::Spared {
                refs: 1,
                in_use: false
            }
        );
        assert_eq!(c.sweep(false), Sweep::Evicted);
        // The hand passed between the look's take and its give-back: the
        // uses it cleared are not taken again (no borrow from the
        // generation).
        let gen = c.publish(1);
        assert!(c.try_take(gen, c.seen()));
        assert_eq!(
            c.sweep(false),
            Sweep::Spared {
                refs: 1,
                in_use: true
            }
        );
        assert_eq!(c.give_back_unused(), 1);
        assert_eq!((c.seen().generation(), c.clients_of(gen)), (gen, 1));
        assert_eq!(c.sweep(false), Sweep::Evicted);
        // Saturated: the count stays saturated.
        let gen = c.publish(1);
        for _ in 0..300 {
            assert!(c.try_take(gen, c.seen()));
            assert_eq!(c.give_back(), 1);
        }
        assert!(c.try_take(gen, c.seen()));
        assert_eq!(c.give_back_unused(), 1);
        assert_eq!(
            c.sweep(false),
            Sweep::Spared {
                refs: 255,
                in_use: false
            }
        );
    }

    #[test]
    fn uses_saturate_without_touching_the_generation() {
        let c = Claim::new();
        let gen = c.publish(1);
        for _ in 0..300 {
            assert!(c.try_take(gen, c.seen()));
            c.give_back();
        }
        assert_eq!(
            c.sweep(false),
            Sweep::Spared {
                refs: 255,
                in_use: false
            }
        );
        assert_eq!(c.clients_of(gen), 1);
    }

    #[test]
    fn a_full_count_refuses_another_client_and_carries_nothing() {
        let c = Claim::new();
        // The manager's client and every cursor's but one.
        let gen = c.publish(CLIENTS - 1);
        assert!(!c.seen().is_full());
        assert!(c.try_take(gen, c.seen()), "the last client is counted");
        let full = c.seen();
        assert!(full.is_full() && full.is_live());
        assert!(!c.try_take(gen, full), "no take past the count");
        assert!(!c.try_add(), "no add past the count");
        assert_eq!(c.seen(), full, "the uses and the generation untouched");
        assert_eq!(c.clients_of(gen), MAX_CURSORS + 1);
        assert_eq!(c.give_back(), CLIENTS - 1);
        assert!(c.try_add(), "a client given back makes room");
        assert!(!c.try_add());
    }

    #[test]
    fn a_take_and_an_eviction_race_and_one_wins() {
        for _ in 0..200 {
            let c = std::sync::Arc::new(Claim::new());
            let gen = c.publish(1);
            let t = {
                let c = c.clone();
                std::thread::spawn(move || c.try_take(gen, c.seen()))
            };
            let evicted = c.sweep(false) == Sweep::Evicted;
            let taken = t.join().unwrap();
            assert!(evicted != taken, "exactly one wins");
            assert_eq!(c.clients_of(gen), usize::from(taken) * 2);
        }
    }
}

/// Every interleaving of the claim word's users (`RUSTFLAGS="--cfg loom"`).
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::sync::UnsafeCell;
    use loom::sync::Arc;
    use loom::thread;

    /// A cell: the claim word and a field published with it.
    struct Cell {
        claim: Claim,
        field: UnsafeCell<u64>,
    }

    impl Cell {
        fn publish(&self, value: u64) -> u32 {
            // SAFETY: the cell is empty and reserved by this thread; no
            // cursor reads the field before the word says it is live.
            self.field.with_mut(|p| unsafe { *p = value });
            self.claim.publish(1)
        }

        /// A cursor: takes the region if it is the one of `gen`, reads the
        /// field, gives it back.
        fn read(&self, gen: u32) -> Option<u64> {
            if !self.claim.try_take(gen, self.claim.seen()) {
                return None;
            }
            // SAFETY: counted, so the region (and the field) cannot be
            // evicted or rewritten until the client is given back.
            let v = self.field.with(|p| unsafe { *p });
            self.claim.give_back();
            Some(v)
        }

        /// The evictor: evicts if unused, then writes the field as the
        /// next mapping would.
        fn evict_and_refill(&self, value: u64) -> bool {
            loop {
                match self.claim.sweep(false) {
                    Sweep::Evicted => break,
                    // In use, or used since: the hand comes round again.
                    Sweep::Spared { .. } => loom::thread::yield_now(),
                    Sweep::Empty => return false,
                }
            }
            self.publish(value);
            true
        }
    }

    /// A cursor reading while the evictor evicts and refills the cell: the
    /// cursor reads the value of the generation it asked for, or nothing;
    /// loom reports any read racing the rewrite.
    #[test]
    fn loom_a_taken_region_is_never_rewritten() {
        loom::model(|| {
            let cell = Arc::new(Cell {
                claim: Claim::new(),
                field: UnsafeCell::new(0),
            });
            let gen = cell.publish(7);
            let reader = {
                let cell = cell.clone();
                thread::spawn(move || cell.read(gen))
            };
            assert!(cell.evict_and_refill(9));
            if let Some(v) = reader.join().unwrap() {
                assert_eq!(v, 7);
            }
            assert_eq!(cell.read(gen + 1), Some(9));
        });
    }

    /// A cursor takes a region while it is being published: it reads the
    /// field as published, or does not take the region (loom reports a
    /// read racing the write).
    #[test]
    fn loom_a_published_region_is_read_whole() {
        loom::model(|| {
            let cell = Arc::new(Cell {
                claim: Claim::new(),
                field: UnsafeCell::new(0),
            });
            let reader = {
                let cell = cell.clone();
                thread::spawn(move || cell.read(1))
            };
            cell.publish(5);
            if let Some(v) = reader.join().unwrap() {
                assert_eq!(v, 5);
            }
        });
    }

    /// At a full count, a cursor gives back while two others take, one
    /// by a take and one by an add (a clone): the count never carries into
    /// the uses or the generation, and each one counted was room made.
    #[test]
    fn loom_a_full_count_never_carries() {
        loom::model(|| {
            let claim = Arc::new(Claim::new());
            let gen = claim.publish(CLIENTS);
            let giver = {
                let claim = claim.clone();
                thread::spawn(move || claim.give_back())
            };
            let taker = {
                let claim = claim.clone();
                thread::spawn(move || claim.try_take(gen, claim.seen()))
            };
            let added = claim.try_add();
            giver.join().unwrap();
            let taken = taker.join().unwrap();
            assert!(!(added && taken), "one room, one client");
            let counted = u64::from(added) + u64::from(taken);
            assert_eq!(claim.clients_of(gen) as u64, CLIENTS - 1 + counted);
            assert_eq!(claim.seen().generation(), gen);
        });
    }

    /// Two cursors take and give back while the evictor sweeps: it evicts
    /// only once both are gone, and the count never goes wrong.
    #[test]
    fn loom_eviction_waits_for_every_client() {
        loom::model(|| {
            let claim = Arc::new(Claim::new());
            let gen = claim.publish(1);
            let cursors: Vec<_> = (0..2)
                .map(|_| {
                    let claim = claim.clone();
                    thread::spawn(move || {
                        if claim.try_take(gen, claim.seen()) {
                            claim.give_back();
                        }
                    })
                })
                .collect();
            let evicted = claim.sweep(false) == Sweep::Evicted;
            for c in cursors {
                c.join().unwrap();
            }
            if evicted {
                assert_eq!(claim.clients_of(gen), 0);
            } else {
                assert_eq!(claim.clients_of(gen), 1);
                // Spared (used since): evicted on the hand's next turn or
                // the one after.
                let mut turns = 0;
                while claim.sweep(false) != Sweep::Evicted {
                    turns += 1;
                    assert!(turns < 2);
                }
            }
        });
    }

    /// A cursor looks at a region that turns out not to be the one it
    /// wants (a take, then a give-back of the client and the use) while
    /// the hand passes twice: the count and the generation never go wrong,
    /// and the look leaves no second chance — the region, unused, is
    /// evicted by the second pass at the latest, or by the first after it.
    #[test]
    fn loom_a_look_at_the_wrong_region_races_the_hand() {
        loom::model(|| {
            let claim = Arc::new(Claim::new());
            let gen = claim.publish(1);
            let look = {
                let claim = claim.clone();
                thread::spawn(move || {
                    if claim.try_take(gen, claim.seen()) {
                        claim.give_back_unused();
                    }
                })
            };
            let evicted = (0..2).any(|_| claim.sweep(false) == Sweep::Evicted);
            look.join().unwrap();
            assert_eq!(claim.seen().generation(), gen);
            if evicted {
                assert_eq!(claim.clients_of(gen), 0);
            } else {
                assert_eq!(claim.clients_of(gen), 1);
                assert_eq!(claim.sweep(false), Sweep::Evicted);
            }
        });
    }
}
