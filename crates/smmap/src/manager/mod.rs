//! The managers: [`Manager`], shared by every cursor, and its two flavours
//! [`SlidingWindowMapManager`] and [`StaticWindowMapManager`].
//!
//! A manager is made of parts that each own one concern and its own
//! synchronisation (the crate documentation's "Concurrency" section has the
//! whole design on one page):
//!
//! - [`Files`](entry::Files): the files known, by path or descriptor (a
//!   lock taken when a cursor is made), each a [`FileEntry`](entry::FileEntry)
//!   with its table of windows (read without a lock), its slots (its own
//!   lock) and its cached descriptor ([`desc`]: a lock-free hand-off, and
//!   a ring that keeps `max_open_files`);
//! - [`Cells`](cells::Cells): every tracked region's cell and claim word, and
//!   the handle budget; [`Ledger`](ledger::Ledger): the memory budget;
//! - [`Evictor`](evictor::Evictor): CLOCK's hand over the cells, held by one
//!   thread at a time;
//! - [`Sketch`](sketch::Sketch): the windows' heat, counted without a lock,
//!   and the admission rule of the adaptive read policy;
//! - [`Counters`](counters::Counters): the statistics, striped by thread;
//!   [`Room`](room::Room): the wait for room other threads hold.
//!
//! The miss path that ties them together is in [`miss`].

mod cells;
mod check;
mod counters;
mod desc;
mod election;
mod entry;
mod evictor;
mod faults;
mod hooks;
mod ledger;
mod miss;
mod room;
mod shared_lock;
mod signal;
mod sketch;
mod slots;
mod table;

use std::fmt;
use std::ops::Deref;
#[cfg(unix)]
use std::os::fd::RawFd;
#[cfg(windows)]
use std::os::windows::io::RawHandle;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::cursor::WindowCursor;
use crate::error::Result;
use crate::held::Lease;
use crate::source::{FileKey, PathOrFd, PinnedFile};
use crate::stats::Stats;
use crate::trace::Trace;
pub(crate) use cells::{Cell, Cells, Span};
use counters::{Counter, Counters};
pub(crate) use entry::FileEntry;
use entry::Files;
use evictor::{Evictor, Need, Swept};
use hooks::Point;
use ledger::Ledger;
pub(crate) use miss::Fetched;
use room::Room;
#[cfg(feature = "fault-injection")]
pub use shared_lock::shared_locks_taken;
use sketch::Sketch;

const MIB: u64 = 1024 * 1024;

/// The default window size of a sliding manager: 1024 MiB on 64-bit systems,
/// 64 MiB on 32-bit ones.
pub fn default_window_size() -> u64 {
    if crate::is_64_bit() {
        1024 * MIB
    } else {
        64 * MIB
    }
}

/// The default memory limit: 8192 MiB on 64-bit systems, 1024 MiB on 32-bit
/// ones.
pub fn default_max_memory_size() -> u64 {
    if crate::is_64_bit() {
        8192 * MIB
    } else {
        1024 * MIB
    }
}

/// The default, and the highest, `max_open_handles`: half the kernel's limit
/// on mappings per process (`vm.max_map_count`, 65530 by default on Linux,
/// so 32765), leaving the other half to the rest of the process —
/// allocators, an interpreter, other libraries. Unlimited where the kernel
/// states no such limit.
///
/// ```
/// assert!(smmap::default_max_open_handles() >= 1);
/// ```
pub fn default_max_open_handles() -> usize {
    crate::sys::default_max_open_handles()
}

/// The default `max_open_files`: an eighth of the process's soft
/// `RLIMIT_NOFILE` (1024 on most systems, so 128), at least 8 and at most
/// 1024, leaving the rest of the descriptor table to the program.
///
/// ```
/// assert!((8..=1024).contains(&smmap::default_max_open_files()));
/// ```
pub fn default_max_open_files() -> usize {
    crate::sys::default_max_open_files()
}

