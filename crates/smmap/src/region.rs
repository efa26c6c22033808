//! [`MapRegion`]: one read-only mapping of a file range.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use memmap2::{Mmap, MmapOptions};

use crate::error::{Error, Result};
use crate::manager::Cells;
use crate::source::{PathOrFd, PinnedFile};
use crate::sys::{self, ALLOCATIONGRANULARITY};

/// One read-only mapping of `[ofs_begin, ofs_end)` of a file.
///
/// A `MapRegion` is a cheap handle: clones share one mapping, which is
/// unmapped when the last handle is dropped. That is what keeps bytes handed
/// out to a caller (a cursor's slice, a Python `memoryview`) valid even after
/// the manager has stopped counting the region.
///
/// The manager counts a region's *clients*: one for the manager itself and
/// one for each cursor using it. A region whose
/// [`client_count`](Self::client_count) is 1 is unused and may be evicted.
///
/// # Clones and the limits
///
/// The manager's limits count the regions it tracks, and those it has
/// evicted until their unmapping is done. A clone kept by a caller (a
/// `MapRegion` from [`WindowCursor::region`](crate::WindowCursor::region), a
/// Python `memoryview`) outlives eviction by design: once the manager has
/// evicted the region, that mapping is the caller's and counts against no
/// limit of the manager (it still counts against the kernel's map count).
///
/// # Safety of the bytes
///
/// The bytes are the file's pages. If another process truncates the file
/// while it is mapped, reading the lost pages raises `SIGBUS`; no mmap user
/// can prevent that. See the crate documentation.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("f");
/// std::fs::write(&path, b"hello, world")?;
/// let region = smmap::MapRegion::new(&path, 0, 5)?;
/// assert_eq!(region.as_slice(), b"hello");
/// assert_eq!((region.ofs_begin(), region.ofs_end()), (0, 5));
/// assert!(region.includes_ofs(4) && !region.includes_ofs(5));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MapRegion {
    inner: Arc<Inner>,
}

struct Inner {
    map: Mmap,
    ofs: u64,
    /// Where a manager tracks it: the manager's cells (weak: a region kept
    /// by a caller does not keep the manager), the cell and its generation.
    home: OnceLock<(Weak<Cells>, u32, u32)>,
    /// The last hint given to the kernel (0: none), so that cursors moving
    /// back and forth between regions do not repeat the system call.
    advice: AtomicU8,
}

impl MapRegion {
    /// Maps up to `size` bytes of the file at `ofs`, which must be a multiple
    /// of [`ALLOCATIONGRANULARITY`]. The size is clipped to the file's end,
    /// and 0 maps to the end (as Python's `mmap` takes length 0); an offset
    /// at or past the end is an error.
    ///
    /// The new region counts one client, its creator.
    pub fn new(path_or_fd: impl Into<PathOrFd>, ofs: u64, size: u64) -> Result<Self> {
        let file = PinnedFile::stat(path_or_fd.into())?;
        let size = if size == 0 { u64::MAX } else { size };
        let len = size.min(file.size.saturating_sub(ofs));
        if ofs >= file.size || len == 0 {
            return Err(Error::OutOfRange {
                file: file.given().clone(),
                offset: ofs,
                view: None,
                size: file.size,
            });
        }
        Self::map(&file, ofs, len)
    }

    /// Maps exactly `[ofs, ofs + len)` of the pinned file, opening it.
    pub(crate) fn map(file: &PinnedFile, ofs: u64, len: u64) -> Result<Self> {
        let (desc, _) = file.open()?;
        Self::map_opened(file, &desc, ofs, len)
    }

