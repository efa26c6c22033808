//! [`Evictor`]: CLOCK's hand over the cells, held by one thread at a time.
//!
//! Cursors mark a region used by counting a use in its claim word when they
//! take it (no lock, no reordering of any list). The hand walks the cells
//! in order; at each reserved cell it finds a region in use (passed over),
//! one used since the hand last passed (spared, its uses cleared and
//! counted as asks in the frequency sketch: CLOCK's second chance), or one
//! unused and not used since — evicted, by winning its claim word. It walks
//! each cell at most twice per call.
//!
//! An evicted region is taken out of its file's slots and table (under the
//! file's lock: the hand's lock comes first, a file's second), unmapped,
//! and only then are its handle and bytes freed: what the limits count is
//! what the operating system holds for the manager. (A caller that keeps a
//! clone of a region, [`MapRegion`](crate::MapRegion)'s or a Python
//! `memoryview`'s, keeps its mapping past the eviction; that mapping is the
//! caller's from then on and counts against no limit of the manager, as
//! `MapRegion` documents.) Unmapping under the hand serialises
//! evictions, which the kernel's own map lock serialises anyway; the miss
//! that evicted maps its window before it lets go of the hand (but for a
//! window mapped past the memory limit, whose miss lets go of the hand
//! once it has evicted what it could), so that a thread that needs room
//! waits asleep rather than in the kernel, on a CPU each unmap would
//! interrupt to flush its TLB.
//!
//! Who takes the hand: a miss that needs room waits for it
//! ([`lock`](Evictor::lock)) — it cannot map without room, and the handle
//! limit is never passed; a copy read hot enough to be admitted tries it
//! ([`try_lock`](Evictor::try_lock)) and copies if another thread holds
//! it; a release that finds the manager over its memory limit tries it, and
//! if another thread holds it, leaves a note that the holder reads when it
//! lets go ([`HandGuard`]'s drop), so no unused region is left over the
//! limit and nobody waits.

use std::mem::ManuallyDrop;
use std::sync::Arc;

use super::counters::Counter;
use super::election::Election;
use super::entry::FileEntry;
use super::sketch::Sketch;
use super::slots::What;
use super::Shared;
use crate::claim::Sweep;
use crate::sync::MutexGuard;
use crate::sys::page_cost;

/// The hand (see the module documentation): held by one thread at a time;
/// a release that finds the manager over its memory limit while another
/// thread holds it leaves a note, and the holder evicts again when it lets
/// go ([`Election`]).
#[derive(Debug, Default)]
pub(crate) struct Evictor {
    hand: Election<Hand>,
}

#[derive(Debug, Default)]
pub(crate) struct Hand {
    /// The next cell it looks at.
    at: usize,
}

/// What an eviction must free.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Need {
    /// A handle.
    pub(crate) handle: bool,
    /// Bytes.
    pub(crate) bytes: u64,
}

/// What an eviction did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Swept {
    /// Evicted this many regions (perhaps fewer than needed: the rest were
    /// in use).
    Evicted(usize),
    /// The next region to go was at least as hot as the window that asked
    /// (admission): nothing more evicted. The number is of the colder
    /// regions evicted before it, in the same walk (their room stays free
    /// for the next miss).
    Rejected(usize),
}

impl Evictor {
    /// The hand, waiting for it.
    pub(crate) fn lock<'a>(&'a self, shared: &'a Shared) -> HandGuard<'a> {
        HandGuard::new(self.hand.lock(), shared)
    }

    /// The hand, if no other thread holds it.
    pub(crate) fn try_lock<'a>(&'a self, shared: &'a Shared) -> Option<HandGuard<'a>> {
        self.hand.try_lock().map(|g| HandGuard::new(g, shared))
    }

    /// Evicts unused regions while the manager is over its memory limit —
    /// now, or, if another thread holds the hand, by that thread once it
    /// lets go.
    pub(crate) fn evict_over(&self, shared: &Shared) {
        if let Some(hand) = self.hand.ask() {
            HandGuard::new(hand, shared).evict_over();
        }
    }
}

/// The hand, held; letting go of it runs the checks it owes (see the
/// module documentation).
pub(crate) struct HandGuard<'a> {
    hand: ManuallyDrop<MutexGuard<'a, Hand>>,
    shared: &'a Shared,
    /// File entries of evicted regions, dropped once the hand is let go
    /// (dropping the last one forgets the file, under the registry's lock).
    dropped: Vec<Arc<FileEntry>>,
    /// Whether letting go answers the notes left meanwhile (false for the
    /// turns taken by a drop that answers them: it loops).
    answers_notes: bool,
}

impl<'a> HandGuard<'a> {
    fn new(hand: MutexGuard<'a, Hand>, shared: &'a Shared) -> Self {
        HandGuard {
            hand: ManuallyDrop::new(hand),
            shared,
            dropped: Vec::new(),
            answers_notes: true,
        }
    }

