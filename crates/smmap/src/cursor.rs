//! [`WindowCursor`]: a position in one file, holding at most one region.

use std::fmt;
use std::os::fd::RawFd;
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::manager::Manager;
use crate::region::MapRegion;
use crate::source::PathOrFd;
use crate::AccessHint;

/// A cursor into one file: it holds at most one region, and
/// [`buffer`](Self::buffer) gives the bytes `[ofs_begin, ofs_end)` of it.
///
/// [`use_region`](Self::use_region) moves the cursor. When the current region
/// already holds the offset, that is all it does — no lock, no system call,
/// no shared memory written. Otherwise the manager finds or maps a region.
///
/// The slice from `buffer` borrows the cursor, so the region cannot move or be
/// unmapped while it is read. Cursors are `Send` and `Sync`; `Clone` makes an
/// independent cursor on the same region (smmap's `copy`/`assign`); dropping
/// one releases its region at once.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("f");
/// std::fs::write(&path, b"abcdefghij")?;
/// let manager = smmap::SlidingWindowMapManager::new();
/// let mut cursor = manager.make_cursor(&path)?;
/// assert!(cursor.is_associated() && !cursor.is_valid());
/// cursor.use_region(3, 4)?;
/// assert_eq!((cursor.ofs_begin(), cursor.ofs_end()), (3, 7));
/// assert_eq!(cursor.buffer(), b"defg");
/// cursor.use_region(100, 0)?; // past the end: invalid, not an error
/// assert!(!cursor.is_valid());
/// # Ok(()) }
/// ```
pub struct WindowCursor {
    manager: Option<Manager>,
    file: Option<FileRef>,
    region: Option<MapRegion>,
    /// First byte of the region's mapping; null without a region.
    base: *const u8,
    /// The region's range; `0..0` without a region, so the hit test fails.
    rbegin: u64,
    rend: u64,
    /// The cursor's view: `len` bytes at absolute offset `ofs`.
    ofs: u64,
    len: usize,
    /// The largest view: the manager's window size, or unlimited.
    window_cap: u64,
    /// `min(file size, window_cap)`: the view `use_region(_, 0)` asks for.
    max_view: u64,
    /// Hits not yet added to the manager's statistics.
    hits: u64,
    hint: Option<AccessHint>,
}

#[derive(Clone)]
struct FileRef {
    idx: usize,
    size: u64,
    source: Arc<PathOrFd>,
}

// SAFETY: `base` points into the mapping owned by `region` (an `Arc`), which
// the cursor keeps alive as long as `base` is set; the mapping is read-only
// and never mutated, so handing the cursor to another thread is sound.
unsafe impl Send for WindowCursor {}
// SAFETY: every `&self` method only reads the cursor's fields and the
// read-only mapping, so sharing references across threads is sound.
unsafe impl Sync for WindowCursor {}

impl WindowCursor {
    /// A cursor associated with no file (smmap's `WindowCursor(manager)`); it
    /// becomes useful through [`assign`](Self::assign).
    pub fn new(manager: Option<Manager>) -> Self {
        let window_cap = manager
            .as_ref()
            .map_or(u64::MAX, |m| m.limits().window_cap());
        WindowCursor {
            manager,
            file: None,
            region: None,
            base: std::ptr::null(),
            rbegin: 0,
            rend: 0,
            ofs: 0,
            len: 0,
            window_cap,
            max_view: 0,
            hits: 0,
            hint: None,
        }
    }

    pub(crate) fn attached(manager: Manager, idx: usize, size: u64, source: Arc<PathOrFd>) -> Self {
        let mut c = WindowCursor::new(Some(manager));
        c.max_view = size.min(c.window_cap);
        c.file = Some(FileRef { idx, size, source });
        c
    }

    /// Makes the cursor point at `offset`, with a view of up to `size` bytes
    /// (0: as many as possible), clamped to the window size and the file.
    ///
    /// The view may be shorter than asked: the region ends at the file's end
    /// or where the next region begins, and a region that already holds
    /// `offset` is reused as it is. An `offset` at or past the end of the
    /// file leaves the cursor invalid; that is not an error.
    ///
    /// Errors: the cursor has no file, or a new region could not be mapped.
    #[inline]
    pub fn use_region(&mut self, offset: u64, size: usize) -> Result<&mut Self> {
        // One unsigned comparison: `rbegin <= offset < rend` (0..0 without a
        // region, which nothing passes).
        if offset.wrapping_sub(self.rbegin) < self.rend - self.rbegin {
            // The hot path: the current region holds the offset.
            self.hits += 1;
            let want = self.clamp(size);
            self.ofs = offset;
            self.len = want.min(self.rend - offset) as usize;
            return Ok(self);
        }
        self.use_region_slow(offset, size)
    }

