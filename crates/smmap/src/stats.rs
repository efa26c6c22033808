//! [`Stats`]: what the manager has done, for tuning and monitoring.

/// Declares [`Stats`] and [`Stats::fields`] from one list, so that every
/// counter is in both.
macro_rules! stats {
    ($($(#[$doc:meta])* $name:ident: $ty:ty,)*) => {
        /// A snapshot of a manager's counters, from [`Manager::stats`](crate::Manager::stats).
        ///
        /// Counters only grow; the rest describe the moment of the snapshot.
        /// Cursor hits, and a cursor's moves to a window mapped already
        /// (`reuses` found without the manager's miss path), are counted by
        /// each cursor without touching shared memory and added to the
        /// manager's total whenever the cursor next takes the miss path, or is
        /// dropped; a snapshot may therefore lag behind live cursors' hits and
        /// reuses. The other counters are summed from per-thread stripes.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct Stats {
            $($(#[$doc])* pub $name: $ty,)*
        }

        impl Stats {
            /// Every counter by name, in declaration order: what a binding
            /// or a report shows.
            ///
            /// ```
            /// let s = smmap::SlidingWindowMapManager::new().stats();
            /// assert!(s.fields().iter().any(|&(name, v)| name == "maps" && v == 0));
            /// ```
            #[allow(clippy::unnecessary_cast)] // counts are u64 and usize
            pub fn fields(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name as u64),)*]
            }
        }
    };
}

stats! {
    /// Reads served by the cursor's current region (or copy), or by the
    /// region it released last, taken back.
    hits: u64,
    /// Reads the cursor's region did not hold (reuses included).
    misses: u64,
    /// Misses served by a region that was already mapped: a switch to
    /// another window of the file (taken without a lock when the file's
    /// table names it, else found under the file's lock).
    reuses: u64,
    /// Regions mapped.
    maps: u64,
    /// Mappings the operating system refused (including ones that succeeded
    /// when tried again after unmapping every unused region).
    map_failures: u64,
    /// Times every unused region was unmapped so that a refused mapping
    /// could be tried again.
    retries: u64,
    /// Misses that waited for another thread: for the window holding their
    /// offset, which it was mapping, or for room it was unmapping or about
    /// to use.
    waits: u64,
    /// Copy reads served by `pread` instead of mapping a window that would
    /// have had to evict another (the adaptive read policy).
    preads: u64,
    /// Bytes those reads copied.
    pread_bytes: u64,
    /// Windows those reads reached into: each window from the page a copy
    /// starts at to as far as it goes, once per copy (a copy of the rest
    /// of a long read may cover several) — about the windows the reads
    /// would have mapped.
    pread_windows: u64,
    /// Windows a copy read mapped, evicting another, because they proved
    /// hotter than it (asked for at least 5 times lately, and more often
    /// than it).
    ghost_hits: u64,
    /// Descriptors opened (paths opened, callers' descriptors duplicated);
    /// each is kept and reused for every map and copy of its file, up to
    /// `max_open_files` kept (past it, one is used for its read and
    /// closed).
    fd_opens: u64,
    /// Regions unmapped to stay within the limits or to retry a mapping.
    evictions: u64,
    /// Regions unmapped by `collect`.
    collected: u64,
    /// Files with at least one mapped region.
    open_files: usize,
    /// Files known to the manager (with a cursor or a region).
    known_files: usize,
    /// Bytes mapped now.
    mapped_bytes: u64,
    /// Bytes charged against `max_memory_size` now: each region's size
    /// rounded up to whole pages.
    charged_bytes: u64,
    /// Most bytes ever mapped at once.
    peak_mapped_bytes: u64,
    /// Descriptors the manager has open now (one being closed included,
    /// until the last read through it ends).
    open_descriptors: usize,
    /// Windows whose asks are being counted now (for the proof of heat).
    ghosts: usize,
    /// Regions ("handles") mapped now.
    windows: usize,
    /// Most regions ever mapped at once.
    peak_windows: usize,
    /// Bytes charged beyond `max_memory_size` now; only non-zero while every
    /// region is in use.
    over_limit_bytes: u64,
    /// Most bytes ever charged beyond `max_memory_size` (in whole pages, as
    /// `over_limit_bytes`).
    peak_over_limit_bytes: u64,
}