    /// Walks the cells from the hand, evicting regions unused and not used
    /// since the hand last passed (any unused region with `force`), until
    /// `need` is freed or every cell was seen twice. With `admit` (the
    /// asks of a window a copy read would map), stops instead, evicting
    /// nothing more, at the first region to go that is not colder than
    /// that (see [`Sketch::admits`]).
    pub(crate) fn evict(&mut self, need: Need, force: bool, admit: Option<u32>) -> Swept {
        let s = self.shared;
        let cap = s.cells.capacity();
        let mut steps = 2 * cap;
        let (mut handles, mut bytes, mut n) = (0usize, 0u64, 0usize);
        while ((need.handle && handles == 0) || bytes < need.bytes) && steps > 0 {
            steps -= 1;
            let i = self.hand.at % cap;
            self.hand.at = i + 1;
            if !s.cells.is_reserved(i) {
                continue;
            }
            let cell = s.cells.get(i as u32);
            let seen = cell.claim.seen();
            if !seen.is_live() {
                continue;
            }
            if let Some(asks) = admit.filter(|_| seen.is_idle()) {
                let victim = s.sketch.estimate(cell.key(s.limits.slot_window()));
                if !Sketch::admits(asks, victim) {
                    s.sketch.publish_victim(victim);
                    self.hand.at = i;
                    return Swept::Rejected(n);
                }
            }
            match cell.claim.sweep(force) {
                Sweep::Empty => {}
                Sweep::Spared { refs, .. } => {
                    if refs > 0 {
                        s.sketch.add(cell.key(s.limits.slot_window()), refs);
                    }
                }
                Sweep::Evicted => {
                    bytes += self.unmap(i as u32);
                    handles += 1;
                    n += 1;
                }
            }
        }
        if n == 0 && steps == 0 {
            // Two turns and nothing to evict: every region is in use.
            s.sketch.close();
        }
        Swept::Evicted(n)
    }

    /// Evicts while the manager is over its memory limit; returns how many
    /// regions.
    pub(crate) fn evict_over(&mut self) -> usize {
        let s = self.shared;
        let need = Need {
            handle: false,
            bytes: s.ledger.short_by(0),
        };
        if need.bytes == 0 {
            return 0;
        }
        let Swept::Evicted(n) = self.evict(need, false, None) else {
            unreachable!("no admission asked")
        };
        s.counters.add(Counter::Evictions, n as u64);
        n
    }

    /// Publishes the estimate of the region the hand would take next (among
    /// the next few), for copy reads to compare with.
    pub(crate) fn publish_next_victim(&self) {
        let s = self.shared;
        let cap = s.cells.capacity();
        for k in 0..cap.min(16) {
            let i = (self.hand.at + k) % cap;
            if !s.cells.is_reserved(i) {
                continue;
            }
            let cell = s.cells.get(i as u32);
            if cell.claim.seen().is_idle() {
                s.sketch
                    .publish_victim(s.sketch.estimate(cell.key(s.limits.slot_window())));
                return;
            }
        }
    }

    /// Takes the region the hand just won out of its file, unmaps it and
    /// frees its room; returns the bytes freed.
    fn unmap(&mut self, i: u32) -> u64 {
        let s = self.shared;
        let cell = s.cells.get(i);
        let span = cell.span();
        // SAFETY: the claim word was just won by this thread, under the hand.
        let (region, file) = unsafe { cell.take() };
        let file = file.expect("a live cell has its file");
        {
            let mut slots = file.slots();
            let gone = slots.remove(span.begin);
            debug_assert!(
                matches!(gone, Some(slot) if slot.what == What::Mapped(i)),
                "an evicted region was in its file's slots"
            );
            file.table()
                .remove(cell, span.begin, span.end, file.size(), |lo, hi| {
                    slots.region_over(lo, hi).map(|c| s.cells.get(c))
                });
        }
        file.notify();
        let size = span.end - span.begin;
        let cost = page_cost(size);
        s.ledger.untrack(size, cost);
        // Unmapped here, unless a caller keeps a clone of the region.
        drop(region);
        s.ledger.free(cost);
        s.cells.free(i);
        s.room.changed();
        self.dropped.push(file);
        cost
    }
}

impl Drop for HandGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: dropped once, here.
        unsafe { ManuallyDrop::drop(&mut self.hand) };
        self.dropped.clear();
        if !self.answers_notes {
            return;
        }
        // Notes left while the hand was held, and while each turn taken
        // here held it, answered in a loop: a turn that answered the next
        // note from its own drop would nest one frame deeper per note.
        while self.shared.evictor.hand.asked() {
            let Some(hand) = self.shared.evictor.hand.ask() else {
                break;
            };
            let mut turn = HandGuard::new(hand, self.shared);
            turn.answers_notes = false;
            turn.evict_over();
        }
    }
}
