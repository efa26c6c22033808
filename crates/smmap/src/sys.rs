//! Everything the engine asks of the operating system, in one place: the
//! allocation granularity, opening a file without blocking, `fstat` on a
//! descriptor, whether a borrowed descriptor is open, and the kernel's limit
//! on the number of mappings.
//!
//! A mapping must start at a multiple of the allocation granularity (the page
//! size on POSIX systems). It is read once, at run time, from `sysconf`.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::LazyLock;

/// The granularity a mapping's file offset must be aligned to, in bytes.
///
/// Read from the operating system the first time it is used (the page size on
/// Linux and macOS, typically 4096 or 16384).
///
/// ```
/// assert!(smmap::ALLOCATIONGRANULARITY.is_power_of_two());
/// ```
pub static ALLOCATIONGRANULARITY: LazyLock<u64> = LazyLock::new(read_granularity);

fn read_granularity() -> u64 {
    // SAFETY: sysconf has no preconditions; it only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    // A system that cannot tell its page size still maps at 4 KiB boundaries.
    u64::try_from(page)
        .ok()
        .filter(|p| p.is_power_of_two())
        .unwrap_or(4096)
}

/// The bytes a mapping of `len` bytes really occupies: whole pages.
pub(crate) fn page_cost(len: u64) -> u64 {
    align_to_mmap(len, true)
}

/// Aligns `num` to a multiple of [`ALLOCATIONGRANULARITY`]: down, or up when
/// `round_up` is true and `num` is not aligned already.
///
/// Rounding up saturates at the largest aligned `u64` instead of overflowing.
///
/// ```
/// let g = *smmap::ALLOCATIONGRANULARITY;
/// assert_eq!(smmap::align_to_mmap(1, false), 0);
/// assert_eq!(smmap::align_to_mmap(1, true), g);
/// assert_eq!(smmap::align_to_mmap(g, true), g);
/// ```
pub fn align_to_mmap(num: u64, round_up: bool) -> u64 {
    let g = *ALLOCATIONGRANULARITY;
    let down = num - num % g;
    if round_up && down != num {
        down.checked_add(g).unwrap_or(down)
    } else {
        down
    }
}

/// True on a 64-bit system, where the defaults allow much larger windows and
/// memory limits than on a 32-bit one.
pub fn is_64_bit() -> bool {
    cfg!(target_pointer_width = "64")
}

/// What `fstat` says of an open file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileInfo {
    pub(crate) size: u64,
    pub(crate) id: FileId,
    pub(crate) kind: FileKind,
}

/// A file's identity: device, inode and, where the file system records it,
/// birth time. A path renamed over or replaced, or a descriptor number
/// reused, shows up as another identity — even when a freed inode number
/// is given to a new file (the birth time differs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FileId {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    /// Seconds and nanoseconds; `(0, 0)` where unknown.
    pub(crate) born: (i64, u32),
}

/// The kinds of file the engine tells apart in its errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileKind {
    Regular,
    Directory,
    Other(&'static str),
}

/// Opens `path` read-only without ever blocking: a FIFO or a device behind
/// the path returns at once (and is refused by the caller after `fstat`).
/// The descriptor is closed on exec.
pub(crate) fn open_nonblocking(path: &Path) -> io::Result<File> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "the path contains a NUL byte"))?;
    loop {
        // SAFETY: `c` is a NUL-terminated string that lives across the call;
        // open has no other preconditions.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY,
            )
        };
        if fd >= 0 {
            // SAFETY: open just returned this descriptor; nothing else owns it.
            return Ok(unsafe { File::from_raw_fd(fd) });
        }
        let e = io::Error::last_os_error();
        // O_NONBLOCK makes open return at once; EINTR can only come from a
        // signal arriving during the path lookup itself.
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// `fstat` of an open descriptor (`statx` on Linux, for the birth time).
pub(crate) fn fstat(fd: BorrowedFd<'_>) -> io::Result<FileInfo> {
    stat_at(fd.as_raw_fd(), c"", libc::AT_EMPTY_PATH)
}

