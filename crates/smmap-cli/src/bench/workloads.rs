//! The workloads as data — which files, which reads, how many threads,
//! which budget, which methods — and the timed runs of one workload.
//!
//! Adding a workload: one entry in [`plan`].

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;
use smmap::{Manager, ReadPolicy, SlidingWindowMapManager};

use super::data::{self, Rng};
use super::methods::{Access, FileSet, Method, MethodId, Op, Reader};

/// Bytes per read of the 4 KiB workloads.
pub const READ: u64 = 4096;

/// The window of the window-switch rows, whatever `--window` says: small
/// enough that random reads of the large file switch windows, while the
/// default limits hold every window of it.
pub const SWITCH_WINDOW: u64 = 1 << 20;

/// Which files a workload reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Files {
    /// The one large file; each thread keeps its buffer or cursor.
    Large,
    /// The small files; each read releases its window.
    Small,
}

/// Where the reads go.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pattern {
    /// Each file once, whole, front to back.
    Scan,
    /// `len` bytes at a random offset of a random file.
    Uniform {
        /// Bytes per read.
        len: u64,
    },
    /// As `Uniform`, but the first `hot_files` of the files (a fraction)
    /// get `hot_reads` of the reads.
    Skewed {
        /// Bytes per read.
        len: u64,
        /// The hot share of the files.
        hot_files: f64,
        /// The share of the reads that go to them.
        hot_reads: f64,
    },
}

/// The engine's budget for a workload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Budget {
    /// Most bytes mapped (`None`: the engine's default).
    pub max_memory: Option<u64>,
    /// Most mappings (`None`: the engine's default).
    pub max_handles: Option<usize>,
    /// Most descriptors kept (`None`: the engine's default).
    pub max_open_files: Option<usize>,
}

impl Budget {
    /// True if the budget limits the engine (the small-files rows).
    pub fn is_set(&self) -> bool {
        self.max_memory.is_some() || self.max_handles.is_some()
    }

    /// A manager with this budget, windows of `window` bytes and `policy`.
    pub fn manager(&self, window: u64, policy: ReadPolicy) -> Manager {
        let mut b = SlidingWindowMapManager::builder()
            .window_size(window)
            .read_policy(policy);
        if let Some(m) = self.max_memory {
            b = b.max_memory_size(m);
        }
        if let Some(h) = self.max_handles {
            b = b.max_open_handles(h);
        }
        if let Some(f) = self.max_open_files {
            b = b.max_open_files(f);
        }
        b.build().into()
    }
}

/// One row of the table.
#[derive(Clone, Debug)]
pub struct Workload {
    /// The JSON name; the rows named `{name}_threads` right after the row
    /// `{name}` are its threaded twins, one per thread count (see thread
    /// scaling).
    pub name: &'static str,
    /// The table's label.
    pub label: &'static str,
    /// Which files.
    pub files: Files,
    /// Which reads.
    pub pattern: Pattern,
    /// Threads, each with its own list of reads, sharing one manager.
    pub threads: usize,
    /// Reads per thread.
    pub ops: usize,
    /// The engine's budget.
    pub budget: Budget,
    /// The engine's window size when not `--window`'s.
    pub window: Option<u64>,
    /// The methods timed, in column order.
    pub methods: &'static [MethodId],
}

/// The methods of the large-file rows: those that need no budget.
const LARGE: &[MethodId] = &[
    MethodId::Buffer,
    MethodId::Cursor,
    MethodId::Mmap,
    MethodId::Pread,
];

/// The methods of the uniform small-files rows: all but the oracle, which
/// only a skewed row has hot files for.
const SMALL: &[MethodId] = &[
    MethodId::Buffer,
    MethodId::BufferMap,
    MethodId::Cursor,
    MethodId::Mmap,
    MethodId::Pread,
    MethodId::MapUnmap,
];

/// The methods of the skewed row: every one.
const SKEWED: &[MethodId] = &MethodId::ALL;