    /// How many bytes a view at `size` may have (before the region's end).
    #[inline]
    fn clamp(&self, size: usize) -> u64 {
        if size == 0 {
            self.max_view
        } else {
            (size as u64).min(self.max_view)
        }
    }

    #[cold]
    fn use_region_slow(&mut self, offset: u64, size: usize) -> Result<&mut Self> {
        let (Some(manager), Some(file)) = (self.manager.clone(), &self.file) else {
            return Err(Error::NotAssociated);
        };
        let (idx, fsize) = (file.idx, file.size);
        let want = self.clamp(size);
        let previous = self.take_region();
        let hits = std::mem::take(&mut self.hits);
        let obtained = manager.obtain(idx, offset, fsize, want.max(1), previous, hits);
        if let Some(region) = obtained? {
            if let Some(hint) = self.hint {
                region.advise_once(hint);
            }
            self.set_region(region);
            self.ofs = offset;
            self.len = want.min(self.rend - offset) as usize;
        }
        Ok(self)
    }

    /// Counts a read served by the current region without `use_region`
    /// (the buffer's fast paths).
    #[inline]
    pub(crate) fn note_hit(&mut self) {
        self.hits += 1;
    }

    fn set_region(&mut self, region: MapRegion) {
        self.base = region.as_slice().as_ptr();
        self.rbegin = region.ofs_begin();
        self.rend = region.ofs_end();
        self.region = Some(region);
    }

    fn take_region(&mut self) -> Option<MapRegion> {
        self.base = std::ptr::null();
        self.rbegin = 0;
        self.rend = 0;
        self.len = 0;
        self.region.take()
    }

    /// Releases the current region, leaving the cursor invalid but still
    /// associated with its file. Does nothing without a region.
    pub fn unuse_region(&mut self) {
        let Some(region) = self.take_region() else {
            return;
        };
        let hits = std::mem::take(&mut self.hits);
        if let (Some(manager), Some(file)) = (&self.manager, &self.file) {
            manager.with_state(|st, limits, released| {
                st.add_hits(hits);
                st.release(limits, file.idx, &region, released);
            });
        }
    }

    /// The bytes of the current view, `[ofs_begin, ofs_end)`; empty when the
    /// cursor is invalid.
    #[inline]
    pub fn buffer(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: a non-zero `len` means a region is held; `base` is its
        // mapping's first byte, and `ofs - rbegin + len <= rend - rbegin`,
        // the mapping's length, is maintained by `use_region`. The region is
        // kept alive by `self.region` for as long as this borrow of `self`.
        unsafe {
            std::slice::from_raw_parts(self.base.add((self.ofs - self.rbegin) as usize), self.len)
        }
    }

    /// The bytes of the whole current region (smmap's `map()`), which may
    /// start before and end after the cursor's view; empty when invalid.
    #[inline]
    pub fn map(&self) -> &[u8] {
        self.region.as_ref().map_or(&[], MapRegion::as_slice)
    }

    /// The bytes of the current region from absolute offset `abs` to its end,
    /// if the region holds `abs`.
    #[inline]
    pub(crate) fn region_tail(&self, abs: u64) -> Option<&[u8]> {
        if self.rbegin <= abs && abs < self.rend {
            let start = (abs - self.rbegin) as usize;
            let len = (self.rend - abs) as usize;
            // SAFETY: `rbegin <= abs < rend` means a region is held and the
            // range `[start, start + len)` is exactly the region's bytes from
            // `abs` to its end; the region lives while `self` is borrowed.
            Some(unsafe { std::slice::from_raw_parts(self.base.add(start), len) })
        } else {
            None
        }
    }

    /// The range of the current region, `0..0` without one.
    #[inline]
    pub(crate) fn region_range(&self) -> std::ops::Range<u64> {
        self.rbegin..self.rend
    }

    /// True if the cursor holds a region it can read from.
    #[inline]
    pub fn is_valid(&self) -> bool {
        self.region.is_some()
    }

    /// True if the cursor belongs to a file.
    pub fn is_associated(&self) -> bool {
        self.file.is_some()
    }

    /// Absolute offset of the first byte of the view (meaningful when valid).
    #[inline]
    pub fn ofs_begin(&self) -> u64 {
        self.ofs
    }

    /// Absolute offset one past the last byte of the view.
    #[inline]
    pub fn ofs_end(&self) -> u64 {
        self.ofs + self.len as u64
    }

    /// Number of bytes in the view.
    #[inline]
    pub fn size(&self) -> usize {
        self.len
    }

    /// The current region, if any.
    pub fn region(&self) -> Option<&MapRegion> {
        self.region.as_ref()
    }

    /// True if the view holds absolute offset `ofs`.
    #[inline]
    pub fn includes_ofs(&self, ofs: u64) -> bool {
        self.ofs <= ofs && ofs < self.ofs_end()
    }

