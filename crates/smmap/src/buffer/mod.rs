//! [`SlidingWindowMapBuffer`]: a byte view of `[offset, offset + len)` of a
//! file that moves its cursor's window as it is read.

mod io;
mod search;
mod typed;

pub use search::Matches;
pub use typed::{Endian, Primitive, Value, ValueType};

use std::borrow::Cow;
use std::ops::Range;

use crate::cursor::WindowCursor;
use crate::error::{Error, Result};
use crate::AccessHint;

/// A byte view of `[offset, offset + len)` of a file, read through a cursor
/// whose window slides to wherever the reads go.
///
/// Index 0 is the byte at `offset` (indices are relative to the buffer, not
/// the file). Reads that span windows are stitched together. Besides single
/// bytes and slices it offers [`read_at`](Self::read_at),
/// [`std::io::Read`] + [`Seek`](std::io::Seek) +
/// [`BufRead`](std::io::BufRead), typed reads at an offset, and
/// [`find`](Self::find)/[`rfind`](Self::rfind) that see matches straddling two
/// windows.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("f");
/// std::fs::write(&path, b"\x00\x00\x01\x02header:body")?;
/// let manager = smmap::SlidingWindowMapManager::new();
/// let mut buf = smmap::SlidingWindowMapBuffer::new(manager.make_cursor(&path)?, 2, u64::MAX)?;
/// assert_eq!(buf.len(), 13);
/// assert_eq!(buf.get(0)?, 1);
/// assert_eq!(buf.read_be::<u16>(0)?, 0x0102);
/// assert_eq!(&*buf.slice(2..8)?, b"header");
/// assert_eq!(buf.find(b"body", 0)?, Some(9));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SlidingWindowMapBuffer {
    cursor: WindowCursor,
    /// Absolute offset of index 0.
    offset: u64,
    len: u64,
    /// The position of `Read`/`Seek`/`BufRead`, relative.
    pos: u64,
    /// The current window in buffer indices, `[win_lo, win_lo + win_len)`
    /// (the cursor's region clipped to the buffer), and the address of the
    /// byte at `win_lo`: a hit in `get` is one subtraction, one comparison
    /// and a load. Empty (`win_len` 0) without a window.
    win_lo: u64,
    win_len: u64,
    win_base: *const u8,
}

// SAFETY: `win_base` points into the mapping of the cursor's current region,
// which the cursor (owned by the buffer) keeps alive; it is refreshed
// whenever the cursor moves and never written through. Sending or sharing
// the buffer sends or shares that read-only mapping, as for the cursor.
unsafe impl Send for SlidingWindowMapBuffer {}
// SAFETY: as above; `&self` methods only read.
unsafe impl Sync for SlidingWindowMapBuffer {}

impl SlidingWindowMapBuffer {
    /// A buffer over `[offset, offset + size)` of the cursor's file, `size`
    /// clipped to the file's end (`u64::MAX`: to the end).
    ///
    /// Errors: the cursor has no file ([`Error::NotAssociated`]), `offset` is
    /// at or past the end ([`Error::OutOfRange`]), or the first window could
    /// not be mapped.
    pub fn new(cursor: WindowCursor, offset: u64, size: u64) -> Result<Self> {
        let mut buf = SlidingWindowMapBuffer {
            cursor,
            offset: 0,
            len: 0,
            pos: 0,
            win_lo: 0,
            win_len: 0,
            win_base: std::ptr::null(),
        };
        buf.begin_access(None, offset, size)?;
        Ok(buf)
    }

    /// Points the buffer at `[offset, offset + size)` again, optionally of
    /// another cursor's file; the counterpart of [`end_access`](Self::end_access).
    ///
    /// On error the buffer is left empty (length 0).
    pub fn begin_access(
        &mut self,
        cursor: Option<WindowCursor>,
        offset: u64,
        size: u64,
    ) -> Result<()> {
        if let Some(c) = cursor {
            self.cursor = c;
        }
        self.len = 0;
        self.pos = 0;
        self.win_len = 0;
        let Some(fsize) = self.cursor.file_size() else {
            return Err(Error::NotAssociated);
        };
        self.cursor.use_region(offset, 0)?;
        if !self.cursor.is_valid() {
            let file = self.cursor.path_or_fd().cloned().expect("associated");
            return Err(Error::OutOfRange {
                file,
                offset,
                size: fsize,
            });
        }
        self.offset = offset;
        self.len = size.min(fsize - offset);
        self.refresh_window();
        Ok(())
    }

    /// Recomputes the cached window from the cursor's region.
    fn refresh_window(&mut self) {
        let range = self.cursor.region_range();
        let lo = range.start.max(self.offset);
        let hi = range.end.min(self.offset + self.len);
        match self.cursor.region_tail(lo) {
            Some(tail) if lo < hi => {
                self.win_lo = lo - self.offset;
                self.win_len = hi - lo;
                self.win_base = tail.as_ptr();
            }
            _ => {
                self.win_lo = 0;
                self.win_len = 0;
                self.win_base = std::ptr::null();
            }
        }
    }

