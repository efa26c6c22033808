//! [`MapRegionList`]: one file's regions, sorted by offset.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::Result;
use crate::region::MapRegion;
use crate::source::PathOrFd;
use crate::window::MapWindow;

/// The regions of one file, sorted by offset and disjoint, with the file's
/// path or descriptor and its size, read once when the list is made.
///
/// The manager keeps one list per file. Lookups are ordered (`O(log n)`),
/// never a scan.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("f");
/// std::fs::write(&path, vec![0u8; 10_000])?;
/// let list = smmap::MapRegionList::new(&path)?;
/// assert_eq!(list.file_size(), 10_000);
/// assert!(list.is_empty());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MapRegionList {
    source: Arc<PathOrFd>,
    file_size: u64,
    regions: BTreeMap<u64, Slot>,
    /// Cursors associated with this file (manager bookkeeping).
    pub(crate) cursors: usize,
    /// Device and inode, for files known by descriptor.
    pub(crate) identity: Option<(u64, u64)>,
}

/// A region as the manager tracks it.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) region: MapRegion,
    /// The LRU stamp while the region is unused; `None` while in use.
    pub(crate) lru: Option<u64>,
}

impl MapRegionList {
    /// An empty list for the file, reading its size now.
    pub fn new(path_or_fd: impl Into<PathOrFd>) -> Result<Self> {
        let source = path_or_fd.into();
        let file_size = source.file_size()?;
        Ok(Self::with_size(Arc::new(source), file_size))
    }

    pub(crate) fn with_size(source: Arc<PathOrFd>, file_size: u64) -> Self {
        MapRegionList {
            source,
            file_size,
            regions: BTreeMap::new(),
            cursors: 0,
            identity: None,
        }
    }

    /// The manager's key for this file.
    pub(crate) fn key(&self) -> crate::state::FileKey {
        crate::state::FileKey {
            source: (*self.source).clone(),
            identity: self.identity,
        }
    }

    /// The file's path or descriptor.
    pub fn path_or_fd(&self) -> &PathOrFd {
        &self.source
    }

    pub(crate) fn source(&self) -> &Arc<PathOrFd> {
        &self.source
    }

    /// The file's size, as read when the list was made.
    pub fn file_size(&self) -> u64 {
        self.file_size
    }

    /// Number of regions.
    pub fn len(&self) -> usize {
        self.regions.len()
    }

    /// True if no region of the file is mapped.
    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }

    /// The regions, by increasing offset.
    pub fn iter(&self) -> impl Iterator<Item = &MapRegion> + '_ {
        self.regions.values().map(|s| &s.region)
    }

    /// The region holding the byte at `ofs`, if one does.
    pub fn region_at(&self, ofs: u64) -> Option<&MapRegion> {
        self.slot_at(ofs).map(|(_, s)| &s.region)
    }

    pub(crate) fn slot_at(&self, ofs: u64) -> Option<(u64, &Slot)> {
        let (&start, slot) = self.regions.range(..=ofs).next_back()?;
        slot.region.includes_ofs(ofs).then_some((start, slot))
    }

    pub(crate) fn slot_mut(&mut self, start: u64) -> Option<&mut Slot> {
        self.regions.get_mut(&start)
    }

    /// The windows of the regions either side of `ofs`, which no region
    /// holds: the left one (or an empty window at 0) and the right one (or an
    /// empty window at the file's end).
    pub(crate) fn neighbours(&self, ofs: u64) -> (MapWindow, MapWindow) {
        let left = self.regions.range(..=ofs).next_back();
        let right = self.regions.range(ofs..).next();
        (
            left.map_or(MapWindow::new(0, 0), |(_, s)| {
                MapWindow::from_region(&s.region)
            }),
            right.map_or(MapWindow::new(self.file_size, 0), |(_, s)| {
                MapWindow::from_region(&s.region)
            }),
        )
    }

    /// True if a region overlaps `[start, end)`.
    pub(crate) fn overlaps(&self, start: u64, end: u64) -> bool {
        self.regions
            .range(..end)
            .next_back()
            .is_some_and(|(_, s)| s.region.ofs_end() > start)
    }

    pub(crate) fn insert(&mut self, region: MapRegion) {
        let start = region.ofs_begin();
        debug_assert!(self
            .regions
            .range(..start)
            .next_back()
            .is_none_or(|(_, s)| s.region.ofs_end() <= start));
        debug_assert!(self
            .regions
            .range(start..)
            .next()
            .is_none_or(|(&o, _)| o >= region.ofs_end()));
        self.regions.insert(start, Slot { region, lru: None });
    }

    pub(crate) fn remove(&mut self, start: u64) -> Option<Slot> {
        self.regions.remove(&start)
    }

    pub(crate) fn slots(&self) -> impl Iterator<Item = (&u64, &Slot)> + '_ {
        self.regions.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ALLOCATIONGRANULARITY;

    #[test]
    fn ordered_lookup_neighbours_and_overlap() {
        let g = *ALLOCATIONGRANULARITY;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![1u8; 10 * g as usize]).unwrap();
        let mut list = MapRegionList::new(&path).unwrap();
        assert_eq!(
            list.neighbours(5 * g),
            (MapWindow::new(0, 0), MapWindow::new(10 * g, 0))
        );
        list.insert(MapRegion::new(&path, 2 * g, g).unwrap());
        list.insert(MapRegion::new(&path, 6 * g, 2 * g).unwrap());
        assert_eq!(list.len(), 2);
        assert_eq!(
            list.iter().map(|r| r.ofs_begin()).collect::<Vec<_>>(),
            [2 * g, 6 * g]
        );
        assert_eq!(list.region_at(2 * g).map(|r| r.ofs_begin()), Some(2 * g));
        assert_eq!(
            list.region_at(8 * g - 1).map(|r| r.ofs_begin()),
            Some(6 * g)
        );
        assert!(list.region_at(3 * g).is_none() && list.region_at(8 * g).is_none());
        assert_eq!(
            list.neighbours(4 * g),
            (MapWindow::new(2 * g, g), MapWindow::new(6 * g, 2 * g))
        );
        assert!(list.overlaps(0, 2 * g + 1) && list.overlaps(7 * g, 9 * g));
        assert!(!list.overlaps(3 * g, 6 * g) && !list.overlaps(8 * g, 10 * g));
        assert!(list.remove(2 * g).is_some());
        assert_eq!(list.len(), 1);
        assert_eq!(list.key().identity, None);
    }
}