    /// Maps exactly `[ofs, ofs + len)` of the pinned file through `desc`,
    /// which [`PinnedFile::open`] gave (that file, checked). A file shorter
    /// than when it was pinned and than the window is an error here rather
    /// than SIGBUS later.
    pub(crate) fn map_opened(
        file: &PinnedFile,
        desc: &std::fs::File,
        ofs: u64,
        len: u64,
    ) -> Result<Self> {
        let granularity = *ALLOCATIONGRANULARITY;
        if ofs % granularity != 0 {
            return Err(Error::Unaligned {
                file: file.given().clone(),
                offset: ofs,
                granularity,
            });
        }
        let map_err = |reason| Error::Map {
            file: file.given().clone(),
            offset: ofs,
            len,
            reason,
        };
        let ulen = usize::try_from(len)
            .map_err(|_| map_err(std::io::Error::from_raw_os_error(sys::NO_MEMORY)))?;
        let size = file.size_now(desc)?;
        if size < file.size && size < ofs.saturating_add(len) {
            return Err(Error::FileShrunk {
                file: file.given().clone(),
                // The window's first byte the file no longer has.
                offset: size.max(ofs),
                expected: file.size,
                actual: size,
            });
        }
        // SAFETY: the mapping is read-only and the descriptor is open for
        // reading (and was checked to be the pinned regular file when it was
        // opened). Another process may still change or truncate the file;
        // that contract is documented on this type and the crate (SIGBUS on
        // truncation), and the size check just above turns the truncation we
        // can see into an error.
        let map = unsafe { MmapOptions::new().offset(ofs).len(ulen).map(desc) }.map_err(map_err)?;
        Ok(MapRegion {
            inner: Arc::new(Inner {
                map,
                ofs,
                home: OnceLock::new(),
                advice: AtomicU8::new(0),
            }),
        })
    }

    /// Absolute offset of the first mapped byte.
    #[inline]
    pub fn ofs_begin(&self) -> u64 {
        self.inner.ofs
    }

    /// Number of mapped bytes.
    #[inline]
    pub fn size(&self) -> usize {
        self.inner.map.len()
    }

    /// Absolute offset one past the last mapped byte.
    #[inline]
    pub fn ofs_end(&self) -> u64 {
        self.inner.ofs + self.inner.map.len() as u64
    }

    /// True if the byte at absolute offset `ofs` is mapped by this region.
    #[inline]
    pub fn includes_ofs(&self, ofs: u64) -> bool {
        self.inner.ofs <= ofs && ofs < self.ofs_end()
    }

    /// How many clients use the region: the manager counts one, each cursor
    /// using it one more. 1 means unused (collectable); 0 means the manager
    /// no longer tracks it (evicted or collected while still referenced). A
    /// region made with [`MapRegion::new`], which no manager tracks, counts
    /// its creator: 1.
    pub fn client_count(&self) -> usize {
        match self.inner.home.get() {
            None => 1,
            Some((cells, i, gen)) => cells
                .upgrade()
                .map_or(0, |cells| cells.get(*i).claim.clients_of(*gen)),
        }
    }

    /// Records that the manager owning `cells` tracks the region in cell
    /// `i`, as generation `gen`.
    pub(crate) fn set_home(&self, cells: &Arc<Cells>, i: u32, gen: u32) {
        let set = self.inner.home.set((Arc::downgrade(cells), i, gen));
        debug_assert!(set.is_ok(), "a region is tracked once");
    }

