//! [`WindowTable`]: a file's windows by aligned slot, read without any lock —
//! the step from an offset to the window holding it, in `O(1)`, on every
//! switch from one mapped window to another.
//!
//! The file is cut into slots of the window size (whole files for a static
//! manager or unlimited windows; coarser slots for files of more than
//! [`MAX_SLOTS`] windows). Each slot names the cell of one region that
//! overlaps it, if any — the one that covers the whole slot where there is
//! one, which is every window the engine placed on a slot boundary (all of
//! a buffer's, and a cursor's whose request fits in one slot) where slots
//! are windows; a coarse slot holds several windows and names one. A slot
//! naming none has no region overlapping it. An entry is a hint: a cursor
//! takes the cell's region by its claim word and checks that it holds the
//! offset; if it does not (a window placed off the slots, in the gap
//! between others, or another window of a coarse slot), the miss path
//! asks the file's slots under the file's lock: a miss that maps, always;
//! a read about to copy for lack of room, once, without waiting
//! (`Shared::mapped_off_the_table`), so that it reads a region mapped
//! there rather than copy.
//!
//! Entries are written under the file's lock, when a region is published
//! or evicted, and read with `Acquire`. They point at cells, which never
//! move while the manager lives; what a cell holds is ordered by its claim
//! word.

use std::sync::atomic::{AtomicPtr, Ordering};

use super::cells::Cell;

/// The most slots a file's table has (8 bytes each).
pub(crate) const MAX_SLOTS: u64 = 1 << 17;

/// A file's windows by slot (see the module documentation).
#[derive(Debug)]
pub(crate) struct WindowTable {
    /// The first slot's cell, or null: kept inline, so that the table of a
    /// file of one window (most small files) costs no memory access of its
    /// own.
    first: AtomicPtr<Cell>,
    /// The other slots' cells, or null.
    rest: Box<[AtomicPtr<Cell>]>,
    /// The slot size.
    slot: u64,
    /// Its base-2 logarithm, when it is a power of two (`u32::MAX`
    /// otherwise): the slot of an offset is then a shift, not a division.
    shift: u32,
}

impl WindowTable {
    /// A table for a file of `size` bytes read in windows of `window`
    /// bytes (`u64::MAX`: whole files).
    pub(crate) fn new(size: u64, window: u64) -> Self {
        let window = window.max(1);
        let mut n = size.div_ceil(window).max(1);
        let mut slot = window;
        if n > MAX_SLOTS {
            // Coarser slots, each a whole number of windows.
            let per = n.div_ceil(MAX_SLOTS);
            slot = window.saturating_mul(per);
            n = size.div_ceil(slot).max(1);
        }
        WindowTable {
            first: AtomicPtr::new(std::ptr::null_mut()),
            rest: (1..n)
                .map(|_| AtomicPtr::new(std::ptr::null_mut()))
                .collect(),
            slot,
            shift: if slot.is_power_of_two() {
                slot.trailing_zeros()
            } else {
                u32::MAX
            },
        }
    }

    /// The slot size.
    pub(crate) fn slot_size(&self) -> u64 {
        self.slot
    }

    /// The slot holding `ofs`.
    #[inline]
    fn index(&self, ofs: u64) -> usize {
        if self.shift != u32::MAX {
            (ofs >> self.shift) as usize
        } else if self.slot == u64::MAX {
            0
        } else {
            (ofs / self.slot) as usize
        }
    }

    /// The range of slots `[begin, end)` overlaps.
    fn covering(&self, begin: u64, end: u64) -> std::ops::Range<usize> {
        let last = self.rest.len().min(self.index(end.saturating_sub(1)));
        self.index(begin)..last + 1
    }

    /// Slot `k`'s entry, if the file has that slot.
    #[inline]
    fn slot(&self, k: usize) -> Option<&AtomicPtr<Cell>> {
        match k.checked_sub(1) {
            None => Some(&self.first),
            Some(r) => self.rest.get(r),
        }
    }

    /// The cell named for the slot holding `ofs`, if any.
    #[inline]
    pub(crate) fn get(&self, ofs: u64) -> Option<&Cell> {
        let p = self.slot(self.index(ofs))?.load(Ordering::Acquire);
        // SAFETY: entries are null or point at cells of the manager whose
        // file entry holds this table, and cells never move or go while
        // that manager lives; the only callers (`Shared::find`, the
        // invariant check) are methods of that manager, which lives for as
        // long as they use the cell.
        unsafe { p.as_ref() }
    }