/// What [`plan`] needs to know.
#[derive(Clone, Debug)]
pub struct Sizes {
    /// Random 1-byte reads of the large file per run.
    pub ops: usize,
    /// The thread counts of the threaded rows, ascending, each above 1.
    pub threads: Vec<usize>,
    /// The budget of the uniform small-files rows.
    pub small: Budget,
    /// The budget of the skewed row.
    pub skewed: Budget,
    /// Whether there are small files.
    pub small_files: bool,
    /// Whether the large file has room for the window-switch rows: more
    /// than one window of [`SWITCH_WINDOW`] (in one, no read switches).
    pub switches: bool,
}

/// The share of the small files that is hot in the skewed row, and the
/// share of its reads that go to them.
pub const HOT_FILES: f64 = 0.2;
/// See [`HOT_FILES`].
pub const HOT_READS: f64 = 0.8;

/// The benchmark's rows, in order: one line each (name, label, files,
/// reads, reads per thread, budget); a row's threaded twins, one per count
/// of [`Sizes::threads`], follow it.
#[rustfmt::skip]
pub fn plan(s: &Sizes) -> Vec<Workload> {
    use Files::{Large, Small};
    let n4 = (s.ops / 4).max(1);
    // Reads across the small files mostly map a window each: fewer of them.
    let n_small = (s.ops / 10).max(1);
    let (none, t) = (Budget::default(), &s.threads[..]);
    let uniform = |len| Pattern::Uniform { len };
    let skewed = Pattern::Skewed { len: READ, hot_files: HOT_FILES, hot_reads: HOT_READS };
    let w = Workload::new;
    let mut rows = vec![
        w("sequential_scan", "sequential scan", Large, Pattern::Scan, 1, none),
        w("random_1byte", "random 1-byte reads", Large, uniform(1), s.ops, none),
    ];
    rows.extend(w("random_4k", "random 4 KiB reads", Large, uniform(READ), n4, none)
        .with_twins("random_4k_threads", "random 4 KiB reads, threads", t));
    if s.switches {
        rows.push(w("switch_1byte", "window switches, 1-byte reads (1 MiB windows)", Large, uniform(1), s.ops, none)
            .with_window(SWITCH_WINDOW));
        rows.extend(w("switch_4k", "window switches, 4 KiB reads (1 MiB windows)", Large, uniform(READ), n4, none)
            .with_window(SWITCH_WINDOW)
            .with_twins("switch_4k_threads", "window switches, 4 KiB reads, threads", t));
    }
    if s.small_files {
        rows.extend(w("small_files_random_4k", "small files, 4 KiB reads", Small, uniform(READ), n_small, s.small)
            .with_twins("small_files_random_4k_threads", "small files, 4 KiB reads, threads", t));
        rows.push(w("small_files_skewed_4k", "small files, skewed 80/20", Small, skewed, n_small, s.skewed)
            .with_methods(SKEWED));
    }
    rows
}

/// The budget under which the hot files of the skewed row fit and the whole
/// set does not: a quarter more mappings and memory than the hot files
/// take (memory charged in whole pages, as the engine charges it).
pub fn hot_budget(sizes: &[u64], max_open_files: Option<usize>) -> Budget {
    let hot = hot_count(sizes.len());
    let page = *smmap::ALLOCATIONGRANULARITY;
    let hot_bytes: u64 = sizes[..hot].iter().map(|s| s.div_ceil(page) * page).sum();
    Budget {
        max_memory: Some((hot_bytes + hot_bytes / 4).max(page)),
        max_handles: Some((hot + hot / 4).max(2)),
        max_open_files,
    }
}

/// How many of `n` files are hot.
pub fn hot_count(n: usize) -> usize {
    ((n as f64 * HOT_FILES).ceil() as usize).clamp(1, n.max(1))
}

