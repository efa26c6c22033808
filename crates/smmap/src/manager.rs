//! The managers: [`Manager`], shared by every cursor, and its two flavours
//! [`SlidingWindowMapManager`] and [`StaticWindowMapManager`].

use std::fmt;
use std::ops::Deref;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::cursor::WindowCursor;
use crate::error::Result;
use crate::region::MapRegion;
use crate::source::PathOrFd;
use crate::state::{FileKey, Kind, Limits, Released, State};
use crate::stats::Stats;

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

/// A memory-map manager: maps windows of files on demand for its cursors and
/// keeps the mapped bytes and the number of mappings within its limits.
///
/// `Manager` is a cheap handle (`Clone` shares one state) and is `Send +
/// Sync`: all threads may share one. Its lock is taken only to find, place,
/// map or evict a region — never while a caller reads bytes, and never when
/// a cursor's current region already holds the offset it asks for.
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
}

impl Manager {
    fn new(limits: Limits) -> Self {
        Manager {
            shared: Arc::new(Shared {
                limits,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// The state, even if a thread panicked while holding the lock: every
    /// update of the state completes before anything that could panic.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.shared.limits
    }

    /// Runs `f` under the lock, then drops the regions it released (which
    /// unmaps those nobody else holds) after the lock is gone.
    pub(crate) fn with_state<T>(
        &self,
        f: impl FnOnce(&mut State, &Limits, &mut Released) -> T,
    ) -> T {
        let mut released = Released::new();
        let out = f(&mut self.lock(), self.limits(), &mut released);
        drop(released);
        out
    }

    /// The miss path of a cursor on file `idx`: releases `previous`, then
    /// finds or maps a region holding `offset` (`None` at or past the end).
    /// Mapping happens without the lock (see `State::begin_obtain`).
    pub(crate) fn obtain(
        &self,
        idx: usize,
        offset: u64,
        file_size: u64,
        want: u64,
        previous: Option<MapRegion>,
        hits: u64,
    ) -> Result<Option<MapRegion>> {
        use crate::state::{Finish, Obtain};
        let mut retried = false;
        let mut first = Some((previous, hits));
        loop {
            let step = self.with_state(|st, limits, released| {
                if let Some((previous, hits)) = first.take() {
                    st.add_hits(hits);
                    if let Some(prev) = &previous {
                        st.release(limits, idx, prev, released);
                    }
                    if offset >= file_size {
                        return Ok(None);
                    }
                    st.count_miss();
                }
                st.begin_obtain(limits, idx, offset, want, released)
                    .map(Some)
            })?;
            let reservation = match step {
                None => return Ok(None),
                Some(Obtain::Found(region)) => return Ok(Some(region)),
                Some(Obtain::Map(reservation)) => reservation,
            };
            let mapped = reservation.map();
            let finish = self.with_state(|st, limits, released| {
                st.finish_obtain(limits, &reservation, mapped, retried, released)
            })?;
            match finish {
                Finish::Done(region) => return Ok(Some(region)),
                Finish::Retry => retried = true,
                Finish::Again => {}
            }
        }
    }

    /// A cursor on the file at `path`, or on a file given as [`PathOrFd`].
    ///
    /// The file's size is read when the manager first meets the file and kept
    /// while any cursor or region of it lives; a file that grows is seen at
    /// its new size once all of them are gone.
    ///
    /// Errors: the file is missing, a directory, not a regular file, or its
    /// size cannot be read.
    pub fn make_cursor(&self, path_or_fd: impl Into<PathOrFd>) -> Result<WindowCursor> {
        let source = path_or_fd.into();
        let (idx, size, source) = if source.fd().is_some() {
            // A descriptor is known by what it refers to now (see FileKey).
            let (size, id) = source.stat()?;
            self.lock().attach(
                FileKey {
                    source,
                    identity: Some(id),
                },
                size,
            )
        } else {
            let key = FileKey {
                source,
                identity: None,
            };
            let known = self.lock().attach_known(&key);
            match known {
                Some(found) => found,
                None => {
                    // Read the size without holding the lock.
                    let size = key.source.file_size()?;
                    self.lock().attach(key, size)
                }
            }
        };
        Ok(WindowCursor::attached(self.clone(), idx, size, source))
    }

    /// A cursor on the open file descriptor `fd`, which stays the caller's:
    /// it is never closed by the manager, and must stay open while windows of
    /// it are mapped.
    ///
    /// Descriptor numbers are recycled by the operating system; the manager
    /// tells files apart by device and inode, so a new file opened under a
    /// number the manager has seen before is never served the old file's
    /// windows.
    pub fn make_cursor_fd(&self, fd: RawFd) -> Result<WindowCursor> {
        self.make_cursor(PathOrFd::Fd(fd))
    }

    /// Unmaps every region no cursor uses; returns how many.
    pub fn collect(&self) -> usize {
        self.with_state(|st, _, rel| st.collect(rel))
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

    /// The most regions that may be mapped at once.
    pub fn max_file_handles(&self) -> usize {
        self.limits().max_open_handles
    }

    /// The most bytes that may be mapped at once, unless every region is in
    /// use.
    pub fn max_mapped_memory_size(&self) -> u64 {
        self.limits().max_memory_size
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
                max_open_handles: usize::MAX,
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
    pub fn max_memory_size(mut self, bytes: u64) -> Self {
        self.limits.max_memory_size = if bytes == 0 {
            default_max_memory_size()
        } else {
            bytes
        };
        self
    }

    /// The most regions mapped at once; at least 1.
    pub fn max_open_handles(mut self, handles: usize) -> Self {
        self.limits.max_open_handles = handles.max(1);
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
