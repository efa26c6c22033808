//! Everything the engine asks of the operating system, in one place.
//!
//! The portable part lives here: the allocation granularity and the
//! arithmetic on it, what the engine knows of a file ([`FileInfo`]), and the
//! default limits. The rest comes from one private `os` module chosen per
//! platform — `unix.rs` (Linux, macOS, the BSDs) or `windows.rs` — which
//! export the same items:
//!
//! - `RawDesc`: what a caller lends the engine a file by (a raw descriptor
//!   on Unix, a raw handle on Windows);
//! - `allocation_granularity()`: what a mapping's file offset must be a
//!   multiple of (the page size on Unix, 64 KiB on Windows);
//! - `open_for_map(path)`: opens a file read-only, never blocking, and
//!   letting other processes rename or delete it where the system allows;
//! - `stat_path`, `fstat`, `fstat_lent`: a file's size, kind and identity,
//!   of a path (not opened for reading), an open file or a lent descriptor;
//! - `private_size`: the size of a file the engine opened itself, as
//!   cheaply as the system tells it (it may move the file position);
//! - `clone_lent`: an owned descriptor of a lent descriptor's file, if it
//!   is open (a duplicate on Unix; on Windows the file opened again from
//!   the handle, with a position of its own);
//! - `read_at`: a positional read that leaves no state behind that the
//!   engine relies on;
//! - `advise`: an access hint for a mapping, where the system takes one;
//! - `max_map_count`, `max_open_files`: the system's limits on mappings and
//!   descriptors, where it has low ones;
//! - the error numbers the engine reports or recognises (`NO_MEMORY`,
//!   `IS_A_DIRECTORY`, `STALE`, `BAD_DESCRIPTOR`, `is_out_of_memory`,
//!   `is_descriptor_table_full`).

use std::sync::LazyLock;

#[cfg_attr(unix, path = "unix.rs")]
#[cfg_attr(windows, path = "windows.rs")]
mod os;

#[cfg(not(any(unix, windows)))]
compile_error!("smmap runs on Unix (Linux, macOS, the BSDs) and Windows");

#[cfg(test)]
pub(crate) use os::BAD_DESCRIPTOR;
pub(crate) use os::{
    advise, clone_lent, fstat, fstat_lent, is_descriptor_table_full, is_out_of_memory,
    open_for_map, private_size, read_at, stat_path, RawDesc, IS_A_DIRECTORY, NO_MEMORY, STALE,
};

/// The granularity a mapping's file offset must be aligned to, in bytes.
///
/// Read from the operating system the first time it is used: the page size
/// on Linux and macOS (typically 4096 or 16384), the allocation granularity
/// on Windows (64 KiB), as Python's `mmap.ALLOCATIONGRANULARITY`.
///
/// ```
/// assert!(smmap::ALLOCATIONGRANULARITY.is_power_of_two());
/// ```
pub static ALLOCATIONGRANULARITY: LazyLock<u64> = LazyLock::new(|| {
    // A system that cannot tell its granularity still maps at 4 KiB
    // boundaries.
    Some(os::allocation_granularity())
        .filter(|g| g.is_power_of_two())
        .unwrap_or(4096)
});

/// The bytes a mapping of `len` bytes really occupies: whole units of the
/// allocation granularity — pages on Unix; on Windows, 64 KiB, the address
/// space every view reserves.
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

/// What the operating system says of an open file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileInfo {
    pub(crate) size: u64,
    pub(crate) id: FileId,
    pub(crate) kind: FileKind,
}

/// A file's identity: device and inode on Unix, with the birth time where
/// the file system records it (Linux's `statx`, in builds against glibc;
/// macOS); volume serial number and file index on Windows. A path renamed
/// over or replaced, or a descriptor number reused, shows up as another
/// identity — even when a freed inode number is given to a new file (the
/// birth time differs), except where no birth time is read (other C
/// libraries on Linux, the BSDs).
/// Where a sandbox refuses `statx`, Linux reads identities with `fstatat`,
/// without the birth time, for the rest of the process; so two identities
/// are compared with [`FileId::is`], on what both have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FileId {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    /// Seconds and nanoseconds; `(0, 0)` where unknown or not used.
    pub(crate) born: (i64, u32),
}