impl Workload {
    /// A row read by one thread, with every method that suits its files.
    pub fn new(
        name: &'static str,
        label: &'static str,
        files: Files,
        pattern: Pattern,
        ops: usize,
        budget: Budget,
    ) -> Self {
        let methods = match files {
            Files::Large => LARGE,
            Files::Small => SMALL,
        };
        Workload {
            name,
            label,
            files,
            pattern,
            threads: 1,
            ops,
            budget,
            window: None,
            methods,
        }
    }

    /// The same workload, timed with `methods`.
    pub fn with_methods(self, methods: &'static [MethodId]) -> Self {
        Workload { methods, ..self }
    }

    /// The same workload, with windows of `window` bytes whatever
    /// `--window` says.
    pub fn with_window(self, window: u64) -> Self {
        Workload {
            window: Some(window),
            ..self
        }
    }

    /// This workload followed by its threaded twins `name`: the same reads
    /// from each of `counts` threads, each thread with a list of its own.
    pub fn with_twins(
        self,
        name: &'static str,
        label: &'static str,
        counts: &[usize],
    ) -> Vec<Self> {
        let twins: Vec<Self> = counts
            .iter()
            .map(|&threads| Workload {
                name,
                label,
                threads,
                ..self.clone()
            })
            .collect();
        std::iter::once(self).chain(twins).collect()
    }

    /// How the methods read this workload's files, with fresh managers;
    /// `window` is `--window`'s, used unless the workload has its own.
    pub fn access(&self, window: u64) -> Access {
        let window = self.window.unwrap_or(window);
        Access {
            release: self.files == Files::Small,
            sequential: self.pattern == Pattern::Scan,
            window,
            managers: [ReadPolicy::Adaptive, ReadPolicy::AlwaysMap]
                .map(|p| self.budget.manager(window, p)),
            budget: self.budget,
        }
    }

    /// Each thread's reads of `set`.
    pub fn ops(&self, set: &FileSet, rng: &mut Rng) -> Vec<Vec<Op>> {
        let n = set.sizes.len() as u64;
        let at = |rng: &mut Rng, file: u64, len: u64| Op {
            file: file as u32,
            offset: rng.below(set.sizes[file as usize] - len + 1),
            len,
        };
        (0..self.threads)
            .map(|_| match self.pattern {
                Pattern::Scan => (0..n)
                    .map(|f| Op {
                        file: f as u32,
                        offset: 0,
                        len: set.sizes[f as usize],
                    })
                    .collect(),
                Pattern::Uniform { len } => (0..self.ops)
                    .map(|_| {
                        let f = rng.below(n);
                        at(rng, f, len)
                    })
                    .collect(),
                Pattern::Skewed { len, hot_reads, .. } => {
                    let hot = hot_count(n as usize) as u64;
                    (0..self.ops)
                        .map(|_| {
                            let to_hot =
                                rng.below(1 << 20) < (hot_reads * f64::from(1 << 20)) as u64;
                            let f = if to_hot || hot == n {
                                rng.below(hot)
                            } else {
                                hot + rng.below(n - hot)
                            };
                            at(rng, f, len)
                        })
                        .collect()
                }
            })
            .collect()
    }

    /// Reads per run, all threads.
    pub fn total_ops(&self, lists: &[Vec<Op>]) -> u64 {
        lists.iter().map(|l| l.len() as u64).sum()
    }
}