/// How reads that copy bytes — a [`SlidingWindowMapBuffer`](crate::SlidingWindowMapBuffer)'s
/// `get`, `read_at`, `slice`, typed reads, `Read`/`BufRead`, `find` —
/// treat a window that is not mapped. The cursor API
/// ([`WindowCursor::use_region`]) hands out mapped memory, so it always maps.
///
/// ```
/// use smmap::{ReadPolicy, SlidingWindowMapManager};
/// let m = SlidingWindowMapManager::builder().read_policy(ReadPolicy::AlwaysMap).build();
/// assert_eq!(m.read_policy(), ReadPolicy::AlwaysMap);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReadPolicy {
    /// Map the window while the budget has room for it. When it would have
    /// to evict another window, copy the bytes with `pread` instead — unless
    /// the window has proved hotter than the one it would evict: asked for
    /// at least 5 times lately, and more often than that one (TinyLFU's
    /// admission rule, with a floor; the counts, of 4 bits, halve every 16
    /// asks per handle of `max_open_handles`, taken as at least 16 and at
    /// most 4,096). A cold scan then never flushes hot windows, uniformly
    /// random reads under a budget far below the working set cost about a
    /// `pread` each instead of a map and an unmap (whose TLB shootdown
    /// interrupts every CPU running the process), and skewed reads keep
    /// their hot windows mapped. A window is compared only with one that
    /// can be evicted now: when every window is in use, the read is
    /// copied — a copy read never fails for lack of a handle and never
    /// maps past `max_memory_size`.
    /// A buffer's `begin_access` maps nothing: its first read decides.
    #[default]
    Adaptive,
    /// Always map the window, evicting as needed; a buffer's `begin_access`
    /// maps its first window (the behaviour of smmap 6.0.0).
    AlwaysMap,
}

/// Which placement the manager uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// One region per file, mapping the whole file.
    Static,
    /// Windows of at most `window_size` placed between existing regions.
    Sliding,
}

/// The manager's configuration, with the special values already resolved.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) kind: Kind,
    /// 0 means unlimited (whole file).
    pub(crate) window_size: u64,
    pub(crate) max_memory_size: u64,
    pub(crate) max_open_handles: usize,
    /// Descriptors kept open, at most.
    pub(crate) max_open_files: usize,
    pub(crate) policy: ReadPolicy,
}

impl Limits {
    /// The cap on one window; `u64::MAX` when unlimited.
    pub(crate) fn window_cap(&self) -> u64 {
        if self.window_size == 0 {
            u64::MAX
        } else {
            self.window_size
        }
    }

    /// The window a file is cut into slots of, aligned: the window size
    /// rounded up to the allocation granularity; `u64::MAX` for whole files
    /// (a static manager, or unlimited windows).
    pub(crate) fn slot_window(&self) -> u64 {
        match (self.kind, self.window_size) {
            (Kind::Static, _) | (_, 0) => u64::MAX,
            (Kind::Sliding, w) => crate::align_to_mmap(w, true),
        }
    }
}

/// What a cursor asks for on a miss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Want {
    /// A mapped region (the cursor API).
    Map,
    /// Bytes to be copied, `len` of them from `start` (at or before the
    /// offset, in its window: a read's page): a mapped region when the
    /// policy maps it, or else a descriptor to `pread` them through.
    Bytes { start: u64, len: u64 },
}

