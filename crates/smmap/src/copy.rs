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

/// Bytes `[start, start + len)` of a cursor's file, copied.
///
/// The scratch `bytes` is zeroed once, when it is first made, then
/// overwritten by each `pread`: a copy read never pays for zeroing. An
/// emptied copy hands its scratch to a small pool of the thread's, where
/// the next copy of any cursor on that thread takes it: an idle cursor holds
/// no scratch, and a thread reading through many cursors in turn copies into
/// the same few, cache-warm bytes.
#[derive(Default)]
pub(crate) struct Copy {
    bytes: Vec<u8>,
    len: usize,
    start: u64,
}

impl Copy {
    /// True if the copy holds absolute offset `abs`.
    #[inline]
    pub(crate) fn holds(&self, abs: u64) -> bool {
        abs.wrapping_sub(self.start) < self.len as u64
    }

    /// The bytes from `abs` to the end of the copy, if it holds `abs`.
    #[inline]
    pub(crate) fn tail(&self, abs: u64) -> Option<&[u8]> {
        self.holds(abs)
            .then(|| &self.bytes[(abs - self.start) as usize..self.len])
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
        if self.bytes.len() < n {
            let old = std::mem::replace(&mut self.bytes, spare::take());
            spare::give(old);
            if self.bytes.len() < n {
                self.bytes.resize(n, 0);
            }
        }
        self.len = 0;
        pread_exact(file, desc, &mut self.bytes[..n], start)?;
        self.start = start;
        self.len = n;
        Ok(())
    }

    /// Empties the copy, handing its scratch to the thread's pool.
    pub(crate) fn clear(&mut self) {
        self.len = 0;
        spare::give(std::mem::take(&mut self.bytes));
    }
}

/// The thread's pool of spare scratch for [`Copy`]: a few buffers of at
/// most [`CHUNK`] bytes each (larger ones are freed).
mod spare {
    use std::cell::RefCell;

    use super::CHUNK;

    /// Buffers kept per thread.
    const KEPT: usize = 4;

    thread_local! {
        static SPARE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    }

    /// A spare buffer (empty if there is none).
    pub(super) fn take() -> Vec<u8> {
        SPARE
            .try_with(|s| s.borrow_mut().pop())
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// Keeps `bytes` for a later [`take`] if it is small and there is room.
    pub(super) fn give(bytes: Vec<u8>) {
        if bytes.is_empty() || bytes.len() > CHUNK as usize {
            return;
        }
        // During the thread's exit the pool may be gone: then drop it.
        let _ = SPARE.try_with(|s| {
            let mut s = s.borrow_mut();
            if s.len() < KEPT {
                s.push(bytes);
            }
        });
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
    fn an_emptied_copy_holds_nothing_and_keeps_little_scratch() {
        let f = tempfile::NamedTempFile::new().unwrap();
        let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(f.path(), &bytes).unwrap();
        let pinned = PinnedFile::stat(PathOrFd::from(f.path())).unwrap();
        let (desc, _) = pinned.open().unwrap();
        let mut c = Copy::default();
        c.fill(&pinned, &desc, 0, 4096).unwrap();
        let scratch = c.bytes.as_ptr();
        c.clear();
        assert!(!c.holds(0) && c.tail(0).is_none() && c.bytes.is_empty());
        // Another cursor's copy on this thread takes the same scratch.
        let mut other = Copy::default();
        other.fill(&pinned, &desc, 8192, 4096).unwrap();
        assert_eq!(other.bytes.as_ptr(), scratch, "the scratch is reused");
        assert_eq!(other.tail(8192).unwrap(), &bytes[8192..12288]);
        // A shorter copy after a longer one holds only its own bytes.
        c.fill(&pinned, &desc, 100, 10).unwrap();
        assert_eq!(c.tail(100).unwrap(), &bytes[100..110]);
        assert!(!c.holds(110));
        c.fill(&pinned, &desc, 0, COPY_MAX).unwrap();
        assert_eq!(
            c.tail(COPY_MAX - 1).unwrap(),
            &bytes[COPY_MAX as usize - 1..COPY_MAX as usize]
        );
        c.clear();
        assert!(c.bytes.is_empty());
        assert!(
            spare::take().len() <= CHUNK as usize,
            "large scratch is freed"
        );
        // A failed fill leaves the copy empty.
        assert!(c.fill(&pinned, &desc, 299_000, 4096).is_err());
        assert!(!c.holds(299_000));
    }

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
