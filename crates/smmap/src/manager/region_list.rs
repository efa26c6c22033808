//! [`MapRegionList`]: one file's entry in the manager — the pinned file and
//! its regions, sorted by offset, including windows another thread is
//! mapping right now.

use std::collections::BTreeMap;
use std::fs::File;
use std::sync::Arc;

use super::lru::Entry;
use crate::region::MapRegion;
use crate::source::PinnedFile;
use crate::window::MapWindow;

/// The regions of one file, sorted by offset and disjoint, with the file as
/// it was pinned when the entry was made. Lookups are ordered (`O(log n)`),
/// never a scan.
#[derive(Debug)]
pub(super) struct MapRegionList {
    file: Arc<PinnedFile>,
    /// The pinned size, kept here as well: a miss reads it without touching
    /// the pinned file (one cache miss fewer).
    size: u64,
    slots: BTreeMap<u64, Slot>,
    /// Slots that are mapped regions (the rest are pending).
    mapped: usize,
    /// Cursors associated with this file.
    pub(super) cursors: usize,
    /// A number no other entry of the manager ever had.
    pub(super) serial: u64,
    /// The file's descriptor, when cached, with its position in the
    /// manager's descriptor ring.
    pub(super) desc: Option<(Arc<File>, usize)>,
}

/// A range of the file the manager accounts for.
#[derive(Debug)]
pub(super) enum Slot {
    /// A mapped region, with its entry in the LRU list while unused (`None`
    /// in use).
    Mapped {
        region: MapRegion,
        lru: Option<Entry>,
    },
    /// A window `[start, end)` a thread is mapping without the lock: a miss
    /// inside it waits for it, and placement treats it as a neighbour.
    Pending { end: u64 },
}

impl Slot {
    fn end(&self, start: u64) -> u64 {
        match self {
            Slot::Mapped { region, .. } => region.ofs_end(),
            Slot::Pending { end } => {
                debug_assert!(*end > start);
                *end
            }
        }
    }
}

impl MapRegionList {
    pub(super) fn new(file: Arc<PinnedFile>, serial: u64) -> Self {
        MapRegionList {
            size: file.size,
            file,
            slots: BTreeMap::new(),
            mapped: 0,
            cursors: 0,
            serial,
            desc: None,
        }
    }

    pub(super) fn file(&self) -> &Arc<PinnedFile> {
        &self.file
    }

    pub(super) fn file_size(&self) -> u64 {
        self.size
    }

    /// True if nothing of the file is mapped or being mapped.
    pub(super) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Number of mapped regions.
    pub(super) fn mapped(&self) -> usize {
        self.mapped
    }

    /// The slot holding the byte at `ofs`, with its start.
    pub(super) fn slot_at(&self, ofs: u64) -> Option<(u64, &Slot)> {
        let (&start, slot) = self.slots.range(..=ofs).next_back()?;
        (ofs < slot.end(start)).then_some((start, slot))
    }

    pub(super) fn slot_mut(&mut self, start: u64) -> Option<&mut Slot> {
        self.slots.get_mut(&start)
    }

    /// The windows either side of `ofs`, which no slot holds: the left one
    /// (or an empty window at 0) and the right one (or an empty window at
    /// the file's end).
    pub(super) fn neighbours(&self, ofs: u64) -> (MapWindow, MapWindow) {
        let window = |(&start, slot): (&u64, &Slot)| MapWindow::new(start, slot.end(start) - start);
        let left = self.slots.range(..=ofs).next_back().map(window);
        let right = self.slots.range(ofs..).next().map(window);
        (
            left.unwrap_or(MapWindow::new(0, 0)),
            right.unwrap_or(MapWindow::new(self.size, 0)),
        )
    }

    /// Records that `[start, end)` is being mapped.
    pub(super) fn insert_pending(&mut self, start: u64, end: u64) {
        self.debug_check_free(start, end);
        self.slots.insert(start, Slot::Pending { end });
    }

    /// Replaces the pending slot at `region`'s start with the region.
    pub(super) fn complete(&mut self, region: MapRegion) {
        let start = region.ofs_begin();
        let slot = self.slots.get_mut(&start);
        debug_assert!(
            matches!(slot, Some(Slot::Pending { end }) if *end == region.ofs_end()),
            "a region completes its own pending slot"
        );
        if let Some(slot) = slot {
            *slot = Slot::Mapped { region, lru: None };
            self.mapped += 1;
        }
    }

    /// Removes the slot at `start`, returning its region if it was mapped.
    pub(super) fn remove(&mut self, start: u64) -> Option<MapRegion> {
        match self.slots.remove(&start)? {
            Slot::Mapped { region, .. } => {
                self.mapped -= 1;
                Some(region)
            }
            Slot::Pending { .. } => None,
        }
    }

    pub(super) fn slots(&self) -> impl Iterator<Item = (&u64, &Slot)> + '_ {
        self.slots.iter()
    }

    fn debug_check_free(&self, start: u64, end: u64) {
        debug_assert!(self
            .slots
            .range(..start)
            .next_back()
            .is_none_or(|(&s, slot)| slot.end(s) <= start));
        debug_assert!(self
            .slots
            .range(start..)
            .next()
            .is_none_or(|(&s, _)| s >= end));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PathOrFd, ALLOCATIONGRANULARITY};

    #[test]
    fn ordered_lookup_neighbours_and_pending_slots() {
        let g = *ALLOCATIONGRANULARITY;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![1u8; 10 * g as usize]).unwrap();
        let file = Arc::new(PinnedFile::stat(PathOrFd::from(path.as_path())).unwrap());
        let mut list = MapRegionList::new(file.clone(), 0);
        assert_eq!(
            list.neighbours(5 * g),
            (MapWindow::new(0, 0), MapWindow::new(10 * g, 0))
        );
        list.insert_pending(2 * g, 3 * g);
        list.complete(MapRegion::map(&file, 2 * g, g).unwrap());
        list.insert_pending(6 * g, 8 * g);
        assert_eq!((list.mapped(), list.is_empty()), (1, false));
        assert!(matches!(list.slot_at(2 * g), Some((s, Slot::Mapped { .. })) if s == 2 * g));
        assert!(matches!(list.slot_at(8 * g - 1), Some((s, Slot::Pending { .. })) if s == 6 * g));
        assert!(list.slot_at(3 * g).is_none() && list.slot_at(8 * g).is_none());
        assert_eq!(
            list.neighbours(4 * g),
            (MapWindow::new(2 * g, g), MapWindow::new(6 * g, 2 * g))
        );
        assert!(list.remove(6 * g).is_none(), "a pending slot has no region");
        assert!(list.remove(2 * g).is_some());
        assert!(list.is_empty() && list.mapped() == 0);
        assert_eq!(list.file_size(), 10 * g);
    }
}