impl FileId {
    /// Whether `self` and `other` name the same file: the same device and
    /// inode, and the same birth time where both have one. A file pinned
    /// while `statx` worked and read again after a sandbox began refusing
    /// it has a birth time on one side only, and is still the same file.
    pub(crate) fn is(&self, other: &FileId) -> bool {
        const UNKNOWN: (i64, u32) = (0, 0);
        self.dev == other.dev
            && self.ino == other.ino
            && (self.born == other.born || self.born == UNKNOWN || other.born == UNKNOWN)
    }
}

/// The kinds of file the engine tells apart in its errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileKind {
    Regular,
    Directory,
    Other(&'static str),
}

/// The default `max_open_handles`: half the kernel's map limit, leaving the
/// other half to the rest of the process (allocators, the interpreter, other
/// libraries, thread stacks), or unlimited where the kernel states none
/// (everywhere but Linux).
pub(crate) fn default_max_open_handles() -> usize {
    static DEFAULT: LazyLock<usize> =
        LazyLock::new(|| os::max_map_count().map_or(usize::MAX, |n| (n / 2).max(1)));
    *DEFAULT
}

/// The default number of descriptors a manager keeps open: an eighth of
/// the process's soft `RLIMIT_NOFILE` on Unix (1024 on most systems, so
/// 128), at least 8 and at most 1024, leaving the rest to the program. On
/// Windows, whose handle table has no low limit, 1024.
pub(crate) fn default_max_open_files() -> usize {
    os::max_open_files().map_or(1024, |soft| (soft / 8).clamp(8, 1024))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn identities_compare_birth_times_only_where_both_have_one() {
        let id = |ino, born| FileId { dev: 8, ino, born };
        let known = id(5, (1_700_000_000, 7));
        assert!(known.is(&known));
        assert!(known.is(&id(5, (0, 0))) && id(5, (0, 0)).is(&known));
        assert!(!known.is(&id(5, (1_700_000_000, 8))), "born again");
        assert!(!known.is(&id(6, (0, 0))) && !id(5, (0, 0)).is(&id(6, (0, 0))));
        assert!(!known.is(&FileId { dev: 9, ..known }));
    }

    #[test]
    fn granularity_is_a_power_of_two() {
        assert!(ALLOCATIONGRANULARITY.is_power_of_two());
        assert!(*ALLOCATIONGRANULARITY >= 4096);
        if cfg!(windows) {
            assert_eq!(*ALLOCATIONGRANULARITY, 64 * 1024);
        }
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
        let opened = open_for_map(f.path()).unwrap();
        let info = fstat(&opened).unwrap();
        assert_eq!((info.size, info.kind), (5, FileKind::Regular));
        assert_eq!(fstat(f.as_file()).unwrap().id, info.id);
        assert_eq!(stat_path(f.path()).unwrap(), info);
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(stat_path(dir.path()).unwrap().kind, FileKind::Directory);
        assert!(stat_path(&dir.path().join("missing")).is_err());
        assert!(open_for_map(Path::new("a\0b")).is_err());
    }

    #[test]
    fn a_reused_inode_number_is_another_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"one").unwrap();
        let first = stat_path(&p).unwrap();
        assert_eq!(first.id, fstat(&open_for_map(&p).unwrap()).unwrap().id);
        // A file made now has another birth time only once the kernel's
        // clock has moved past the first's: its coarse clock moves a
        // tick at a time (a few milliseconds). Wait until a probe made now
        // shows it, and keep the probe (its inode number is not handed out
        // again meanwhile).
        if first.id.born != (0, 0) {
            let probe = dir.path().join("probe");
            for _ in 0..1000 {
                std::fs::write(&probe, b"").unwrap();
                if stat_path(&probe).unwrap().id.born != first.id.born {
                    break;
                }
                std::fs::remove_file(&probe).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
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
    fn the_default_limits_leave_room() {
        let d = default_max_open_handles();
        match os::max_map_count() {
            Some(n) => assert!(d <= n / 2 && d >= 1),
            None => assert_eq!(d, usize::MAX),
        }
        assert!((8..=1024).contains(&default_max_open_files()));
    }
}
