//! [`PathOrFd`]: what a caller names a file by; and [`PinnedFile`], what a
//! manager's file entry knows of it: the file's identity when first met, so
//! that it is never read through another file later.

use std::fmt;
use std::fs::File;
#[cfg(unix)]
use std::os::fd::RawFd;
#[cfg(windows)]
use std::os::windows::io::RawHandle;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::sys::{self, FileId, FileInfo, FileKind};

/// A file named by path, or by a file descriptor (on Windows, a handle) the
/// caller owns.
///
/// A path is opened when a window of it is first mapped or read, and the
/// manager keeps that descriptor (see
/// [`ManagerBuilder::max_open_files`](crate::ManagerBuilder::max_open_files)).
/// A descriptor or handle is borrowed: the manager never closes it (it
/// keeps a descriptor of its own: a duplicate on Unix, the file opened
/// again from the handle on Windows), and it must stay open while the
/// manager may need another.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PathOrFd {
    /// A file system path.
    Path(PathBuf),
    /// An open file descriptor, borrowed from the caller.
    #[cfg(unix)]
    Fd(RawFd),
    /// An open file handle, borrowed from the caller.
    #[cfg(windows)]
    Handle(RawHandle),
}

// SAFETY: a `RawHandle` is a value naming an entry of the process's handle
// table, as valid in one thread as in another (which is why the standard
// library's `BorrowedHandle` and `OwnedHandle` are `Send + Sync`); it is
// typed as a pointer but never dereferenced. `PathOrFd` only stores,
// compares and prints it, and lends it to system calls, which take it from
// any thread.
#[cfg(windows)]
unsafe impl Send for PathOrFd {}
// SAFETY: as for `Send`: nothing reachable through a shared `PathOrFd`
// can be changed, and the handle value is never dereferenced.
#[cfg(windows)]
unsafe impl Sync for PathOrFd {}

impl PathOrFd {
    /// What errors name when no file is known: a descriptor (handle) that
    /// is never open.
    #[cfg(unix)]
    pub(crate) const UNNAMED: PathOrFd = PathOrFd::Fd(-1);
    #[cfg(windows)]
    pub(crate) const UNNAMED: PathOrFd = PathOrFd::Handle(std::ptr::null_mut());

    /// The path, if this is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            PathOrFd::Path(p) => Some(p),
            _ => None,
        }
    }

    /// The file descriptor, if this is one.
    #[cfg(unix)]
    pub fn fd(&self) -> Option<RawFd> {
        match self {
            PathOrFd::Path(_) => None,
            PathOrFd::Fd(fd) => Some(*fd),
        }
    }

    /// The file handle, if this is one.
    #[cfg(windows)]
    pub fn handle(&self) -> Option<RawHandle> {
        match self {
            PathOrFd::Path(_) => None,
            PathOrFd::Handle(h) => Some(*h),
        }
    }

    /// The path, or the descriptor (handle) the caller lent.
    fn name(&self) -> Name<'_> {
        match self {
            PathOrFd::Path(p) => Name::Path(p),
            #[cfg(unix)]
            PathOrFd::Fd(fd) => Name::Lent(*fd),
            #[cfg(windows)]
            PathOrFd::Handle(h) => Name::Lent(*h),
        }
    }

    /// Reads the file's size, refusing what is not a regular file.
    #[cfg(test)]
    pub(crate) fn file_size(&self) -> Result<u64> {
        PinnedFile::stat(self.clone()).map(|p| p.size)
    }
}

/// A [`PathOrFd`] seen the same way on every platform.
enum Name<'a> {
    Path(&'a Path),
    Lent(sys::RawDesc),
}