/// A memory-map manager: maps windows of files on demand for its cursors and
/// keeps the mapped bytes and the number of mappings within its limits.
///
/// `Manager` is a cheap handle (`Clone` shares one state) and is `Send +
/// Sync`: all threads may share one. No lock that all files share is taken
/// on a read that finds its window mapped, nor on a copy read through a
/// descriptor the manager keeps, a release or a take-back (a release that
/// leaves the manager over its memory limit tries the evictor's, and leaves
/// a note if another thread holds it); a miss that maps takes its file's
/// lock, the evictor's only when it must make room, and the room's only to
/// wake a thread waiting for room; a read that opens a descriptor takes the
/// ring of kept descriptors' (see the crate documentation's "Concurrency").
///
/// Make one with [`SlidingWindowMapManager`] or [`StaticWindowMapManager`];
/// both dereference to `Manager`.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("f");
/// std::fs::write(&path, b"0123456789")?;
/// let manager = smmap::SlidingWindowMapManager::new();
/// let mut cursor = manager.make_cursor(&path)?;
/// cursor.use_region(2, 3)?;
/// assert_eq!(cursor.buffer(), b"234");
/// assert_eq!(manager.num_file_handles(), 1);
/// drop(cursor);
/// assert_eq!(manager.collect(), 1);
/// assert_eq!(manager.mapped_memory_size(), 0);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Manager {
    shared: Arc<Shared>,
}

/// What every handle of one manager shares: its parts.
pub(crate) struct Shared {
    limits: Limits,
    files: Arc<Files>,
    cells: Arc<Cells>,
    ledger: Ledger,
    sketch: Sketch,
    evictor: Evictor,
    room: Room,
    counters: Counters,
    faults: faults::Faults,
    /// Where cursors record what they do, if anywhere.
    trace: Option<Trace>,
    /// Tells this manager from every other one the process makes (see
    /// [`id`](Self::id)).
    id: u64,
}

impl Shared {
    /// Gives a lease back: the cursor no longer reads its region. If that
    /// leaves the region unused while the manager is over its memory limit
    /// (possible only while every region was in use), the unused regions
    /// are evicted until it is not — by this thread, or by the one holding
    /// the evictor's hand.
    #[inline]
    pub(crate) fn give_back(&self, lease: Lease) {
        // SAFETY: a lease names a cell of this manager, which lives as long
        // as `self`.
        let cell = unsafe { lease.cell.as_ref() };
        if cell.claim.give_back() == 1 {
            self.after_last_client();
        }
    }

    /// A region has just been left unused: evicts over the memory limit,
    /// and lets admission look again.
    #[inline]
    fn after_last_client(&self) {
        if self.ledger.is_over() {
            self.evictor.evict_over(self);
        }
        self.sketch.reopen();
    }

    /// Gives back the lease in `previous`, if any.
    pub(crate) fn release(&self, previous: &mut Option<Lease>) {
        if let Some(lease) = previous.take() {
            self.give_back(lease);
        }
    }

    /// Another lease on the region of `cell` (generation `gen`, `span`)
    /// that the caller holds a lease on (a cloned cursor): it cannot be
    /// evicted meanwhile. `None` only if the region already counts
    /// [`MAX_CURSORS`](crate::claim::MAX_CURSORS) cursors.
    pub(crate) fn share(&self, cell: &Cell, gen: u32, span: Span) -> Option<Lease> {
        cell.claim.try_add().then(|| Lease {
            cell: NonNull::from(cell),
            gen,
            span,
        })
    }

    /// The region of `entry` holding `offset`, if one is mapped and named
    /// by the file's table: taken (one more client counted) without any
    /// lock. The step of every switch between mapped windows.
    #[inline]
    pub(crate) fn find(&self, entry: &FileEntry, offset: u64) -> Option<Lease> {
        self.take_checked(entry, entry.table().get(offset)?, offset)
    }

    /// Takes the region in `cell` if it is still `gen` (a region the
    /// cursor released) and holds `offset`.
    #[inline]
    pub(crate) fn take_back(
        &self,
        entry: &FileEntry,
        cell: &Cell,
        gen: u32,
        offset: u64,
    ) -> Option<Lease> {
        let seen = cell.claim.seen();
        if seen.generation() != gen {
            return None;
        }
        self.take_checked(entry, cell, offset)
    }

