//! [`WindowCursor`]: a position in one file, holding at most one region.

use std::fmt;
#[cfg(unix)]
use std::os::fd::RawFd;
#[cfg(windows)]
use std::os::windows::io::RawHandle;
use std::path::Path;

use crate::copy::{pread_exact, Copy, CHUNK, COPY_MAX};
use crate::error::{Error, Result};
use crate::held::{HeldRegion, Lease};
use crate::manager::{Attachment, Fetched, Manager, Want};
use crate::region::MapRegion;
use crate::source::PathOrFd;
use crate::trace::{Op, Served};
use crate::AccessHint;

/// A cursor into one file: it holds at most one region, and
/// [`buffer`](Self::buffer) gives the bytes `[ofs_begin, ofs_end)` of it.
///
/// [`use_region`](Self::use_region) moves the cursor. When the current region
/// already holds the offset, that is all it does — no lock, no system call,
/// no shared memory written. When another region of the file that is mapped
/// already holds it, the cursor takes that one, still without a lock (one
/// look-up in the file's table, one compare-and-swap). Otherwise the
/// manager finds or maps a region.
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
    file: Option<Attachment>,
    /// The region held, and the only pointer into it; and the one released
    /// last, to take back.
    held: HeldRegion,
    /// The bytes copied last by a read the policy did not map.
    copy: Copy,
    /// The cursor's view: `len` bytes at absolute offset `ofs`.
    ofs: u64,
    len: usize,
    /// The largest view: the manager's window size, or unlimited.
    window_cap: u64,
    /// `min(file size, window_cap)`: the view `use_region(_, 0)` asks for.
    max_view: u64,
    /// What the cursor counted and has not yet added to the manager's
    /// statistics.
    counts: Counts,
    hint: Option<AccessHint>,
    /// The cursor's id in the manager's trace, when it records one.
    trace: Option<u64>,
    /// How the last step off the hot path served its read (for the trace).
    last: Served,
}

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
            held: HeldRegion::empty(),
            copy: Copy::default(),
            ofs: 0,
            len: 0,
            window_cap,
            max_view: 0,
            counts: Counts::default(),
            hint: None,
            trace: None,
            last: Served::Held,
        }
    }

    pub(crate) fn attached(file: Attachment) -> Self {
        let mut c = WindowCursor::new(Some(file.manager().clone()));
        c.max_view = file.size().min(c.window_cap);
        let shared = file.shared();
        c.trace = shared.trace().map(|t| {
            let entry = file.entry();
            t.cursor(
                shared.id(),
                entry.serial(),
                file.file().given(),
                file.file().resolved(),
                file.size(),
            )
        });
        c.held.set_traced(c.trace.is_some());
        c.file = Some(file);
        c
    }

    /// Records a read in the manager's trace.
    #[cold]
    fn note(&self, id: u64, op: Op, offset: u64, len: u64, served: Served) {
        if let Some(t) = self.file.as_ref().and_then(|f| f.shared().trace()) {
            t.read(id, op, offset, len, served);
        }
    }

    /// Makes the cursor point at `offset`, with a view of up to `size` bytes
    /// (0: as many as possible), clamped to the window size and the file.
    ///
    /// The view may be shorter than asked: the region ends at the file's end
    /// or where the next region begins, and a region that already holds
    /// `offset` is reused as it is. An `offset` at or past the end of the
    /// file leaves the cursor invalid; that is not an error.
    ///
    /// Errors: the cursor has no file; the file cannot be opened (removed,
    /// replaced by another file, no longer a regular file) — then the cursor
    /// keeps its region and reads it as before, unless the read had to wait
    /// first (for another thread mapping the window at `offset`, for the
    /// evictor, or for room): it gives its region back before it waits, and
    /// has the file's descriptor again after (opening the file if it was
    /// closed meanwhile); a new region could not be mapped —
    /// then the cursor holds no region (it is invalid); or the region at
    /// `offset` is used by as many cursors as it can count
    /// ([`Error::TooManyCursors`]) — then the cursor keeps its region,
    /// unless it waited first for that window to be mapped (it gave its
    /// region back before it waited). Either way it can be used again.
    #[inline]
    pub fn use_region(&mut self, offset: u64, size: usize) -> Result<&mut Self> {
        if self.trace.is_none() && self.held.holds(offset) {
            // The hot path: the current region holds the offset. It returns
            // on its own, with nothing opaque after the view is set (a trace
            // is recorded off it), so that a caller's `buffer()` right after
            // it compiles to the byte's address without checking again.
            self.counts.hits += 1;
            self.set_view(offset, size);
            return Ok(self);
        }
        self.use_region_other(offset, size)
    }

    /// [`use_region`](Self::use_region) off its hot path: a hit recorded in
    /// the trace, another region of the file mapped already (taken without
    /// a lock), or the miss path.
    #[inline(never)]
    fn use_region_other(&mut self, offset: u64, size: usize) -> Result<&mut Self> {
        let served = if self.held.holds(offset) {
            self.counts.hits += 1;
            Served::Held
        } else if self.switch(offset) {
            self.last
        } else {
            return self.use_region_slow(offset, size);
        };
        self.set_view(offset, size);
        if let Some(id) = self.trace {
            self.note(id, Op::Map, offset, size as u64, served);
        }
        Ok(self)
    }

    /// The view: up to `size` bytes (0: as many as may be) from `offset`,
    /// within the region held, which holds `offset`.
    #[inline]
    fn set_view(&mut self, offset: u64, size: usize) {
        let want = self.clamp(size);
        self.ofs = offset;
        self.len = want.min(self.held.range().end - offset) as usize;
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
        let want = self.clamp(size);
        let lease = match fetch(
            &self.file,
            &mut self.held,
            &mut self.counts,
            &mut self.len,
            offset,
            want.max(1),
            Want::Map,
        ) {
            Ok(Fetched::Mapped(lease, served)) => Some((lease, served)),
            // `Want::Map` never copies; past the end, the cursor is invalid.
            Ok(Fetched::Copy { .. } | Fetched::Nothing) => None,
            Err(e) => {
                if let Some(id) = self.trace {
                    self.note(id, Op::Map, offset, size as u64, Served::Copied);
                }
                return Err(e);
            }
        };
        let served = match lease {
            Some((lease, served)) => {
                self.hold(lease, offset, want);
                served
            }
            None => {
                self.len = 0;
                Served::Copied
            }
        };
        if let Some(id) = self.trace {
            self.note(id, Op::Map, offset, size as u64, served);
        }
        Ok(self)
    }

    /// Moves to a region of the file mapped already that holds `offset`,
    /// without any lock: the one the cursor released last (a take-back,
    /// counted as a hit), or the one the file's table names (a switch) —
    /// one compare-and-swap to take it and one subtraction to give the old
    /// one back. True if moved; the view moves there too, from `offset` and
    /// as long as it may be (`use_region` then sets its own).
    #[inline(always)]
    fn switch(&mut self, offset: u64) -> bool {
        let Some(at) = &self.file else {
            return false;
        };
        let (shared, entry) = (at.shared(), at.entry());
        let taken_back = match self.held.parked(offset) {
            Some((cell, gen)) => shared.take_back(entry, cell, gen, offset),
            None => None,
        };
        let lease = match taken_back {
            Some(lease) => {
                self.counts.hits += 1;
                self.last = Served::Held;
                lease
            }
            None => match shared.find(entry, offset) {
                Some(lease) => {
                    self.counts.switches += 1;
                    self.last = Served::Mapped;
                    lease
                }
                None => return false,
            },
        };
        if let Some(old) = self.held.take() {
            at.shared().give_back(old);
        }
        self.held.set(lease);
        // The view moves with the region, as on the miss path (a
        // `use_region` then sets its own).
        self.set_view(offset, 0);
        if let Some(hint) = self.hint {
            self.advise(hint);
        }
        true
    }

    /// Passes `hint` for the region held, once per region.
    fn advise(&self, hint: AccessHint) {
        if let Some(region) = self.held.region() {
            region.advise_once(hint);
        }
    }

    /// Holds `lease`, with a view of up to `want` bytes at `offset`.
    fn hold(&mut self, lease: Lease, offset: u64, want: u64) {
        self.held.set(lease);
        if let Some(hint) = self.hint {
            self.advise(hint);
        }
        self.ofs = offset;
        self.len = want.min(self.held.range().end - offset) as usize;
    }

    /// The most bytes a read that copies asks a window for from `offset`:
    /// `want`, but no further than the end of the window-size slot holding
    /// `offset`, so that the window placed for it is the slot itself (the
    /// buffer stitches reads across windows).
    fn bytes_wanted(&self, offset: u64, want: u64) -> u64 {
        let w = self
            .file
            .as_ref()
            .map_or(u64::MAX, |f| f.shared().limits().slot_window());
        let slot_end = if w == u64::MAX {
            u64::MAX
        } else {
            (offset / w).saturating_add(1).saturating_mul(w)
        };
        want.clamp(1, (slot_end - offset).max(1))
    }

    /// The bytes from absolute offset `offset` to the end of the window
    /// holding it — or, when the manager's [`ReadPolicy`](crate::ReadPolicy)
    /// copies instead of mapping, of a copy of at least a page from it —
    /// moving the cursor there if its region does not hold it: never empty.
    /// The view (`ofs_begin`, `size`) moves only when the region does: then
    /// to `offset`, as long as the region and the window size allow.
    ///
    /// Errors: `offset` is at or past the end of the file
    /// ([`Error::OutOfRange`]), or its window could not be mapped or read.
    /// The cursor stays usable.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("f");
    /// std::fs::write(&path, b"abcdefghij")?;
    /// let manager = smmap::SlidingWindowMapManager::new();
    /// let mut cursor = manager.make_cursor(&path)?;
    /// assert_eq!(cursor.chunk_at(7)?, b"hij");
    /// assert_eq!(cursor.byte_at(1)?, b'b');
    /// let mut out = [0; 4];
    /// assert_eq!(cursor.read_at(8, &mut out)?, 2);
    /// assert_eq!(&out[..2], b"ij");
    /// # Ok(()) }
    /// ```
    #[inline]
    pub fn chunk_at(&mut self, offset: u64) -> Result<&[u8]> {
        self.chunk_for(offset, CHUNK)
    }

    /// [`chunk_at`](Self::chunk_at) for a caller that wants `want` bytes
    /// from `offset`: a copy, if the policy makes one, holds that many (at
    /// least a page, at most [`COPY_MAX`]).
    pub(crate) fn chunk_for(&mut self, offset: u64, want: u64) -> Result<&[u8]> {
        let served = self.ensure(offset, want);
        if let Some(id) = self.trace {
            let served = *served.as_ref().unwrap_or(&Served::Copied);
            self.note(id, Op::Chunk, offset, want, served);
        }
        served?;
        Ok(self
            .chunk_held(offset)
            .expect("the region or the copy holds the offset obtained for"))
    }

    /// The bytes from `offset` to the end of the region or copy holding it,
    /// if one does: what [`chunk_for`](Self::chunk_for) gave last, again,
    /// not counted or recorded a second time.
    pub(crate) fn chunk_held(&self, offset: u64) -> Option<&[u8]> {
        self.held.tail(offset).or_else(|| self.copy.tail(offset))
    }

    /// Makes the region or the copy hold `offset`: a hit if one does, or
    /// else the miss path for `want` bytes from it; says how it was served.
    #[inline]
    fn ensure(&mut self, offset: u64, want: u64) -> Result<Served> {
        if self.held.holds(offset) || self.copy.holds(offset) {
            self.counts.hits += 1;
            return Ok(Served::Held);
        }
        self.chunk_miss(offset, want)?;
        Ok(self.last)
    }

    /// Maps the window holding `offset`, or copies at least `want` bytes
    /// from the page holding it, as the policy decides; `last` says which.
    #[cold]
    fn chunk_miss(&mut self, offset: u64, want: u64) -> Result<()> {
        if self.switch(offset) {
            return Ok(());
        }
        let size = self.file_size().ok_or(Error::NotAssociated)?;
        if offset >= size {
            return Err(self.out_of_range(offset));
        }
        // A page around a small read (bytes near it are likely next); from
        // the offset itself for a read of a page or more.
        let page = crate::sys::page_cost(1);
        let start = if want >= page {
            offset
        } else {
            offset - offset % page
        };
        let len = (want.saturating_add(offset - start))
            .clamp(page, COPY_MAX)
            .min(size - start);
        let wanted = self.bytes_wanted(offset, want);
        let lease = match fetch(
            &self.file,
            &mut self.held,
            &mut self.counts,
            &mut self.len,
            offset,
            wanted,
            Want::Bytes { start, len },
        ) {
            Ok(Fetched::Mapped(lease, served)) => {
                self.last = served;
                Some(lease)
            }
            Ok(Fetched::Copy { desc, len }) => {
                self.last = Served::Copied;
                let file = self.file.as_ref().expect("associated").file();
                return self.copy.fill(file, desc.file(), start, len);
            }
            Ok(Fetched::Nothing) => None,
            Err(e) => return Err(e),
        };
        let Some(lease) = lease else {
            return Err(self.out_of_range(offset));
        };
        let view = self.max_view;
        self.hold(lease, offset, view);
        Ok(())
    }

    /// The byte at absolute offset `offset`, moving the cursor (or copying a
    /// page) if its region does not hold it. Errors as
    /// [`chunk_at`](Self::chunk_at).
    #[inline]
    pub fn byte_at(&mut self, offset: u64) -> Result<u8> {
        debug_assert_eq!(
            self.held.origin(),
            0,
            "a buffer's cursor is read through it"
        );
        if let Some(b) = self.held.view_byte(offset) {
            self.counts.hits += 1;
            return Ok(b);
        }
        self.byte_miss(offset)
    }

    /// The byte at index `i` of the frame set by
    /// [`set_frame`](Self::set_frame) (absolute offset `origin + i`), counted
    /// as a hit, if the region holds it and `i` is below the frame's length;
    /// `None` otherwise, and always while the cursor records a trace. A
    /// buffer's hot path, in its own indices: a byte found is inside the
    /// buffer, so the buffer checks its bounds only when none is. The
    /// cursor's own [`byte_at`](Self::byte_at) reads the same view by
    /// offset, in the frame of origin 0 and no end
    /// ([`use_region`](Self::use_region) tests the range itself): a cursor
    /// lent to a buffer is used only through it, which gives it back with
    /// that frame.
    #[inline]
    pub(crate) fn framed_byte(&mut self, i: u64) -> Option<u8> {
        let b = self.held.view_byte(i)?;
        self.counts.hits += 1;
        Some(b)
    }

    /// Sets the frame of [`framed_byte`](Self::framed_byte): index `i`
    /// names absolute offset `origin + i`, and only indices below `len` are
    /// found; `(0, u64::MAX)` gives the cursor back its own.
    pub(crate) fn set_frame(&mut self, origin: u64, len: u64) {
        self.held.set_frame(origin, len);
    }

    /// [`byte_at`](Self::byte_at) off its hot path: a switch to another
    /// region mapped already, the copy, or the miss path; traced, also a
    /// hit (which the hot path leaves to this one, to record it).
    #[inline(never)]
    pub(crate) fn byte_miss(&mut self, offset: u64) -> Result<u8> {
        if self.trace.is_some() {
            return self.byte_traced(offset);
        }
        // Untraced, the hot path has found the region not to hold `offset`.
        if !self.copy.holds(offset) && self.switch(offset) {
            if let Some(b) = self.held.byte(offset) {
                return Ok(b);
            }
        }
        self.byte_slow(offset)
    }

    /// [`byte_miss`](Self::byte_miss) for a cursor that records a trace.
    #[cold]
    fn byte_traced(&mut self, offset: u64) -> Result<u8> {
        if let Some(b) = self.held.byte(offset) {
            self.counts.hits += 1;
            if let Some(id) = self.trace {
                self.note(id, Op::Byte, offset, 1, Served::Held);
            }
            return Ok(b);
        }
        if !self.copy.holds(offset) && self.switch(offset) {
            if let Some(id) = self.trace {
                self.note(id, Op::Byte, offset, 1, self.last);
            }
            if let Some(b) = self.held.byte(offset) {
                return Ok(b);
            }
        }
        self.byte_slow(offset)
    }

    /// [`byte_at`](Self::byte_at) from the copy, or through the miss path.
    #[cold]
    fn byte_slow(&mut self, offset: u64) -> Result<u8> {
        let served = self.ensure(offset, 1);
        if let Some(id) = self.trace {
            let s = *served.as_ref().unwrap_or(&Served::Copied);
            self.note(id, Op::Byte, offset, 1, s);
        }
        served?;
        Ok(self
            .held
            .byte(offset)
            .or_else(|| self.copy.tail(offset).map(|t| t[0]))
            .expect("the region or the copy holds the offset obtained for"))
    }

    /// Copies bytes from absolute offset `offset` into `out`, across windows;
    /// returns how many (fewer than `out.len()` only at the end of the file).
    /// Bytes the manager's [`ReadPolicy`](crate::ReadPolicy) does not map are
    /// read with `pread` straight into `out`.
    ///
    /// Errors: `offset` is past the end of the file, or a window could not
    /// be mapped or read (the cursor stays usable; nothing is lost, and the
    /// read can be tried again).
    pub fn read_at(&mut self, offset: u64, out: &mut [u8]) -> Result<usize> {
        let Some(id) = self.trace else {
            return self.read_at_untraced(offset, out).map(|(n, _)| n);
        };
        let got = self.read_at_untraced(offset, out);
        let served = got.as_ref().map_or(Served::Copied, |g| g.1);
        self.note(id, Op::ReadAt, offset, out.len() as u64, served);
        got.map(|(n, _)| n)
    }

    /// [`read_at`](Self::read_at), saying how it was served: by the most
    /// costly step of its windows (a window mapped, a copy, a switch, a
    /// hit).
    fn read_at_untraced(&mut self, offset: u64, out: &mut [u8]) -> Result<(usize, Served)> {
        let size = self.file_size().ok_or(Error::NotAssociated)?;
        if offset > size {
            return Err(self.out_of_range(offset));
        }
        let want = out
            .len()
            .min(usize::try_from(size - offset).unwrap_or(usize::MAX));
        // The common case: one window holds it all, one copy.
        if let Some(tail) = self.held.tail(offset) {
            if tail.len() >= want {
                out[..want].copy_from_slice(&tail[..want]);
                self.counts.hits += 1;
                return Ok((want, Served::Held));
            }
        }
        let mut done = 0;
        let mut served = Served::Held;
        let worse = |s: Served, by: Served| {
            let rank = |s| {
                [
                    Served::Held,
                    Served::Mapped,
                    Served::Copied,
                    Served::NewWindow,
                ]
                .iter()
                .position(|&x| x == s)
            };
            if rank(by) > rank(s) {
                by
            } else {
                s
            }
        };
        // Whether the part at `done` is counted already (by the miss or
        // switch that brought its window): each part is one hit or one miss.
        let mut counted = false;
        while done < want {
            let at = offset + done as u64;
            if let Some(tail) = self.held.tail(at).or_else(|| self.copy.tail(at)) {
                let n = tail.len().min(want - done);
                out[done..done + n].copy_from_slice(&tail[..n]);
                done += n;
                if !std::mem::take(&mut counted) {
                    self.counts.hits += 1;
                }
                continue;
            }
            // A window of the file mapped already, without a lock, as every
            // other read path does before the miss path.
            if self.switch(at) {
                served = worse(served, self.last);
                counted = true;
                continue;
            }
            let rest = (want - done) as u64;
            let wanted = self.bytes_wanted(at, rest);
            let fetched = fetch(
                &self.file,
                &mut self.held,
                &mut self.counts,
                &mut self.len,
                at,
                wanted,
                Want::Bytes {
                    start: at,
                    len: rest,
                },
            );
            let lease = match fetched? {
                Fetched::Mapped(lease, how) => {
                    served = worse(served, how);
                    lease
                }
                Fetched::Copy { desc, len } => {
                    served = worse(served, Served::Copied);
                    let file = self.file.as_ref().expect("associated").file();
                    let n = len as usize;
                    pread_exact(file, desc.file(), &mut out[done..done + n], at)?;
                    done += n;
                    continue;
                }
                Fetched::Nothing => return Err(self.out_of_range(at)),
            };
            let view = self.max_view;
            self.hold(lease, at, view);
            counted = true;
        }
        Ok((done, served))
    }

    /// Maps the window holding `offset` under
    /// [`ReadPolicy::AlwaysMap`](crate::ReadPolicy::AlwaysMap); does nothing
    /// under [`ReadPolicy::Adaptive`](crate::ReadPolicy::Adaptive), whose
    /// first read decides (and so asks the manager once, not twice). A
    /// buffer's `begin_access` starts with it.
    pub(crate) fn map_first(&mut self, offset: u64) -> Result<()> {
        let policy = self.manager.as_ref().map(Manager::read_policy);
        if self.held.holds(offset) || policy != Some(crate::ReadPolicy::AlwaysMap) {
            return Ok(());
        }
        if self.switch(offset) {
            if let Some(id) = self.trace {
                self.note(id, Op::First, offset, 0, self.last);
            }
            return Ok(());
        }
        // On the slot grid, as every other read of a buffer asks.
        let want = self.bytes_wanted(offset, self.max_view);
        let lease = match fetch(
            &self.file,
            &mut self.held,
            &mut self.counts,
            &mut self.len,
            offset,
            want,
            Want::Map,
        ) {
            Ok(Fetched::Mapped(lease, served)) => (lease, served),
            Ok(Fetched::Copy { .. } | Fetched::Nothing) => return Ok(()),
            Err(e) => {
                if let Some(id) = self.trace {
                    self.note(id, Op::First, offset, 0, Served::Copied);
                }
                return Err(e);
            }
        };
        // Held before it is traced, as on every other path: the lease is
        // counted, and only the held region gives it back.
        let view = self.max_view;
        self.hold(lease.0, offset, view);
        if let Some(id) = self.trace {
            self.note(id, Op::First, offset, 0, lease.1);
        }
        Ok(())
    }

    /// The error for an offset outside the file.
    fn out_of_range(&self, offset: u64) -> Error {
        match self.path_or_fd() {
            Some(file) => Error::OutOfRange {
                file: file.clone(),
                offset,
                view: None,
                size: self.file_size().unwrap_or(0),
            },
            None => Error::NotAssociated,
        }
    }

    /// Releases the current region, leaving the cursor invalid but still
    /// associated with its file. Does nothing without a region.
    ///
    /// This takes no lock, and the next read inside the region takes it
    /// back without a lock too, unless the manager evicted it meanwhile.
    pub fn unuse_region(&mut self) {
        self.len = 0;
        self.copy.clear();
        if let (Some(lease), Some(file)) = (self.held.take(), &self.file) {
            file.shared().give_back(lease);
        }
        if let (Some(id), Some(t)) = (
            self.trace,
            self.file.as_ref().and_then(|f| f.shared().trace()),
        ) {
            t.release(id);
        }
    }

    /// The bytes of the current view, `[ofs_begin, ofs_end)`; empty when the
    /// cursor is invalid.
    #[inline]
    pub fn buffer(&self) -> &[u8] {
        match self.held.tail(self.ofs) {
            Some(tail) => &tail[..self.len],
            None => &[],
        }
    }

    /// The bytes of the whole current region (smmap's `map()`), which may
    /// start before and end after the cursor's view; empty when invalid.
    #[inline]
    pub fn map(&self) -> &[u8] {
        self.held.tail(self.held.range().start).unwrap_or(&[])
    }

    /// True if the cursor holds a region it can read from.
    #[inline]
    pub fn is_valid(&self) -> bool {
        self.held.is_held()
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
        self.held.region()
    }

    /// True if the current region holds every byte of `[offset, offset +
    /// len)` (with `len` 0, the byte at `offset`): reading them
    /// ([`byte_at`](Self::byte_at), [`chunk_at`](Self::chunk_at),
    /// [`read_at`](Self::read_at)) or moving there
    /// ([`use_region`](Self::use_region)) is a hit, which takes no lock and
    /// makes no system call. Nothing moves.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("f");
    /// std::fs::write(&path, b"abcdefghij")?;
    /// let manager = smmap::SlidingWindowMapManager::new();
    /// let mut cursor = manager.make_cursor(&path)?;
    /// assert!(!cursor.holds(0, 1));
    /// cursor.use_region(2, 3)?;
    /// // The region is the whole (small) file, whatever the view.
    /// assert!(cursor.holds(0, 10) && cursor.holds(9, 1));
    /// assert!(!cursor.holds(9, 2) && !cursor.holds(10, 0));
    /// # Ok(()) }
    /// ```
    #[inline]
    pub fn holds(&self, offset: u64, len: u64) -> bool {
        self.held.holds(offset) && len <= self.held.range().end - offset
    }

    /// True if the view holds absolute offset `ofs`.
    #[inline]
    pub fn includes_ofs(&self, ofs: u64) -> bool {
        self.ofs <= ofs && ofs < self.ofs_end()
    }

    /// The file's size as the manager read it, if associated.
    #[inline]
    pub fn file_size(&self) -> Option<u64> {
        self.file.as_ref().map(|f| f.size())
    }

    /// The file's path or descriptor, if associated.
    pub fn path_or_fd(&self) -> Option<&PathOrFd> {
        self.file.as_ref().map(|f| f.file().given())
    }

    /// The file's path, if associated with a path.
    pub fn path(&self) -> Option<&Path> {
        self.path_or_fd().and_then(PathOrFd::path)
    }

    /// The file descriptor, if associated with one (it may have been closed
    /// by its owner since).
    #[cfg(unix)]
    pub fn fd(&self) -> Option<RawFd> {
        self.path_or_fd().and_then(PathOrFd::fd)
    }

    /// The file handle, if associated with one (it may have been closed by
    /// its owner since).
    #[cfg(windows)]
    pub fn handle(&self) -> Option<RawHandle> {
        self.path_or_fd().and_then(PathOrFd::handle)
    }

    /// The manager, if any.
    pub fn manager(&self) -> Option<&Manager> {
        self.manager.as_ref()
    }

    /// Sets an access-pattern hint that is passed to the kernel (madvise) for
    /// every region the cursor moves to from now on, and for the current one.
    pub fn set_access_hint(&mut self, hint: Option<AccessHint>) {
        self.hint = hint;
        if let (Some(hint), Some(region)) = (hint, self.held.region()) {
            region.advise_once(hint);
        }
    }

    /// The access hint, if one is set.
    pub fn access_hint(&self) -> Option<AccessHint> {
        self.hint
    }

    /// Makes this cursor an independent copy of `other` (smmap's `assign`),
    /// releasing what it held before. See [`clone`](Clone::clone) for the
    /// one case where the copy has no region.
    pub fn assign(&mut self, other: &WindowCursor) {
        *self = other.clone();
    }
}

