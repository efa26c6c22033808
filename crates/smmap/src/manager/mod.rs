//! The managers: [`Manager`], shared by every cursor, and its two flavours
//! [`SlidingWindowMapManager`] and [`StaticWindowMapManager`].

mod desc_ring;
mod faults;
mod heat;
mod lru;
mod region_list;
mod state;

use std::fmt;
use std::ops::Deref;
#[cfg(unix)]
use std::os::fd::RawFd;
#[cfg(windows)]
use std::os::windows::io::RawHandle;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crate::cursor::WindowCursor;
use crate::error::Result;
use crate::region::MapRegion;
use crate::source::{PathOrFd, PinnedFile};
use crate::stats::Stats;
use state::{Finish, Obtain, Released, Room, State};
pub(crate) use state::{Kind, Limits, Want};

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
    /// at least 3 times lately, and more than twice as often (TinyLFU's
    /// admission rule; the counts halve every 16 windows' worth of asks, or
    /// every 8 asks per window read when more windows are read than the
    /// budget holds). A
    /// cold scan then never flushes hot windows, uniformly random reads under
    /// a budget far below the working set cost about a `pread` each instead
    /// of a map and an unmap (whose TLB shootdown interrupts every CPU
    /// running the process), and skewed reads keep their hot windows
    /// mapped. A window is compared only with one that can be evicted now:
    /// when every window is in use, the read is copied — a copy read never
    /// fails for lack of a handle and never maps past `max_memory_size`.
    /// A buffer's `begin_access` maps nothing: its first read decides.
    #[default]
    Adaptive,
    /// Always map the window, evicting as needed; a buffer's `begin_access`
    /// maps its first window (the behaviour of smmap 6.0.0).
    AlwaysMap,
}

/// A memory-map manager: maps windows of files on demand for its cursors and
/// keeps the mapped bytes and the number of mappings within its limits.
///
/// `Manager` is a cheap handle (`Clone` shares one state) and is `Send +
/// Sync`: all threads may share one. Its lock is taken only to find, place
/// or evict a region — never while a caller reads bytes, never while the
/// operating system maps or unmaps, and never when a cursor's current region
/// already holds the offset it asks for.
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

struct Shared {
    limits: Limits,
    state: Mutex<State>,
    /// Signalled when a pending window or an unmapping finishes.
    changed: Condvar,
    /// Threads waiting on `changed`, counted under the lock (see `notify`).
    waiters: AtomicUsize,
    /// Whether the state is over its memory limit, for cursors that release
    /// a region without the lock (see [`Manager::after_park`]); written
    /// under the lock.
    over: AtomicBool,
    faults: faults::Faults,
}

impl Manager {
    fn new(limits: Limits) -> Self {
        Manager {
            shared: Arc::new(Shared {
                limits,
                state: Mutex::new(State::new(&limits)),
                changed: Condvar::new(),
                waiters: AtomicUsize::new(0),
                over: AtomicBool::new(false),
                faults: faults::Faults::default(),
            }),
        }
    }

