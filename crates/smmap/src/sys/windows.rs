//! The operating system's part on Windows: `GetSystemInfo` for the
//! allocation granularity, `CreateFileW` sharing reads, writes and deletes,
//! `GetFileType` and `GetFileInformationByHandle` for a file's kind and
//! identity, positional `ReadFile`.
//!
//! Windows refuses to delete, truncate or rename over a file while a view
//! of it is mapped, and to rename over it while a handle of it is open
//! (the handles the engine opens share deletion, so they do not stop a
//! deletion or a rename away). Once
//! [`Manager::collect`](crate::Manager::collect) has unmapped every window
//! no cursor uses and closed every handle the manager keeps, the file is
//! free.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::windows::fs::{FileExt, OpenOptionsExt};
use std::os::windows::io::{AsRawHandle, BorrowedHandle, FromRawHandle, RawHandle};
use std::path::Path;

use memmap2::Mmap;
use windows_sys::Win32::Foundation::{
    GetHandleInformation, GetLastError, SetLastError, ERROR_COMMITMENT_LIMIT,
    ERROR_DIRECTORY_NOT_SUPPORTED, ERROR_INVALID_HANDLE, ERROR_NOT_ENOUGH_MEMORY,
    ERROR_OUTOFMEMORY, ERROR_TOO_MANY_OPEN_FILES, GENERIC_READ, HANDLE, INVALID_HANDLE_VALUE,
    NO_ERROR,
};
use windows_sys::Win32::Storage::FileSystem::{
    GetFileInformationByHandle, GetFileType, ReOpenFile, BY_HANDLE_FILE_INFORMATION,
    FILE_ATTRIBUTE_DIRECTORY, FILE_FLAG_BACKUP_SEMANTICS, FILE_SHARE_DELETE, FILE_SHARE_READ,
    FILE_SHARE_WRITE, FILE_TYPE_CHAR, FILE_TYPE_DISK, FILE_TYPE_PIPE, FILE_TYPE_UNKNOWN,
};
use windows_sys::Win32::System::SystemInformation::{GetSystemInfo, SYSTEM_INFO};

use super::{FileId, FileInfo, FileKind};
use crate::AccessHint;

/// What a caller lends a file by: a raw handle.
pub(crate) type RawDesc = RawHandle;

/// `ERROR_NOT_ENOUGH_MEMORY`.
pub(crate) const NO_MEMORY: i32 = ERROR_NOT_ENOUGH_MEMORY as i32;
/// `ERROR_DIRECTORY_NOT_SUPPORTED`, which the standard library reads as
/// [`io::ErrorKind::IsADirectory`].
pub(crate) const IS_A_DIRECTORY: i32 = ERROR_DIRECTORY_NOT_SUPPORTED as i32;
/// Windows has no error number for a replaced file.
pub(crate) const STALE: Option<i32> = None;
/// `ERROR_INVALID_HANDLE`: a lent handle that is not open.
pub(crate) const BAD_DESCRIPTOR: i32 = ERROR_INVALID_HANDLE as i32;

/// True if the mapping was refused for lack of memory or address space.
pub(crate) fn is_out_of_memory(code: i32) -> bool {
    [
        ERROR_NOT_ENOUGH_MEMORY,
        ERROR_OUTOFMEMORY,
        ERROR_COMMITMENT_LIMIT,
    ]
    .iter()
    .any(|&c| c as i32 == code)
}

/// True if opening failed because too many files are open.
pub(crate) fn is_descriptor_table_full(code: i32) -> bool {
    code == ERROR_TOO_MANY_OPEN_FILES as i32
}

/// `dwAllocationGranularity` (64 KiB on every Windows so far): views of a
/// file start at multiples of it.
pub(crate) fn allocation_granularity() -> u64 {
    let mut info = std::mem::MaybeUninit::<SYSTEM_INFO>::uninit();
    // SAFETY: GetSystemInfo cannot fail; it fills the struct it is given,
    // which is valid for writes of one SYSTEM_INFO.
    unsafe { GetSystemInfo(info.as_mut_ptr()) };
    // SAFETY: GetSystemInfo filled it.
    u64::from(unsafe { info.assume_init() }.dwAllocationGranularity)
}

