//! [`Error`]: every way the engine can fail, each naming the file and, where
//! one is involved, the offset.

use std::io;

use crate::source::PathOrFd;
use crate::sys;

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, with the file and offset it went wrong at.
///
/// Errors caused by the operating system carry its [`io::Error`]
/// ([`io_error`](Self::io_error), [`raw_os_error`](Self::raw_os_error)), so
/// that callers can tell a missing file from a full address space. The
/// message already includes the operating system's reason, so it is not
/// also returned by [`std::error::Error::source`] (a chain would say it
/// twice).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be opened to map it.
    #[error("cannot open {file}: {reason}")]
    Open {
        /// The file.
        file: PathOrFd,
        /// The operating system's reason.
        reason: io::Error,
    },
    /// The file's size could not be read (missing file, closed descriptor).
    #[error("cannot stat {file}: {reason}")]
    Stat {
        /// The file.
        file: PathOrFd,
        /// The operating system's reason.
        reason: io::Error,
    },
    /// The path names a directory.
    #[error("cannot map {file}: it is a directory")]
    IsADirectory {
        /// The directory.
        file: PathOrFd,
    },
    /// The path names something that cannot be mapped as a file (a FIFO, a
    /// device, a socket).
    #[error("cannot map {file}: it is {kind}, not a regular file")]
    NotRegularFile {
        /// The file.
        file: PathOrFd,
        /// What it is instead.
        kind: &'static str,
    },
    /// The operating system refused the mapping, even after every unused
    /// window was unmapped and the mapping tried once more.
    #[error("cannot map {len} bytes at offset {offset} of {file}: {reason}")]
    Map {
        /// The file.
        file: PathOrFd,
        /// Offset of the window that was to be mapped.
        offset: u64,
        /// Length of the window that was to be mapped.
        len: u64,
        /// The operating system's reason.
        reason: io::Error,
    },
    /// A copy read (`pread`) through the file's descriptor failed.
    #[error("cannot read {len} bytes at offset {offset} of {file}: {reason}")]
    Read {
        /// The file.
        file: PathOrFd,
        /// Offset of the read.
        offset: u64,
        /// Bytes still to read.
        len: u64,
        /// The operating system's reason.
        reason: io::Error,
    },
    /// Every one of `limit` mapped windows is in use, so no new window can be
    /// mapped without exceeding `max_open_handles`.
    #[error(
        "cannot map offset {offset} of {file}: all {limit} windows allowed by max_open_handles are in use"
    )]
    HandleLimit {
        /// The file.
        file: PathOrFd,
        /// The offset that needed a new window.
        offset: u64,
        /// The configured limit.
        limit: usize,
    },
    /// The window holding `offset` is already used by `limit` cursors, the
    /// most one window counts (16,777,214): a bound only cursors leaked
    /// with [`std::mem::forget`] reach. Dropping a cursor of the window
    /// makes room.
    #[error(
        "cannot use offset {offset} of {file}: its window is used by {limit} cursors, the most one window counts"
    )]
    TooManyCursors {
        /// The file.
        file: PathOrFd,
        /// The offset asked for.
        offset: u64,
        /// The most cursors one window counts.
        limit: usize,
    },
    /// The file is shorter than when its size was read: another process
    /// truncated it. Reading the lost pages would raise SIGBUS, so the window
    /// is not mapped.
    #[error("{file} shrank from {expected} to {actual} bytes since its size was read; offset {offset} is gone")]
    FileShrunk {
        /// The file.
        file: PathOrFd,
        /// The first offset, of those that were to be mapped or read, that
        /// the file no longer has.
        offset: u64,
        /// The size read when the file was first used.
        expected: u64,
        /// The size now.
        actual: u64,
    },
    /// The file is no longer the one the manager pinned when it first met
    /// it: the path was renamed over or replaced, or the descriptor number
    /// was closed and now names another file. The manager never reads
    /// another file's bytes through an old entry. Once this error has been
    /// returned, a new cursor made by the same name meets the new file (the
    /// cursors made before keep the old one); so does any new cursor once
    /// every cursor and region of the old entry is gone.
    #[error("{file} is no longer the file it was when first opened (replaced, or the descriptor reused); its windows are not mapped from another file")]
    Replaced {
        /// The file, as the caller named it.
        file: PathOrFd,
    },
    /// A copy of `len` bytes was asked for that does not fit in memory.
    #[error("cannot copy {len} bytes at offset {offset} of {file}: not enough memory")]
    TooLarge {
        /// The file.
        file: PathOrFd,
        /// Absolute offset of the copy.
        offset: u64,
        /// Its length.
        len: u64,
    },
    /// An offset or range lies past the end of the file, or of a buffer's
    /// view of it.
    ///
    /// ```
    /// # fn main() -> smmap::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("f");
    /// # std::fs::write(&path, vec![7u8; 2000]).unwrap();
    /// let m = smmap::SlidingWindowMapManager::new();
    /// let mut buf = smmap::SlidingWindowMapBuffer::new(m.make_cursor(&path)?, 1000, 10)?;
    /// let e = buf.get(12).unwrap_err();
    /// assert!(matches!(
    ///     e,
    ///     smmap::Error::OutOfRange { offset: 1012, view: Some(1000), size: 10, .. }
    /// ));
    /// assert!(e.to_string().ends_with("(a view of 10 bytes at offset 1000)"));
    /// # Ok(())
    /// # }
    /// ```
    #[error("offset {offset} is out of range for {file} ({})", Extent(*view, *size))]
    OutOfRange {
        /// The file.
        file: PathOrFd,
        /// The first offset asked for that lies out of range (absolute, in
        /// the file).
        offset: u64,
        /// Where the buffer's view starts in the file, for a buffer's
        /// range; `None` where the range is the whole file.
        view: Option<u64>,
        /// The size of the file, or the length of the buffer's view.
        size: u64,
    },
    /// A region offset that is not a multiple of the allocation granularity.
    #[error(
        "offset {offset} of {file} is not a multiple of the allocation granularity {granularity}"
    )]
    Unaligned {
        /// The file.
        file: PathOrFd,
        /// The offset.
        offset: u64,
        /// [`ALLOCATIONGRANULARITY`](crate::ALLOCATIONGRANULARITY).
        granularity: u64,
    },
    /// The cursor or buffer is not associated with a file.
    #[error("the cursor is not associated with a file")]
    NotAssociated,
}