    /// The state, even if a thread panicked while holding the lock: every
    /// update of the state completes before anything that could panic.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.shared.limits
    }

    /// Runs `f` under the lock, then unmaps what it evicted, after the lock
    /// is gone (see [`unmap`](Self::unmap)).
    fn with_state<T>(&self, f: impl FnOnce(&mut State, &Limits, &mut Released) -> T) -> T {
        let mut released = Released::default();
        let out = {
            let mut st = self.lock();
            let out = f(&mut st, self.limits(), &mut released);
            self.settle(&mut st, &mut released);
            out
        };
        self.unmap(released);
        out
    }

    /// Says whether the state is over its memory limit, for
    /// [`after_park`](Self::after_park), and if it is, evicts the unused
    /// regions until it is not. Under the lock, after every change.
    ///
    /// With `after_park`, no unused region is left over the limit: a cursor
    /// gives its client back, then reads the flag; this stores the flag,
    /// then reads the clients as it evicts (all sequentially consistent).
    /// Either the eviction here sees the client gone, or the cursor sees the
    /// flag and evicts under the lock itself.
    fn settle(&self, st: &mut State, released: &mut Released) {
        let over = st.is_over(self.limits());
        if over || self.shared.over.load(Ordering::Relaxed) {
            self.shared.over.store(over, Ordering::SeqCst);
        }
        if over {
            st.evict_over(self.limits(), released);
        }
    }

    /// After a cursor released its region without the lock (see
    /// `MapRegion::park`): if the manager is over its memory limit, evicts
    /// under the lock what is now unused, as a release under the lock does.
    pub(crate) fn after_park(&self) {
        if self.shared.over.load(Ordering::SeqCst) {
            self.with_state(|_, _, _| ());
        }
    }

    /// Drops the evicted regions (unmapping those no caller holds a clone
    /// of), then frees their room and wakes the misses waiting for it. Until
    /// then their handles and bytes stay counted, so the limits hold for
    /// what the operating system has mapped.
    fn unmap(&self, released: Released) {
        let room = released.room;
        drop(released.regions);
        self.give_back(room);
    }

    /// Frees the room of regions unmapped since the lock was released.
    fn give_back(&self, room: Room) {
        if room != Room::default() {
            self.lock().unmapped(room);
            self.notify();
        }
    }

    /// Waits until the state's generation is no longer `seen`.
    fn wait(&self, seen: u64) {
        let mut st = self.lock();
        st.count_wait();
        self.shared.waiters.fetch_add(1, Ordering::Relaxed);
        while st.generation() == seen {
            st = self
                .shared
                .changed
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
        self.shared.waiters.fetch_sub(1, Ordering::Relaxed);
    }

    /// Wakes the waiting misses, if there are any (a notification is a
    /// system call; most misses have nobody to wake). No wake-up is lost: a
    /// waiter counts itself under the lock before it sleeps, and every
    /// change of the generation is made under the lock before this is
    /// called, so either the waiter saw the new generation or this sees the
    /// waiter.
    fn notify(&self) {
        if self.shared.waiters.load(Ordering::Relaxed) > 0 {
            self.shared.changed.notify_all();
        }
    }

    /// The miss path of the cursor attached as `at`, at `offset`: finds or maps a
    /// region, or says to copy (see [`Want`]), releasing the cursor's
    /// `previous` region (taking it) only once the next one is certain.
    ///
    /// The system calls happen outside the lock. Under the lock: find the
    /// region, or reserve a window for it, evicting first if needed (then
    /// the evicted regions are unmapped and the lock taken again, which also
    /// frees their room). The file's descriptor is opened, if it is not
    /// cached, without the lock and before anything is released, so that a
    /// file that cannot be opened (removed, replaced, a FIFO now) leaves the
    /// cursor with its region. The window is mapped without the lock, then
    /// put in place of its reservation under it.
    fn obtain(
        &self,
        at: &Attachment,
        offset: u64,
        want_size: u64,
        previous: &mut Option<MapRegion>,
        hits: u64,
        want: Want,
    ) -> Result<Fetched> {
        let (idx, file, size) = (at.idx, &*at.file, at.size);
        let mut first = Some(hits);
        let mut retried = false;
        // Admitted in place of a colder window (counted once mapped).
        let mut admitted = false;
        let mut opened: Option<std::fs::File> = None;
        let mut closed_descs = false;
        // Room of regions this thread unmapped, to give back under the lock.
        let mut freed = Room::default();
        loop {
            let mut released = Released::default();
            let step = {
                let mut st = self.lock();
                st.unmapped(std::mem::take(&mut freed));
                let limits = self.limits();
                if let Some(desc) = opened.take() {
                    st.install_desc(limits, idx, desc);
                }
                if let Some(hits) = first.take() {
                    st.add_hits(hits);
                    if offset < size {
                        st.count_miss();
                        st.count_ask(idx, offset);
                    }
                }
                let step = if offset >= size {
                    if want == Want::Map {
                        st.release_previous(limits, idx, previous, &mut released);
                    }
                    Ok(None)
                } else {
                    st.begin_obtain(
                        limits,
                        idx,
                        offset,
                        want_size,
                        previous,
                        want,
                        &mut admitted,
                        &mut released,
                    )
                    .map(Some)
                };
                // A reservation follows no eviction: its finish settles.
                if matches!(step, Ok(Some(Obtain::Map(_)))) {
                    self.shared.over.store(st.is_over(limits), Ordering::SeqCst);
                } else {
                    self.settle(&mut st, &mut released);
                }
                step
            };
            self.notify();
            freed = released.room;
            drop(released.regions);
            let reservation = match step {
                Ok(Some(Obtain::Unmap)) => continue,
                Ok(Some(Obtain::Open)) => {
                    self.give_back(std::mem::take(&mut freed));
                    match file.open() {
                        Ok((desc, _)) => opened = Some(desc),
                        Err(e) if descriptors_full(&e) && !closed_descs => {
                            // Our cached descriptors may be what fills the
                            // table: close them and try once more.
                            closed_descs = true;
                            self.lock().close_descs();
                        }
                        Err(e) => return Err(e),
                    }
                    continue;
                }
                Ok(Some(Obtain::Wait(seen))) => {
                    self.give_back(std::mem::take(&mut freed));
                    self.wait(seen);
                    continue;
                }
                Ok(Some(Obtain::Map(reservation))) => reservation,
                other => {
                    self.give_back(freed);
                    return Ok(match other? {
                        Some(Obtain::Found(region)) => Fetched::Mapped(region),
                        Some(Obtain::Copy { desc, len }) => Fetched::Copy { desc, len },
                        _ => Fetched::Nothing,
                    });
                }
            };
            debug_assert_eq!(freed, Room::default(), "a reservation follows no eviction");
            debug_assert!(previous.is_none(), "released before a reservation");
            let (ofs, len) = (reservation.window.ofs, reservation.window.size);
            let mapped = self
                .shared
                .faults
                .take()
                .unwrap_or_else(|| MapRegion::map_opened(file, &reservation.desc, ofs, len))
                .map_err(|e| self.shared.faults.name(e, file, &reservation));
            let finish = self.with_state(|st, limits, released| {
                st.finish_obtain(limits, &reservation, mapped, retried, admitted, released)
            });
            self.notify();
            match finish? {
                Finish::Done(region) => return Ok(Fetched::Mapped(region)),
                Finish::Retry => retried = true,
            }
        }
    }

    /// A cursor on the file at `path`, or on a file given as [`PathOrFd`].
    ///
    /// The file's size and identity (device and inode; on Windows, volume
    /// and file index) are read when the manager first meets the file and
    /// kept while any cursor or region of it lives; a relative path is
    /// resolved then, too. Every later window
    /// is mapped from that same file: a path renamed over or replaced since
    /// gives [`Error::Replaced`](crate::Error::Replaced), never another
    /// file's bytes — or, while the manager keeps the descriptor it opened
    /// (see [`ManagerBuilder::max_open_files`]), reads the file it opened,
    /// as git does with a pack. Once every cursor and region of the file is
    /// gone, a new cursor meets the file anew (at its new size, or the new
    /// file).
    ///
    /// Errors: the file is missing, a directory, not a regular file, or its
    /// size cannot be read.
    pub fn make_cursor(&self, path_or_fd: impl Into<PathOrFd>) -> Result<WindowCursor> {
        let given = path_or_fd.into();
        let attached = match &given {
            PathOrFd::Path(p) => {
                // A path known already needs no system call.
                let key = std::path::absolute(p)
                    .ok()
                    .map(crate::source::FileKey::Path);
                key.and_then(|key| self.lock().attach_known(&key))
            }
            // A descriptor is known by what it refers to now (see FileKey).
            _ => None,
        };
        let (idx, file) = match attached {
            Some(found) => found,
            None => {
                // Read the size without holding the lock.
                let pinned = PinnedFile::stat(given)?;
                self.lock().attach(pinned)
            }
        };
        Ok(WindowCursor::attached(Attachment {
            manager: self.clone(),
            idx,
            size: file.size,
            file,
        }))
    }

    /// A cursor on the open file descriptor `fd`, which stays the caller's:
    /// it is never closed by the manager, and must stay open while windows of
    /// it are mapped.
    ///
    /// Descriptor numbers are recycled by the operating system; the manager
    /// tells files apart by device and inode, so a new file opened under a
    /// number the manager has seen before is never served the old file's
    /// windows, and a cursor whose descriptor number now names another file
    /// gets [`Error::Replaced`](crate::Error::Replaced).
    #[cfg(unix)]
    pub fn make_cursor_fd(&self, fd: RawFd) -> Result<WindowCursor> {
        self.make_cursor(PathOrFd::Fd(fd))
    }

    /// A cursor on the open file handle `handle`, which stays the caller's:
    /// it is never closed by the manager (which keeps a duplicate), and must
    /// stay open while the manager may duplicate it again.
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

    /// Unmaps every region no cursor uses, and closes every descriptor the
    /// manager keeps (they are opened again when needed, and then checked
    /// to be the same files); returns how many regions it unmapped.
    ///
    /// After it, nothing of the manager holds a file but the regions
    /// cursors use: a file can then be deleted on systems that refuse to
    /// delete open files, and a file renamed over is no longer read through
    /// its old descriptor (its next window is [`Error::Replaced`](crate::Error::Replaced)).
    pub fn collect(&self) -> usize {
        self.with_state(|st, _, rel| {
            st.close_descs();
            st.collect_lru(0, u64::MAX, rel)
        })
    }

    /// Unmaps least-recently-used unused regions until `size` more bytes fit
    /// under the memory limit, or every unused region when `size` is 0;
    /// returns how many. (smmap's `_collect_lru_region`.)
    pub fn collect_lru_region(&self, size: u64) -> usize {
        self.with_state(|st, limits, rel| st.collect_lru(size, limits.max_memory_size, rel))
    }

    /// Number of mapped regions ("handles").
    pub fn num_file_handles(&self) -> usize {
        self.lock().handles()
    }

    /// Number of files with at least one mapped region.
    pub fn num_open_files(&self) -> usize {
        self.lock().open_files()
    }

    /// The largest window mapped for a cursor, in bytes; 0 means unlimited
    /// (whole files).
    pub fn window_size(&self) -> u64 {
        self.limits().window_size
    }

    /// Bytes mapped now.
    pub fn mapped_memory_size(&self) -> u64 {
        self.lock().memory()
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

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.lock().stats(self.limits())
    }

    /// Checks the manager's invariants: each file's regions sorted, disjoint,
    /// aligned and within the file; client counts and the LRU list agreeing;
    /// accounting equal to the sum of the live regions; limits held. Meant
    /// for tests and debugging; returns a description of the first broken
    /// invariant.
    pub fn verify_invariants(&self) -> std::result::Result<(), String> {
        self.lock().verify(self.limits())
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
#[derive(Clone, Copy, Debug)]
#[must_use]
pub struct ManagerBuilder<M> {
    limits: Limits,
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

    /// The manager.
    pub fn build(self) -> M {
        M::from(Manager::new(self.limits))
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
    /// A manager that maps windows of at most `window_size` bytes (default
    /// [`default_window_size`]), placed between the file's existing regions
    /// and aligned to [`ALLOCATIONGRANULARITY`](crate::ALLOCATIONGRANULARITY).
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

/// What a miss gave a cursor.
pub(crate) enum Fetched {
    /// A mapped region holding the offset (one more client counted on it).
    Mapped(MapRegion),
    /// Copy `len` bytes from the offset through `desc` (`pread`).
    Copy { desc: Arc<std::fs::File>, len: u64 },
    /// Nothing: the offset is at or past the end.
    Nothing,
}

/// True if opening failed because a descriptor table is full.
fn descriptors_full(e: &crate::Error) -> bool {
    matches!(e, crate::Error::Open { .. })
        && e.raw_os_error()
            .is_some_and(crate::sys::is_descriptor_table_full)
}

/// A cursor's tie to its file's entry in a manager: counts one cursor on the
/// entry while it lives (`Clone` counts another, `Drop` uncounts), and is the
/// cursor's only way into the manager.
pub(crate) struct Attachment {
    manager: Manager,
    idx: usize,
    file: Arc<PinnedFile>,
    /// The pinned size, kept in the cursor: reads check it without touching
    /// the pinned file (one cache miss fewer).
    size: u64,
}

impl Attachment {
    pub(crate) fn manager(&self) -> &Manager {
        &self.manager
    }

    pub(crate) fn file(&self) -> &PinnedFile {
        &self.file
    }

    /// The file's size, as pinned.
    #[inline]
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// The miss path at `offset` (see `Manager::obtain`): `previous` is
    /// taken only when released. Adds `hits` to the statistics.
    pub(crate) fn obtain(
        &self,
        offset: u64,
        want_size: u64,
        previous: &mut Option<MapRegion>,
        hits: u64,
        want: Want,
    ) -> Result<Fetched> {
        self.manager
            .obtain(self, offset, want_size, previous, hits, want)
    }

    /// Releases `region` (if any; dropped under the lock, see
    /// `State::release`) and adds `hits` to the statistics.
    pub(crate) fn release(&self, region: Option<MapRegion>, hits: u64) {
        self.manager.with_state(move |st, limits, released| {
            st.add_hits(hits);
            if let Some(region) = region {
                st.release(limits, self.idx, region, released);
            }
        });
    }

    /// Another attachment to the same file, also using `region` if given.
    pub(crate) fn clone_using(&self, region: Option<&MapRegion>) -> Attachment {
        let mut st = self.manager.lock();
        st.add_cursor(self.idx);
        if let Some(region) = region {
            st.acquire(region);
        }
        drop(st);
        Attachment {
            manager: self.manager.clone(),
            idx: self.idx,
            file: self.file.clone(),
            size: self.size,
        }
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        self.manager.lock().detach(self.idx);
    }
}