/// The share mode of every handle the engine opens: other processes may
/// read, write, rename and delete the file while the handle is open (a
/// mapped view still stops deleting or truncating it and renaming another
/// file over it).
const SHARE_ALL: u32 = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;

/// Opens `path` for reading, sharing reads, writes and deletion. Opening
/// never blocks on Windows; a directory cannot be opened this way (it is
/// refused earlier, by [`stat_path`]).
pub(crate) fn open_for_map(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .share_mode(SHARE_ALL)
        .open(path)
}

/// What the file at `path` is, following symbolic links. The file is
/// opened with no access rights (so neither read permission nor a
/// directory is in the way) and closed at once.
pub(crate) fn stat_path(path: &Path) -> io::Result<FileInfo> {
    let file = OpenOptions::new()
        .access_mode(0)
        .share_mode(SHARE_ALL)
        .custom_flags(FILE_FLAG_BACKUP_SEMANTICS)
        .open(path)?;
    fstat(&file)
}

/// What an open file is.
pub(crate) fn fstat(file: &File) -> io::Result<FileInfo> {
    // SAFETY: the handle is `file`'s, open for the whole call.
    unsafe { stat_handle(file.as_raw_handle()) }
}

/// The size of a file the engine opened itself (what `fstat` says: Windows
/// has no cheaper way).
pub(crate) fn private_size(file: &File) -> io::Result<u64> {
    fstat(file).map(|info| info.size)
}

/// What a handle the caller lent is, after checking that it is open.
pub(crate) fn fstat_lent(handle: RawHandle) -> io::Result<FileInfo> {
    check_open(handle)?;
    // SAFETY: the handle was just checked to be open, and the caller
    // promised (see `Manager::make_cursor_handle`) to keep it open while
    // the manager uses it.
    unsafe { stat_handle(handle) }
}

/// A handle of the engine's own on the file of a handle the caller lent,
/// after checking that it is open; the caller's own is never closed.
///
/// It is the file opened again (`ReOpenFile`, read-only, synchronous,
/// sharing everything), not a duplicate: a duplicate shares the caller's
/// file object, so a positional `ReadFile` through it would move the
/// caller's file position, and through a handle the caller opened for
/// overlapped I/O it would not even wait for its own read. Where the file
/// cannot be opened again (the caller's handle denies sharing reads), the
/// handle is duplicated after all, and copy reads move its position.
pub(crate) fn clone_lent(handle: RawHandle) -> io::Result<File> {
    check_open(handle)?;
    // SAFETY: the handle was just checked to be open, and the caller
    // promised (see `Manager::make_cursor_handle`) to keep it open while
    // the manager uses it. ReOpenFile only reads it and returns a new
    // handle or INVALID_HANDLE_VALUE. If the caller broke that promise and
    // the value is reused, the identity check that follows every use of a
    // lent handle refuses the other file.
    let reopened = unsafe {
        ReOpenFile(
            handle,
            GENERIC_READ,
            FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
            0,
        )
    };
    if reopened != INVALID_HANDLE_VALUE {
        // SAFETY: ReOpenFile succeeded, so `reopened` is a new open handle
        // that nothing else owns.
        return Ok(unsafe { File::from_raw_handle(reopened) });
    }
    // SAFETY: as above; the borrow lasts one `DuplicateHandle`.
    let borrowed = unsafe { BorrowedHandle::borrow_raw(handle) };
    borrowed.try_clone_to_owned().map(File::from)
}

/// Fails with `ERROR_INVALID_HANDLE` unless `handle` is an open handle of
/// this process (any value may be asked about).
fn check_open(handle: RawHandle) -> io::Result<()> {
    let mut flags = 0u32;
    // SAFETY: GetHandleInformation only looks the value up in the handle
    // table (an unknown value fails), and `flags` is valid for writes.
    if handle.is_null() || unsafe { GetHandleInformation(handle, &mut flags) } == 0 {
        return Err(io::Error::from_raw_os_error(BAD_DESCRIPTOR));
    }
    Ok(())
}