    /// Takes the region in `cell` if it is live, of `entry`'s file, and
    /// holds `offset` (the cell is a hint: its region may have been evicted
    /// and the cell refilled for another file).
    #[inline]
    fn take_checked(&self, entry: &FileEntry, cell: &Cell, offset: u64) -> Option<Lease> {
        let seen = cell.claim.seen();
        if !seen.is_live() || !cell.claim.try_take(seen.generation(), seen) {
            return None;
        }
        let lease = Lease {
            cell: NonNull::from(cell),
            gen: seen.generation(),
            span: cell.span(),
        };
        if cell.serial() == entry.serial()
            && offset.wrapping_sub(lease.span.begin) < lease.span.end - lease.span.begin
        {
            Some(lease)
        } else {
            self.give_back_unused(lease);
            None
        }
    }

    /// Gives back a lease taken on a region that was not the one looked
    /// for, with the use the take counted (see
    /// [`Claim::give_back_unused`](crate::claim::Claim::give_back_unused));
    /// otherwise as [`give_back`](Self::give_back).
    #[cold]
    fn give_back_unused(&self, lease: Lease) {
        // SAFETY: a lease names a cell of this manager, which lives as long
        // as `self`.
        let cell = unsafe { lease.cell.as_ref() };
        if cell.claim.give_back_unused() == 1 {
            self.after_last_client();
        }
    }

    /// Adds what a cursor counted: hits, and switches to windows mapped
    /// already (misses served by a region found without the miss path).
    pub(crate) fn add_counts(&self, hits: u64, switches: u64) {
        self.counters.add(Counter::Hits, hits);
        self.counters.add(Counter::Reuses, switches);
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The trace cursors record into, if any.
    #[inline]
    pub(crate) fn trace(&self) -> Option<&Trace> {
        self.trace.as_ref()
    }

    /// A number that tells this manager from others sharing a trace: never
    /// given to another manager of the process, even once this one is gone
    /// (an address would be).
    pub(crate) fn id(&self) -> u64 {
        self.id
    }
}

impl Manager {
    fn new(limits: Limits, trace: Option<Trace>) -> Self {
        let window = limits.slot_window();
        Manager {
            shared: Arc::new(Shared {
                limits,
                files: Files::new(window, limits.max_open_files),
                cells: Arc::new(Cells::new(limits.max_open_handles)),
                ledger: Ledger::new(limits.max_memory_size),
                sketch: Sketch::new(limits.max_open_handles),
                evictor: Evictor::default(),
                room: Room::default(),
                counters: Counters::default(),
                faults: faults::Faults::default(),
                trace,
                id: {
                    // Not a protocol between threads (loom has no part in
                    // it): a number handed out once.
                    static NEXT: std::sync::atomic::AtomicU64 =
                        std::sync::atomic::AtomicU64::new(0);
                    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                },
            }),
        }
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.shared.limits
    }

    /// A cursor on the file at `path`, or on a file given as [`PathOrFd`].
    ///
    /// The file's size and identity (device, inode and, where the system
    /// keeps one, birth time; on Windows, volume and file index) are read
    /// when the manager first meets the file and kept while any cursor or
    /// region of it lives; a relative path is resolved then, too. Every
    /// later window is mapped from that same file: a path renamed over or
    /// replaced since gives [`Error::Replaced`](crate::Error::Replaced),
    /// never another file's bytes — or, while the manager keeps the
    /// descriptor it opened (see [`ManagerBuilder::max_open_files`]), reads
    /// the file it opened, as git does with a pack. A path the manager knows
    /// is not looked at again: a new cursor joins the file's entry. Once a
    /// read has found the path replaced (that `Error::Replaced`), a new
    /// cursor meets the file now there, while the cursors made before keep
    /// the old one; and once every cursor and region of a file is gone, a
    /// new cursor meets the file anew (at its new size, or the new file).
    ///
    /// Errors: the file is missing, a directory, not a regular file, or its
    /// size cannot be read.
    pub fn make_cursor(&self, path_or_fd: impl Into<PathOrFd>) -> Result<WindowCursor> {
        let given = path_or_fd.into();
        let files = &self.shared.files;
        let key = match &given {
            // A path known already needs no system call.
            PathOrFd::Path(p) => std::path::absolute(p).ok().map(FileKey::Path),
            // A descriptor is known by what it refers to now (see FileKey).
            _ => None,
        };
        let entry = match files.find(key.as_ref()) {
            Ok(entry) => entry,
            Err(mut epoch) => loop {
                // The size is read without holding any lock; read again if
                // a file found replaced meanwhile may be the one read.
                let pinned = PinnedFile::stat(given.clone())?;
                hooks::at(Point::BeforeAttach);
                match files.attach(pinned, epoch) {
                    Ok(entry) => break entry,
                    Err(now) => epoch = now,
                }
            },
        };
        Ok(WindowCursor::attached(Attachment {
            manager: self.clone(),
            size: entry.size(),
            entry,
        }))
    }