/// `stat` of a path, following symbolic links; never opens it.
pub(crate) fn stat_path(path: &Path) -> io::Result<FileInfo> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "the path contains a NUL byte"))?;
    stat_at(libc::AT_FDCWD, &c, 0)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn stat_at(dirfd: RawFd, path: &std::ffi::CStr, flags: i32) -> io::Result<FileInfo> {
    let mut st = std::mem::MaybeUninit::<libc::statx>::uninit();
    let mask = libc::STATX_BASIC_STATS | libc::STATX_BTIME;
    // SAFETY: `path` is NUL-terminated and lives across the call, `dirfd`
    // is AT_FDCWD or an open descriptor (with AT_EMPTY_PATH), and `st` is
    // valid for writes of one `statx`.
    if unsafe { libc::statx(dirfd, path.as_ptr(), flags, mask, st.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statx returned 0, so it filled `st`.
    let st = unsafe { st.assume_init() };
    let born = if st.stx_mask & libc::STATX_BTIME != 0 {
        (st.stx_btime.tv_sec, st.stx_btime.tv_nsec)
    } else {
        (0, 0)
    };
    Ok(FileInfo {
        size: st.stx_size,
        id: FileId {
            dev: (u64::from(st.stx_dev_major) << 32) | u64::from(st.stx_dev_minor),
            ino: st.stx_ino,
            born,
        },
        kind: kind_of(u32::from(st.stx_mode)),
    })
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn stat_at(dirfd: RawFd, path: &std::ffi::CStr, flags: i32) -> io::Result<FileInfo> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: as for statx: a NUL-terminated path, AT_FDCWD or an open
    // descriptor (with AT_EMPTY_PATH and an empty path), a valid buffer.
    let r = if flags & libc::AT_EMPTY_PATH != 0 {
        unsafe { libc::fstat(dirfd, st.as_mut_ptr()) }
    } else {
        unsafe { libc::stat(path.as_ptr(), st.as_mut_ptr()) }
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the call returned 0, so it filled `st`.
    let st = unsafe { st.assume_init() };
    #[allow(clippy::unnecessary_cast)] // dev_t, ino_t and mode_t differ by platform
    Ok(FileInfo {
        size: u64::try_from(st.st_size).unwrap_or(0),
        id: FileId {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            born: (0, 0),
        },
        kind: kind_of(st.st_mode as u32),
    })
}

#[allow(clippy::unnecessary_cast)] // mode_t is u32 on Linux, u16 on macOS
fn kind_of(mode: u32) -> FileKind {
    match mode & libc::S_IFMT as u32 {
        m if m == libc::S_IFREG as u32 => FileKind::Regular,
        m if m == libc::S_IFDIR as u32 => FileKind::Directory,
        m if m == libc::S_IFIFO as u32 => FileKind::Other("a FIFO"),
        m if m == libc::S_IFCHR as u32 => FileKind::Other("a character device"),
        m if m == libc::S_IFBLK as u32 => FileKind::Other("a block device"),
        m if m == libc::S_IFSOCK as u32 => FileKind::Other("a socket"),
        _ => FileKind::Other("not a regular file"),
    }
}

/// True if `fd` is an open descriptor of this process (any integer may be
/// asked about).
pub(crate) fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only queries the descriptor table; any integer is an
    // acceptable argument.
    fd >= 0 && unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1
}

/// The kernel's limit on the number of mappings of one process
/// (`vm.max_map_count` on Linux), if it has one we can read.
pub(crate) fn max_map_count() -> Option<usize> {
    if cfg!(target_os = "linux") {
        std::fs::read_to_string("/proc/sys/vm/max_map_count")
            .ok()?
            .trim()
            .parse()
            .ok()
    } else {
        None
    }
}

/// The default `max_open_handles`: half the kernel's map limit, leaving the
/// other half to the rest of the process (allocators, the interpreter, other
/// libraries, thread stacks), or unlimited where the kernel states none.
pub(crate) fn default_max_open_handles() -> usize {
    static DEFAULT: LazyLock<usize> =
        LazyLock::new(|| max_map_count().map_or(usize::MAX, |n| (n / 2).max(1)));
    *DEFAULT
}

/// The default number of descriptors a manager keeps open: an eighth of
/// the process's soft `RLIMIT_NOFILE` (1024 on most systems, so 128), at
/// least 8 and at most 1024, leaving the rest to the program.
pub(crate) fn default_max_open_files() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the valid struct we pass.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX)
    } else {
        1024
    };
    (soft / 8).clamp(8, 1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn granularity_is_a_power_of_two() {
        assert!(ALLOCATIONGRANULARITY.is_power_of_two());
        assert!(*ALLOCATIONGRANULARITY >= 4096);
    }

    #[test]
    fn alignment_edges() {
        let g = *ALLOCATIONGRANULARITY;
        assert_eq!(align_to_mmap(0, false), 0);
        assert_eq!(align_to_mmap(0, true), 0);
        assert_eq!(align_to_mmap(g - 1, false), 0);
        assert_eq!(align_to_mmap(g - 1, true), g);
        assert_eq!(align_to_mmap(g + 1, true), 2 * g);
        assert_eq!(align_to_mmap(3 * g, false), 3 * g);
        assert_eq!(align_to_mmap(u64::MAX, false), u64::MAX - u64::MAX % g);
        assert_eq!(align_to_mmap(u64::MAX, true), u64::MAX - u64::MAX % g);
        assert_eq!(page_cost(10), g);
    }

    #[test]
    fn pointer_width() {
        assert_eq!(is_64_bit(), std::mem::size_of::<usize>() == 8);
    }

    #[test]
    fn fstat_tells_kinds_and_identity() {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), b"hello").unwrap();
        let opened = open_nonblocking(f.path()).unwrap();
        let info = fstat(opened.as_fd()).unwrap();
        assert_eq!((info.size, info.kind), (5, FileKind::Regular));
        let again = fstat(f.as_file().as_fd()).unwrap();
        assert_eq!(info.id, again.id);
        let dir = open_nonblocking(Path::new("/")).unwrap();
        assert_eq!(fstat(dir.as_fd()).unwrap().kind, FileKind::Directory);
        let dev = open_nonblocking(Path::new("/dev/null")).unwrap();
        assert_eq!(
            fstat(dev.as_fd()).unwrap().kind,
            FileKind::Other("a character device")
        );
        assert!(open_nonblocking(Path::new("a\0b")).is_err());
        assert!(!fd_is_open(-1));
    }

    #[test]
    fn a_reused_inode_number_is_another_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"one").unwrap();
        let first = stat_path(&p).unwrap();
        assert_eq!(
            first.id,
            fstat(open_nonblocking(&p).unwrap().as_fd()).unwrap().id
        );
        // Remove and create until the file system hands the number out
        // again (ext4 usually does at once), then compare.
        let mut again = first;
        for _ in 0..50 {
            std::fs::remove_file(&p).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(2));
            std::fs::write(&p, b"two").unwrap();
            again = stat_path(&p).unwrap();
            if again.id.ino == first.id.ino {
                break;
            }
        }
        if again.id.ino != first.id.ino || first.id.born != (0, 0) {
            assert_ne!(again.id, first.id, "another file, another identity");
        }
    }

    #[test]
    fn a_fifo_opens_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: `c` is a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let f = open_nonblocking(&fifo).unwrap();
        assert_eq!(fstat(f.as_fd()).unwrap().kind, FileKind::Other("a FIFO"));
    }

    #[test]
    fn the_default_handle_limit_leaves_room() {
        let d = default_max_open_handles();
        match max_map_count() {
            Some(n) => assert!(d <= n / 2 && d >= 1),
            None => assert_eq!(d, usize::MAX),
        }
    }
}
