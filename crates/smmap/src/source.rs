//! [`PathOrFd`]: what a file is known by, and the two system calls the
//! manager makes on it (stat, and opening it to map).

use std::fmt;
use std::fs::File;
use std::os::fd::{FromRawFd, RawFd};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A file named by path, or by a file descriptor the caller owns.
///
/// A path is opened only to map a window and closed right after (the mapping
/// stays valid). A descriptor is borrowed: the manager never closes it, and it
/// must stay open while new windows of it are mapped.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PathOrFd {
    /// A file system path.
    Path(PathBuf),
    /// An open file descriptor, borrowed from the caller.
    Fd(RawFd),
}

impl PathOrFd {
    /// The path, if this is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            PathOrFd::Path(p) => Some(p),
            PathOrFd::Fd(_) => None,
        }
    }

    /// The file descriptor, if this is one.
    pub fn fd(&self) -> Option<RawFd> {
        match self {
            PathOrFd::Path(_) => None,
            PathOrFd::Fd(fd) => Some(*fd),
        }
    }

    /// Reads the file's size, refusing what is not a regular file.
    pub(crate) fn file_size(&self) -> Result<u64> {
        self.stat().map(|(size, _)| size)
    }

    /// Reads the file's size and identity (device and inode), refusing what
    /// is not a regular file.
    pub(crate) fn stat(&self) -> Result<(u64, (u64, u64))> {
        use std::os::unix::fs::MetadataExt;
        let meta = match self {
            PathOrFd::Path(p) => std::fs::metadata(p),
            PathOrFd::Fd(fd) => self.with_fd(*fd, |f| f.metadata()),
        }
        .map_err(|reason| Error::Stat {
            file: self.clone(),
            reason,
        })?;
        let kind = meta.file_type();
        if kind.is_dir() {
            return Err(Error::IsADirectory { file: self.clone() });
        }
        if !kind.is_file() {
            return Err(Error::NotRegularFile {
                file: self.clone(),
                kind: describe(&kind),
            });
        }
        Ok((meta.len(), (meta.dev(), meta.ino())))
    }

    /// Runs `f` with a descriptor of the file: the caller's own, or one opened
    /// read-only for the call and closed when it returns.
    pub(crate) fn with_open<T>(
        &self,
        f: impl FnOnce(&File) -> std::io::Result<T>,
    ) -> Result<std::io::Result<T>> {
        match self {
            PathOrFd::Path(p) => {
                let file = File::open(p).map_err(|reason| Error::Open {
                    file: self.clone(),
                    reason,
                })?;
                Ok(f(&file))
            }
            PathOrFd::Fd(fd) => Ok(self.with_fd(*fd, f)),
        }
    }

    fn with_fd<T>(
        &self,
        fd: RawFd,
        f: impl FnOnce(&File) -> std::io::Result<T>,
    ) -> std::io::Result<T> {
        // The descriptor is the caller's: check it is open before wrapping it.
        // SAFETY: F_GETFD only queries the descriptor table; any integer is
        // an acceptable argument.
        if fd < 0 || unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            return Err(std::io::Error::from_raw_os_error(libc::EBADF));
        }
        // SAFETY: the descriptor was just checked to be open, and the caller
        // promised (see `Manager::make_cursor_fd`) to keep it open while the
        // manager maps it. The `File` lives in a ManuallyDrop, so the
        // caller's descriptor is never closed by us.
        let file = std::mem::ManuallyDrop::new(unsafe { File::from_raw_fd(fd) });
        f(&file)
    }
}

fn describe(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

impl fmt::Display for PathOrFd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathOrFd::Path(p) => write!(f, "{}", p.display()),
            PathOrFd::Fd(fd) => write!(f, "file descriptor {fd}"),
        }
    }
}

impl From<PathBuf> for PathOrFd {
    fn from(p: PathBuf) -> Self {
        PathOrFd::Path(p)
    }
}

impl From<&Path> for PathOrFd {
    fn from(p: &Path) -> Self {
        PathOrFd::Path(p.to_path_buf())
    }
}

impl From<&str> for PathOrFd {
    fn from(p: &str) -> Self {
        PathOrFd::Path(PathBuf::from(p))
    }
}

impl From<String> for PathOrFd {
    fn from(p: String) -> Self {
        PathOrFd::Path(PathBuf::from(p))
    }
}

impl From<&PathBuf> for PathOrFd {
    fn from(p: &PathBuf) -> Self {
        PathOrFd::Path(p.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;

    #[test]
    fn size_of_a_regular_file() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"hello").unwrap();
        assert_eq!(PathOrFd::from(f.path()).file_size().unwrap(), 5);
        let fd = PathOrFd::Fd(f.as_file().as_raw_fd());
        assert_eq!(fd.file_size().unwrap(), 5);
        // The borrowed descriptor is still open afterwards.
        assert_eq!(fd.file_size().unwrap(), 5);
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let e = PathOrFd::from(missing.as_path()).file_size().unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
        let e = PathOrFd::from(dir.path()).file_size().unwrap_err();
        assert!(matches!(e, Error::IsADirectory { .. }), "{e}");
        let e = PathOrFd::from("/dev/zero").file_size().unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
        let e = PathOrFd::Fd(-1).file_size().unwrap_err();
        assert!(e.to_string().contains("file descriptor -1"), "{e}");
        assert_eq!(e.raw_os_error(), Some(libc::EBADF));
    }
}
