//! [`Cells`]: the home of every region the manager tracks — one [`Cell`]
//! each — and the handle budget. A cell is reserved for a window before it
//! is mapped, holds the region while it is mapped, and is freed only once
//! the region is unmapped: the cells in use are exactly the mappings the
//! operating system holds for the manager (not those of regions a caller
//! cloned and kept past their eviction, which are the caller's), so
//! reserving at most `max_open_handles` of them is the handle limit.
//!
//! Cells never move: they sit in segments (64 cells, 128, 256, …)
//! allocated once and kept until the manager goes, so a cursor can read a
//! cell it found through a file's table without any lock, and without
//! keeping it alive: the manager does. Which cells are reserved is a bitmap
//! of atomic words per segment; the number reserved is one counter,
//! reserved by compare-and-swap below the limit before a bit is looked for
//! (so a reservation that passed the counter always finds a bit).
//!
//! | word | states | moved by |
//! |---|---|---|
//! | `used` | 0 to `max` | [`reserve`](Cells::reserve): `n → n + 1` by compare-and-swap while `n < max` (`Acquire`); [`free`](Cells::free): `n → n − 1` after clearing the cell's bit (`Release`); read with `Acquire` (`used()`, by a miss looking for windows in flight and by the checks) |
//! | bit `i` of the bitmap | clear (free), set (reserved) | `reserve`, once counted: sets a clear bit by compare-and-swap (`Acquire`: paired with the `free` that cleared it, so the last owner's emptying of the cell happens before the new owner writes it); `free`: clears it (`Release`), then the count; read with `Acquire` (`is_reserved`) |
//! | `hint` | a bitmap word | `free` stores the freed cell's word (`Relaxed`; only where a search starts) |
//!
//! Because a free clears the bit before the count goes down, and a
//! reservation's count is taken with `Acquire`, every reservation that got
//! past the count finds a clear bit among the segments allocated (or, while
//! they hold fewer cells than `max`, allocates the next one; once they hold
//! `max`, a bit is clear at every moment, and a scan that missed one looks
//! again).

use std::sync::{Arc, OnceLock};

use super::entry::FileEntry;
use crate::claim::Claim;
use crate::region::MapRegion;
use crate::sync::{AtomicU64, AtomicUsize, Ordering, UnsafeCell};

/// How many segments there may be: 64 · (2²⁶ − 1) cells in all.
const SEGMENTS: usize = 26;

/// One region's home: its claim word, the range and address cursors need
/// to read it, the key its heat is counted under, and the region and file
/// entry the manager keeps while it is tracked.
///
/// The fields other than the claim are written only while the claim word
/// says no region is readable (by the thread that reserved the cell, before
/// it [publishes](Claim::publish) it, and by the evictor after it has won
/// the cell), and read only by threads counted in the word, or by the
/// evictor: so they never change under a reader.
#[repr(align(64))]
pub(crate) struct Cell {
    pub(crate) claim: Claim,
    begin: AtomicU64,
    end: AtomicU64,
    base: AtomicUsize,
    /// The serial number of the region's file entry.
    serial: AtomicU64,
    /// The cell's own index among the manager's cells.
    index: u32,
    region: UnsafeCell<Option<MapRegion>>,
    file: UnsafeCell<Option<Arc<FileEntry>>>,
}

// SAFETY: the `UnsafeCell` fields are written only by the one thread that
// owns the cell at that moment (the reserving thread before publishing, the
// evictor after winning the claim word), and read only by threads counted in
// the claim word while it is live, which the `Release` publish and the
// `Acquire` take order after the writes (see `crate::claim`); `MapRegion`
// and `Arc<FileEntry>` are `Send + Sync`.
unsafe impl Sync for Cell {}
// SAFETY: as for `Sync`: the contents are `Send`.
unsafe impl Send for Cell {}

impl Default for Cell {
    fn default() -> Self {
        Cell::new(0)
    }
}

impl Cell {
    fn new(index: u32) -> Self {
        Cell {
            claim: Claim::new(),
            begin: AtomicU64::new(0),
            end: AtomicU64::new(0),
            base: AtomicUsize::new(0),
            serial: AtomicU64::new(0),
            index,
            region: UnsafeCell::new(None),
            file: UnsafeCell::new(None),
        }
    }
}

/// What a cursor reads a region through: its range and first byte.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Span {
    pub(crate) begin: u64,
    pub(crate) end: u64,
    pub(crate) base: *const u8,
}