impl Clone for WindowCursor {
    /// An independent cursor on the same file and region, counted as one
    /// more user of the region (which keeps it mapped until both are done).
    ///
    /// One region counts at most 16,777,214 cursors, a bound only cursors
    /// leaked with [`std::mem::forget`] reach: a copy of a cursor whose
    /// region counts that many has the file but no region, and its next
    /// read there fails with [`Error::TooManyCursors`] until a cursor of the
    /// region is dropped or moved.
    fn clone(&self) -> Self {
        let mut copy = WindowCursor::new(self.manager.clone());
        copy.hint = self.hint;
        copy.max_view = self.max_view;
        if let Some(file) = &self.file {
            copy.trace = self
                .trace
                .zip(file.shared().trace())
                .map(|(id, t)| t.clone_cursor(id));
            copy.held.set_traced(copy.trace.is_some());
            copy.file = Some(file.clone());
            // A region that counts the most cursors it can (only leaked
            // cursors reach that) is not shared: the copy has no region.
            if let Some(lease) = self
                .held
                .lease()
                .and_then(|(cell, gen, span)| file.shared().share(cell, gen, span))
            {
                copy.held.set(lease);
                copy.ofs = self.ofs;
                copy.len = self.len;
            }
        }
        copy
    }
}

impl Drop for WindowCursor {
    fn drop(&mut self) {
        // The region goes back first; the attachment, dropped after this,
        // then forgets the file if nothing else uses it.
        if let Some(file) = &self.file {
            if let Some(lease) = self.held.take() {
                file.shared().give_back(lease);
            }
            file.shared()
                .add_counts(self.counts.hits, self.counts.switches);
            if let (Some(id), Some(t)) = (self.trace, file.shared().trace()) {
                t.drop_cursor(id);
            }
        }
    }
}