/// The manager's counters over one timed run (set-up excluded), from
/// `Manager::stats()`. JSON object `{method}_stats` of a row.
#[derive(Serialize, Clone, Copy, Debug, Default, PartialEq)]
pub struct RunStats {
    /// Windows unmapped to stay within the limits during the run.
    pub evictions: u64,
    /// Most bytes mapped at once by the manager (set-up and earlier runs
    /// included).
    pub peak_mapped_bytes: u64,
    /// Windows mapped during the run.
    pub maps: u64,
    /// Reads that needed the manager (took its lock).
    pub misses: u64,
    /// Reads served by the cursor's current window (or copy) without a lock.
    pub hits: u64,
    /// Reads served by `pread` instead of mapping a window that would have
    /// had to evict another (adaptive policy).
    pub preads: u64,
    /// Bytes those reads copied.
    pub pread_bytes: u64,
    /// Windows those reads reached into (the engine's `pread_windows`).
    pub pread_windows: u64,
    /// Windows mapped because they were asked for again while remembered
    /// as copied ("admitted").
    pub ghost_hits: u64,
    /// Descriptors the manager opened.
    pub fd_opens: u64,
    /// Misses that waited for another thread.
    pub waits: u64,
    /// The share of the windows the reads touch that were mapped already:
    /// `1 − (maps + pread_windows) / window accesses`, at least 0, each
    /// read touching every window of the manager's size it reaches into —
    /// as Belady's MIN counts them.
    pub hit_ratio: f64,
}

impl RunStats {
    fn between(before: &smmap::Stats, after: &smmap::Stats, accesses: u64) -> Self {
        let d = |f: fn(&smmap::Stats) -> u64| f(after) - f(before);
        let maps = d(|s| s.maps);
        let preads = d(|s| s.preads);
        let pread_windows = d(|s| s.pread_windows);
        RunStats {
            evictions: d(|s| s.evictions),
            peak_mapped_bytes: after.peak_mapped_bytes,
            maps,
            misses: d(|s| s.misses),
            hits: d(|s| s.hits),
            preads,
            pread_bytes: d(|s| s.pread_bytes),
            pread_windows,
            ghost_hits: d(|s| s.ghost_hits),
            fd_opens: d(|s| s.fd_opens),
            waits: d(|s| s.waits),
            hit_ratio: (1.0 - (maps + pread_windows) as f64 / accesses.max(1) as f64).max(0.0),
        }
    }
}

/// The window accesses of `lists` with windows of `window` bytes (0 or
/// `u64::MAX`: whole files): each read one for every window it reaches
/// into, as [`belady::accesses`](super::belady::accesses) counts them.
fn window_accesses(lists: &[Vec<Op>], window: u64) -> u64 {
    lists
        .iter()
        .flatten()
        .map(|op| match window {
            0 | u64::MAX => 1,
            w => (op.offset + op.len.max(1) - 1) / w - op.offset / w + 1,
        })
        .sum()
}

/// One timed run.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    /// Wall time of the reads.
    pub time: Duration,
    /// Checksum of what was read.
    pub checksum: u64,
    /// The manager's counters, for the engine's methods.
    pub stats: Option<RunStats>,
}

/// Runs each list of reads in a thread of its own (in this thread when
/// there is one), each with its own reader made first. Only the reads are
/// timed: the clock starts when every thread has its reader and stops when
/// the last has read, before the readers go. The checksum adds up the
/// threads' checksums.
pub fn run_once(method: &dyn Method, lists: &[Vec<Op>]) -> anyhow::Result<Run> {
    run_on(method, lists, |_| std::thread::Builder::new())
}