impl Cell {
    /// Fills the reserved, empty cell with `region` of `file` (whose entry's
    /// serial number is `serial`) and publishes it with `clients` counted;
    /// returns its generation.
    pub(crate) fn publish(
        &self,
        region: MapRegion,
        file: Arc<FileEntry>,
        serial: u64,
        clients: u64,
    ) -> u32 {
        debug_assert!(!self.claim.seen().is_live());
        self.begin.store(region.ofs_begin(), Ordering::Relaxed);
        self.end.store(region.ofs_end(), Ordering::Relaxed);
        self.base
            .store(region.as_slice().as_ptr() as usize, Ordering::Relaxed);
        self.serial.store(serial, Ordering::Relaxed);
        // SAFETY: the cell is reserved by this thread and empty: nobody else
        // reads or writes these fields until the claim word is published.
        self.region.with_mut(|p| unsafe { *p = Some(region) });
        // SAFETY: as above.
        self.file.with_mut(|p| unsafe { *p = Some(file) });
        self.claim.publish(clients)
    }

    /// The range and address of the region, for a caller counted in the
    /// claim word (or the evictor).
    #[inline]
    pub(crate) fn span(&self) -> Span {
        Span {
            begin: self.begin.load(Ordering::Relaxed),
            end: self.end.load(Ordering::Relaxed),
            base: self.base.load(Ordering::Relaxed) as *const u8,
        }
    }

    /// The serial number of the region's file entry.
    #[inline]
    pub(crate) fn serial(&self) -> u64 {
        self.serial.load(Ordering::Relaxed)
    }

    /// The region's heat key, for windows of `slot` bytes: its file
    /// entry's serial number and its window's index.
    pub(crate) fn key(&self, slot: u64) -> (u64, u64) {
        (
            self.serial.load(Ordering::Relaxed),
            self.begin.load(Ordering::Relaxed) / slot,
        )
    }

    /// The cell's index among the manager's cells.
    pub(crate) fn index(&self) -> u32 {
        self.index
    }

    /// The region, for a caller counted in the claim word.
    ///
    /// # Safety
    ///
    /// The caller is counted in the claim word of the generation the
    /// region was published with, for as long as it uses the reference; or
    /// it holds the evictor's hand and found the cell named as mapped in
    /// its file's slots, under the file's lock (the invariant check: only
    /// the evictor, holding the hand, empties a published cell).
    #[inline]
    pub(crate) unsafe fn region(&self) -> &MapRegion {
        // SAFETY: a counted caller keeps the cell from being evicted, and a
        // caller holding the hand keeps the evictor out: either way the
        // field is not written while the reference lives (see `Cell`).
        self.region
            .with(|p| unsafe { (*p).as_ref() })
            .expect("a counted cell holds its region")
    }

    /// The file entry, for the evictor (which has won the claim word).
    ///
    /// # Safety
    ///
    /// Only the evictor, holding its lock, with the region live or won.
    pub(crate) unsafe fn file(&self) -> Arc<FileEntry> {
        // SAFETY: the caller is the evictor: nobody writes the field while
        // the region is live, and the evictor is the only one who takes it.
        self.file
            .with(|p| unsafe { (*p).clone() })
            .expect("a live cell has its file")
    }

    /// Empties a cell the evictor has won (or whose mapping failed to
    /// publish): its region and file entry, for the caller to drop.
    ///
    /// # Safety
    ///
    /// The claim word says no region is readable, and the caller owns the
    /// cell (it won it by eviction, or reserved it and never published).
    pub(crate) unsafe fn take(&self) -> (Option<MapRegion>, Option<Arc<FileEntry>>) {
        debug_assert!(!self.claim.seen().is_live());
        // SAFETY: per the contract, nobody else reads or writes the cell.
        let region = self.region.with_mut(|p| unsafe { (*p).take() });
        // SAFETY: as above.
        let file = self.file.with_mut(|p| unsafe { (*p).take() });
        self.begin.store(0, Ordering::Relaxed);
        self.end.store(0, Ordering::Relaxed);
        self.base.store(0, Ordering::Relaxed);
        (region, file)
    }
}

struct Segment {
    cells: Box<[Cell]>,
    /// Bit `i % 64` of word `i / 64` is set while cell `i` is reserved.
    bits: Box<[AtomicU64]>,
}

