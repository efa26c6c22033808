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

/// A file's identity: device and inode. A path renamed over, or a descriptor
/// number reused, shows up as another identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FileId {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
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

/// `fstat` of an open descriptor.
pub(crate) fn fstat(fd: BorrowedFd<'_>) -> io::Result<FileInfo> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `fd` is open for the lifetime of the borrow and `st` is valid
    // for writes of one `stat`.
    if unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstat returned 0, so it filled `st`.
    let st = unsafe { st.assume_init() };
    let kind = match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => FileKind::Regular,
        libc::S_IFDIR => FileKind::Directory,
        libc::S_IFIFO => FileKind::Other("a FIFO"),
        libc::S_IFCHR => FileKind::Other("a character device"),
        libc::S_IFBLK => FileKind::Other("a block device"),
        libc::S_IFSOCK => FileKind::Other("a socket"),
        _ => FileKind::Other("not a regular file"),
    };
    Ok(FileInfo {
        size: u64::try_from(st.st_size).unwrap_or(0),
        #[allow(clippy::unnecessary_cast)] // dev_t and ino_t differ by platform
        id: FileId {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
        },
        kind,
    })
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