    /// Names `cell`, the region `[begin, end)` of a file of `size` bytes,
    /// for the slots it overlaps: those naming none, and those it covers
    /// whole. Under the file's lock.
    pub(crate) fn insert(&self, cell: &Cell, begin: u64, end: u64, size: u64) {
        let ptr = std::ptr::from_ref(cell).cast_mut();
        for k in self.covering(begin, end) {
            let (lo, hi) = self.bounds(k, size);
            let whole = begin <= lo && hi <= end;
            let Some(e) = self.slot(k) else { continue };
            if whole || e.load(Ordering::Relaxed).is_null() {
                e.store(ptr, Ordering::Release);
            }
        }
    }

    /// Forgets `cell`, the region `[begin, end)`: each slot that named it
    /// names instead what `other(lo, hi)` finds overlapping the slot
    /// `[lo, hi)` (another region, or none). Under the file's lock.
    pub(crate) fn remove<'c>(
        &self,
        cell: &Cell,
        begin: u64,
        end: u64,
        size: u64,
        mut other: impl FnMut(u64, u64) -> Option<&'c Cell>,
    ) {
        let ptr = std::ptr::from_ref(cell).cast_mut();
        for k in self.covering(begin, end) {
            let Some(e) = self.slot(k) else { continue };
            if e.load(Ordering::Relaxed) == ptr {
                let (lo, hi) = self.bounds(k, size);
                let next = other(lo, hi)
                    .map_or(std::ptr::null_mut(), |c| std::ptr::from_ref(c).cast_mut());
                e.store(next, Ordering::Release);
            }
        }
    }

    /// The bytes of slot `k` in a file of `size` bytes.
    fn bounds(&self, k: usize, size: u64) -> (u64, u64) {
        if self.slot == u64::MAX {
            return (0, size);
        }
        let lo = k as u64 * self.slot;
        (lo, lo.saturating_add(self.slot).min(size))
    }

    /// Every slot's cell, for the invariant check: `(slot bounds, cell)`.
    pub(crate) fn entries(&self, size: u64) -> impl Iterator<Item = ((u64, u64), &Cell)> + '_ {
        let all = std::iter::once(&self.first).chain(self.rest.iter());
        all.enumerate().filter_map(move |(k, e)| {
            // SAFETY: as in `get`.
            unsafe { e.load(Ordering::Acquire).as_ref() }.map(|c| (self.bounds(k, size), c))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_windows_are_found_in_one_step() {
        let cells: Vec<Cell> = (0..8).map(|_| Cell::default()).collect();
        let id =
            |c: Option<&Cell>| c.map(|c| cells.iter().position(|x| std::ptr::eq(x, c)).unwrap());
        let t = WindowTable::new(10_000, 4096);
        assert_eq!(
            (t.slot_size(), id(t.get(0)), id(t.get(9999))),
            (4096, None, None)
        );
        t.insert(&cells[7], 4096, 8192, 10_000);
        assert_eq!(
            (id(t.get(4096)), id(t.get(8191)), id(t.get(8192))),
            (Some(7), Some(7), None)
        );
        // An unaligned region names the slots it overlaps that name none,
        // and gives way to one covering a slot whole.
        t.insert(&cells[3], 6000, 9000, 10_000);
        assert_eq!((id(t.get(5000)), id(t.get(8500))), (Some(7), Some(3)));
        t.insert(&cells[4], 8192, 10_000, 10_000);
        assert_eq!(
            id(t.get(8500)),
            Some(4),
            "the last slot ends at the file's end"
        );
        t.remove(&cells[7], 4096, 8192, 10_000, |lo, hi| {
            assert_eq!((lo, hi), (4096, 8192));
            Some(&cells[3])
        });
        assert_eq!(id(t.get(5000)), Some(3));
        t.remove(&cells[3], 6000, 9000, 10_000, |_, _| None);
        assert_eq!((id(t.get(5000)), id(t.get(9000))), (None, Some(4)));
        let all: Vec<_> = t.entries(10_000).map(|(b, c)| (b, id(Some(c)))).collect();
        assert_eq!(all, [((8192, 10_000), Some(4))]);
        assert!(t.get(1 << 40).is_none(), "past the end");
        // Slots of a size that is no power of two.
        let odd = WindowTable::new(10_000, 3000);
        odd.insert(&cells[1], 3000, 6000, 10_000);
        assert_eq!(
            (id(odd.get(2999)), id(odd.get(3000)), id(odd.get(5999))),
            (None, Some(1), Some(1))
        );
    }

    #[test]
    fn whole_files_and_huge_files() {
        let cell = Cell::default();
        let t = WindowTable::new(5, u64::MAX);
        t.insert(&cell, 0, 5, 5);
        assert!(t.get(0).is_some() && t.get(4).is_some());
        let t = WindowTable::new(0, 4096);
        assert!(t.get(0).is_none());
        let huge = WindowTable::new(1 << 50, 4096);
        assert!(huge.rest.len() as u64 <= MAX_SLOTS);
        assert_eq!(huge.slot_size() % 4096, 0);
    }
}
