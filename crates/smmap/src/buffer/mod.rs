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
}

impl SlidingWindowMapBuffer {
    /// A buffer over `[offset, offset + size)` of the cursor's file, `size`
    /// clipped to the file's end (`u64::MAX`: to the end).
    ///
    /// Errors: the cursor has no file ([`Error::NotAssociated`]), `offset` is
    /// at or past the end ([`Error::OutOfRange`]), or, under
    /// [`ReadPolicy::AlwaysMap`](crate::ReadPolicy::AlwaysMap), the first
    /// window could not be mapped (under the default
    /// [`Adaptive`](crate::ReadPolicy::Adaptive) policy the first read maps
    /// or copies, and reports what fails).
    pub fn new(cursor: WindowCursor, offset: u64, size: u64) -> Result<Self> {
        let mut buf = SlidingWindowMapBuffer {
            cursor,
            offset: 0,
            len: 0,
            pos: 0,
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
        // Nothing is found in the frame until the buffer has its length
        // again (also if this fails).
        self.cursor.set_frame(0, 0);
        let Some(fsize) = self.cursor.file_size() else {
            return Err(Error::NotAssociated);
        };
        if offset >= fsize {
            let file = self.cursor.path_or_fd().cloned().expect("associated");
            return Err(Error::OutOfRange {
                file,
                offset,
                view: None,
                size: fsize,
            });
        }
        // Maps the first window under `ReadPolicy::AlwaysMap`.
        self.cursor.map_first(offset)?;
        self.offset = offset;
        self.len = size.min(fsize - offset);
        self.cursor.set_frame(offset, self.len);
        Ok(())
    }

    /// Releases the window; the buffer reads nothing (length 0) until
    /// [`begin_access`](Self::begin_access).
    pub fn end_access(&mut self) {
        self.len = 0;
        self.pos = 0;
        self.cursor.set_frame(0, 0);
        self.cursor.unuse_region();
    }

    /// The cursor.
    pub fn cursor(&self) -> &WindowCursor {
        &self.cursor
    }

    /// Takes the cursor back, ending the buffer.
    pub fn into_cursor(self) -> WindowCursor {
        let mut cursor = self.cursor;
        cursor.set_frame(0, u64::MAX);
        cursor
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

    /// The error for index `rel`, at or past the end of the view; or, for a
    /// buffer whose cursor has no file, that it has none.
    #[cold]
    fn out_of_range(&self, rel: u64) -> Error {
        match self.cursor.path_or_fd() {
            Some(file) => Error::OutOfRange {
                file: file.clone(),
                offset: self.offset.saturating_add(rel),
                view: Some(self.offset),
                size: self.len,
            },
            None => Error::NotAssociated,
        }
    }

    /// The byte at index `i`.
    ///
    /// Errors: `i >= len()` ([`Error::OutOfRange`]), or its window could not
    /// be mapped (the buffer stays usable: a later read maps again).
    #[inline]
    pub fn get(&mut self, i: u64) -> Result<u8> {
        // The hot path: the window held has index `i` (the cursor's frame
        // is the buffer's range, so a byte found is inside the buffer): one
        // comparison.
        if let Some(b) = self.cursor.framed_byte(i) {
            return Ok(b);
        }
        if i < self.len {
            // Another window, the copy, or a read the trace records.
            return self.cursor.byte_miss(self.offset + i);
        }
        Err(self.out_of_range(i))
    }

    /// The bytes from index `i` to the end of the window (or copy) holding
    /// it, or of the buffer if sooner: never empty. `want` is how many bytes
    /// the caller means to read (what a copy reads, at least a page).
    pub(crate) fn chunk_for(&mut self, i: u64, want: u64) -> Result<&[u8]> {
        if i >= self.len {
            return Err(self.out_of_range(i));
        }
        let left = usize::try_from(self.len - i).unwrap_or(usize::MAX);
        let chunk = self.cursor.chunk_for(self.offset + i, want)?;
        Ok(&chunk[..chunk.len().min(left)])
    }

    /// Copies bytes from index `i` into `out`, across windows; returns how
    /// many (fewer than `out.len()` only at the end of the buffer).
    ///
    /// Errors: `i > len()`, or a window could not be mapped.
    pub fn read_at(&mut self, i: u64, out: &mut [u8]) -> Result<usize> {
        if i > self.len {
            return Err(self.out_of_range(i));
        }
        let want = out
            .len()
            .min(usize::try_from(self.len - i).unwrap_or(usize::MAX));
        if want == 0 {
            // At the end (or of nothing): no window to ask for.
            return Ok(0);
        }
        self.cursor.read_at(self.offset + i, &mut out[..want])
    }

    /// Fills `out` exactly from index `i`.
    ///
    /// Errors: fewer than `out.len()` bytes from `i` ([`Error::OutOfRange`]).
    pub fn read_exact_at(&mut self, i: u64, out: &mut [u8]) -> Result<()> {
        if i.checked_add(out.len() as u64)
            .is_none_or(|end| end > self.len)
        {
            // The first byte asked for that the view does not have.
            return Err(self.out_of_range(i.max(self.len)));
        }
        self.read_at(i, out).map(|_| ())
    }

    /// The bytes of `range` (relative): borrowed from the mapping when one
    /// window holds them all, copied and stitched together otherwise.
    ///
    /// Errors: the range is reversed or ends past `len()`, the copy does not
    /// fit in memory ([`Error::TooLarge`]), or a window could not be mapped.
    pub fn slice(&mut self, range: Range<u64>) -> Result<Cow<'_, [u8]>> {
        if range.start > range.end || range.end > self.len {
            // A reversed range names its start; one past the end, the first
            // byte the view does not have.
            let first = if range.start > range.end {
                range.start
            } else {
                range.start.max(self.len)
            };
            return Err(self.out_of_range(first));
        }
        let n = range.end - range.start;
        if n == 0 {
            return Ok(Cow::Borrowed(&[]));
        }
        // One read, counted and recorded once: the chunk is looked at again
        // through `chunk_held` (returning the first borrow from one branch
        // only is what the borrow checker refuses).
        let got = self.chunk_for(range.start, n)?.len();
        if got as u64 >= n {
            return Ok(Cow::Borrowed(&self.chunk_held(range.start)[..n as usize]));
        }
        let mut out = self.allocate(range.start, n)?;
        out[..got].copy_from_slice(&self.chunk_held(range.start)[..got]);
        self.read_exact_at(range.start + got as u64, &mut out[got..])?;
        Ok(Cow::Owned(out))
    }

    /// The chunk [`chunk_for`](Self::chunk_for) just gave for index `i`.
    fn chunk_held(&self, i: u64) -> &[u8] {
        self.cursor
            .chunk_held(self.offset + i)
            .expect("the chunk just obtained is held")
    }

    /// A zeroed vector of `n` bytes for a copy of the bytes at index `i`, or
    /// [`Error::TooLarge`] if it cannot be had.
    fn allocate(&self, i: u64, n: u64) -> Result<Vec<u8>> {
        let too_large = || Error::TooLarge {
            file: self
                .cursor
                .path_or_fd()
                .cloned()
                .unwrap_or(crate::PathOrFd::UNNAMED),
            offset: self.offset.saturating_add(i),
            len: n,
        };
        let n = usize::try_from(n).map_err(|_| too_large())?;
        let mut out = Vec::new();
        out.try_reserve_exact(n).map_err(|_| too_large())?;
        out.resize(n, 0);
        Ok(out)
    }
}