/// [`run_once`], each thread made by the builder `builder` gives for its
/// index (a test makes one fail). A thread that cannot be started is an
/// error; the threads started before it are called off, not left waiting.
fn run_on(
    method: &dyn Method,
    lists: &[Vec<Op>],
    builder: impl Fn(usize) -> std::thread::Builder,
) -> anyhow::Result<Run> {
    let snapshot = || method.manager().map(Manager::stats);
    let accesses = method
        .manager()
        .map_or(0, |m| window_accesses(lists, m.window_size()));
    let finish = |time, checksum, before: Option<smmap::Stats>| Run {
        time,
        checksum,
        stats: before
            .zip(snapshot())
            .map(|(b, a)| RunStats::between(&b, &a, accesses)),
    };
    let bytes = lists.iter().flatten().all(|op| op.len == 1);
    let fold = |reader: &mut dyn Reader, list: &[Op]| {
        if bytes {
            reader.fold_bytes(list)
        } else {
            reader.fold(list)
        }
    };
    if let [only] = lists {
        let mut reader = method.reader()?;
        let before = snapshot();
        let start = Instant::now();
        let checksum = fold(&mut *reader, only)?;
        let time = start.elapsed();
        drop(reader);
        return Ok(finish(time, checksum, before));
    }
    let line = &StartLine::default();
    std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(lists.len());
        for (i, list) in lists.iter().enumerate() {
            let started = builder(i).spawn_scoped(scope, move || {
                let reader = method.reader();
                if !line.ready_and_wait() {
                    bail!("called off");
                }
                let mut reader = reader?;
                let checksum = fold(&mut *reader, list)?;
                // The clock stops before the reader goes: dropping it
                // can close what the run opened (the baselines'
                // descriptors, when they are not kept).
                let end = Instant::now();
                drop(reader);
                Ok((checksum, end))
            });
            match started {
                Ok(handle) => handles.push(handle),
                Err(e) => {
                    // The scope waits for those started: they must end.
                    line.start(false);
                    return Err(anyhow::Error::new(e).context(format!(
                        "cannot start thread {} of {}",
                        i + 1,
                        lists.len()
                    )));
                }
            }
        }
        line.wait_for(lists.len());
        let before = snapshot();
        let start = Instant::now();
        line.start(true);
        let mut checksum = 0u64;
        let mut last_end = start;
        let mut first_error = None;
        for handle in handles {
            match handle.join() {
                Ok(Ok((h, end))) => {
                    checksum = checksum.wrapping_add(h);
                    last_end = last_end.max(end);
                }
                Ok(Err(e)) => first_error = first_error.or(Some(e)),
                Err(_) => {
                    first_error =
                        first_error.or(Some(anyhow::anyhow!("a benchmark thread panicked")))
                }
            }
        }
        let time = last_end.duration_since(start);
        match first_error {
            Some(e) => Err(e),
            None => Ok(finish(time, checksum, before)),
        }
    })
}

/// Where the threads of a run wait, each with its reader made, until all
/// are there and the clock has started — or until the run is called off
/// because a thread could not be started, so that none waits for ever (as
/// at a barrier for one that never comes).
#[derive(Default)]
struct StartLine {
    /// Threads ready, and the start once given: `Some(true)` to read,
    /// `Some(false)` called off.
    state: Mutex<(usize, Option<bool>)>,
    /// Notified at each change of `state`.
    changed: Condvar,
}

