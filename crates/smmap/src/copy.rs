//! Reads that copy instead of mapping: positional reads (`pread`, or
//! `ReadFile` at an offset on Windows) through a file's cached descriptor, and [`Copy`], the bytes a cursor copied last, kept to serve
//! the reads that follow them.

use std::fs::File;

use crate::error::{Error, Result};
use crate::source::PinnedFile;
use crate::sys;

/// The most bytes one copy into a cursor holds.
pub(crate) const COPY_MAX: u64 = 256 * 1024;

/// How many bytes `chunk_at` asks a copy for.
pub(crate) const CHUNK: u64 = 64 * 1024;

/// Bytes `[start, start + bytes.len())` of a cursor's file, copied.
#[derive(Default)]
pub(crate) struct Copy {
    bytes: Vec<u8>,
    start: u64,
}

impl Copy {
    /// True if the copy holds absolute offset `abs`.
    #[inline]
    pub(crate) fn holds(&self, abs: u64) -> bool {
        abs.wrapping_sub(self.start) < self.bytes.len() as u64
    }

    /// The bytes from `abs` to the end of the copy, if it holds `abs`.
    #[inline]
    pub(crate) fn tail(&self, abs: u64) -> Option<&[u8]> {
        self.holds(abs)
            .then(|| &self.bytes[(abs - self.start) as usize..])
    }

    /// Fills the copy with `len` bytes of the file from `start`. On error
    /// the copy is empty.
    pub(crate) fn fill(
        &mut self,
        file: &PinnedFile,
        desc: &File,
        start: u64,
        len: u64,
    ) -> Result<()> {
        let n = usize::try_from(len).expect("a copy is at most COPY_MAX bytes");
        // Reuse the bytes of the last copy (pread overwrites all of them or
        // fails, which empties the copy): no zeroing on every read.
        if self.bytes.len() < n {
            self.bytes.resize(n, 0);
        }
        self.bytes.truncate(n);
        match pread_exact(file, desc, &mut self.bytes, start) {
            Ok(()) => {
                self.start = start;
                Ok(())
            }
            Err(e) => {
                self.bytes.clear();
                Err(e)
            }
        }
    }

    /// Empties the copy (keeping its allocation).
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
    }
}

/// Fills `out` from `offset` of the pinned file through `desc`. A file that
/// ends before `out` is filled shrank since it was pinned:
/// [`Error::FileShrunk`].
pub(crate) fn pread_exact(
    file: &PinnedFile,
    desc: &File,
    out: &mut [u8],
    offset: u64,
) -> Result<()> {
    let mut done = 0;
    while done < out.len() {
        let at = offset + done as u64;
        match sys::read_at(desc, &mut out[done..], at) {
            Ok(0) => {
                return Err(Error::FileShrunk {
                    file: file.given().clone(),
                    offset: at,
                    expected: file.size,
                    actual: desc.metadata().map_or(at, |m| m.len()),
                })
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(reason) => {
                return Err(Error::Read {
                    file: file.given().clone(),
                    offset: at,
                    len: (out.len() - done) as u64,
                    reason,
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PathOrFd;

    #[test]
    fn copies_and_says_when_the_file_shrank() {
        let f = tempfile::NamedTempFile::new().unwrap();
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i % 253) as u8).collect();
        std::fs::write(f.path(), &bytes).unwrap();
        let pinned = PinnedFile::stat(PathOrFd::from(f.path())).unwrap();
        let (desc, _) = pinned.open().unwrap();
        let mut c = Copy::default();
        assert!(!c.holds(0));
        c.fill(&pinned, &desc, 4096, 4096).unwrap();
        assert!(c.holds(4096) && c.holds(8191) && !c.holds(8192) && !c.holds(4095));
        assert_eq!(c.tail(8000).unwrap(), &bytes[8000..8192]);
        std::fs::OpenOptions::new()
            .write(true)
            .open(f.path())
            .unwrap()
            .set_len(5000)
            .unwrap();
        let e = c.fill(&pinned, &desc, 4096, 4096).unwrap_err();
        assert!(
            matches!(
                e,
                Error::FileShrunk {
                    offset: 5000,
                    actual: 5000,
                    ..
                }
            ),
            "{e}"
        );
        assert!(!c.holds(4096), "emptied on error");
        c.clear();
    }
}
