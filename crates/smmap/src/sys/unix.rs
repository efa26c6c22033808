//! The operating system's part on Unix (Linux, macOS, the BSDs): `sysconf`,
//! `open` with `O_NONBLOCK`, `statx` (Linux; `fstatat` where a sandbox
//! refuses it) or `fstat`, `pread`, `madvise`,
//! `vm.max_map_count` and `RLIMIT_NOFILE`.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::Path;

use memmap2::{Advice, Mmap};

use super::{FileId, FileInfo, FileKind};
use crate::AccessHint;

/// What a caller lends a file by: a file descriptor.
pub(crate) type RawDesc = RawFd;

/// `ENOMEM`: out of memory, address space or (on Linux) mappings.
pub(crate) const NO_MEMORY: i32 = libc::ENOMEM;
/// `EISDIR`.
pub(crate) const IS_A_DIRECTORY: i32 = libc::EISDIR;
/// `ESTALE`: what a file replaced under the manager is reported as.
pub(crate) const STALE: Option<i32> = Some(libc::ESTALE);
/// `EBADF`: a lent descriptor that is not open.
pub(crate) const BAD_DESCRIPTOR: i32 = libc::EBADF;

/// True if the mapping was refused for lack of memory, address space or
/// (Linux says `ENOMEM` for this too) of the kernel's map count.
pub(crate) fn is_out_of_memory(code: i32) -> bool {
    code == libc::ENOMEM
}

/// True if opening failed because the process's (`EMFILE`) or the
/// system's (`ENFILE`) descriptor table is full.
pub(crate) fn is_descriptor_table_full(code: i32) -> bool {
    code == libc::EMFILE || code == libc::ENFILE
}

/// The page size, from `sysconf` (0 if the system cannot tell).
pub(crate) fn allocation_granularity() -> u64 {
    // SAFETY: sysconf has no preconditions; it only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(page).unwrap_or(0)
}

/// Opens `path` read-only without ever blocking: a FIFO or a device behind
/// the path returns at once (and is refused by the caller after `fstat`).
/// The descriptor is closed on exec.
pub(crate) fn open_for_map(path: &Path) -> io::Result<File> {
    let c = c_path(path)?;
    // O_NONBLOCK makes open return at once; EINTR can only come from a
    // signal arriving during the path lookup itself.
    retrying(|| {
        // SAFETY: `c` is a NUL-terminated string that lives across the call;
        // open has no other preconditions.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: open just returned this descriptor; nothing else owns it.
        Ok(unsafe { File::from_raw_fd(fd) })
    })
}

/// `call`, made again for as long as it fails with `EINTR`: a signal (a
/// profiler's, a Python handler's) that arrives while a call waits, as
/// the lookup of a path or the `stat` of a file on a network or FUSE file
/// system may, is no error of the file's.
fn retrying<T>(mut call: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match call() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            done => return done,
        }
    }
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "the path contains a NUL byte"))
}

/// What `fstat` says of an open file.
pub(crate) fn fstat(file: &File) -> io::Result<FileInfo> {
    stat_fd(file.as_raw_fd())
}

/// `fstat` of a descriptor the caller lent, after checking that it is open
/// (any integer may be passed).
pub(crate) fn fstat_lent(fd: RawFd) -> io::Result<FileInfo> {
    borrow(fd)?;
    stat_fd(fd)
}

/// A duplicate of a descriptor the caller lent (close-on-exec), after
/// checking that it is open; the caller's own is never closed.
///
/// On Linux, a descriptor opened with `O_DIRECT` is opened anew instead,
/// through its `/proc/self/fd` link (which names the open file, not a
/// path: the same file, renamed or unlinked since or not): a duplicate
/// shares the caller's status flags, and under `O_DIRECT` a `pread` into an
/// unaligned buffer fails (`EINVAL`), so every copy read would. Where that
/// open fails (no `/proc`, a file no longer readable), the duplicate it is.
pub(crate) fn clone_lent(fd: RawFd) -> io::Result<File> {
    let lent = borrow(fd)?;
    #[cfg(target_os = "linux")]
    if is_direct(fd) {
        if let Ok(f) = open_for_map(Path::new(&format!("/proc/self/fd/{fd}"))) {
            return Ok(f);
        }
    }
    lent.try_clone_to_owned().map(File::from)
}

