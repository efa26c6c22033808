//! [`HeldRegion`]: the region a cursor holds — a [`Lease`] on the cell that
//! keeps it — together with the address of its first byte: the only raw
//! pointers on the read paths. Nothing else caches an address: the cursor
//! and the buffer ask this type for bytes, so a region that is released, or
//! fails to be replaced, can never be read through a stale pointer.

use std::ops::Range;
use std::ptr::NonNull;

use crate::manager::{Cell, Span};
use crate::region::MapRegion;

/// One client counted in a region cell's claim word (of generation `gen`),
/// on its way from the manager to a cursor or back: whoever holds it must
/// give it back to the manager (`Shared::give_back`), which keeps the region
/// mapped until then.
#[derive(Debug)]
pub(crate) struct Lease {
    pub(crate) cell: NonNull<Cell>,
    pub(crate) gen: u32,
    pub(crate) span: Span,
}

// SAFETY: a lease is a counted claim on a cell that lives as long as its
// manager, which whoever holds the lease keeps alive; the cell's fields it
// points at are read-only while the claim is counted, and the claim word is
// atomic. Moving or sharing it between threads moves nothing unsound.
unsafe impl Send for Lease {}
// SAFETY: as for `Send`.
unsafe impl Sync for Lease {}

/// The region a cursor holds, if any, with its range and base address, and
/// the one it released last (to take back without asking the manager).
///
/// Invariant: while `held` is set, `cell` and `gen` name a lease counted in
/// the cell's claim word, whose manager the cursor keeps alive, and `base`,
/// `begin` and `end` describe its region exactly — they are set together in
/// [`set`](Self::set) and cleared together in [`take`](Self::take), and the
/// view (`view_lo`, `view_len`, `view_base`: the part of the region inside
/// the holder's frame, in the frame's indices) is computed from them there:
/// `[view_base, view_base + view_len)` is always inside `[base, base + end -
/// begin)`, so that it too names only bytes of the mapping held. Without a
/// lease the range is `0..0` and the view empty, which no offset is in, and
/// `cell`, `gen`, `last_begin` and `last_end` name the region released
/// last, on which no claim is counted (taking it back is a
/// compare-and-swap that fails once the region was evicted).
pub(crate) struct HeldRegion {
    base: *const u8,
    begin: u64,
    end: u64,
    /// The origin of the holder's frame, in which the hot paths index:
    /// index `i` names absolute offset `origin + i` (a cursor's is 0, a
    /// buffer's its view's offset).
    origin: u64,
    /// The absolute end of the frame: a cursor's is `u64::MAX`, a buffer's
    /// the end of its view, so that an index past the buffer is never in
    /// the view and the buffer's hit is one comparison.
    frame_end: u64,
    /// `!0`, or 0 while the holder records a trace, whose reads all take
    /// the path that records them: the view's length is masked with it.
    untraced: u64,
    /// The region's part inside the frame, `[lo, hi)` in absolute offsets
    /// (`lo = max(begin, origin)`, `hi = min(end, frame_end)`), in the
    /// frame's indices: index `i` is at `view_base + (i - view_lo)` when
    /// `i - view_lo < view_len` (wrapping); `view_lo` is `lo - origin`,
    /// `view_len` is `(hi - lo) & untraced` (0 if `hi <= lo`), and 0 while
    /// nothing is held.
    view_lo: u64,
    view_len: u64,
    view_base: *const u8,
    held: bool,
    cell: *const Cell,
    gen: u32,
    last_begin: u64,
    last_end: u64,
}

// SAFETY: `base` points into the mapping kept alive by the counted lease,
// which lives as long as `base` is set; the mapping is read-only and never
// written through, and `cell` only names a cell (see `Lease`).
unsafe impl Send for HeldRegion {}
// SAFETY: `&self` methods only read the fields and the read-only mapping.
unsafe impl Sync for HeldRegion {}

impl HeldRegion {
    /// Holding nothing.
    pub(crate) const fn empty() -> Self {
        HeldRegion {
            base: std::ptr::null(),
            begin: 0,
            end: 0,
            origin: 0,
            frame_end: u64::MAX,
            untraced: !0,
            view_lo: 0,
            view_len: 0,
            view_base: std::ptr::null(),
            held: false,
            cell: std::ptr::null(),
            gen: 0,
            last_begin: 0,
            last_end: 0,
        }
    }

    /// Holds `lease` (the caller has taken any previous one out).
    #[inline]
    pub(crate) fn set(&mut self, lease: Lease) {
        debug_assert!(!self.held, "the previous lease is taken out first");
        self.base = lease.span.base;
        self.begin = lease.span.begin;
        self.end = lease.span.end;
        self.held = true;
        self.cell = lease.cell.as_ptr();
        self.gen = lease.gen;
        self.reframe();
    }

    /// Sets the holder's frame (see [`view_byte`](Self::view_byte)):
    /// index `i` names absolute offset `origin + i`, and only indices below
    /// `len` are in the view; `(0, u64::MAX)` is a cursor's, in which
    /// indices are offsets.
    pub(crate) fn set_frame(&mut self, origin: u64, len: u64) {
        self.origin = origin;
        self.frame_end = origin.saturating_add(len);
        self.reframe();
    }

    /// The origin of the holder's frame.
    pub(crate) fn origin(&self) -> u64 {
        self.origin
    }