    /// The mapped bytes.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        &self.inner.map
    }

    /// Passes an access-pattern hint for the whole region to the kernel
    /// (`madvise`; on Windows, which takes none, it does nothing). A cursor
    /// with a hint of its own passes it again when it next moves to this
    /// region.
    pub fn advise(&self, hint: crate::AccessHint) -> std::io::Result<()> {
        let done = sys::advise(&self.inner.map, hint);
        // The hint the region has now (none known if refused), so that a
        // cursor's `advise_once` gives its own again.
        let code = if done.is_ok() { hint as u8 + 1 } else { 0 };
        self.inner.advice.store(code, Ordering::Relaxed);
        done
    }

    /// Passes `hint` to the kernel unless it was the last hint given for this
    /// region. A hint is advice: a kernel that refuses it changes nothing.
    ///
    /// Two cursors with different hints may pass theirs at once, in either
    /// order: each, after its call, passes the hint noted last if that is
    /// another, so that the kernel is left with the hint noted (the one whose
    /// call comes last sees it).
    pub(crate) fn advise_once(&self, hint: crate::AccessHint) {
        use crate::AccessHint::{Random, Sequential, WillNeed};
        let mut code = hint as u8 + 1;
        if self.inner.advice.swap(code, Ordering::Relaxed) == code {
            return;
        }
        loop {
            let hint = [Sequential, Random, WillNeed][usize::from(code - 1)];
            let _ = sys::advise(&self.inner.map, hint);
            match self.inner.advice.load(Ordering::Relaxed) {
                now if now == code || now == 0 => return,
                now => code = now,
            }
        }
    }

    /// True if both handles share one mapping.
    pub fn same_mapping(&self, other: &MapRegion) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl std::ops::Deref for MapRegion {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for MapRegion {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl fmt::Debug for MapRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MapRegion<{}, {}>", self.ofs_begin(), self.size())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `advise_once` reads a hint back from the code noted (its place in
    /// the enum, plus 1), and leaves the code of the hint it passed.
    #[test]
    fn a_hint_noted_is_the_hint_passed() {
        let (_dir, path, _) = file_of(3 * 4096);
        let r = MapRegion::new(&path, 0, 4096).unwrap();
        use crate::AccessHint::{Random, Sequential, WillNeed};
        for hint in [Sequential, Random, WillNeed, Random] {
            r.advise_once(hint);
            let code = r.inner.advice.load(Ordering::Relaxed);
            assert_eq!([Sequential, Random, WillNeed][usize::from(code - 1)], hint);
        }
    }

    fn file_of(len: usize) -> (tempfile::TempDir, std::path::PathBuf, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        (dir, path, bytes)
    }

    #[test]
    fn maps_a_clipped_range() {
        let g = *ALLOCATIONGRANULARITY as usize;
        let (_d, path, bytes) = file_of(3 * g + 100);
        let r = MapRegion::new(&path, g as u64, u64::MAX).unwrap();
        assert_eq!(r.size(), 2 * g + 100);
        assert_eq!(r.as_slice(), &bytes[g..]);
        assert_eq!(r.client_count(), 1);
        assert_eq!(format!("{r:?}"), format!("MapRegion<{g}, {}>", 2 * g + 100));
        let r2 = r.clone();
        assert!(r.same_mapping(&r2));
        r.advise(crate::AccessHint::Sequential).unwrap();
    }

    #[test]
    fn rejects_bad_offsets() {
        let (_d, path, _) = file_of(100);
        let e = MapRegion::new(&path, 1, 10).unwrap_err();
        assert!(matches!(e, Error::Unaligned { offset: 1, .. }), "{e}");
        let e = MapRegion::new(&path, 1 << 20, 10).unwrap_err();
        assert!(matches!(e, Error::OutOfRange { .. }), "{e}");
        assert!(e.to_string().contains("data"));
        let e = MapRegion::new(&path, 1 << 20, 0).unwrap_err();
        assert!(
            matches!(e, Error::OutOfRange { offset, size: 100, .. } if offset == 1 << 20),
            "{e}"
        );
        // Size 0: to the end of the file.
        assert_eq!(MapRegion::new(&path, 0, 0).unwrap().size(), 100);
    }

    #[test]
    fn shrunk_file_is_an_error_not_a_sigbus() {
        let g = *ALLOCATIONGRANULARITY;
        let (_d, path, _) = file_of(3 * g as usize);
        let file = PinnedFile::stat(PathOrFd::from(path.as_path())).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(g)
            .unwrap();
        let e = MapRegion::map(&file, g, g).unwrap_err();
        assert!(
            matches!(e, Error::FileShrunk { actual, offset, .. } if actual == g && offset == g),
            "{e}"
        );
        // A window that starts inside what is left names the first byte
        // lost, not its start (which is still there).
        let e = MapRegion::map(&file, 0, 2 * g).unwrap_err();
        assert!(
            matches!(e, Error::FileShrunk { actual, offset, .. } if actual == g && offset == g),
            "{e}"
        );
        assert!(
            e.to_string().contains(&format!("offset {g} is gone")),
            "{e}"
        );
    }
}