/// True if the open descriptor `fd` reads with `O_DIRECT`.
#[cfg(target_os = "linux")]
fn is_direct(fd: RawFd) -> bool {
    // SAFETY: F_GETFL only queries the descriptor's status flags; any
    // integer is an acceptable argument (-1 for one not open).
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    flags != -1 && flags & libc::O_DIRECT != 0
}

/// Borrows the caller's descriptor after checking that it is open.
fn borrow<'a>(fd: RawFd) -> io::Result<BorrowedFd<'a>> {
    // SAFETY: F_GETFD only queries the descriptor table; any integer is an
    // acceptable argument.
    if fd < 0 || unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        return Err(io::Error::from_raw_os_error(BAD_DESCRIPTOR));
    }
    // SAFETY: the descriptor was just checked to be open, and the caller
    // promised (see `Manager::make_cursor_fd`) to keep it open while the
    // manager uses it; the borrow lasts one `fstat` or one `dup`. If the
    // caller breaks that promise and the number is reused, the identity
    // check that follows every use of a lent descriptor refuses the other
    // file.
    Ok(unsafe { BorrowedFd::borrow_raw(fd) })
}

/// `stat` of a path, following symbolic links; never opens it.
pub(crate) fn stat_path(path: &Path) -> io::Result<FileInfo> {
    let c = c_path(path)?;
    stat_at(libc::AT_FDCWD, &c, 0)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn stat_fd(fd: RawFd) -> io::Result<FileInfo> {
    stat_at(fd, c"", libc::AT_EMPTY_PATH)
}

/// `statx`, for the birth time, of `path` relative to `dirfd` (an open
/// descriptor itself with `AT_EMPTY_PATH`); `fstatat` where `statx` is
/// refused (see [`statx_at`]).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn stat_at(dirfd: RawFd, path: &CStr, flags: i32) -> io::Result<FileInfo> {
    use std::sync::atomic::{AtomicBool, Ordering};
    /// Set once `statx` is known to be refused to this process; never
    /// cleared, so that every identity comes from the same call.
    static NO_STATX: AtomicBool = AtomicBool::new(false);
    if !NO_STATX.load(Ordering::Relaxed) {
        match statx_at(dirfd, path, flags) {
            Err(e) if is_statx_refused(&e) => NO_STATX.store(true, Ordering::Relaxed),
            done => return done,
        }
    }
    fstat_at(dirfd, path, flags)
}

/// True if `e`, from `statx`, says that `statx` itself is refused: a kernel
/// older than 4.11 (`ENOSYS`), or a sandbox's system-call filter (old
/// container runtimes answer `EPERM`). `statx` never fails with `EPERM` of
/// itself, but a filter may answer anything, so a probe that a working
/// `statx` fails with `EFAULT` (a null path) tells the two apart, as the
/// standard library does.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn is_statx_refused(e: &io::Error) -> bool {
    if !matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) {
        return false;
    }
    // SAFETY: null path and buffer pointers are allowed arguments: the
    // kernel reads and writes nothing through them and fails with EFAULT.
    let probe = unsafe {
        libc::statx(
            0,
            std::ptr::null(),
            0,
            libc::STATX_BASIC_STATS,
            std::ptr::null_mut(),
        )
    };
    probe == -1 && io::Error::last_os_error().raw_os_error() != Some(libc::EFAULT)
}