    /// Says that the holder records a trace (or not): while it does,
    /// [`view_byte`](Self::view_byte) finds nothing held.
    pub(crate) fn set_traced(&mut self, traced: bool) {
        self.untraced = if traced { 0 } else { !0 };
        self.reframe();
    }

    /// Computes the view from the range, the frame and `untraced`: a few
    /// instructions without a branch, on the path of every switch.
    #[inline]
    fn reframe(&mut self) {
        let lo = self.begin.max(self.origin);
        let hi = self.end.min(self.frame_end);
        self.view_lo = lo.wrapping_sub(self.origin);
        self.view_len = hi.saturating_sub(lo) & self.untraced;
        // Only dereferenced below `view_len`, where it is inside the
        // mapping: `lo - begin + view_len <= end - begin`.
        self.view_base = self.base.wrapping_add(lo.wrapping_sub(self.begin) as usize);
    }

    /// The range and address held.
    #[inline]
    fn span(&self) -> Span {
        Span {
            begin: self.begin,
            end: self.end,
            base: self.base,
        }
    }

    /// Takes the lease out, if any, for the caller to give back; remembers
    /// it to take back later.
    #[inline]
    pub(crate) fn take(&mut self) -> Option<Lease> {
        if !self.held {
            return None;
        }
        let span = self.span();
        self.held = false;
        self.last_begin = self.begin;
        self.last_end = self.end;
        self.base = std::ptr::null();
        self.begin = 0;
        self.end = 0;
        self.view_len = 0;
        Some(Lease {
            // SAFETY: set from a `NonNull` in `set`, while `held` was set.
            cell: unsafe { NonNull::new_unchecked(self.cell.cast_mut()) },
            gen: self.gen,
            span,
        })
    }

    /// The region released last, if it held `abs` and nothing is held:
    /// its cell and generation, to take back.
    #[inline]
    pub(crate) fn parked(&self, abs: u64) -> Option<(&Cell, u32)> {
        if self.held
            || self.cell.is_null()
            || abs.wrapping_sub(self.last_begin) >= self.last_end - self.last_begin
        {
            return None;
        }
        // SAFETY: cells never move or go while their manager lives, and the
        // cursor keeps its manager alive (see `Lease`).
        Some((unsafe { &*self.cell }, self.gen))
    }

    /// True if a region is held.
    #[inline]
    pub(crate) fn is_held(&self) -> bool {
        self.held
    }

    /// The cell and generation of the lease held.
    pub(crate) fn lease(&self) -> Option<(&Cell, u32, Span)> {
        if !self.held {
            return None;
        }
        // SAFETY: a counted lease's cell (the invariant).
        Some((unsafe { &*self.cell }, self.gen, self.span()))
    }

    /// The region held.
    #[inline]
    pub(crate) fn region(&self) -> Option<&MapRegion> {
        if !self.held {
            return None;
        }
        // SAFETY: the lease is counted (the invariant), so the cell keeps
        // its region for as long as `self` is borrowed.
        Some(unsafe { (*self.cell).region() })
    }

    /// The absolute range held; `0..0` without a region.
    #[inline]
    pub(crate) fn range(&self) -> Range<u64> {
        self.begin..self.end
    }

    /// True if the region holds absolute offset `abs`: one unsigned
    /// comparison.
    #[inline]
    pub(crate) fn holds(&self, abs: u64) -> bool {
        abs.wrapping_sub(self.begin) < self.end - self.begin
    }

    /// The byte at index `i` of the frame (absolute offset `origin + i`), if
    /// it is in the view (the region holds it, `i` is below the frame's
    /// length and the holder records no trace): one comparison.
    #[inline]
    pub(crate) fn view_byte(&self, i: u64) -> Option<u8> {
        let k = i.wrapping_sub(self.view_lo);
        if k < self.view_len {
            // SAFETY: `k < view_len`, and `view_base + view_len` does not
            // pass the end of the mapping, nor `view_base` its start (see
            // `reframe`, run with every change of the range or the
            // frame; `take` empties the view); the mapping lives while the
            // lease is counted (see the invariant).
            Some(unsafe { *self.view_base.add(k as usize) })
        } else {
            None
        }
    }

    /// The byte at absolute offset `abs`, if held.
    #[inline]
    pub(crate) fn byte(&self, abs: u64) -> Option<u8> {
        let k = abs.wrapping_sub(self.begin);
        if k < self.end - self.begin {
            // SAFETY: `k < end - begin`, the mapping's length, and the
            // mapping lives while the lease is counted (see the invariant).
            Some(unsafe { *self.base.add(k as usize) })
        } else {
            None
        }
    }

    /// The bytes from absolute offset `abs` to the end of the region, if
    /// held (never empty).
    #[inline]
    pub(crate) fn tail(&self, abs: u64) -> Option<&[u8]> {
        let k = abs.wrapping_sub(self.begin);
        if k < self.end - self.begin {
            let len = (self.end - abs) as usize;
            // SAFETY: `[k, k + len)` is exactly the region's bytes from `abs`
            // to its end, inside the mapping, which lives while `self` is
            // borrowed (see the invariant).
            Some(unsafe { std::slice::from_raw_parts(self.base.add(k as usize), len) })
        } else {
            None
        }
    }
}

impl Drop for HeldRegion {
    fn drop(&mut self) {
        debug_assert!(
            !self.held || std::thread::panicking(),
            "a lease is given back before its holder goes"
        );
    }
}