/// `GetFileType`, then `GetFileInformationByHandle` for a file on disk.
///
/// # Safety
///
/// `handle` is open for the whole call.
unsafe fn stat_handle(handle: HANDLE) -> io::Result<FileInfo> {
    // FILE_TYPE_UNKNOWN is a failure only if the call set an error: clear
    // it first.
    // SAFETY: SetLastError only sets this thread's error code.
    unsafe { SetLastError(NO_ERROR) };
    // SAFETY: the caller keeps the handle open.
    let kind = unsafe { GetFileType(handle) };
    // SAFETY: GetLastError has no preconditions.
    if kind == FILE_TYPE_UNKNOWN && unsafe { GetLastError() } != NO_ERROR {
        return Err(io::Error::last_os_error());
    }
    let other = match kind {
        FILE_TYPE_DISK => None,
        FILE_TYPE_CHAR => Some("a character device"),
        FILE_TYPE_PIPE => Some("a pipe"),
        _ => Some("not a regular file"),
    };
    if let Some(what) = other {
        return Ok(FileInfo {
            size: 0,
            id: FileId {
                dev: 0,
                ino: 0,
                born: (0, 0),
            },
            kind: FileKind::Other(what),
        });
    }
    let mut info = std::mem::MaybeUninit::<BY_HANDLE_FILE_INFORMATION>::uninit();
    // SAFETY: the caller keeps the handle open, and `info` is valid for
    // writes of one BY_HANDLE_FILE_INFORMATION.
    if unsafe { GetFileInformationByHandle(handle, info.as_mut_ptr()) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the call succeeded, so it filled `info`.
    let info = unsafe { info.assume_init() };
    let high_low = |high: u32, low: u32| (u64::from(high) << 32) | u64::from(low);
    Ok(FileInfo {
        size: high_low(info.nFileSizeHigh, info.nFileSizeLow),
        // The volume and the file index. NTFS's index carries a sequence
        // number that changes when its record is reused, so it names one
        // file for good. The creation time adds nothing: "tunneling" gives
        // a file created under a name just deleted or renamed away the old
        // file's creation time, and wine derives it from the inode's change
        // time, which every write moves.
        id: FileId {
            dev: u64::from(info.dwVolumeSerialNumber),
            ino: high_low(info.nFileIndexHigh, info.nFileIndexLow),
            born: (0, 0),
        },
        kind: if info.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY != 0 {
            FileKind::Directory
        } else {
            FileKind::Regular
        },
    })
}

/// Reads at `offset`. `ReadFile` with the offset given in its `OVERLAPPED`
/// argument: each call reads at its own offset even when threads share the
/// handle. It also moves the handle's file position, which the engine never
/// uses (and which is its own, not a lender's: see [`clone_lent`]).
pub(crate) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    file.seek_read(buf, offset)
}

/// Windows takes no access hint for a mapped view: accepted, and ignored.
pub(crate) fn advise(_map: &Mmap, _hint: AccessHint) -> io::Result<()> {
    Ok(())
}

/// Windows limits views only by address space.
pub(crate) fn max_map_count() -> Option<usize> {
    None
}

/// The handle table has no limit a manager must stay below.
pub(crate) fn max_open_files() -> Option<usize> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_kinds_of_file_are_told_apart() {
        let nul = open_for_map(Path::new("NUL")).unwrap();
        assert_eq!(
            fstat(&nul).unwrap().kind,
            FileKind::Other("a character device")
        );
    }

    #[test]
    fn lent_descriptors_are_checked() {
        let f = tempfile::tempfile().unwrap();
        let h = f.as_raw_handle();
        assert_eq!(fstat_lent(h).unwrap(), fstat(&f).unwrap());
        let dup = clone_lent(h).unwrap();
        assert_ne!(dup.as_raw_handle(), h);
        assert_eq!(fstat(&dup).unwrap().id, fstat(&f).unwrap().id);
        for bad in [
            std::ptr::null_mut(),
            std::ptr::without_provenance_mut(0x7ff0_0000),
        ] {
            let e = fstat_lent(bad).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(BAD_DESCRIPTOR));
            assert!(clone_lent(bad).is_err());
        }
    }

    #[test]
    fn an_open_file_can_be_renamed_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, b"bytes").unwrap();
        let f = open_for_map(&a).unwrap();
        std::fs::rename(&a, &b).unwrap();
        std::fs::remove_file(&b).unwrap();
        assert_eq!(fstat(&f).unwrap().size, 5);
    }
}
