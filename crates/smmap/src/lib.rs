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
//!   └─ a file entry per file (MapRegionList): path or fd, size (read once),
//!      its regions by offset, and a table of them by window-size slot
//!         └─ MapRegion: one read-only mapping [ofs, ofs+size), ofs aligned
//! WindowCursor            holds at most one region; buffer() = [ofs_begin, ofs_end)
//! SlidingWindowMapBuffer  a cursor behind a byte view of [offset, offset+len)
//! MapWindow               the arithmetic that places a new region
//! ```
//!
//! A read, [`WindowCursor::use_region`]: if the cursor's region holds the
//! offset, nothing else happens (no lock, no system call, no shared memory
//! written). Otherwise the cursor takes, without any lock, the region it
//! released last if that holds the offset and was not evicted, or the
//! region its file's table names for the offset's window-size slot (one
//! look-up, one compare-and-swap). Failing that, the manager looks the
//! offset up among the file's regions under the file's own lock (ordered,
//! never a scan) — a window another thread is mapping counts, and is waited
//! for; failing that it places a new window: the window-size slot holding
//! the offset when the bytes asked for fit in it and it is free (aligned
//! windows, which the table finds in one step), or else a window from the
//! offset, grown towards the neighbouring regions up to `window_size`,
//! aligned to [`ALLOCATIONGRANULARITY`], clipped to the file end. It
//! reserves a handle and the window's bytes, evicting unused regions first
//! when there is no room, and maps the window without any lock. Eviction
//! approximates LRU with a CLOCK hand over the regions: one in use is passed
//! over, one a cursor took since the hand last passed is spared once (its
//! second chance), and the first unused one not taken since goes. If the
//! kernel refuses a mapping for lack of memory or of maps (`ENOMEM`), every
//! unused region is unmapped and the mapping tried once more before the
//! error is returned.
//!
//! # Limits
//!
//! The limits count what the operating system holds: the regions the
//! manager tracks, the windows being mapped, and evicted regions until they
//! are unmapped — even with many threads racing.
//!
//! - `max_open_handles` — live mappings — is never exceeded: when every
//!   region is in use by a cursor, a new window is an
//!   [`Error::HandleLimit`]. "In use", as the evictor's hand sees it in one
//!   sweep: each region held by a cursor, or taken since the hand last
//!   passed it (a cursor that switches between windows already mapped
//!   takes and gives back without the hand seeing it idle) — CLOCK's second
//!   chance, which spares a region twice at most — with no window being
//!   mapped by another thread meanwhile. Its default, and its ceiling, is
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
//!   has been asked for at least 5 times lately, more often than the window
//!   it would evict. The cursor API always maps.
//! - `max_memory_size` (default 8 GiB on 64-bit) is charged in whole pages
//!   and exceeded only while every region is in use (a cursor must map);
//!   [`Stats::over_limit_bytes`] shows by how much, and the excess is
//!   evicted as soon as a region is released — by the releasing thread, or,
//!   if another thread is evicting at that moment, by that thread as soon
//!   as it is done. The excess is at most the windows mapped while every
//!   region was in use.
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
//!   with glibc and from `stat` on macOS; elsewhere device and inode alone;
//!   the kernel may stamp it from a clock that moves a tick at a time, so a
//!   new file made within a few milliseconds of the one it replaces can
//!   share it).
//!   Opening never blocks (a FIFO put in the file's place is refused at
//!   once). Once a read has found the file replaced, a new cursor made by
//!   its name meets the new file, while the cursors made before keep the
//!   old one; once every cursor and region of the file is gone, a new
//!   cursor meets the file anew.
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
//! the region it had and reads it as before (unless the read had to wait
//! first — for another thread's window, for the evictor, or for room —
//! and the file went meanwhile: the cursor gave its region back before it
//! waited, and holds none); one whose mapping was refused
//! holds no region; either way the next read gives the right bytes or an
//! error. One type owns each mapped window together with the only pointer
//! into it, so no read can go through a stale address.
//!
//! # Concurrency
//!
//! [`Manager`] is `Send + Sync` and cheap to clone; cursors and buffers are
//! `Send`. No read path takes a lock that all files share in its steady
//! state; the caches that scale (JGit's window cache, Caffeine, SIEVE) share
//! the habits used here: hits write no shared memory, uses are marked with
//! a bit rather than by reordering a list, loading is single-flight per
//! file, and one thread at a time evicts.
//!
//! **The parts**, each owning its data and its synchronisation:
//!
//! | part | holds | synchronised by |
//! |---|---|---|
//! | file registry | path or descriptor → file entry; entries found replaced, by serial number | a mutex, taken to make a cursor, by an entry that goes, and by a read that finds its file replaced (which retires the entry: a new cursor by its name then meets the new file; a cursor being made that read the file before a retirement reads it again) |
//! | file entry, one per file | its table of regions by window-size slot; its slots (regions and windows being mapped, by offset); its cached descriptor | the table: pointers written under the file's lock, read without any; the slots: the file's own mutex and condition variable, signalled only when a thread waits (a count of waiters kept under the mutex); the descriptor: one atomic word |
//! | cells | one per tracked region: its claim word, range and address, the region and its file entry | the claim word (clients, uses since the hand passed, generation); the rest is written only while the word says no region is readable |
//! | handle budget | cells reserved (mapped, being mapped, being unmapped) | a counter reserved below `max_open_handles` by compare-and-swap, then a bit of a bitmap |
//! | memory ledger | bytes committed likewise | compare-and-swap below `max_memory_size`; forced past it only when every region is in use |
//! | evictor | CLOCK's hand over the cells | a mutex one thread holds; others wait for it (a miss that needs room), leave a note for it (a release over the memory limit) or give up (a copy read) |
//! | descriptor ring | which descriptors to close beyond `max_open_files`, and two counts: descriptors open (until the last reader of one being closed leaves) and kept (open, not being closed: what the limit bounds) | a mutex, taken only when a descriptor is opened or the ring is emptied; the counts are `Relaxed` atomics (numbers, ordering nothing) |
//! | admission | each window's heat (a count-min sketch) and the estimate of the next victim's | relaxed loads, stores and additions, and a compare-and-swap that elects the thread that halves the counts: lossy by design |
//! | statistics | counters | 16 stripes of counters, a thread adding to the one its id picks (threads past 16 share); the peaks are shared words raised by `fetch_max`; a cursor counts its hits and switches itself |
//!
//! **Lock order**: the evictor's hand, then one file's lock, then the
//! descriptor ring, then the registry (an entry that goes takes itself out
//! of it, and a miss that finds its file replaced retires the entry); the
//! room's lock is taken last, only to notify, and nothing is taken under
//! it. No path takes them all: evictions take the hand, a
//! file's lock and the room's; the invariant check the hand, the registry,
//! each file's lock in turn and the ring. The
//! wait for room (when every handle or byte is held by windows other
//! threads are mapping) is alone, on a generation read before the look
//! that found the windows in flight; and a miss whose walk evicted nothing
//! walks again, before it fails or passes the memory limit, if a window
//! landed (was published or given up) since the walk began: the hand
//! skips a window in flight, which may be published and released before
//! the look. No miss holds a descriptor while it sleeps (for a file's
//! window, the hand or room): it lets go of the file's and has it again
//! after, opening the file without the hand if it was closed meanwhile,
//! so that a thread that finds the process's descriptor table full can
//! close it. No lock is held while a caller reads, or
//! while Python or any other caller code runs; while the kernel maps, only
//! the hand, by a miss that evicted for its room (below).
//!
//! **What each path does:**
//!
//! | path | shared memory touched | locks |
//! |---|---|---|
//! | hit: the cursor's region holds the offset (one comparison, in the reader's own indices: a buffer's hit is not bounds-checked twice; a cursor that records a trace takes its hits off this path) | none | none |
//! | switch: another mapped window of the file | the table's slot (a load), the new region's claim word (compare-and-swap), the old one's (subtraction; if that left it unused, the ledger and the admission gate are read) | none |
//! | take-back of the region released last | its claim word (compare-and-swap) | none |
//! | release ([`WindowCursor::unuse_region`], a buffer's `end_access`) | the claim word (subtraction) | none (the evictor's, tried, if the manager is over its memory limit) |
//! | copy read of a window not admitted | the table, the budgets (loads), the sketch (lossy), the file's descriptor word (in and out), `pread` | none (the file's lock once, never waited for a region in it, where the table names for the offset's slot a region that does not hold the offset: a window off the slots, or one of a coarse table's; a region mapped there that holds the offset is read instead of copied) |
//! | miss that maps within the limits | the file's slots, the descriptor word, the budgets (compare-and-swap), the new cell | the file's lock, twice (to place the window, to publish it); none while mapping |
//! | miss without room | as above, and the victims' claim words and files | the evictor's hand (waited for), each victim's file lock in turn; the unmapping, and the mapping of the window that takes the room, are done holding the hand (but for a window mapped past the memory limit, whose miss lets go of the hand once it has evicted what it could; the kernel serialises both on its map lock anyway, and a thread that waits for the hand sleeps, where one that waited in the kernel would be running on a CPU each unmap interrupts to flush its TLB) |
//! | making a cursor | the registry | the registry's |
//!
//! **The atomic words and their protocols**, each with a table of its
//! states and transitions beside it in the source, and each checked with
//! [loom](https://docs.rs/loom) under every interleaving of its scenarios
//! (`scripts/loom`; the election's, the room's and the miss's models
//! bounded to two or three preemptions): the claim word (`src/claim.rs`), the handle budget
//! (`src/manager/cells.rs`), the memory ledger (`src/manager/ledger.rs`),
//! a file's descriptor word (`src/manager/desc.rs`), the evictor's
//! election (`src/manager/election.rs`), the count of a file's waiters
//! (`src/manager/signal.rs`), the wait for room's generation and
//! waiters (`src/manager/room.rs`), and a miss's decision that every
//! region is in use — the count of landings around its walk, and its look
//! for windows in flight (`src/manager/miss.rs`). One word is not a protocol of its
//! own and is not modelled: a window table's slot (`src/manager/table.rs`),
//! a pointer to a cell written under the file's lock and read with
//! `Acquire`, which a reader only trusts once the cell's claim word is won
//! and the cell found to hold its offset. The memory limit rests on one
//! `SeqCst` pairing: a release that leaves a region unused reads the ledger
//! next, and a thread that commits bytes past the limit sweeps the claim
//! words next, so one of them sees the other and no unused region is left
//! over the limit. The commit is followed by a `SeqCst` fence in every
//! build: the sweep first filters cells with `Acquire` loads, which the
//! `SeqCst` order alone does not cover.

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
mod trace;
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
pub use trace::{Event, FileRead, Op, Replayed, Served, Trace, TraceError, TraceFile, TraceReader};
pub use window::MapWindow;

// The example of the crate's README (README.md), compiled by `cargo test
// --doc` so that it cannot drift from the API (not run: it names a file
// that is not there).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;
