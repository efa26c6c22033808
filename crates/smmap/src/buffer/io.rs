//! `std::io::{Read, Seek, BufRead}` over a buffer.

use std::io::{self, BufRead, Read, Seek, SeekFrom};

use super::SlidingWindowMapBuffer;

impl SlidingWindowMapBuffer {
    /// The position of `Read`/`Seek`/`BufRead`, relative to the buffer.
    pub fn position(&self) -> u64 {
        self.pos
    }
}

/// Reads from the position, advancing it; never fails at the end (returns 0).
impl Read for SlidingWindowMapBuffer {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.read_at(self.pos.min(self.len), out)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Hands out the mapped bytes themselves: `fill_buf` returns the rest of the
/// current window, with no copy — or, where the manager's
/// [`ReadPolicy`](crate::ReadPolicy) copies instead of mapping, the next
/// 64 KiB read with `pread`.
impl BufRead for SlidingWindowMapBuffer {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos >= self.len {
            return Ok(&[]);
        }
        Ok(self.chunk_for(self.pos, crate::copy::CHUNK)?)
    }

    /// Advances the position by `amt`, as [`std::io::Cursor`] does: past
    /// the end too (reads then return nothing).
    fn consume(&mut self, amt: usize) {
        self.pos = self.pos.saturating_add(amt as u64);
    }
}

/// Seeking past the end is allowed (reads then return 0), before the start is
/// an error.
impl Seek for SlidingWindowMapBuffer {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match target {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "cannot seek to {to:?} from {} in a buffer of {} bytes",
                    self.pos, self.len
                ),
            )),
        }
    }
}