impl Error {
    /// The operating system's error number, when the operating system refused.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Open { reason, .. }
            | Error::Stat { reason, .. }
            | Error::Map { reason, .. }
            | Error::Read { reason, .. } => reason.raw_os_error(),
            Error::IsADirectory { .. } => Some(sys::IS_A_DIRECTORY),
            Error::Replaced { .. } => sys::STALE,
            Error::TooLarge { .. } => Some(sys::NO_MEMORY),
            _ => None,
        }
    }

    /// The operating system's error, when the operating system refused.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            Error::Open { reason, .. }
            | Error::Stat { reason, .. }
            | Error::Map { reason, .. }
            | Error::Read { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// The file the error is about, if any.
    pub fn file(&self) -> Option<&PathOrFd> {
        match self {
            Error::Open { file, .. }
            | Error::Stat { file, .. }
            | Error::IsADirectory { file }
            | Error::NotRegularFile { file, .. }
            | Error::Map { file, .. }
            | Error::Read { file, .. }
            | Error::HandleLimit { file, .. }
            | Error::TooManyCursors { file, .. }
            | Error::FileShrunk { file, .. }
            | Error::Replaced { file }
            | Error::TooLarge { file, .. }
            | Error::OutOfRange { file, .. }
            | Error::Unaligned { file, .. } => Some(file),
            Error::NotAssociated => None,
        }
    }

    /// Whether a mapping was refused for lack of memory or address space, or
    /// because the kernel's map count is used up (Linux says `ENOMEM` for
    /// both): the refusals that unmapping unused windows can cure. Failing
    /// to open a file (`EMFILE`, `ENFILE`) is not one: a mapping holds no
    /// descriptor on Unix (the manager closes the ones it keeps instead),
    /// and Windows's handle table is not what runs out.
    pub(crate) fn is_exhaustion(&self) -> bool {
        matches!(self, Error::Map { reason, .. }
            if reason.raw_os_error().is_some_and(sys::is_out_of_memory))
    }
}

/// The range an offset fell out of, in words: "2000 bytes", or "a view of
/// 10 bytes at offset 1000".
struct Extent(Option<u64>, u64);

impl std::fmt::Display for Extent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bytes = if self.1 == 1 { "byte" } else { "bytes" };
        match self.0 {
            None => write!(f, "{} {bytes}", self.1),
            Some(start) => write!(f, "a view of {} {bytes} at offset {start}", self.1),
        }
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match &e {
            Error::Open { reason, .. }
            | Error::Stat { reason, .. }
            | Error::Map { reason, .. }
            | Error::Read { reason, .. } => reason.kind(),
            Error::IsADirectory { .. } => io::ErrorKind::IsADirectory,
            Error::OutOfRange { .. } | Error::FileShrunk { .. } => io::ErrorKind::UnexpectedEof,
            Error::NotRegularFile { .. } | Error::Unaligned { .. } | Error::NotAssociated => {
                io::ErrorKind::InvalidInput
            }
            Error::HandleLimit { .. } | Error::TooManyCursors { .. } => io::ErrorKind::ResourceBusy,
            Error::Replaced { .. } => io::ErrorKind::StaleNetworkFileHandle,
            Error::TooLarge { .. } => io::ErrorKind::OutOfMemory,
            #[allow(unreachable_patterns)]
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_file_and_offset() {
        let e = Error::OutOfRange {
            file: PathOrFd::from("/data/pack"),
            offset: 99,
            view: None,
            size: 10,
        };
        assert_eq!(
            e.to_string(),
            "offset 99 is out of range for /data/pack (10 bytes)"
        );
        let e = Error::OutOfRange {
            file: PathOrFd::from("/data/pack"),
            offset: 1001,
            view: Some(1000),
            size: 1,
        };
        assert_eq!(
            e.to_string(),
            "offset 1001 is out of range for /data/pack (a view of 1 byte at offset 1000)"
        );
        let e = Error::Map {
            file: PathOrFd::from("/data/pack"),
            offset: 4096,
            len: 8192,
            reason: io::Error::from_raw_os_error(sys::NO_MEMORY),
        };
        assert!(e.to_string().contains("/data/pack"));
        assert!(e.to_string().contains("offset 4096"));
        assert!(e.is_exhaustion());
        assert_eq!(e.raw_os_error(), Some(sys::NO_MEMORY));
        let io: io::Error = e.into();
        assert_eq!(io.kind(), io::ErrorKind::OutOfMemory);
    }

    #[test]
    fn io_error_kinds() {
        let io: io::Error = Error::NotAssociated.into();
        assert_eq!(io.kind(), io::ErrorKind::InvalidInput);
        let io: io::Error = Error::IsADirectory {
            file: PathOrFd::from("/"),
        }
        .into();
        assert_eq!(io.kind(), io::ErrorKind::IsADirectory);
        assert!(Error::NotAssociated.file().is_none());
    }
}