impl Segment {
    /// A segment of `len` cells, the first of index `first`.
    fn new(first: usize, len: usize) -> Self {
        Segment {
            cells: (first..first + len)
                .map(|i| Cell::new(u32::try_from(i).expect("fewer than 2^32 cells")))
                .collect(),
            bits: (0..len / 64).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

/// Every cell of a manager, and the handle budget (see the module
/// documentation).
pub(crate) struct Cells {
    segments: [OnceLock<Segment>; SEGMENTS],
    /// Cells reserved now.
    used: AtomicUsize,
    /// The most cells reserved at once: `max_open_handles`.
    max: usize,
    /// Where a reservation starts looking for a free bit: the word of the
    /// cell freed last.
    hint: AtomicUsize,
}

/// The segment of cell `i`, and its place there: segment `s` holds
/// `64 · 2^s` cells from `64 · (2^s − 1)`.
#[inline]
fn locate(i: usize) -> (usize, usize) {
    let q = i / 64 + 1;
    let s = (usize::BITS - 1 - q.leading_zeros()) as usize;
    (s, i - 64 * ((1 << s) - 1))
}

fn segment_len(s: usize) -> usize {
    64 << s
}

impl Cells {
    pub(crate) fn new(max: usize) -> Self {
        Cells {
            segments: std::array::from_fn(|_| OnceLock::new()),
            used: AtomicUsize::new(0),
            max: max.max(1),
            hint: AtomicUsize::new(0),
        }
    }

    /// The cell at index `i`, which was reserved at least once.
    #[inline]
    pub(crate) fn get(&self, i: u32) -> &Cell {
        let (s, at) = locate(i as usize);
        &self.segments[s]
            .get()
            .expect("a cell index names an allocated segment")
            .cells[at]
    }

    /// Cells reserved now: mapped regions, windows being mapped, and
    /// regions being unmapped.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// The cells there are, reserved or not (what the hand walks).
    pub(crate) fn capacity(&self) -> usize {
        self.segments
            .iter()
            .take_while(|s| s.get().is_some())
            .enumerate()
            .map(|(s, _)| segment_len(s))
            .sum()
    }

    /// True if cell `i` is reserved.
    pub(crate) fn is_reserved(&self, i: usize) -> bool {
        let (s, at) = locate(i);
        self.segments[s]
            .get()
            .is_some_and(|seg| seg.bits[at / 64].load(Ordering::Acquire) & (1 << (at % 64)) != 0)
    }

    /// Reserves a cell (a handle) if fewer than the limit are reserved.
    pub(crate) fn reserve(&self) -> Option<u32> {
        let mut n = self.used.load(Ordering::Relaxed);
        loop {
            if n >= self.max {
                return None;
            }
            match self
                .used
                .compare_exchange_weak(n, n + 1, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => n = now,
            }
        }
        // Counted below the limit: fewer than `max` bits are set by the
        // others, so a bit is free at every moment once `max` cells are
        // allocated. A scan can still miss one (freed behind it while the
        // others take those ahead): it looks again then, rather than grow
        // the cells for nothing (and the hand's walk with them).
        loop {
            if let Some(i) = self.claim_free_bit() {
                return Some(i);
            }
            if self.capacity() < self.max {
                self.grow();
            }
        }
    }

    /// Sets a free bit, from the hint on, over the segments allocated.
    fn claim_free_bit(&self) -> Option<u32> {
        let words = self.capacity() / 64;
        let start = self.hint.load(Ordering::Relaxed) % words.max(1);
        for k in 0..words {
            let w = (start + k) % words;
            let (s, at) = locate(w * 64);
            let seg = self.segments[s].get().expect("allocated");
            let word = &seg.bits[at / 64];
            let mut bits = word.load(Ordering::Relaxed);
            while bits != u64::MAX {
                let bit = bits.trailing_ones();
                match word.compare_exchange_weak(
                    bits,
                    bits | (1 << bit),
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        let i = w * 64 + bit as usize;
                        return Some(u32::try_from(i).expect("fewer than 2^32 cells"));
                    }
                    Err(now) => bits = now,
                }
            }
        }
        None
    }

    /// Allocates the first segment not allocated yet.
    fn grow(&self) {
        if let Some((s, slot)) = self
            .segments
            .iter()
            .enumerate()
            .find(|(_, s)| s.get().is_none())
        {
            slot.get_or_init(|| Segment::new(64 * ((1 << s) - 1), segment_len(s)));
        }
    }

    /// Frees cell `i` (its region unmapped, or its window never mapped):
    /// the handle is free again.
    pub(crate) fn free(&self, i: u32) {
        let (s, at) = locate(i as usize);
        let seg = self.segments[s].get().expect("allocated");
        debug_assert!(!seg.cells[at].claim.seen().is_live());
        let was = seg.bits[at / 64].fetch_and(!(1 << (at % 64)), Ordering::Release);
        debug_assert!(was & (1 << (at % 64)) != 0, "freed a free cell");
        // The bit is clear before the count goes down, so that a
        // reservation counted afterwards finds it.
        self.hint.store(i as usize / 64, Ordering::Relaxed);
        self.used.fetch_sub(1, Ordering::Release);
    }
}

impl Drop for Cells {
    fn drop(&mut self) {
        // The regions and file entries still held (the manager is going):
        // nothing else can reach them now.
        for seg in self.segments.iter_mut().filter_map(|s| s.get_mut()) {
            for cell in seg.cells.iter_mut() {
                // SAFETY: `&mut self`: no other thread holds the cells.
                cell.region.with_mut(|p| unsafe { (*p).take() });
                // SAFETY: as above.
                cell.file.with_mut(|p| unsafe { (*p).take() });
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn segments_cover_every_index_once() {
        assert_eq!(locate(0), (0, 0));
        assert_eq!(locate(63), (0, 63));
        assert_eq!(locate(64), (1, 0));
        assert_eq!(locate(191), (1, 127));
        assert_eq!(locate(192), (2, 0));
        let mut next = 0;
        for s in 0..5 {
            for at in 0..segment_len(s) {
                assert_eq!(locate(next), (s, at));
                next += 1;
            }
        }
    }

    #[test]
    fn reserves_up_to_the_limit_and_reuses_freed_cells() {
        let cells = Cells::new(200);
        let got: Vec<u32> = (0..200).map(|_| cells.reserve().unwrap()).collect();
        assert_eq!(cells.reserve(), None, "the limit holds");
        assert_eq!(cells.used(), 200);
        let mut sorted = got.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 200, "no cell twice");
        assert!(cells.capacity() >= 200 && cells.capacity() <= 448);
        assert!(got.iter().all(|&i| cells.is_reserved(i as usize)));
        cells.free(got[150]);
        assert!(!cells.is_reserved(got[150] as usize));
        assert_eq!(
            cells.reserve(),
            Some(got[150]),
            "the freed cell is found first"
        );
        for &i in &got {
            cells.free(i);
        }
        assert_eq!(cells.used(), 0);
    }

    #[test]
    fn threads_never_share_a_cell_nor_pass_the_limit() {
        let cells = Arc::new(Cells::new(100));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let cells = cells.clone();
                std::thread::spawn(move || {
                    let mut mine = Vec::new();
                    for round in 0..2000 {
                        if let Some(i) = cells.reserve() {
                            mine.push(i);
                        }
                        assert!(cells.used() <= 100);
                        if round % 3 == 0 {
                            if let Some(i) = mine.pop() {
                                cells.free(i);
                            }
                        }
                    }
                    mine
                })
            })
            .collect();
        let mut all: Vec<u32> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "a cell reserved twice");
        assert_eq!(cells.used(), n);
        // The first two segments hold the 100: no scan that missed a free
        // bit grew a third.
        assert_eq!(cells.capacity(), 192);
    }
}

/// Every interleaving of two reservations of the last handle, and of a
/// reservation and a free (`RUSTFLAGS="--cfg loom"`).
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;