impl StartLine {
    /// The state, also from a thread that panicked holding it (none does).
    fn state(&self) -> MutexGuard<'_, (usize, Option<bool>)> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Says this thread is ready and waits for the start: true to read,
    /// false if the run was called off.
    fn ready_and_wait(&self) -> bool {
        let mut state = self.state();
        state.0 += 1;
        self.changed.notify_all();
        loop {
            if let Some(go) = state.1 {
                return go;
            }
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Waits until `n` threads are ready.
    fn wait_for(&self, n: usize) {
        let mut state = self.state();
        while state.0 < n {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Starts the run (`go`) or calls it off; either way no thread waits.
    fn start(&self, go: bool) {
        self.state().1 = Some(go);
        self.changed.notify_all();
    }
}

/// The best run of each method of one workload, and the checksum every run
/// agreed on.
pub struct Measured {
    /// Each method's fastest run.
    pub best: BTreeMap<MethodId, Run>,
    /// Each engine method's counters in its first run. The buffer, the
    /// first method of every workload, starts that run on a new manager
    /// with nothing mapped, as Belady's MIN does (so its hit ratio there is
    /// the one to set beside MIN's); a later run, or another method on the
    /// same manager, starts with what the run before left mapped (and,
    /// after a `collect`, with the heat that run left).
    pub first: BTreeMap<MethodId, RunStats>,
    /// The checksum.
    pub checksum: u64,
}

/// Runs every method `repeat` times, interleaved so that drift in the
/// machine's speed spreads over all of them; keeps each method's fastest run
/// and checks that every run read the same bytes. `step` is called before
/// each run with the method and the round.
///
/// `phased`: the limit on open files holds a descriptor per file for one
/// method at a time, not for all (see `FileSet::open`), so each engine
/// method runs all its rounds in turn, its manager closing its descriptors
/// (and unmapping: `Manager::collect`) after them, and then the baselines
/// run theirs: each with the limit to itself.
pub fn measure(
    methods: &[(MethodId, Box<dyn Method + '_>)],
    lists: &[Vec<Op>],
    repeat: usize,
    label: &str,
    phased: bool,
    mut step: impl FnMut(MethodId, usize),
) -> anyhow::Result<Measured> {
    let mut best: BTreeMap<MethodId, Run> = BTreeMap::new();
    let mut first_stats = BTreeMap::new();
    let mut first: Option<(MethodId, u64)> = None;
    let phases: Vec<Vec<&(MethodId, Box<dyn Method + '_>)>> = if phased {
        let (engine, baselines): (Vec<_>, Vec<_>) =
            methods.iter().partition(|(_, m)| m.manager().is_some());
        engine
            .into_iter()
            .map(|m| vec![m])
            .chain([baselines])
            .collect()
    } else {
        vec![methods.iter().collect()]
    };
    for phase in &phases {
        for round in 0..repeat {
            for (id, method) in phase {
                data::check_interrupted()?;
                step(*id, round);
                let run = run_once(method.as_ref(), lists)
                    .with_context(|| format!("{label}, {}", id.label()))?;
                match first {
                    None => first = Some((*id, run.checksum)),
                    Some((m0, c0)) if c0 != run.checksum => bail!(
                        "{label}: {} read bytes with checksum {:#x} but {} read {c0:#x}; the timings would be meaningless",
                        id.label(),
                        run.checksum,
                        m0.label()
                    ),
                    Some(_) => {}
                }
                if let (0, Some(stats)) = (round, run.stats) {
                    first_stats.insert(*id, stats);
                }
                let slot = best.entry(*id).or_insert(run);
                if run.time < slot.time {
                    *slot = run;
                }
            }
        }
        if phased {
            for (_, method) in phase {
                if let Some(manager) = method.manager() {
                    manager.collect();
                }
            }
        }
    }
    Ok(Measured {
        best,
        first: first_stats,
        checksum: first.map_or(0, |f| f.1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::methods::Descriptors;

    /// A reader whose going takes long, as closing 15,000 descriptors can.
    /// A reader that takes two seconds to go, and notes when the last of
    /// its kind began to.
    struct SlowToDrop<'a>(&'a std::sync::Mutex<Option<Instant>>);

    impl Reader for SlowToDrop<'_> {
        fn fold(&mut self, ops: &[Op]) -> anyhow::Result<u64> {
            Ok(ops.len() as u64)
        }
    }

    impl Drop for SlowToDrop<'_> {
        fn drop(&mut self) {
            let now = Instant::now();
            let mut last = self.0.lock().unwrap();
            *last = Some(last.map_or(now, |t| t.max(now)));
            drop(last);
            std::thread::sleep(Duration::from_secs(2));
        }
    }

    /// Its readers are [`SlowToDrop`]s, noting in it when the last went.
    #[derive(Default)]
    struct SlowMethod(std::sync::Mutex<Option<Instant>>);

    impl Method for SlowMethod {
        fn reader(&self) -> anyhow::Result<Box<dyn Reader + '_>> {
            Ok(Box::new(SlowToDrop(&self.0)))
        }
    }

    /// A reader that counts the lists it was given by each fold.
    #[derive(Default)]
    struct Folds {
        general: usize,
        bytes: usize,
    }

    /// Its readers count into its [`Folds`] (one reader at a time).
    struct FoldsMethod(std::sync::Mutex<Folds>);

    impl Method for FoldsMethod {
        fn reader(&self) -> anyhow::Result<Box<dyn Reader + '_>> {
            Ok(Box::new(FoldsReader(self.0.lock().unwrap())))
        }
    }

    struct FoldsReader<'a>(std::sync::MutexGuard<'a, Folds>);

    impl Reader for FoldsReader<'_> {
        fn fold(&mut self, _: &[Op]) -> anyhow::Result<u64> {
            self.0.general += 1;
            Ok(0)
        }

        fn fold_bytes(&mut self, _: &[Op]) -> anyhow::Result<u64> {
            self.0.bytes += 1;
            Ok(0)
        }
    }

    #[test]
    fn lists_of_one_byte_reads_take_the_loop_of_bytes() {
        let op = |len| Op {
            file: 0,
            offset: 0,
            len,
        };
        let m = FoldsMethod(std::sync::Mutex::new(Folds::default()));
        run_once(&m, &[vec![op(1), op(1)]]).unwrap();
        run_once(&m, &[vec![op(1), op(4096)]]).unwrap();
        run_once(&m, &[vec![op(4096)]]).unwrap();
        let f = m.0.lock().unwrap();
        assert_eq!((f.bytes, f.general), (1, 2));
    }

    /// A thread that cannot be started (its stack cannot be mapped) is an
    /// error, and the threads started before it, waiting for the others,
    /// are called off rather than left waiting for ever.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_thread_that_cannot_start_calls_the_run_off() {
        /// Its readers read nothing, at once.
        struct Nothing;

        impl Method for Nothing {
            fn reader(&self) -> anyhow::Result<Box<dyn Reader + '_>> {
                Ok(Box::new(Nothing))
            }
        }

        impl Reader for Nothing {
            fn fold(&mut self, _: &[Op]) -> anyhow::Result<u64> {
                Ok(0)
            }
        }

        let lists = vec![Vec::new(); 4];
        let builder = |i| {
            let b = std::thread::Builder::new();
            // 1 PiB: more than any address space holds.
            if i == 2 {
                b.stack_size(1 << 50)
            } else {
                b
            }
        };
        let e = run_on(&Nothing, &lists, builder).unwrap_err();
        assert!(
            e.to_string().contains("cannot start thread 3 of 4"),
            "{e:#}"
        );
    }

