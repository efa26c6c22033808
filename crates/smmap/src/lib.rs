//! A thread-safe sliding-window memory-map manager.
//!
//! Programs that read many large files at random — pack files, indexes,
//! archives, column stores — want memory maps, but maps are scarce: address
//! space, the kernel's map count (`vm.max_map_count`, 65530 by default on
//! Linux), file descriptors. `smmap` maps *windows* of files on demand, keeps
//! the mapped bytes and the number of live mappings under limits, and unmaps
//! windows nobody is using when it must, the least recently used first (a
//! CLOCK approximation of LRU).
//!
//! # The model
//!
//! ```text
//! Manager (Static | Sliding)  limits: window_size, max_memory_size, max_open_handles
//!   └─ MapRegionList, one per file: path or fd, size (read once), regions by offset
//!         └─ MapRegion: one read-only mapping [ofs, ofs+size), ofs aligned
//! WindowCursor            holds at most one region; buffer() = [ofs_begin, ofs_end)
//! SlidingWindowMapBuffer  a cursor behind a byte view of [offset, offset+len)
//! MapWindow               the arithmetic that places a new region
//! ```
//!
//! A read, [`WindowCursor::use_region`]: if the cursor's region holds the
//! offset, nothing else happens (no lock, no system call). A cursor that
//! released its region ([`WindowCursor::unuse_region`], a buffer's
//! `end_access`) released it without the lock once the manager knew it, and
//! takes it back the same way, by one compare-and-swap, unless it was
//! evicted meanwhile (the evictor passes over regions taken back since its
//! last look: a second chance). Otherwise the
//! manager looks the offset up among the file's regions (ordered, never a
//! scan) — a window another thread is mapping counts, and is waited for;
//! failing that it places a new window — from the offset, grown towards the
//! neighbouring regions up to `window_size`, aligned to
//! [`ALLOCATIONGRANULARITY`], clipped to the file end — evicts unused
//! regions until the window fits the memory limit and a handle is free, and
//! maps it, without holding its lock. Eviction approximates LRU with a CLOCK
//! hand over a linked list of the released regions, least recently released
//! first: a region in use, or taken back since the hand last passed, goes to
//! the back instead (its second chance). Every list operation is `O(1)`. If
//! the kernel refuses for lack of memory or of maps (`ENOMEM`), every unused
//! region is unmapped and the mapping tried once more before the error is
//! returned.
//!
//! # Limits
//!
//! The limits count what the operating system holds: the regions the
//! manager tracks, the windows being mapped, and evicted regions until they
//! are unmapped — even with many threads racing.
//!
//! - `max_open_handles` — live mappings — is never exceeded: when every
//!   region is in use by a cursor, a new window is an
//!   [`Error::HandleLimit`]. Its default, and its ceiling, is
//!   [`default_max_open_handles`]: half the kernel's map limit
//!   (`vm.max_map_count`), because a process whose mappings use up the
//!   kernel's limit fails in its allocator before anyone can evict. A
//!   handle is a mapping, not a descriptor.
//! - `max_open_files`: the manager keeps one descriptor per file it reads,
//!   opened once and reused for every window and copy, at most this many
//!   (default [`default_max_open_files`], an eighth of `RLIMIT_NOFILE`),
//!   the least recently used closed first (a CLOCK approximation);
//!   [`Manager::collect`] closes them.
//! - [`ReadPolicy`]: reads that copy (the buffer's) do not map a window that
//!   would have to evict another: they `pread` it, and map it only once it
//!   is asked for again while remembered. The cursor API always maps.
//! - `max_memory_size` (default 8 GiB on 64-bit) is charged in whole pages
//!   and exceeded only while every region is in use;
//!   [`Stats::over_limit_bytes`] shows by how much, and the excess is
//!   evicted as soon as a region is released.
//! - `window_size` (default 1 GiB on 64-bit; 0 = whole files).
//!
//! A [`MapRegion`] clone kept by the caller outlives eviction by design (the
//! bytes stay valid); once evicted it is the caller's mapping and counts
//! against no limit of the manager — only against the kernel's.
//!
//! # Example
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("data.bin");
//! # std::fs::write(&path, b"...magic...")?;
//! let manager = smmap::SlidingWindowMapManager::new();
//! let mut cursor = manager.make_cursor(&path)?;
//! cursor.use_region(3, 5)?;
//! assert_eq!(cursor.buffer(), b"magic");
//! # Ok(()) }
//! ```
//!
//! # Files that change while mapped
//!
//! - **A file is pinned** to its identity (device, inode and birth time)
//!   when the manager first meets it, and a relative path is resolved then.
//!   Every later window is mapped from that same file, through the
//!   descriptor the manager keeps for it (a file renamed over or unlinked
//!   keeps being read as the file it was); once that descriptor is closed, a
//!   path renamed over or replaced, or a descriptor number closed and reused
//!   for another file, gives [`Error::Replaced`] — never the other file's
//!   bytes, even when a new file gets a freed inode number: the birth time
//!   differs (where the file system records it, read with `statx` on Linux
//!   with glibc and from `stat` on macOS; elsewhere device and inode alone).
//!   Opening never blocks (a FIFO put in the file's place is refused at
//!   once). Once every cursor and region of the file is gone, a new cursor
//!   meets the file anew.
//! - **Truncation by another process** makes a later read of the lost pages
//!   raise `SIGBUS`, which kills the process. This is true of every user of
//!   memory maps, and no library can prevent it for pages already mapped. What
//!   `smmap` can do, it does: before mapping a new window it checks that the
//!   file still holds it, and returns [`Error::FileShrunk`] if not. Do not
//!   map files that other processes truncate (git never truncates packs).
//! - **Unlinking** a mapped file is safe: the mapping keeps the data.
//! - **Growth** is seen once the file size is read again: the size is read
//!   when the manager first meets a file and kept while any cursor or region
//!   of it lives, and read anew after they are all gone.
//!
//! # Platforms
//!
//! Linux, macOS (and the other Unix systems) and Windows. What the engine
//! asks of the operating system lives in one private module with a Unix and
//! a Windows implementation; the API is the same everywhere but for how a
//! caller lends an open file: `PathOrFd::Fd` and
//! `Manager::make_cursor_fd` take a raw descriptor on Unix,
//! `PathOrFd::Handle` and `Manager::make_cursor_handle` a raw handle on
//! Windows. On Windows:
//!
//! - [`ALLOCATIONGRANULARITY`] is 64 KiB (the page size elsewhere): windows
//!   start at multiples of it, and `max_memory_size` charges each window in
//!   whole 64 KiB units, the address space a view reserves.
//! - **A mapped file cannot be deleted, truncated or renamed over**, and
//!   renaming over it is refused while a handle of it is open (the handles
//!   the engine opens share reading, writing and deletion, so they never
//!   stop a reader or a writer, and a file can be renamed away while
//!   mapped). A caller that wants to delete or replace a file drops its
//!   cursors on it (or moves them to other files) and calls
//!   [`Manager::collect`], which unmaps every window nobody uses and closes
//!   every handle the manager keeps; the file is then free.
//! - A file's identity is its volume serial number and file index
//!   (`GetFileInformationByHandle`); there are no FIFOs, so opening never
//!   blocks anyway.
//! - Access hints are accepted and do nothing (Windows takes no `madvise`
//!   for a view), and there is no map-count limit: `max_open_handles` is
//!   unlimited by default, and `max_open_files` is 1024.
//!
//! # Failures
//!
//! A failure in the middle of a sequence of reads leaves every object
//! usable. A cursor whose file cannot be opened (removed, replaced) keeps
//! the region it had and reads it as before; one whose mapping was refused
//! holds no region; either way the next read gives the right bytes or an
//! error. One type owns each mapped window together with the only pointer
//! into it, so no read can go through a stale address.
//!
//! # Threads
//!
//! [`Manager`] is `Send + Sync` and cheap to clone; cursors and buffers are
//! `Send`. The manager's lock is held only to find, place or evict a region,
//! never while a caller reads and never while the kernel maps or unmaps;
//! reads within a region, and releasing and taking back a region the
//! manager knows, take no lock at all.

mod buffer;
mod claim;
mod copy;
mod cursor;
mod error;
mod held;
mod hint;
mod manager;
mod region;
mod source;
mod stats;
mod sync;
mod sys;
mod window;

pub use buffer::{Endian, Matches, Primitive, SlidingWindowMapBuffer, Value, ValueType};
pub use cursor::WindowCursor;
pub use error::{Error, Result};
pub use hint::AccessHint;
#[cfg(feature = "fault-injection")]
pub use manager::shared_locks_taken;
pub use manager::{
    default_max_memory_size, default_max_open_files, default_max_open_handles, default_window_size,
    Manager, ManagerBuilder, ReadPolicy, SlidingWindowMapManager, StaticWindowMapManager,
};
pub use region::MapRegion;
pub use source::PathOrFd;
pub use stats::Stats;
pub use sys::{align_to_mmap, is_64_bit, ALLOCATIONGRANULARITY};
pub use window::MapWindow;

// The example of the crate's README (README.md), compiled by `cargo test
// --doc` so that it cannot drift from the API (not run: it names a file
// that is not there).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;
