//! `find`/`rfind`: pattern search window by window, seeing matches that
//! straddle two windows.

use memchr::memmem::{Finder, FinderRev};

use super::SlidingWindowMapBuffer;
use crate::error::Result;

impl SlidingWindowMapBuffer {
    /// The index of the first occurrence of `pattern` at or after `start`.
    /// An empty pattern matches at `start` (if `start <= len()`).
    ///
    /// Each window is searched where it is mapped, without copying; only the
    /// `2 × (pattern length − 1)` bytes around each window boundary are
    /// copied to find matches that straddle it.
    pub fn find(&mut self, pattern: &[u8], start: u64) -> Result<Option<u64>> {
        self.find_with(&Finder::new(pattern), start)
    }

    fn find_with(&mut self, finder: &Finder<'_>, start: u64) -> Result<Option<u64>> {
        let m = finder.needle().len() as u64;
        if m == 0 {
            return Ok((start <= self.len).then_some(start));
        }
        let mut pos = start;
        while pos.saturating_add(m) <= self.len {
            let chunk = self.chunk_for(pos, crate::copy::COPY_MAX)?;
            if let Some(i) = finder.find(chunk) {
                return Ok(Some(pos + i as u64));
            }
            let next = pos + chunk.len() as u64;
            if next >= self.len {
                break;
            }
            // Matches starting in the last m - 1 bytes of this window end in
            // the next one.
            let from = next.saturating_sub(m - 1).max(pos);
            let to = (next + m - 1).min(self.len);
            let mut seam = vec![0; (to - from) as usize];
            self.read_exact_at(from, &mut seam)?;
            if let Some(i) = finder.find(&seam) {
                return Ok(Some(from + i as u64));
            }
            pos = next;
        }
        Ok(None)
    }

    /// The index of the last occurrence of `pattern` that ends at or before
    /// `end` (clipped to `len()`). An empty pattern matches at `end`.
    ///
    /// The range is searched backwards in blocks copied out of the file,
    /// each overlapping the next by `pattern.len() - 1` bytes so that
    /// matches straddling two blocks (or two windows) are seen.
    pub fn rfind(&mut self, pattern: &[u8], end: u64) -> Result<Option<u64>> {
        const BLOCK: u64 = 256 * 1024;
        let finder = FinderRev::new(pattern);
        let m = pattern.len() as u64;
        let mut end = end.min(self.len);
        if m == 0 {
            return Ok(Some(end));
        }
        let mut block = Vec::new();
        while end >= m {
            let start = end.saturating_sub(BLOCK.max(2 * m));
            block.resize((end - start) as usize, 0);
            self.read_exact_at(start, &mut block)?;
            if let Some(i) = finder.rfind(&block) {
                return Ok(Some(start + i as u64));
            }
            if start == 0 {
                break;
            }
            // Matches ending in the first m - 1 bytes of this block begin
            // before it.
            end = start + m - 1;
        }
        Ok(None)
    }

    /// Every occurrence of `pattern` from index 0, overlapping ones included,
    /// in increasing order.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("f");
    /// std::fs::write(&path, b"aaaa")?;
    /// let manager = smmap::SlidingWindowMapManager::new();
    /// let mut buf = smmap::SlidingWindowMapBuffer::new(manager.make_cursor(&path)?, 0, u64::MAX)?;
    /// let found: Result<Vec<u64>, _> = buf.find_iter(b"aa").collect();
    /// assert_eq!(found?, [0, 1, 2]);
    /// # Ok(()) }
    /// ```
    pub fn find_iter<'a>(&'a mut self, pattern: &[u8]) -> Matches<'a> {
        Matches {
            buffer: self,
            finder: Finder::new(pattern).into_owned(),
            next: Some(0),
        }
    }
}

/// The occurrences of a pattern, from [`SlidingWindowMapBuffer::find_iter`].
pub struct Matches<'a> {
    buffer: &'a mut SlidingWindowMapBuffer,
    finder: Finder<'static>,
    next: Option<u64>,
}

impl Iterator for Matches<'_> {
    type Item = Result<u64>;

    fn next(&mut self) -> Option<Result<u64>> {
        let start = self.next?;
        match self.buffer.find_with(&self.finder, start) {
            Ok(Some(at)) => {
                self.next = Some(at + 1);
                Some(Ok(at))
            }
            Ok(None) => {
                self.next = None;
                None
            }
            Err(e) => {
                self.next = None;
                Some(Err(e))
            }
        }
    }
}