    /// Two threads reserve with one handle left: one gets it; once freed,
    /// the other's next try gets the same cell; the count never passes 1.
    #[test]
    fn loom_the_last_handle_goes_to_one_thread() {
        loom::model(|| {
            let cells = Arc::new(Cells::new(1));
            let other = {
                let cells = cells.clone();
                loom::thread::spawn(move || cells.reserve())
            };
            let mine = cells.reserve();
            let theirs = other.join().unwrap();
            assert!(mine.is_some() != theirs.is_some(), "exactly one");
            assert_eq!(cells.used(), 1);
            let got = mine.or(theirs).unwrap();
            cells.free(got);
            assert_eq!(cells.reserve(), Some(got));
        });
    }

    /// A reservation racing a free with every handle taken: it gets the
    /// freed cell or nothing, never a cell still reserved.
    #[test]
    fn loom_a_reservation_racing_a_free() {
        loom::model(|| {
            let cells = Arc::new(Cells::new(1));
            let held = cells.reserve().unwrap();
            let freer = {
                let cells = cells.clone();
                loom::thread::spawn(move || cells.free(held))
            };
            let got = cells.reserve();
            freer.join().unwrap();
            if let Some(i) = got {
                assert_eq!(i, held);
                assert_eq!(cells.used(), 1);
            } else {
                assert_eq!(cells.used(), 0);
            }
        });
    }

    /// A cell emptied and freed by one thread and reserved by another is
    /// handed over whole: the freer's writes to its fields happen before
    /// the new owner's (the bit's `Release` clear and `Acquire` set; loom
    /// checks every access of the cell's `UnsafeCell`s for a race).
    #[test]
    fn loom_a_freed_cell_is_handed_over_whole() {
        loom::model(|| {
            let cells = Arc::new(Cells::new(1));
            let held = cells.reserve().unwrap();
            let freer = {
                let cells = cells.clone();
                loom::thread::spawn(move || {
                    // SAFETY: reserved by this thread, never published:
                    // no other thread reaches the cell until it is freed.
                    drop(unsafe { cells.get(held).take() });
                    cells.free(held);
                })
            };
            if let Some(i) = cells.reserve() {
                // SAFETY: reserved by this thread, never published.
                drop(unsafe { cells.get(i).take() });
            }
            freer.join().unwrap();
        });
    }
}
