//! [`Slots`]: one file's mapped regions and windows being mapped, by
//! offset — what a miss looks up under the file's lock, and what placement
//! grows a new window towards. Ordered (`O(log n)` lookups and neighbours),
//! never a scan.

use std::collections::BTreeMap;

use crate::window::MapWindow;

/// A range of the file the manager accounts for, by its start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    /// One past its last byte.
    pub(crate) end: u64,
    pub(crate) what: What,
}

/// What occupies a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum What {
    /// A region, in this cell.
    Mapped(u32),
    /// A window a thread is mapping without the lock: a miss inside it
    /// waits for it, and placement treats it as a neighbour.
    Pending,
}

/// One file's slots, sorted by offset and disjoint.
#[derive(Debug, Default)]
pub(crate) struct Slots {
    slots: BTreeMap<u64, Slot>,
    /// Slots that are regions (the rest are pending).
    mapped: usize,
}

impl Slots {
    /// Regions (not counting pending windows).
    pub(crate) fn mapped(&self) -> usize {
        self.mapped
    }

    /// The slot holding the byte at `ofs`, with its start.
    pub(crate) fn at(&self, ofs: u64) -> Option<(u64, Slot)> {
        let (&start, &slot) = self.slots.range(..=ofs).next_back()?;
        (ofs < slot.end).then_some((start, slot))
    }

    /// The windows either side of `ofs`, which no slot holds: the left one
    /// (or an empty window at 0) and the right one (or an empty window at
    /// `size`, the file's end).
    pub(crate) fn neighbours(&self, ofs: u64, size: u64) -> (MapWindow, MapWindow) {
        let window = |(&start, slot): (&u64, &Slot)| MapWindow::new(start, slot.end - start);
        let left = self.slots.range(..=ofs).next_back().map(window);
        let right = self.slots.range(ofs..).next().map(window);
        (
            left.unwrap_or(MapWindow::new(0, 0)),
            right.unwrap_or(MapWindow::new(size, 0)),
        )
    }

    /// True if no slot overlaps `[begin, end)`.
    pub(crate) fn is_free(&self, begin: u64, end: u64) -> bool {
        let before = self.slots.range(..begin).next_back();
        let after = self.slots.range(begin..).next();
        before.is_none_or(|(_, s)| s.end <= begin) && after.is_none_or(|(&s, _)| s >= end)
    }

    /// Records that `[start, end)` is being mapped.
    pub(crate) fn insert_pending(&mut self, start: u64, end: u64) {
        debug_assert!(start < end && self.is_free(start, end));
        self.slots.insert(
            start,
            Slot {
                end,
                what: What::Pending,
            },
        );
    }

    /// Makes the pending slot at `start` the region in `cell`.
    pub(crate) fn complete(&mut self, start: u64, cell: u32) {
        let slot = self.slots.get_mut(&start);
        debug_assert!(matches!(
            slot,
            Some(Slot {
                what: What::Pending,
                ..
            })
        ));
        if let Some(slot) = slot {
            slot.what = What::Mapped(cell);
            self.mapped += 1;
        }
    }

    /// Removes the slot at `start`, returning it.
    pub(crate) fn remove(&mut self, start: u64) -> Option<Slot> {
        let slot = self.slots.remove(&start)?;
        if let What::Mapped(_) = slot.what {
            self.mapped -= 1;
        }
        Some(slot)
    }

    /// A region overlapping `[lo, hi)` — one covering it whole if there is
    /// one — for a table slot that named a region now gone.
    pub(crate) fn region_over(&self, lo: u64, hi: u64) -> Option<u32> {
        let mut best = None;
        let first = self
            .slots
            .range(..=lo)
            .next_back()
            .filter(|(_, s)| s.end > lo);
        for (&start, slot) in first.into_iter().chain(self.slots.range(lo + 1..hi)) {
            if let What::Mapped(cell) = slot.what {
                if start <= lo && slot.end >= hi {
                    return Some(cell);
                }
                best = best.or(Some(cell));
            }
        }
        best
    }

    /// Every slot by start, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, Slot)> + '_ {
        self.slots.iter().map(|(&s, &slot)| (s, slot))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_lookup_neighbours_and_pending_slots() {
        let g = 4096;
        let mut s = Slots::default();
        assert_eq!(
            s.neighbours(5 * g, 10 * g),
            (MapWindow::new(0, 0), MapWindow::new(10 * g, 0))
        );
        s.insert_pending(2 * g, 3 * g);
        s.complete(2 * g, 9);
        s.insert_pending(6 * g, 8 * g);
        assert_eq!(s.mapped(), 1);
        assert!(
            matches!(s.at(2 * g), Some((st, Slot { what: What::Mapped(9), .. })) if st == 2 * g)
        );
        assert!(
            matches!(s.at(8 * g - 1), Some((st, Slot { what: What::Pending, .. })) if st == 6 * g)
        );
        assert!(s.at(3 * g).is_none() && s.at(8 * g).is_none());
        assert_eq!(
            s.neighbours(4 * g, 10 * g),
            (MapWindow::new(2 * g, g), MapWindow::new(6 * g, 2 * g))
        );
        assert!(
            s.is_free(3 * g, 6 * g) && !s.is_free(3 * g, 6 * g + 1) && !s.is_free(g, 2 * g + 1)
        );
        assert_eq!(s.region_over(2 * g, 3 * g), Some(9));
        assert_eq!(s.region_over(0, 4 * g), Some(9));
        assert_eq!(s.region_over(6 * g, 7 * g), None, "pending is no region");
        assert!(matches!(
            s.remove(6 * g),
            Some(Slot {
                what: What::Pending,
                ..
            })
        ));
        assert!(s.remove(2 * g).is_some());
        assert!(s.iter().next().is_none() && s.mapped() == 0);
    }
}