    /// The file's size as the manager read it, if associated.
    pub fn file_size(&self) -> Option<u64> {
        self.file.as_ref().map(|f| f.size)
    }

    /// The file's path or descriptor, if associated.
    pub fn path_or_fd(&self) -> Option<&PathOrFd> {
        self.file.as_ref().map(|f| &*f.source)
    }

    /// The file's path, if associated with a path.
    pub fn path(&self) -> Option<&Path> {
        self.path_or_fd().and_then(PathOrFd::path)
    }

    /// The file descriptor, if associated with one (it may have been closed
    /// by its owner since).
    pub fn fd(&self) -> Option<RawFd> {
        self.path_or_fd().and_then(PathOrFd::fd)
    }

    /// The manager, if any.
    pub fn manager(&self) -> Option<&Manager> {
        self.manager.as_ref()
    }

    /// Sets an access-pattern hint that is passed to the kernel (madvise) for
    /// every region the cursor moves to from now on, and for the current one.
    pub fn set_access_hint(&mut self, hint: Option<AccessHint>) {
        self.hint = hint;
        if let (Some(hint), Some(region)) = (hint, &self.region) {
            region.advise_once(hint);
        }
    }

    /// The access hint, if one is set.
    pub fn access_hint(&self) -> Option<AccessHint> {
        self.hint
    }

    /// Makes this cursor an independent copy of `other` (smmap's `assign`),
    /// releasing what it held before.
    pub fn assign(&mut self, other: &WindowCursor) {
        *self = other.clone();
    }
}

impl Clone for WindowCursor {
    fn clone(&self) -> Self {
        let mut copy = WindowCursor::new(self.manager.clone());
        copy.hint = self.hint;
        copy.max_view = self.max_view;
        if let (Some(manager), Some(file)) = (&self.manager, &self.file) {
            let mut st = manager.lock();
            st.add_cursor(file.idx);
            if let Some(region) = &self.region {
                st.acquire(file.idx, region);
            }
            drop(st);
            copy.file = Some(file.clone());
            if let Some(region) = &self.region {
                copy.set_region(region.clone());
                copy.ofs = self.ofs;
                copy.len = self.len;
            }
        }
        copy
    }
}

impl Drop for WindowCursor {
    fn drop(&mut self) {
        let region = self.take_region();
        let (Some(manager), Some(file)) = (&self.manager, &self.file) else {
            return;
        };
        let hits = self.hits;
        manager.with_state(|st, limits, released| {
            st.add_hits(hits);
            if let Some(region) = &region {
                st.release(limits, file.idx, region, released);
            }
            st.detach(file.idx);
        });
    }
}

impl fmt::Debug for WindowCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("WindowCursor");
        d.field("file", &self.path_or_fd());
        if self.is_valid() {
            d.field("ofs_begin", &self.ofs).field("size", &self.len);
        }
        d.finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SlidingWindowMapManager, ALLOCATIONGRANULARITY};

    #[test]
    fn views_are_clamped_to_window_and_file() {
        let g = *ALLOCATIONGRANULARITY;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![3u8; (3 * g) as usize]).unwrap();
        let m = SlidingWindowMapManager::builder()
            .window_size(2 * g)
            .build();
        let mut c = m.make_cursor(&path).unwrap();
        assert_eq!(c.clamp(0), 2 * g);
        assert_eq!(c.clamp(usize::MAX), 2 * g);
        assert_eq!(c.clamp(5), 5);
        let whole = SlidingWindowMapManager::builder().window_size(0).build();
        assert_eq!(whole.make_cursor(&path).unwrap().clamp(0), 3 * g);
        c.use_region(1, 0).unwrap();
        let shown = format!("{c:?}");
        assert!(
            shown.starts_with("WindowCursor { file: Some(Path("),
            "{shown}"
        );
        assert!(
            // The region is [0, 3g) (the window from 1, aligned), so the
            // view gets the whole window size.
            shown.contains("ofs_begin: 1") && shown.contains(&format!("size: {}", 2 * g)),
            "{shown}"
        );
        c.unuse_region();
        assert!(format!("{c:?}").ends_with(".. }") && !format!("{c:?}").contains("ofs_begin"));
    }

    #[test]
    fn an_unassociated_cursor_reads_nothing() {
        let mut c = WindowCursor::new(None);
        assert!(!c.is_associated() && !c.is_valid());
        assert!(c.buffer().is_empty() && c.map().is_empty() && c.region().is_none());
        assert!(c.manager().is_none() && c.file_size().is_none() && c.fd().is_none());
        assert!(matches!(c.use_region(0, 0), Err(Error::NotAssociated)));
        c.unuse_region();
        let copy = c.clone();
        assert!(!copy.is_associated());
    }
}