/// What a cursor counts without touching shared memory, added to the
/// manager's statistics whenever it takes the miss path, and when dropped.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    /// Reads its region (or copy) held.
    hits: u64,
    /// Moves to a window mapped already.
    switches: u64,
}

/// The miss path of a cursor attached as `file` (with its `held` region and
/// its uncounted `counts`): asks for `want_size` bytes at `offset` as `want`
/// says.
///
/// First without any lock: the region the cursor released last, if it
/// holds `offset` and was not evicted (counted as a hit; the cursor tried
/// the region the file's table names before, `WindowCursor::switch`). Then
/// the manager's miss path ([`Shared::obtain`](crate::manager::Shared),
/// which says when it gives the region held back): a copy decided before a
/// window is placed, or a file that cannot be opened before then, leaves
/// the cursor its region, view and all; once the region went back, the
/// view (`len`) is emptied here, whatever came of the miss (a window, a
/// copy, an error).
fn fetch<'a>(
    file: &'a Option<Attachment>,
    held: &mut HeldRegion,
    counts: &mut Counts,
    len: &mut usize,
    offset: u64,
    want_size: u64,
    want: Want,
) -> Result<Fetched<'a>> {
    let Some(at) = file else {
        return Err(Error::NotAssociated);
    };
    let (shared, entry) = (at.shared(), at.entry());
    if let Some((cell, gen)) = held.parked(offset) {
        if let Some(lease) = shared.take_back(entry, cell, gen, offset) {
            counts.hits += 1;
            return Ok(Fetched::Mapped(lease, Served::Held));
        }
    }
    let Counts { hits, switches } = std::mem::take(counts);
    shared.add_counts(hits, switches);
    let mut moving = Moving {
        previous: held.take(),
        held,
        len,
    };
    shared.obtain(entry, offset, want_size, &mut moving.previous, want)
}

/// The cursor's region while a miss decides whether to give it back; when
/// dropped — after the miss, or as it unwinds (a bug's panic) — the cursor
/// holds it again if the miss kept it, and otherwise shows no view.
struct Moving<'a> {
    previous: Option<Lease>,
    held: &'a mut HeldRegion,
    len: &'a mut usize,
}

impl Drop for Moving<'_> {
    fn drop(&mut self) {
        match self.previous.take() {
            Some(kept) => self.held.set(kept),
            // The region went back (or none was held), whatever came of the
            // miss (a copy, an error, nothing past the end): the view goes
            // with it.
            None => *self.len = 0,
        }
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
        assert!(c.manager().is_none() && c.file_size().is_none() && c.path_or_fd().is_none());
        assert!(matches!(c.use_region(0, 0), Err(Error::NotAssociated)));
        c.unuse_region();
        let copy = c.clone();
        assert!(!copy.is_associated());
    }
}