    #[test]
    fn the_clock_stops_before_the_readers_go() {
        // One thread, and two: the run's clock starts after `before` and
        // stops when the last reader is done, before it begins to go, so
        // its time is at most the time from `before` to then, whatever the
        // load; with the readers' two seconds to go in it, it would be more
        // (unless starting the run took over two seconds).
        for threads in [1, 2] {
            let lists = vec![Vec::new(); threads];
            let method = SlowMethod::default();
            let before = Instant::now();
            let run = run_once(&method, &lists).unwrap();
            let went = method.0.lock().unwrap().expect("the readers went");
            assert!(
                run.time <= went - before,
                "{threads}: {:?}, the last reader went {:?} after the start",
                run.time,
                went - before
            );
        }
    }

    /// A read counts each window it reaches into, as MIN counts it; with
    /// whole-file windows, one.
    #[test]
    fn reads_count_the_windows_they_touch() {
        let op = |offset, len| Op {
            file: 0,
            offset,
            len,
        };
        let lists = vec![
            vec![op(0, 1), op(4095, 2), op(4096, 4096)],
            vec![op(100, 3 * 4096)],
        ];
        assert_eq!(window_accesses(&lists, 4096), 1 + 2 + 1 + 4);
        assert_eq!(window_accesses(&lists, 0), 4);
        assert_eq!(window_accesses(&lists, u64::MAX), 4);
    }