/// A manager entry's file: the name the caller gave (for messages and
/// `path()`), the absolute path it was resolved to when the entry was made
/// (so that a later `chdir` cannot point it elsewhere), and the identity and
/// size seen then.
///
/// Every descriptor the engine reads or maps through is checked against that
/// identity first: a path renamed over or replaced, or a descriptor number
/// closed and reused for another file, gives [`Error::Replaced`], never the
/// other file's bytes.
#[derive(Debug)]
pub(crate) struct PinnedFile {
    given: PathOrFd,
    resolved: Option<PathBuf>,
    pub(crate) id: FileId,
    pub(crate) size: u64,
}

/// What a manager tells files apart by: the absolute path, or the descriptor
/// (handle) with the identity it referred to (descriptor numbers and handle
/// values are recycled).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum FileKey {
    Path(PathBuf),
    Lent(PathOrFd, FileId),
    /// An entry whose name was found to name another file: still listed
    /// (by its serial number) while it lives, but no longer found by name.
    Retired(u64),
}

impl PinnedFile {
    /// Resolves the name and reads the file's size and identity, refusing
    /// what is not a regular file. On Unix a path is not opened (`stat`
    /// never blocks and needs no read permission); on Windows it is opened
    /// without access rights, to read its volume and file index.
    pub(crate) fn stat(given: PathOrFd) -> Result<Self> {
        let stat_err = |reason| Error::Stat {
            file: given.clone(),
            reason,
        };
        let (resolved, info) = match given.name() {
            Name::Path(p) => {
                let abs = std::path::absolute(p).map_err(stat_err)?;
                let info = sys::stat_path(&abs).map_err(stat_err)?;
                (Some(abs), info)
            }
            Name::Lent(lent) => (None, sys::fstat_lent(lent).map_err(stat_err)?),
        };
        check_kind(&given, info.kind)?;
        Ok(PinnedFile {
            given,
            resolved,
            id: info.id,
            size: info.size,
        })
    }

    /// The name the caller gave.
    pub(crate) fn given(&self) -> &PathOrFd {
        &self.given
    }

    /// The absolute path the name was resolved to, where it is a path.
    pub(crate) fn resolved(&self) -> Option<&Path> {
        self.resolved.as_deref()
    }

    pub(crate) fn key(&self) -> FileKey {
        match (&self.given, &self.resolved) {
            (_, Some(abs)) => FileKey::Path(abs.clone()),
            (PathOrFd::Path(p), None) => FileKey::Path(p.clone()),
            (lent, None) => FileKey::Lent(lent.clone(), self.id),
        }
    }

    /// A descriptor of the pinned file, owned by the engine, with what
    /// `fstat` says of it now: the path opened without blocking, or the
    /// engine's own descriptor of the caller's file (`sys::clone_lent`;
    /// the caller's own is never closed). Reading or mapping through it reads the pinned file even if
    /// its path is renamed over later. Errors: it cannot be opened, it is
    /// not a regular file, or it is another file than the one pinned
    /// ([`Error::Replaced`]).
    pub(crate) fn open(&self) -> Result<(File, FileInfo)> {
        let open_err = |reason| Error::Open {
            file: self.given.clone(),
            reason,
        };
        let file = match (self.given.name(), &self.resolved) {
            (_, Some(abs)) => sys::open_for_map(abs),
            (Name::Path(p), None) => sys::open_for_map(p),
            (Name::Lent(lent), None) => sys::clone_lent(lent),
        }
        .map_err(open_err)?;
        let info = sys::fstat(&file).map_err(|reason| Error::Stat {
            file: self.given.clone(),
            reason,
        })?;
        check_kind(&self.given, info.kind)?;
        if !info.id.is(&self.id) {
            return Err(Error::Replaced {
                file: self.given.clone(),
            });
        }
        Ok((file, info))
    }
}

