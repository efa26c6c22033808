//! [`HeldRegion`]: the region a cursor holds, together with the address of
//! its first byte — the only raw pointer on the read paths. Nothing else
//! caches an address: the cursor and the buffer ask this type for bytes, so a
//! region that is released, or fails to be replaced, can never be read
//! through a stale pointer.

use std::ops::Range;

use crate::region::MapRegion;

/// The region a cursor holds, if any, with its range and base address.
///
/// Invariant: `base`, `begin` and `end` describe `region` exactly — they are
/// set together in [`set`](Self::set) and cleared together in
/// [`take`](Self::take) — and without a region the range is `0..0`, which no
/// offset is in.
pub(crate) struct HeldRegion {
    region: Option<MapRegion>,
    base: *const u8,
    begin: u64,
    end: u64,
}

// SAFETY: `base` points into the mapping owned by `region` (an `Arc`), which
// lives as long as `base` is set; the mapping is read-only and never written
// through, so moving the holder to another thread moves nothing unsound.
unsafe impl Send for HeldRegion {}
// SAFETY: `&self` methods only read the fields and the read-only mapping.
unsafe impl Sync for HeldRegion {}

impl HeldRegion {
    /// Holding nothing.
    pub(crate) const fn empty() -> Self {
        HeldRegion {
            region: None,
            base: std::ptr::null(),
            begin: 0,
            end: 0,
        }
    }

    /// Holds `region` (the caller has released any previous one).
    pub(crate) fn set(&mut self, region: MapRegion) {
        debug_assert!(
            self.region.is_none(),
            "the previous region is released first"
        );
        self.base = region.as_slice().as_ptr();
        self.begin = region.ofs_begin();
        self.end = region.ofs_end();
        self.region = Some(region);
    }

    /// Lets go of the region, if any, for the caller to release.
    pub(crate) fn take(&mut self) -> Option<MapRegion> {
        self.base = std::ptr::null();
        self.begin = 0;
        self.end = 0;
        self.region.take()
    }

    /// The region held.
    #[inline]
    pub(crate) fn region(&self) -> Option<&MapRegion> {
        self.region.as_ref()
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

    /// The byte at absolute offset `abs`, if held.
    #[inline]
    pub(crate) fn byte(&self, abs: u64) -> Option<u8> {
        let k = abs.wrapping_sub(self.begin);
        if k < self.end - self.begin {
            // SAFETY: `k < end - begin`, the mapping's length, and the
            // mapping lives while `self.region` holds it (see the invariant).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_reads_and_forgets() {
        let g = *crate::ALLOCATIONGRANULARITY;
        let f = tempfile::NamedTempFile::new().unwrap();
        let bytes: Vec<u8> = (0..2 * g).map(|i| (i % 251) as u8).collect();
        std::fs::write(f.path(), &bytes).unwrap();
        let mut h = HeldRegion::empty();
        assert!(!h.holds(0) && h.byte(0).is_none() && h.tail(0).is_none());
        h.set(MapRegion::new(f.path(), g, g).unwrap());
        assert_eq!(h.range(), g..2 * g);
        assert!(h.holds(g) && !h.holds(g - 1) && !h.holds(2 * g));
        assert_eq!(h.byte(g + 3), Some(bytes[g as usize + 3]));
        assert_eq!(h.tail(2 * g - 2).unwrap(), &bytes[2 * g as usize - 2..]);
        assert!(h.take().is_some());
        assert!(!h.holds(g) && h.byte(g).is_none() && h.region().is_none());
    }
}