    /// A cursor on the open file descriptor `fd`, which stays the caller's:
    /// it is never closed by the manager (which keeps a duplicate), and must
    /// stay open while the manager may duplicate it again — while cursors
    /// of it may map or read another window.
    ///
    /// Descriptor numbers are recycled by the operating system; the manager
    /// tells files apart by their identity, so a new file opened under a
    /// number the manager has seen before is never served the old file's
    /// windows, and a cursor whose descriptor number now names another file
    /// gets [`Error::Replaced`](crate::Error::Replaced).
    #[cfg(unix)]
    pub fn make_cursor_fd(&self, fd: RawFd) -> Result<WindowCursor> {
        self.make_cursor(PathOrFd::Fd(fd))
    }

    /// A cursor on the open file handle `handle`, which stays the caller's:
    /// it is never closed by the manager, which keeps a handle of its own
    /// on the file (opened again from it, so that the engine's reads never
    /// move the caller's file position; a duplicate where the caller's
    /// handle shares no reads), and must stay open while the manager may
    /// need another.
    ///
    /// Handle values are recycled; the manager tells files apart by volume
    /// and file index, so a handle value now naming another file gets
    /// [`Error::Replaced`](crate::Error::Replaced), never the old file's
    /// windows.
    #[cfg(windows)]
    pub fn make_cursor_handle(&self, handle: RawHandle) -> Result<WindowCursor> {
        self.make_cursor(PathOrFd::Handle(handle))
    }

    /// Makes the next `count` mappings fail as if the operating system had
    /// refused them with `errno` (`ENOMEM` — on Windows,
    /// `ERROR_NOT_ENOUGH_MEMORY` — is retried once after evicting every
    /// unused region, as a real refusal is). For tests of the failure
    /// paths; only with the `fault-injection` feature.
    #[cfg(feature = "fault-injection")]
    pub fn fail_next_maps(&self, count: usize, errno: i32) {
        self.shared.faults.arm(count, errno);
    }

    /// Makes the next `count` mappings panic instead, as a bug in the
    /// middle of a miss would: for tests that a miss that unwinds gives up
    /// its window and its room. Only with the `fault-injection` feature.
    #[cfg(feature = "fault-injection")]
    pub fn panic_next_maps(&self, count: u32) {
        self.shared.faults.arm_panics(count);
    }

    /// Unmaps every region no cursor uses, and closes every descriptor the
    /// manager keeps (once the reads through them end; they are opened
    /// again when needed, and then checked to be the same files); returns
    /// how many regions it unmapped.
    ///
    /// After it, nothing of the manager holds a file but the regions
    /// cursors use: a file can then be deleted on systems that refuse to
    /// delete open files, and a file renamed over is no longer read through
    /// its old descriptor (its next window is [`Error::Replaced`](crate::Error::Replaced)).
    pub fn collect(&self) -> usize {
        let s = &*self.shared;
        if let Some(t) = &s.trace {
            t.collect();
        }
        s.files.close_descs();
        self.evict_unused(
            Need {
                handle: false,
                bytes: u64::MAX,
            },
            true,
        )
    }