/// `statx`, for the birth time, of `path` relative to `dirfd`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn statx_at(dirfd: RawFd, path: &CStr, flags: i32) -> io::Result<FileInfo> {
    let mut st = std::mem::MaybeUninit::<libc::statx>::uninit();
    let mask = libc::STATX_BASIC_STATS | libc::STATX_BTIME;
    // `path` is NUL-terminated and lives across the call, `dirfd` is
    // AT_FDCWD or an open descriptor (with AT_EMPTY_PATH), and `st` is
    // valid for writes of one `statx`.
    retrying(|| {
        // SAFETY: as above.
        match unsafe { libc::statx(dirfd, path.as_ptr(), flags, mask, st.as_mut_ptr()) } {
            0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    })?;
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
            dev: device(st.stx_dev_major, st.stx_dev_minor),
            ino: st.stx_ino,
            born,
        },
        kind: kind_of(u32::from(st.stx_mode)),
    })
}

/// A device number as identities hold it on Linux, from `statx`'s halves
/// or `stat`'s `st_dev` alike.
#[cfg(target_os = "linux")]
fn device(major: u32, minor: u32) -> u64 {
    (u64::from(major) << 32) | u64::from(minor)
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn stat_fd(fd: RawFd) -> io::Result<FileInfo> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // `st` is valid for writes of one `stat`; fstat of a descriptor that is
    // not open fails with EBADF and writes nothing.
    retrying(|| {
        // SAFETY: as above.
        match unsafe { libc::fstat(fd, st.as_mut_ptr()) } {
            0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    })?;
    // SAFETY: fstat returned 0, so it filled `st`.
    Ok(info_of(&unsafe { st.assume_init() }))
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn stat_at(dirfd: RawFd, path: &CStr, flags: i32) -> io::Result<FileInfo> {
    fstat_at(dirfd, path, flags)
}

/// `fstatat` of `path` relative to `dirfd` (an open descriptor itself with
/// `AT_EMPTY_PATH`, on Linux).
fn fstat_at(dirfd: RawFd, path: &CStr, flags: i32) -> io::Result<FileInfo> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // `path` is NUL-terminated and lives across the call, `dirfd` is
    // AT_FDCWD or an open descriptor, and `st` is valid for writes of one
    // `stat`.
    retrying(|| {
        // SAFETY: as above.
        match unsafe { libc::fstatat(dirfd, path.as_ptr(), st.as_mut_ptr(), flags) } {
            0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    })?;
    // SAFETY: fstatat returned 0, so it filled `st`.
    Ok(info_of(&unsafe { st.assume_init() }))
}

#[allow(clippy::unnecessary_cast)] // dev_t, ino_t and mode_t differ by platform
fn info_of(st: &libc::stat) -> FileInfo {
    // macOS and iOS record the birth time in `stat` itself.
    #[cfg(target_vendor = "apple")]
    let born = (st.st_birthtime as i64, st.st_birthtime_nsec as u32);
    #[cfg(not(target_vendor = "apple"))]
    let born = (0, 0);
    // Linux: the same number as `statx` gives, so that an identity does not
    // depend on which call read it.
    #[cfg(target_os = "linux")]
    let dev = device(libc::major(st.st_dev), libc::minor(st.st_dev));
    #[cfg(not(target_os = "linux"))]
    let dev = st.st_dev as u64;
    FileInfo {
        size: u64::try_from(st.st_size).unwrap_or(0),
        id: FileId {
            dev,
            ino: st.st_ino as u64,
            born,
        },
        kind: kind_of(st.st_mode as u32),
    }
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

/// The size of a file the engine opened itself, as its end says:
/// `lseek(SEEK_END)`, which copies no attributes and passes no security
/// hook, so it costs a fraction of `fstat`. It moves the descriptor's file
/// position, so it is only for descriptors no one else shares (never a
/// duplicate of a lent one: a duplicate shares the caller's position).
pub(crate) fn private_size(file: &File) -> io::Result<u64> {
    (&*file).seek(SeekFrom::End(0))
}

/// `pread`: reads at `offset` without moving the file position.
pub(crate) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    file.read_at(buf, offset)
}

/// `madvise` over the whole mapping.
pub(crate) fn advise(map: &Mmap, hint: AccessHint) -> io::Result<()> {
    map.advise(match hint {
        AccessHint::Sequential => Advice::Sequential,
        AccessHint::Random => Advice::Random,
        AccessHint::WillNeed => Advice::WillNeed,
    })
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

/// The process's soft `RLIMIT_NOFILE`, if it can be read.
pub(crate) fn max_open_files() -> Option<usize> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the valid struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        Some(usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Directories, devices and FIFOs are told apart, and open without
    /// blocking (a FIFO with no writer too).
    #[test]
    fn other_kinds_of_file_are_told_apart() {
        let dir = open_for_map(Path::new("/")).unwrap();
        assert_eq!(fstat(&dir).unwrap().kind, FileKind::Directory);
        let dev = open_for_map(Path::new("/dev/null")).unwrap();
        assert_eq!(
            fstat(&dev).unwrap().kind,
            FileKind::Other("a character device")
        );
        let tmp = tempfile::tempdir().unwrap();
        let fifo = tmp.path().join("fifo");
        let c = c_path(&fifo).unwrap();
        // SAFETY: `c` is a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let f = open_for_map(&fifo).unwrap();
        assert_eq!(fstat(&f).unwrap().kind, FileKind::Other("a FIFO"));
    }

    /// A call interrupted by a signal is made again; any other error, or
    /// success, ends it.
    #[test]
    fn interrupted_calls_are_made_again() {
        let mut calls = 0;
        let got = retrying(|| {
            calls += 1;
            match calls {
                1 | 2 => Err(io::Error::from_raw_os_error(libc::EINTR)),
                _ => Ok(calls),
            }
        });
        assert_eq!(got.unwrap(), 3);
        let mut calls = 0;
        let e = retrying(|| -> io::Result<()> {
            calls += 1;
            Err(io::Error::from_raw_os_error(libc::ENOENT))
        })
        .unwrap_err();
        assert_eq!((e.raw_os_error(), calls), (Some(libc::ENOENT), 1));
    }

    /// A lent descriptor opened with `O_DIRECT` is opened anew without it,
    /// so that a copy read of a few bytes at any offset works; the caller's
    /// keeps its flags.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_lent_descriptor_with_o_direct_is_opened_anew_for_copies() {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        std::fs::write(&path, vec![7u8; 3 * 4096]).unwrap();
        let direct = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECT)
            .open(&path)
        {
            Ok(f) => f,
            // A file system without O_DIRECT (tmpfs before Linux 6.6):
            // no descriptor can have it there.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return,
            Err(e) => panic!("{e}"),
        };
        let fd = direct.as_raw_fd();
        assert!(is_direct(fd));
        let mine = clone_lent(fd).unwrap();
        assert!(!is_direct(mine.as_raw_fd()));
        assert!(is_direct(fd), "the caller's flags are its own");
        assert_eq!(fstat(&mine).unwrap().id, fstat(&direct).unwrap().id);
        let mut byte = [0u8; 3];
        mine.read_exact_at(&mut byte, 4097).unwrap();
        assert_eq!(byte, [7; 3]);
        // Unlinked meanwhile: the link still opens the same file.
        std::fs::remove_file(&path).unwrap();
        let again = clone_lent(fd).unwrap();
        assert_eq!(fstat(&again).unwrap().id, fstat(&direct).unwrap().id);
    }

    #[test]
    fn lent_descriptors_are_checked() {
        let f = tempfile::tempfile().unwrap();
        let fd = f.as_raw_fd();
        assert_eq!(fstat_lent(fd).unwrap(), fstat(&f).unwrap());
        let dup = clone_lent(fd).unwrap();
        assert_ne!(dup.as_raw_fd(), fd);
        assert_eq!(fstat(&dup).unwrap().id, fstat(&f).unwrap().id);
        for bad in [-1, i32::MAX] {
            let e = fstat_lent(bad).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(BAD_DESCRIPTOR));
            assert!(clone_lent(bad).is_err());
        }
    }
}
