//! [`MapWindow`]: the offset/size arithmetic that places a new region between
//! its neighbours.

use crate::region::MapRegion;
use crate::sys::align_to_mmap;

/// A range `[ofs, ofs + size)` of a file, used to compute where a new region
/// goes before it is mapped.
///
/// Placement starts with the requested range, grows it towards the
/// neighbouring regions ([`extend_left_to`](Self::extend_left_to),
/// [`extend_right_to`](Self::extend_right_to)) up to the window size, and
/// [`align`](Self::align)s it to the allocation granularity.
///
/// ```
/// use smmap::MapWindow;
/// let g = *smmap::ALLOCATIONGRANULARITY;
/// let left = MapWindow::new(0, g);
/// let right = MapWindow::new(10 * g, 0);
/// let mut w = MapWindow::new(3 * g + 5, 10);
/// w.extend_left_to(&left, 4 * g);
/// w.extend_right_to(&right, 4 * g);
/// w.align();
/// assert_eq!((w.ofs, w.ofs_end()), (g, 5 * g));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MapWindow {
    /// Offset of the first byte, in bytes from the start of the file.
    pub ofs: u64,
    /// Length in bytes.
    pub size: u64,
}

impl MapWindow {
    /// A window of `size` bytes at `ofs`.
    pub const fn new(ofs: u64, size: u64) -> Self {
        MapWindow { ofs, size }
    }

    /// The window a region occupies.
    pub fn from_region(region: &MapRegion) -> Self {
        MapWindow::new(region.ofs_begin(), region.size() as u64)
    }

    /// One past the last byte (saturating at `u64::MAX`).
    pub const fn ofs_end(&self) -> u64 {
        self.ofs.saturating_add(self.size)
    }

    /// Moves the start down to the allocation granularity and rounds the size
    /// up to it, so that the aligned window still contains the old one —
    /// unless the old one ends within a granule of `u64::MAX`, which no
    /// aligned window can reach: its end then stops at the last multiple
    /// of the granularity (so `ofs + size` never overflows).
    pub fn align(&mut self) {
        let end = align_to_mmap(self.ofs_end(), true);
        self.ofs = align_to_mmap(self.ofs, false);
        self.size = end - self.ofs;
    }

    /// Moves the start left towards the end of `left`, the neighbour on the
    /// left, without growing beyond `max_size` bytes. The window only ever
    /// grows: a window that already overlaps `left` or is already larger than
    /// `max_size` keeps its start.
    pub fn extend_left_to(&mut self, left: &MapWindow, max_size: u64) {
        let gap = self.ofs.saturating_sub(left.ofs_end());
        let grow = gap.min(max_size.saturating_sub(self.size));
        self.ofs -= grow;
        self.size += grow;
    }

    /// Moves the end right towards the start of `right`, the neighbour on the
    /// right, without growing beyond `max_size` bytes. The window only ever
    /// grows.
    pub fn extend_right_to(&mut self, right: &MapWindow, max_size: u64) {
        let gap = right.ofs.saturating_sub(self.ofs_end());
        let grow = gap.min(max_size.saturating_sub(self.size));
        self.size += grow;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ALLOCATIONGRANULARITY;

    fn g() -> u64 {
        *ALLOCATIONGRANULARITY
    }

    #[test]
    fn extend_left_fills_the_gap_when_small() {
        let mut w = MapWindow::new(100, 10);
        w.extend_left_to(&MapWindow::new(0, 50), 1000);
        assert_eq!(w, MapWindow::new(50, 60));
    }

    #[test]
    fn extend_left_stops_at_max_size() {
        let mut w = MapWindow::new(100, 10);
        w.extend_left_to(&MapWindow::new(0, 0), 30);
        assert_eq!(w, MapWindow::new(80, 30));
    }

    #[test]
    fn extend_left_when_already_touching_or_overlapping() {
        let mut w = MapWindow::new(100, 10);
        w.extend_left_to(&MapWindow::new(0, 100), 1000);
        assert_eq!(w, MapWindow::new(100, 10));
        w.extend_left_to(&MapWindow::new(90, 20), 1000);
        assert_eq!(w, MapWindow::new(100, 10));
    }

    #[test]
    fn extend_never_shrinks_an_oversized_window() {
        let mut w = MapWindow::new(100, 50);
        w.extend_left_to(&MapWindow::new(0, 0), 10);
        w.extend_right_to(&MapWindow::new(1000, 0), 10);
        assert_eq!(w, MapWindow::new(100, 50));
    }

    #[test]
    fn extend_right_fills_the_gap_or_stops_at_max() {
        let mut w = MapWindow::new(100, 10);
        w.extend_right_to(&MapWindow::new(150, 5), 1000);
        assert_eq!(w, MapWindow::new(100, 50));
        let mut w = MapWindow::new(100, 10);
        w.extend_right_to(&MapWindow::new(150, 5), 20);
        assert_eq!(w, MapWindow::new(100, 20));
        let mut w = MapWindow::new(100, 10);
        w.extend_right_to(&MapWindow::new(110, 5), 1000);
        assert_eq!(w, MapWindow::new(100, 10));
    }

    #[test]
    fn align_contains_the_old_window() {
        let mut w = MapWindow::new(g() + 1, 10);
        w.align();
        assert_eq!(w, MapWindow::new(g(), g()));
        let mut w = MapWindow::new(g() - 1, 2);
        w.align();
        assert_eq!(w, MapWindow::new(0, 2 * g()));
        let mut w = MapWindow::new(0, 0);
        w.align();
        assert_eq!(w, MapWindow::new(0, 0));
    }

    /// Near `u64::MAX` the aligned end stops at the last multiple of the
    /// granularity, and the window's end never overflows.
    #[test]
    fn align_near_the_top_ends_at_the_last_granule() {
        let top = u64::MAX - u64::MAX % g();
        for (ofs, size) in [
            (u64::MAX - 100, 50),
            (top - 10, 5),
            (top - g() - 1, 2 * g()),
        ] {
            let mut w = MapWindow::new(ofs, size);
            w.align();
            assert_eq!(w.ofs % g(), 0, "{w:?}");
            assert!(w.ofs.checked_add(w.size).is_some_and(|e| e <= top), "{w:?}");
            assert!(w.ofs <= ofs, "{w:?}");
        }
        let mut w = MapWindow::new(top - 10, 5);
        w.align();
        assert_eq!(w, MapWindow::new(top - g(), g()));
    }

    #[test]
    fn align_can_pass_the_file_end() {
        // A file of g + 10 bytes: the aligned window covers 2 g; placement
        // clips it to the file end afterwards.
        let file_end = g() + 10;
        let mut w = MapWindow::new(g() + 5, 5);
        w.align();
        assert!(w.ofs_end() > file_end);
        assert_eq!(w, MapWindow::new(g(), g()));
    }

    #[test]
    fn ofs_end_saturates() {
        assert_eq!(MapWindow::new(u64::MAX - 1, 10).ofs_end(), u64::MAX);
    }
}