    /// Unmaps unused regions until `size` more bytes fit under the memory
    /// limit, or every unused region when `size` is 0; returns how many.
    /// (smmap's `_collect_lru_region`.)
    pub fn collect_lru_region(&self, size: u64) -> usize {
        let s = &*self.shared;
        if size == 0 {
            return self.evict_unused(
                Need {
                    handle: false,
                    bytes: u64::MAX,
                },
                true,
            );
        }
        let need = Need {
            handle: false,
            bytes: s.ledger.short_by(crate::sys::page_cost(size)),
        };
        if need.bytes == 0 {
            return 0;
        }
        self.evict_unused(need, false)
    }

    /// Evicts unused regions (see `HandGuard::evict`), counted as collected.
    fn evict_unused(&self, need: Need, force: bool) -> usize {
        let s = &*self.shared;
        let mut hand = s.evictor.lock(s);
        let Swept::Evicted(n) = hand.evict(need, force, None) else {
            unreachable!("no admission asked")
        };
        hand.publish_next_victim();
        s.counters.add(Counter::Collected, n as u64);
        n
    }

    /// Number of mapped regions ("handles").
    pub fn num_file_handles(&self) -> usize {
        self.shared.ledger.tracked().0
    }

    /// Number of files with at least one mapped region.
    pub fn num_open_files(&self) -> usize {
        self.shared
            .files
            .entries()
            .iter()
            .filter(|e| e.slots().mapped() > 0)
            .count()
    }

    /// The window size, in bytes; 0 means unlimited (whole files). A
    /// cursor's view is at most this long; the region mapped for it is
    /// rounded out to [`ALLOCATIONGRANULARITY`](crate::ALLOCATIONGRANULARITY)
    /// (see [`SlidingWindowMapManager`]).
    pub fn window_size(&self) -> u64 {
        self.limits().window_size
    }

    /// Bytes mapped now.
    pub fn mapped_memory_size(&self) -> u64 {
        self.shared.ledger.tracked().2
    }

    /// The most regions that may be mapped at once (see
    /// [`ManagerBuilder::max_open_handles`]).
    pub fn max_file_handles(&self) -> usize {
        self.limits().max_open_handles
    }

    /// The most bytes, charged in whole pages, that may be mapped at once,
    /// unless every region is in use (see
    /// [`ManagerBuilder::max_memory_size`]).
    pub fn max_mapped_memory_size(&self) -> u64 {
        self.limits().max_memory_size
    }

    /// How copy reads treat windows that are not mapped.
    pub fn read_policy(&self) -> ReadPolicy {
        self.limits().policy
    }

    /// The most descriptors the manager keeps open.
    pub fn max_open_files(&self) -> usize {
        self.limits().max_open_files
    }

    /// True for a [`StaticWindowMapManager`], which maps whole files.
    pub fn is_static(&self) -> bool {
        self.limits().kind == Kind::Static
    }

    /// A snapshot of the counters. Counters are summed from per-thread
    /// stripes and the rest read part by part, so a snapshot taken while
    /// other threads read is not one instant's.
    pub fn stats(&self) -> Stats {
        check::stats(&self.shared)
    }

    /// Checks the manager's invariants: each file's regions sorted, disjoint,
    /// aligned and within the file, and named by its table; claim words,
    /// cells and the handle count agreeing; accounting equal to the sum of
    /// the live regions; descriptors within their limit; limits held. Meant
    /// for tests and debugging, while no other thread uses the manager;
    /// returns a description of the first broken invariant. Called while
    /// other threads read it is safe, and holds their evictions back until
    /// it returns, but may report as broken what only a moment's traffic
    /// made so (a window published in one file while another is counted).
    pub fn verify_invariants(&self) -> std::result::Result<(), String> {
        check::verify(&self.shared)
    }
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = self.limits();
        f.debug_struct("Manager")
            .field("kind", &l.kind)
            .field("window_size", &l.window_size)
            .field("max_memory_size", &l.max_memory_size)
            .field("max_open_handles", &l.max_open_handles)
            .finish_non_exhaustive()
    }
}