    /// Releases the window; the buffer reads nothing (length 0) until
    /// [`begin_access`](Self::begin_access).
    pub fn end_access(&mut self) {
        self.len = 0;
        self.pos = 0;
        self.cursor.unuse_region();
        self.refresh_window();
    }

    /// The cursor.
    pub fn cursor(&self) -> &WindowCursor {
        &self.cursor
    }

    /// Takes the cursor back, ending the buffer.
    pub fn into_cursor(self) -> WindowCursor {
        self.cursor
    }

    /// Absolute file offset of index 0.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Number of bytes in the view.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True if the view is empty (after `end_access`).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Passes an access-pattern hint to the kernel for every window the
    /// buffer uses from now on.
    pub fn set_access_hint(&mut self, hint: Option<AccessHint>) {
        self.cursor.set_access_hint(hint);
    }

    fn out_of_range(&self, rel: u64) -> Error {
        Error::OutOfRange {
            file: self
                .cursor
                .path_or_fd()
                .cloned()
                .unwrap_or(crate::PathOrFd::Fd(-1)),
            offset: self.offset.saturating_add(rel),
            size: self.len,
        }
    }

    /// The byte at index `i`.
    ///
    /// Errors: `i >= len()` ([`Error::OutOfRange`]), or its window could not
    /// be mapped.
    #[inline]
    pub fn get(&mut self, i: u64) -> Result<u8> {
        let k = i.wrapping_sub(self.win_lo);
        if k < self.win_len {
            self.cursor.note_hit();
            // SAFETY: `k < win_len` keeps the read inside the cached window,
            // which lies inside the cursor's current region (see
            // `refresh_window`); the region lives while the cursor does.
            return Ok(unsafe { *self.win_base.add(k as usize) });
        }
        self.get_slow(i)
    }

    #[cold]
    fn get_slow(&mut self, i: u64) -> Result<u8> {
        Ok(self.chunk_at(i)?[0])
    }

    /// The bytes from index `i` to the end of the window holding it (or of
    /// the buffer, if sooner): never empty.
    pub(crate) fn chunk_at(&mut self, i: u64) -> Result<&[u8]> {
        if i >= self.len {
            return Err(self.out_of_range(i));
        }
        let abs = self.offset + i;
        if self.cursor.region_range().contains(&abs) {
            self.cursor.note_hit();
        } else {
            self.cursor.use_region(abs, 0)?;
            self.refresh_window();
        }
        let end = self.len - i;
        let tail = self
            .cursor
            .region_tail(abs)
            .expect("the window holds the offset it was placed at");
        Ok(&tail[..tail.len().min(usize::try_from(end).unwrap_or(usize::MAX))])
    }

    /// Copies bytes from index `i` into `out`, across windows; returns how
    /// many (fewer than `out.len()` only at the end of the buffer).
    ///
    /// Errors: `i > len()`, or a window could not be mapped.
    pub fn read_at(&mut self, i: u64, out: &mut [u8]) -> Result<usize> {
        if i > self.len {
            return Err(self.out_of_range(i));
        }
        // The common case: one window holds it all, one copy.
        let want = out
            .len()
            .min(usize::try_from(self.len - i).unwrap_or(usize::MAX));
        if let Some(tail) = self.cursor.region_tail(self.offset + i) {
            if tail.len() >= want {
                out[..want].copy_from_slice(&tail[..want]);
                self.cursor.note_hit();
                return Ok(want);
            }
        }
        let mut done = 0;
        while done < out.len() && i + (done as u64) < self.len {
            let chunk = self.chunk_at(i + done as u64)?;
            let n = chunk.len().min(out.len() - done);
            out[done..done + n].copy_from_slice(&chunk[..n]);
            done += n;
        }
        Ok(done)
    }

    /// Fills `out` exactly from index `i`.
    ///
    /// Errors: fewer than `out.len()` bytes from `i` ([`Error::OutOfRange`]).
    pub fn read_exact_at(&mut self, i: u64, out: &mut [u8]) -> Result<()> {
        if i.checked_add(out.len() as u64)
            .is_none_or(|end| end > self.len)
        {
            return Err(self.out_of_range(i.saturating_add(out.len() as u64)));
        }
        self.read_at(i, out).map(|_| ())
    }

    /// The bytes of `range` (relative): borrowed from the mapping when one
    /// window holds them all, copied and stitched together otherwise.
    ///
    /// Errors: the range is reversed or ends past `len()`, or a window could
    /// not be mapped.
    pub fn slice(&mut self, range: Range<u64>) -> Result<Cow<'_, [u8]>> {
        if range.start > range.end || range.end > self.len {
            return Err(self.out_of_range(range.end.max(range.start)));
        }
        let n =
            usize::try_from(range.end - range.start).map_err(|_| self.out_of_range(range.end))?;
        if n == 0 {
            return Ok(Cow::Borrowed(&[]));
        }
        if self.chunk_at(range.start)?.len() >= n {
            let chunk = self.chunk_at(range.start)?;
            return Ok(Cow::Borrowed(&chunk[..n]));
        }
        let mut out = vec![0; n];
        self.read_at(range.start, &mut out)?;
        Ok(Cow::Owned(out))
    }
}