    fn set(sizes: &[u64]) -> FileSet {
        FileSet {
            paths: Vec::new(),
            sizes: sizes.to_vec(),
            open: Descriptors::new(Vec::new(), None),
        }
    }

    #[test]
    fn skewed_reads_go_mostly_to_the_hot_files() {
        let sizes: Vec<u64> = (0..100).map(|i| 4096 + i * 512).collect();
        let w = Workload::new(
            "skewed",
            "skewed",
            Files::Small,
            Pattern::Skewed {
                len: READ,
                hot_files: HOT_FILES,
                hot_reads: HOT_READS,
            },
            20_000,
            Budget::default(),
        );
        let lists = w.ops(&set(&sizes), &mut Rng::new(3));
        let hot = hot_count(sizes.len()) as u32;
        assert_eq!(hot, 20);
        let to_hot = lists[0].iter().filter(|op| op.file < hot).count();
        let share = to_hot as f64 / 20_000.0;
        assert!((0.78..0.82).contains(&share), "{share}");
        for op in &lists[0] {
            assert!(op.offset + op.len <= sizes[op.file as usize]);
        }
        // Every cold file is read too.
        let cold: std::collections::BTreeSet<u32> = lists[0]
            .iter()
            .map(|op| op.file)
            .filter(|&f| f >= hot)
            .collect();
        assert_eq!(cold.len(), 80);
    }

    #[test]
    fn the_hot_budget_holds_the_hot_files_only() {
        let sizes: Vec<u64> = (0..1000).map(|i| 4096 + (i * 7919) % 61440).collect();
        let b = hot_budget(&sizes, Some(1000));
        let page = *smmap::ALLOCATIONGRANULARITY;
        let charged = |s: &[u64]| -> u64 { s.iter().map(|x| x.div_ceil(page) * page).sum() };
        let hot = hot_count(sizes.len());
        let (memory, handles) = (b.max_memory.unwrap(), b.max_handles.unwrap());
        assert!(charged(&sizes[..hot]) <= memory && hot <= handles);
        assert!(charged(&sizes) > memory && sizes.len() > handles);
        assert_eq!(b.max_open_files, Some(1000));
    }

    #[test]
    fn threaded_twins_follow_their_row_one_per_count() {
        let sizes = Sizes {
            ops: 1000,
            threads: vec![2, 3],
            small: Budget::default(),
            skewed: Budget::default(),
            small_files: true,
            switches: true,
        };
        let rows = plan(&sizes);
        let mut twins = 0;
        for (i, w) in rows.iter().enumerate() {
            if let Some(base) = w.name.strip_suffix("_threads") {
                twins += 1;
                // The row itself comes first, then the twins by count.
                let k = rows[..i].iter().rposition(|r| r.name == base).unwrap();
                assert_eq!(w.threads, [2, 3][i - k - 1], "{}", w.name);
                assert!(rows[k + 1..i].iter().all(|r| r.name == w.name));
                let r = &rows[k];
                assert_eq!(r.threads, 1);
                assert_eq!((w.pattern, w.ops, w.window), (r.pattern, r.ops, r.window));
            }
        }
        assert_eq!(twins, 6);
        assert_eq!(rows.len(), 13);
        // The window-switch rows have their own window, the others --window's.
        for w in &rows {
            let own = w.name.starts_with("switch_").then_some(SWITCH_WINDOW);
            assert_eq!(w.window, own, "{}", w.name);
            assert_eq!(w.access(1 << 30).window, own.unwrap_or(1 << 30));
        }
        let large_only = plan(&Sizes {
            small_files: false,
            ..sizes.clone()
        });
        assert_eq!(large_only.len(), 9);
        // A large file of one switch window has no switch rows.
        let one_window = plan(&Sizes {
            switches: false,
            ..sizes
        });
        assert!(one_window.iter().all(|w| !w.name.starts_with("switch_")));
        assert_eq!(one_window.len(), rows.len() - 4);
    }
}