/// Sets the limits of a new manager. From
/// [`SlidingWindowMapManager::builder`] or [`StaticWindowMapManager::builder`].
///
/// ```
/// let manager = smmap::SlidingWindowMapManager::builder()
///     .window_size(1 << 20)
///     .max_memory_size(16 << 20)
///     .max_open_handles(64)
///     .build();
/// assert_eq!(manager.window_size(), 1 << 20);
/// assert_eq!(manager.max_file_handles(), 64);
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct ManagerBuilder<M> {
    limits: Limits,
    trace: Option<Trace>,
    _kind: std::marker::PhantomData<fn() -> M>,
}

impl<M: From<Manager>> ManagerBuilder<M> {
    fn new(kind: Kind, window_size: u64) -> Self {
        ManagerBuilder {
            limits: Limits {
                kind,
                window_size,
                max_memory_size: default_max_memory_size(),
                max_open_handles: default_max_open_handles(),
                max_open_files: default_max_open_files(),
                policy: ReadPolicy::Adaptive,
            },
            trace: None,
            _kind: std::marker::PhantomData,
        }
    }

    /// The largest window, in bytes; 0 means unlimited (map whole files).
    pub fn window_size(mut self, bytes: u64) -> Self {
        self.limits.window_size = bytes;
        self
    }

    /// The most bytes mapped at once; 0 means the default
    /// ([`default_max_memory_size`]).
    ///
    /// Each region is charged what its mapping occupies: its size rounded up
    /// to whole pages, so 10,000 files of 10 bytes cost 10,000 pages. The
    /// limit is exceeded only while every region is in use (a new window is
    /// then mapped anyway, and the excess evicted as soon as one is
    /// released; [`Stats::over_limit_bytes`] shows it).
    pub fn max_memory_size(mut self, bytes: u64) -> Self {
        self.limits.max_memory_size = if bytes == 0 {
            default_max_memory_size()
        } else {
            bytes
        };
        self
    }

    /// The most regions ("handles": live mappings) mapped at once; at least
    /// 1, and at most [`default_max_open_handles`] — half the kernel's map
    /// limit, which is also the default — since a process whose mappings
    /// use up the kernel's limit fails elsewhere (its allocator, an
    /// interpreter) before the manager can evict anything.
    ///
    /// The limit counts the regions the manager tracks and those it is
    /// unmapping; it is never exceeded, even by threads racing. A miss when
    /// every region is in use by a cursor is [`Error::HandleLimit`](crate::Error::HandleLimit).
    /// A region cloned out of a cursor ([`WindowCursor::region`](crate::WindowCursor::region))
    /// and kept past its eviction keeps its mapping outside this count: the
    /// clone's owner holds it (see [`MapRegion`](crate::MapRegion)).
    pub fn max_open_handles(mut self, handles: usize) -> Self {
        self.limits.max_open_handles = handles.clamp(1, default_max_open_handles());
        self
    }

    /// The most descriptors the manager keeps open (at least 1; default
    /// [`default_max_open_files`]). Each file's descriptor is opened once
    /// and reused for every window mapped and every copy read from the file,
    /// and closed when the file's entry goes, or when it is the least
    /// recently used beyond this limit (by the CLOCK approximation: the
    /// first, in the order they were opened, not used since the last such
    /// closing passed it). When the process's descriptor table
    /// is full, the manager closes its cached descriptors and tries once
    /// more.
    pub fn max_open_files(mut self, files: usize) -> Self {
        self.limits.max_open_files = files.max(1);
        self
    }