impl PinnedFile {
    /// The size now of the file behind `desc`, a descriptor [`Self::open`]
    /// gave: through the cheapest call the system has when the engine
    /// opened the path itself, through `fstat` when `desc` stands for a
    /// descriptor the caller lent (a duplicate, on Unix, shares its file
    /// position).
    pub(crate) fn size_now(&self, desc: &File) -> Result<u64> {
        match self.given.name() {
            Name::Path(_) => sys::private_size(desc),
            Name::Lent(_) => sys::fstat(desc).map(|info| info.size),
        }
        .map_err(|reason| Error::Stat {
            file: self.given.clone(),
            reason,
        })
    }
}

fn check_kind(file: &PathOrFd, kind: FileKind) -> Result<()> {
    match kind {
        FileKind::Regular => Ok(()),
        FileKind::Directory => Err(Error::IsADirectory { file: file.clone() }),
        FileKind::Other(kind) => Err(Error::NotRegularFile {
            file: file.clone(),
            kind,
        }),
    }
}

impl fmt::Display for PathOrFd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathOrFd::Path(p) => write!(f, "{}", p.display()),
            #[cfg(unix)]
            PathOrFd::Fd(fd) => write!(f, "file descriptor {fd}"),
            #[cfg(windows)]
            PathOrFd::Handle(h) => write!(f, "file handle {:p}", *h),
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

    /// The file lent by its descriptor (handle).
    fn lent(f: &File) -> PathOrFd {
        #[cfg(unix)]
        return PathOrFd::Fd(std::os::fd::AsRawFd::as_raw_fd(f));
        #[cfg(windows)]
        return PathOrFd::Handle(std::os::windows::io::AsRawHandle::as_raw_handle(f));
    }

    /// A descriptor (handle) that is not open.
    fn closed() -> PathOrFd {
        #[cfg(unix)]
        return PathOrFd::Fd(-1);
        #[cfg(windows)]
        return PathOrFd::Handle(std::ptr::null_mut());
    }

    #[test]
    fn size_of_a_regular_file() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"hello").unwrap();
        assert_eq!(PathOrFd::from(f.path()).file_size().unwrap(), 5);
        let fd = lent(f.as_file());
        assert_eq!(fd.file_size().unwrap(), 5);
        // The borrowed descriptor is still open afterwards.
        assert_eq!(fd.file_size().unwrap(), 5);
        assert!(fd.path().is_none() && PathOrFd::from("p").path().is_some());
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let e = PathOrFd::from(missing.as_path()).file_size().unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
        let e = PathOrFd::from(dir.path()).file_size().unwrap_err();
        assert!(matches!(e, Error::IsADirectory { .. }), "{e}");
        let device = if cfg!(windows) { "NUL" } else { "/dev/zero" };
        let e = PathOrFd::from(device).file_size().unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
        let e = closed().file_size().unwrap_err();
        let name = if cfg!(windows) {
            "file handle 0x0"
        } else {
            "file descriptor -1"
        };
        assert!(e.to_string().contains(name), "{e}");
        assert_eq!(e.raw_os_error(), Some(sys::BAD_DESCRIPTOR));
    }

    #[test]
    fn a_replaced_path_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pack");
        std::fs::write(&path, b"old").unwrap();
        let pinned = PinnedFile::stat(PathOrFd::from(path.as_path())).unwrap();
        assert!(pinned.open().is_ok());
        let other = dir.path().join("new");
        std::fs::write(&other, b"new!").unwrap();
        std::fs::rename(&other, &path).unwrap();
        let e = pinned.open().expect_err("another file");
        assert!(matches!(e, Error::Replaced { .. }), "{e}");
        assert!(e.to_string().contains("pack"), "{e}");
    }

    #[test]
    fn a_relative_path_is_resolved_once() {
        let pinned = PinnedFile::stat(PathOrFd::from("Cargo.toml")).unwrap();
        assert_eq!(pinned.given(), &PathOrFd::from("Cargo.toml"));
        let FileKey::Path(abs) = pinned.key() else {
            panic!("a path key")
        };
        assert!(abs.is_absolute() && abs.ends_with("Cargo.toml"));
    }
}