    /// How reads that copy bytes ([`SlidingWindowMapBuffer`](crate::SlidingWindowMapBuffer)'s
    /// reads) treat a window that is not mapped; default
    /// [`ReadPolicy::Adaptive`].
    pub fn read_policy(mut self, policy: ReadPolicy) -> Self {
        self.limits.policy = policy;
        self
    }

    /// Records what every cursor of the manager does into `trace` (see
    /// [`Trace`]): the cursors made, cloned, released and dropped, and each
    /// read with how it was served. Recording takes the trace's lock once
    /// per read: for finding out what limits a program needs
    /// (`smmap bench --replay`), not for the fastest reads.
    pub fn trace(mut self, trace: Trace) -> Self {
        self.trace = Some(trace);
        self
    }

    /// The manager.
    pub fn build(self) -> M {
        M::from(Manager::new(self.limits, self.trace))
    }
}

macro_rules! flavour {
    ($(#[$doc:meta])* $name:ident, $kind:expr, $window:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $name(Manager);

        impl $name {
            /// A manager with the default limits.
            pub fn new() -> Self {
                Self::builder().build()
            }

            /// A builder to set the limits.
            pub fn builder() -> ManagerBuilder<Self> {
                ManagerBuilder::new($kind, $window)
            }

            /// The shared manager handle.
            pub fn manager(&self) -> &Manager {
                &self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<Manager> for $name {
            fn from(m: Manager) -> Self {
                $name(m)
            }
        }

        impl From<$name> for Manager {
            fn from(m: $name) -> Manager {
                m.0
            }
        }

        impl Deref for $name {
            type Target = Manager;

            fn deref(&self) -> &Manager {
                &self.0
            }
        }
    };
}

flavour!(
    /// A manager that maps windows of `window_size` bytes (default
    /// [`default_window_size`]), placed between the file's existing regions
    /// and aligned to [`ALLOCATIONGRANULARITY`](crate::ALLOCATIONGRANULARITY)
    /// at both ends. A cursor's view is at most `window_size` bytes; the
    /// region under it, rounded out to the granularity, is at most
    /// `window_size` rounded up to it, and one granule more where it is
    /// placed off the multiples of that size (a cursor asked for a range
    /// that crosses one, or the region fills a gap between others).
    /// Regions are charged against `max_memory_size` at the size mapped.
    /// The right choice for most uses, and the only one for files larger
    /// than the address space.
    ///
    /// ```
    /// let manager = smmap::SlidingWindowMapManager::new();
    /// assert_eq!(manager.window_size(), smmap::default_window_size());
    /// ```
    SlidingWindowMapManager,
    Kind::Sliding,
    default_window_size()
);

flavour!(
    /// A manager that maps each file whole, in one region, still unmapping
    /// the least-recently-used unused files to stay within its limits. A
    /// cursor's view is still at most `window_size` bytes when one is set
    /// (default 0: unlimited).
    ///
    /// ```
    /// let manager = smmap::StaticWindowMapManager::new();
    /// assert_eq!(manager.window_size(), 0);
    /// assert!(manager.is_static());
    /// ```
    StaticWindowMapManager,
    Kind::Static,
    0
);

/// A cursor's tie to its file's entry in a manager: keeps both alive, and is
/// the cursor's only way into the manager.
#[derive(Clone)]
pub(crate) struct Attachment {
    manager: Manager,
    entry: Arc<FileEntry>,
    /// The pinned size, kept here too: a read checks it without touching
    /// the entry.
    size: u64,
}

impl Attachment {
    pub(crate) fn manager(&self) -> &Manager {
        &self.manager
    }

    #[inline]
    pub(crate) fn shared(&self) -> &Shared {
        &self.manager.shared
    }

    #[inline]
    pub(crate) fn entry(&self) -> &Arc<FileEntry> {
        &self.entry
    }

    pub(crate) fn file(&self) -> &PinnedFile {
        self.entry.pinned()
    }

    /// The file's size, as pinned.
    #[inline]
    pub(crate) fn size(&self) -> u64 {
        self.size
    }
}
