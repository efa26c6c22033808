//! The benchmark's report: the types `--json` serializes (their fields are
//! the JSON schema, documented here and only here), the ratios the project
//! aims at, and the table for people.
//!
//! JSON, schema 1: field names are stable; new fields may be added.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use indicatif::HumanBytes;
use serde::Serialize;
use serde_json::{Map, Value};

use super::methods::MethodId;
use super::workloads::{Measured, RunStats, Workload};

/// The whole result: `--json` prints it.
#[derive(Serialize, Debug)]
pub struct Report {
    /// 1.
    pub schema: u32,
    /// What was run.
    pub config: Config,
    /// One object per row, in table order.
    pub workloads: Vec<Row>,
    /// For each row that has `…_threads` twins (`random_4k`, `switch_4k`,
    /// `small_files_random_4k`), per method key: the throughput of its twin
    /// at the largest thread count (`config.threads`) divided by the row's.
    pub thread_scaling: BTreeMap<&'static str, Gains>,
    /// The same at every thread count: for each such row, per count of
    /// `config.thread_counts` above 1 (a key such as `"4"`), per method key,
    /// the throughput of its twin at that count divided by the row's.
    pub scaling: BTreeMap<&'static str, BTreeMap<usize, Gains>>,
    /// The ratios the project aims at, measured in this run.
    pub goals: Vec<Goal>,
    /// Always `true` (a mismatch is an error instead).
    pub checksums_verified: bool,
}

/// The configuration, as run.
#[derive(Serialize, Debug)]
pub struct Config {
    /// The temporary directory of the data (removed afterwards).
    pub data_dir: String,
    /// Size of the large file.
    pub file_size: u64,
    /// Number of small files.
    pub small_files: usize,
    /// Their total size.
    pub small_files_bytes: u64,
    /// Bytes per read of the 4 KiB rows.
    pub read_size: u64,
    /// The engine's window size (`--window`, or the engine's default) in
    /// every row but the window-switch rows, which have their own (see a
    /// row's `window_size`).
    pub window_size: u64,
    /// Memory limit of the large-file rows (the engine's default).
    pub max_memory_size: u64,
    /// Memory limit of the uniform small-files rows.
    pub small_max_memory_size: u64,
    /// Mapping limit of the uniform small-files rows.
    pub small_max_handles: usize,
    /// Descriptors the engine keeps in the small-files rows.
    pub small_max_open_files: usize,
    /// Each method of the small-files rows ran all its runs in turn, each
    /// with the limit on open files (and each engine method its manager) to
    /// itself: `--in-turn`, or the limit holds a descriptor per file for one
    /// method at a time.
    pub descriptors_in_turn: bool,
    /// Memory limit of the skewed row: fits the hot files, not all.
    pub skewed_max_memory_size: u64,
    /// Mapping limit of the skewed row.
    pub skewed_max_handles: usize,
    /// Hot files of the skewed row.
    pub hot_files: usize,
    /// Their total size.
    pub hot_files_bytes: u64,
    /// The share of the skewed row's reads that go to them.
    pub hot_reads_share: f64,
    /// The largest of `thread_counts`: the threads of the last `…_threads`
    /// row of each kind.
    pub threads: usize,
    /// The thread counts of `--threads`, ascending, without duplicates: each
    /// count above 1 has its `…_threads` rows (one thread always runs).
    pub thread_counts: Vec<usize>,
    /// Runs of each method per row; the best counts.
    pub repeat: usize,
    /// Seed of the data and the offsets.
    pub seed: u64,
    /// The allocation granularity windows are aligned to.
    pub granularity: u64,
}

/// One row of the table.
///
/// Besides the fields below, for each method run on the row, with its key
/// `M` (`buffer`: buffer, adaptive policy; `buffer_map`: buffer,
/// always-map policy; `cursor`; `mmap`: raw whole-file mappings; `pread`;
/// `map_unmap`: map, touch, unmap per read — the last two and `buffer_map`
/// on the small-files rows only; `oracle`: the first files the budget
/// holds (the hot ones, then others) mapped, `pread` for the rest, on the
/// skewed row only):
///
/// - `M_ns`: the best wall time of a run, nanoseconds;
/// - `M_ratio`: `M_ns / mmap_ns`;
/// - `M_stats` (engine methods: `buffer`, `buffer_map`, `cursor`): the
///   manager's counters over that run, a [`RunStats`].
#[derive(Serialize, Debug)]
pub struct Row {
    /// `sequential_scan`, `random_1byte`, `random_4k`, `random_4k_threads`,
    /// `switch_1byte`, `switch_4k`, `switch_4k_threads` (the window-switch
    /// rows: random reads of the large file with 1 MiB windows, every one of
    /// which the engine's default limits hold), and with small files
    /// `small_files_random_4k`, `small_files_random_4k_threads`,
    /// `small_files_skewed_4k`. A `…_threads` row comes once per thread
    /// count above 1, right after its one-thread row, by count.
    pub name: &'static str,
    /// For people.
    pub label: &'static str,
    /// Reads per run, all threads (1 for the scan).
    pub ops: u64,
    /// Bytes read per run.
    pub bytes: u64,
    /// Threads.
    pub threads: usize,
    /// The engine's window size in this row: `config.window_size`, or 1 MiB
    /// in the window-switch rows.
    pub window_size: u64,
    /// Hex string; equal for every method and run.
    pub checksum: String,
    /// `cursor_ns / map_unmap_ns`: the cursor against the floor of mapping
    /// per read (rows with `map_unmap` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor_floor_ratio: Option<f64>,
    /// The hit ratio of Belady's MIN with bypass over the same reads under
    /// the row's budget (handles and bytes), computed offline, from nothing
    /// mapped: what `buffer_first_hit_ratio` and `buffer_map_first_hit_ratio`
    /// (their first runs, which start so too) are compared with (budgeted rows only; threaded
    /// rows interleave their threads' reads in turn). With windows of
    /// different sizes, a reference rather than a proven optimum.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub belady_hit_ratio: Option<f64>,
    /// The hit ratio of the oracle's files over the same reads, each counted
    /// as mapped at its first read (from nothing mapped, as MIN) and kept,
    /// the rest copied: on reads with fixed odds, such as the skewed row's,
    /// what a policy that does not know the future can expect at best, and
    /// so how near `belady_hit_ratio` one can come (rows with `oracle`
    /// whose windows are whole files only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oracle_hit_ratio: Option<f64>,
    /// The per-method fields.
    #[serde(flatten)]
    pub methods: Map<String, Value>,
    /// The same, typed, for the table.
    #[serde(skip)]
    pub cells: BTreeMap<MethodId, (u64, Option<RunStats>)>,
    /// Each engine method's hit ratio in its first run (see
    /// `Measured::first`): the buffer's, for the goal against MIN.
    #[serde(skip)]
    pub first_hit_ratio: BTreeMap<MethodId, f64>,
}

/// A ratio the project aims at.
#[derive(Serialize, Debug)]
pub struct Goal {
    /// What is compared; the goals at the largest thread count name the
    /// count.
    pub label: String,
    /// The ratio measured.
    pub value: f64,
    /// The aim.
    pub target: f64,
    /// `true`: the value should be at least the target; `false`: at most.
    pub at_least: bool,
    /// Whether it was met.
    pub met: bool,
    /// The same ratio for the oracle, where the row has one: how far the goal
    /// can be met — for a time, the floor of a reader keeping to the budget;
    /// for a hit ratio, what a policy that does not know the future can
    /// expect (see `Row::oracle_hit_ratio`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oracle: Option<f64>,
}

impl Row {
    /// The row of `w`, read with windows of `window` bytes, from its
    /// measurements.
    pub fn new(w: &Workload, window: u64, ops: u64, bytes: u64, m: &Measured) -> Self {
        let ns = |id: &MethodId| {
            m.best
                .get(id)
                .map(|r| r.time.as_nanos().min(u128::from(u64::MAX)) as u64)
        };
        let mmap = ns(&MethodId::Mmap).unwrap_or(1).max(1);
        let mut methods = Map::new();
        let mut cells = BTreeMap::new();
        for (id, run) in &m.best {
            let t = ns(id).unwrap_or(0);
            methods.insert(format!("{}_ns", id.key()), t.into());
            methods.insert(
                format!("{}_ratio", id.key()),
                (t as f64 / mmap as f64).into(),
            );
            if let Some(s) = run.stats {
                let v = serde_json::to_value(s).unwrap_or(Value::Null);
                methods.insert(format!("{}_stats", id.key()), v);
            }
            // The first run of the first method on each manager (the
            // cursor shares the buffer's) starts with nothing mapped, as MIN
            // does: the hit ratio to set beside `belady_hit_ratio`.
            let first_on_its_manager = matches!(id, MethodId::Buffer | MethodId::BufferMap);
            if let Some(first) = m.first.get(id).filter(|_| first_on_its_manager) {
                methods.insert(
                    format!("{}_first_hit_ratio", id.key()),
                    first.hit_ratio.into(),
                );
            }
            cells.insert(*id, (t, run.stats));
        }
        let cursor_floor_ratio = ns(&MethodId::Cursor)
            .zip(ns(&MethodId::MapUnmap))
            .map(|(c, f)| c as f64 / f.max(1) as f64);
        Row {
            name: w.name,
            label: w.label,
            ops,
            bytes,
            threads: w.threads,
            window_size: window,
            checksum: format!("{:#018x}", m.checksum),
            cursor_floor_ratio,
            belady_hit_ratio: None,
            oracle_hit_ratio: None,
            methods,
            cells,
            first_hit_ratio: m.first.iter().map(|(id, s)| (*id, s.hit_ratio)).collect(),
        }
    }

    /// The engine's hit ratio in `id`'s first run, which like Belady's
    /// starts with nothing mapped, over Belady's.
    fn hit_over_belady(&self, id: MethodId) -> Option<f64> {
        let hit = self.first_hit_ratio.get(&id)?;
        Some(super::belady::over_min(*hit, self.belady_hit_ratio?))
    }

    fn ns(&self, id: MethodId) -> Option<u64> {
        self.cells.get(&id).map(|c| c.0)
    }

    fn per_op(&self, id: MethodId) -> Option<f64> {
        self.ns(id).map(|t| t as f64 / self.ops.max(1) as f64)
    }
}

/// Per method key: a threaded row's throughput over its one-thread row's.
pub type Gains = BTreeMap<&'static str, f64>;

/// For each one-thread row with `…_threads` twins, per twin's thread count,
/// the twin's [`Gains`].
pub fn scaling(rows: &[Row]) -> BTreeMap<&'static str, BTreeMap<usize, Gains>> {
    let mut out: BTreeMap<_, BTreeMap<_, _>> = BTreeMap::new();
    for a in rows.iter().filter(|r| r.threads == 1) {
        let twins = rows
            .iter()
            .filter(|b| b.threads > 1 && b.name.strip_suffix("_threads") == Some(a.name));
        for b in twins {
            let gains = a
                .cells
                .keys()
                .filter_map(|&id| {
                    let (t1, tn) = (a.per_op(id)?, b.per_op(id)?);
                    Some((id.key(), t1 / tn.max(f64::MIN_POSITIVE)))
                })
                .collect();
            out.entry(a.name).or_default().insert(b.threads, gains);
        }
    }
    out
}

/// The gains at the largest thread count of each row of `scaling`.
pub fn at_largest(
    scaling: &BTreeMap<&'static str, BTreeMap<usize, Gains>>,
) -> BTreeMap<&'static str, Gains> {
    scaling
        .iter()
        .filter_map(|(&name, by)| Some((name, by.values().next_back()?.clone())))
        .collect()
}

/// True unless the cursor's runs of `r` evicted nothing: the row's reads
/// pressed on its budget (rows without the cursor's figures are taken to).
fn pressed(r: &Row) -> bool {
    r.cells
        .get(&MethodId::Cursor)
        .and_then(|(_, stats)| stats.as_ref())
        .is_none_or(|s| s.evictions > 0)
}

/// The budgeted rows (of the small files) whose reads never pressed on
/// the budget — every file fits it, so nothing was evicted — and so set no
/// goal: said under the goals.
pub fn unpressed(rows: &[Row]) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = rows
        .iter()
        .filter(|r| r.threads == 1 && r.name.starts_with("small_files") && !pressed(r))
        .map(|r| r.label)
        .collect();
    names.dedup();
    names
}

/// The ratios the project aims at, from this run's rows (those it has):
/// each method against its baseline in the same run. Those "at `N`
/// threads" take the largest thread count.
pub fn goals(rows: &[Row]) -> Vec<Goal> {
    let row = |name: &str, threads| rows.iter().find(|r| r.name == name && r.threads == threads);
    // A budgeted row whose reads never pressed on the budget measures
    // nothing its goals are about: it sets none (see `unpressed`).
    let budgeted = |name: &str, threads| row(name, threads).filter(|r| pressed(r));
    let gains = scaling(rows);
    let mut out = Vec::new();
    let mut goal = |label: String, value: Option<f64>, target, at_least| {
        if let Some(value) = value {
            let met = if at_least {
                value >= target
            } else {
                value <= target
            };
            out.push(Goal {
                label,
                value,
                target,
                at_least,
                met,
                oracle: None,
            });
        }
    };
    let small = budgeted("small_files_random_4k", 1);
    let ratio = |r: Option<&Row>, a: MethodId, b: MethodId| {
        r.and_then(|r| Some(r.ns(a)? as f64 / r.ns(b)?.max(1) as f64))
    };
    use MethodId::*;
    goal(
        "small files: buffer / pread".into(),
        ratio(small, Buffer, Pread),
        1.5,
        false,
    );
    // The small files' gains at 2 threads (the count the goal is set
    // for), else at the smallest count; the label says which.
    let small_gains = gains
        .get("small_files_random_4k")
        .filter(|_| small.is_some());
    let first = small_gains.and_then(|by| {
        by.get_key_value(&2)
            .or_else(|| by.iter().next())
            .map(|(&n, g)| (n, g))
    });
    goal(
        format!(
            "small files: buffer throughput, {} threads vs 1",
            first.map_or(2, |(n, _)| n)
        ),
        first.and_then(|(_, g)| g.get("buffer").copied()),
        1.7,
        true,
    );
    let skewed_row = budgeted("small_files_skewed_4k", 1);
    let skewed = |id| {
        let r = skewed_row?;
        let floor = r.ns(Pread)?.min(r.ns(Mmap)?);
        Some(r.ns(id)? as f64 / floor.max(1) as f64)
    };
    goal(SKEWED_GOAL.into(), skewed(Buffer), 1.2, false);
    goal(
        HIT_GOAL.into(),
        skewed_row.and_then(|r| r.hit_over_belady(Buffer)),
        0.95,
        true,
    );
    goal(
        "small files: cursor / map+unmap floor".into(),
        ratio(small, Cursor, MapUnmap),
        1.2,
        false,
    );
    goal(
        "window switches, 1-byte reads: buffer / raw mmap".into(),
        ratio(row("switch_1byte", 1), Buffer, Mmap),
        3.0,
        false,
    );
    goal(
        "large file, 1-byte reads: buffer / raw mmap".into(),
        ratio(row("random_1byte", 1), Buffer, Mmap),
        1.2,
        false,
    );
    let n = rows.iter().map(|r| r.threads).max().unwrap_or(1);
    if n > 1 {
        let switch = row("switch_4k_threads", n);
        for id in [Buffer, Cursor] {
            goal(
                format!(
                    "window switches, 4 KiB reads, {n} threads: {} / raw mmap",
                    id.label()
                ),
                ratio(switch, id, Mmap),
                1.25,
                false,
            );
        }
        goal(
            format!("large file, 4 KiB reads, {n} threads: buffer / raw mmap"),
            ratio(row("random_4k_threads", n), Buffer, Mmap),
            1.1,
            false,
        );
        goal(
            format!("small files, {n} threads: buffer / pread"),
            ratio(budgeted("small_files_random_4k_threads", n), Buffer, Pread),
            1.5,
            false,
        );
        let relative = small_gains
            .and_then(|by| by.get(&n))
            .and_then(|g| Some(g.get("buffer")? / g.get("pread")?));
        goal(
            format!("small files, {n} threads vs 1: buffer scaling / pread scaling"),
            relative,
            0.8,
            true,
        );
    }
    if let Some(g) = out.iter_mut().find(|g| g.label == SKEWED_GOAL) {
        g.oracle = skewed(Oracle);
    }
    if let Some(g) = out.iter_mut().find(|g| g.label == HIT_GOAL) {
        g.oracle = skewed_row.and_then(|r| {
            let min = r.belady_hit_ratio.filter(|&min| min > 0.0)?;
            Some(r.oracle_hit_ratio? / min)
        });
    }
    out
}

const SKEWED_GOAL: &str = "skewed small files: buffer / min(pread, raw mmap)";
const HIT_GOAL: &str = "skewed small files: buffer hit ratio, first run / Belady's MIN";

/// `1.00 GiB`, `64.00 MiB`.
fn bytes(n: u64) -> String {
    HumanBytes(n).to_string()
}

/// The table for people.
pub fn write_table(out: &mut impl Write, r: &Report) -> std::io::Result<()> {
    let c = &r.config;
    writeln!(
        out,
        "smmap bench: {} file + {} small files ({}), best of {} runs; checksums verified",
        bytes(c.file_size),
        c.small_files,
        bytes(c.small_files_bytes),
        c.repeat
    )?;
    // The rows with a window of their own (the window-switch rows).
    let own: BTreeSet<u64> = r
        .workloads
        .iter()
        .map(|w| w.window_size)
        .filter(|&w| w != c.window_size)
        .collect();
    let own: Vec<String> = own.into_iter().map(bytes).collect();
    let windows = if own.is_empty() {
        format!("window {} everywhere", bytes(c.window_size))
    } else {
        format!(
            "window {} ({} in the window-switch rows)",
            bytes(c.window_size),
            own.join(", ")
        )
    };
    writeln!(
        out,
        "{windows}; large file: max memory {}; small files: max memory {}, max handles {}, descriptors {}",
        bytes(c.max_memory_size),
        bytes(c.small_max_memory_size),
        c.small_max_handles,
        c.small_max_open_files
    )?;
    if c.descriptors_in_turn {
        writeln!(
            out,
            "small files: each method ran all its runs in turn, with the limit on open files \
             (and each engine method its manager) to itself"
        )?;
    }
    if c.small_files > 0 && c.hot_files < c.small_files {
        let hot = match c.hot_files {
            1 => "1 hot file".to_string(),
            n => format!("{n} hot files"),
        };
        let fit = if c.hot_files == 1 {
            "the hot file fits"
        } else {
            "the hot files fit"
        };
        writeln!(
            out,
            "skewed: {:.0}% of the reads go to {hot} ({}); max memory {}, max handles {}: \
             {fit}, all {} ({}) do not",
            c.hot_reads_share * 100.0,
            bytes(c.hot_files_bytes),
            bytes(c.skewed_max_memory_size),
            c.skewed_max_handles,
            c.small_files,
            bytes(c.small_files_bytes)
        )?;
    } else if c.small_files > 0 {
        let hot = match c.small_files {
            1 => "the one small file is hot".to_string(),
            n => format!("all {n} small files are hot"),
        };
        writeln!(
            out,
            "skewed: {hot} ({}); max memory {}, max handles {}: the hot files fit",
            bytes(c.small_files_bytes),
            bytes(c.skewed_max_memory_size),
            c.skewed_max_handles
        )?;
    }
    writeln!(out)?;
    let label = |row: &Row| {
        if row.threads > 1 {
            format!("same, {} threads, one manager", row.threads)
        } else {
            row.label.to_string()
        }
    };
    let wide = (r.workloads.iter())
        .map(|row| label(row).chars().count())
        .fold(30, usize::max);
    write!(out, "{:<wide$} {:>9} {:>6}", "workload", "ops", "unit")?;
    for id in MethodId::ALL {
        write!(out, " {:>9}", id.label())?;
    }
    writeln!(
        out,
        " {:>8} {:>8} {:>9}",
        "buf/mmap", "cur/mmap", "cur/floor"
    )?;
    for row in &r.workloads {
        // The scan's one read is the whole file (not any row of one read).
        let scan = row.name == "sequential_scan";
        let cell = |id: MethodId| match row.ns(id) {
            None => "-".to_string(),
            Some(ns) if scan => format!(
                "{:.2}",
                row.bytes as f64 / (1u64 << 30) as f64 / (ns.max(1) as f64 / 1e9)
            ),
            Some(ns) => format!("{:.1}", ns as f64 / row.ops as f64),
        };
        let ratio = |id: MethodId| {
            row.ns(id)
                .zip(row.ns(MethodId::Mmap))
                .map_or("-".into(), |(a, b)| {
                    format!("{:.2}", a as f64 / b.max(1) as f64)
                })
        };
        let label = label(row);
        let ops = if scan {
            bytes(row.bytes)
        } else {
            row.ops.to_string()
        };
        let unit = if scan { "GiB/s" } else { "ns/op" };
        write!(out, "{label:<wide$} {ops:>9} {unit:>6}")?;
        for id in MethodId::ALL {
            write!(out, " {:>9}", cell(id))?;
        }
        let floor = row
            .cursor_floor_ratio
            .map_or("-".into(), |f| format!("{f:.2}"));
        writeln!(
            out,
            " {:>8} {:>8} {:>9}",
            ratio(MethodId::Buffer),
            ratio(MethodId::Cursor),
            floor
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "buffer: SlidingWindowMapBuffer, adaptive reads (copies what would evict); buf(map): the same, always mapping;"
    )?;
    writeln!(
        out,
        "map+unmap: mmap the window, read, munmap, every read (the floor of mapping per read);"
    )?;
    writeln!(
        out,
        "oracle: the files the budget holds mapped whole (the hot ones: they come first), pread for the rest \
         (the floor of any reader that keeps to the budget);"
    )?;
    writeln!(
        out,
        "x/mmap: time relative to raw mmap (1.00 = as fast); cur/floor: cursor relative to map+unmap."
    )?;
    for base in r.workloads.iter().filter(|w| w.threads == 1) {
        for (n, gains) in r.scaling.get(base.name).into_iter().flatten() {
            let list: Vec<String> = MethodId::ALL
                .iter()
                .filter_map(|id| Some(format!("×{:.2} {}", gains.get(id.key())?, id.label())))
                .collect();
            writeln!(
                out,
                "{}, {n} threads vs 1: throughput {}.",
                base.label,
                list.join(", ")
            )?;
        }
    }
    writeln!(out)?;
    writeln!(
        out,
        "engine counters of the best run: hit = the windows the reads touch that were mapped already"
    )?;
    // A threaded row's name with its thread count: `random_4k_threads (4)`.
    let name = |row: &Row| {
        if row.threads > 1 {
            format!("{} ({})", row.name, row.threads)
        } else {
            row.name.to_string()
        }
    };
    let wide = (r.workloads.iter())
        .map(|row| name(row).chars().count())
        .fold(30, usize::max);
    writeln!(
        out,
        "{:<wide$} {:<9} {:>6} {:>6} {:>9} {:>9} {:>9} {:>11} {:>9} {:>8} {:>7} {:>11}",
        "workload",
        "method",
        "hit",
        "MIN",
        "maps",
        "evictions",
        "preads",
        "copied",
        "admitted",
        "fd opens",
        "waits",
        "peak mapped"
    )?;
    for row in &r.workloads {
        for (id, (_, stats)) in &row.cells {
            let Some(s) = stats else { continue };
            writeln!(
                out,
                "{:<wide$} {:<9} {:>5.1}% {:>6} {:>9} {:>9} {:>9} {:>11} {:>9} {:>8} {:>7} {:>11}",
                name(row),
                id.label(),
                s.hit_ratio * 100.0,
                row.belady_hit_ratio
                    .map_or("-".into(), |b| format!("{:.1}%", b * 100.0)),
                s.maps,
                s.evictions,
                s.preads,
                bytes(s.pread_bytes),
                s.ghost_hits,
                s.fd_opens,
                s.waits,
                bytes(s.peak_mapped_bytes)
            )?;
        }
    }
    writeln!(
        out,
        "preads: reads copied instead of mapped; admitted: windows a copy read mapped, hotter than the one evicted (ghost hits);"
    )?;
    writeln!(
        out,
        "MIN: the hit ratio of Belady's MIN with bypass over the same reads under the row's budget, offline \
         (with windows of different sizes a reference, not a proven optimum), from nothing mapped: the goal \
         compares it with the buffer's first run, which starts so too (the best run starts with what the run \
         before it left); the oracle's, its files counted as mapped at their first reads, is what a policy \
         that does not know the future can expect at best on reads with fixed odds."
    )?;
    if !r.goals.is_empty() {
        writeln!(out)?;
        writeln!(out, "goals, this run:")?;
        let wide = r
            .goals
            .iter()
            .map(|g| g.label.chars().count())
            .fold(52, usize::max);
        for g in &r.goals {
            write_goal(out, g, wide)?;
        }
    }
    let unpressed = unpressed(&r.workloads);
    if !unpressed.is_empty() {
        writeln!(
            out,
            "no goal for {}: the files fit the budget (nothing was evicted)",
            unpressed.join("; ")
        )?;
    }
    Ok(())
}

/// One line of the goals, its label padded to `wide` characters.
fn write_goal(out: &mut impl Write, g: &Goal, wide: usize) -> std::io::Result<()> {
    let (sign, x) = if g.at_least {
        ("≥", "×")
    } else {
        ("≤", "")
    };
    write!(
        out,
        "  {:<wide$} {x}{} (goal {sign} {x}{:.2}): {}",
        g.label,
        goal_figure(g.value, g.target),
        g.target,
        if g.met { "met" } else { "missed" }
    )?;
    match g.oracle {
        Some(o) => writeln!(out, "; the oracle's is {x}{}", goal_figure(o, g.target)),
        None => writeln!(out),
    }
}

/// `value` to two decimals, or three where two would read as `target`
/// itself (0.947 against 0.95 is a miss, which "0.95" would hide).
fn goal_figure(value: f64, target: f64) -> String {
    let two = format!("{value:.2}");
    if value != target && two == format!("{target:.2}") {
        format!("{value:.3}")
    } else {
        two
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row named `name` with `ops` reads and these times.
    fn row(name: &'static str, ops: u64, times: &[(MethodId, u64)]) -> Row {
        Row {
            name,
            label: name,
            ops,
            bytes: ops * 4096,
            threads: 1,
            window_size: 1 << 20,
            checksum: String::new(),
            cursor_floor_ratio: None,
            belady_hit_ratio: None,
            oracle_hit_ratio: None,
            methods: Map::new(),
            cells: times.iter().map(|&(id, t)| (id, (t, None))).collect(),
            first_hit_ratio: BTreeMap::new(),
        }
    }

    /// The same, read by `threads` threads.
    fn threaded(threads: usize, r: Row) -> Row {
        Row { threads, ..r }
    }

    /// Small files that all fit the budget (the cursor evicted nothing)
    /// set no goal of the budgeted rows, and say so; once the reads press
    /// on the budget, they do.
    #[test]
    fn small_files_that_fit_the_budget_set_no_goal() {
        use MethodId::*;
        let small = |evictions| {
            let mut r = row(
                "small_files_random_4k",
                100,
                &[(Buffer, 100), (Pread, 200), (Cursor, 30), (MapUnmap, 1000)],
            );
            let stats = RunStats {
                evictions,
                ..RunStats::default()
            };
            r.cells.insert(Cursor, (30, Some(stats)));
            r
        };
        let fits = [small(0)];
        assert!(goals(&fits).is_empty(), "{:?}", goals(&fits));
        assert_eq!(unpressed(&fits), ["small_files_random_4k"]);
        let pressed = [small(5)];
        let labels: Vec<String> = goals(&pressed).into_iter().map(|g| g.label).collect();
        assert_eq!(
            labels,
            [
                "small files: buffer / pread",
                "small files: cursor / map+unmap floor"
            ]
        );
        assert!(unpressed(&pressed).is_empty());
    }

    #[test]
    fn a_goal_missed_by_less_than_the_rounding_shows_a_third_decimal() {
        assert_eq!(goal_figure(0.9453, 0.95), "0.945");
        assert_eq!(goal_figure(1.2049, 1.2), "1.205");
        assert_eq!(goal_figure(0.95, 0.95), "0.95");
        assert_eq!(goal_figure(1.29, 1.2), "1.29");
    }

    #[test]
    fn the_goal_against_min_takes_the_first_run_which_starts_empty_as_min_does() {
        use MethodId::*;
        let mut skewed = row(
            "small_files_skewed_4k",
            100,
            &[(Buffer, 130), (Pread, 1000), (Mmap, 100), (Oracle, 125)],
        );
        skewed.belady_hit_ratio = Some(0.8);
        // The best run started warm and hit more than MIN; the first did not.
        let best = RunStats {
            hit_ratio: 0.85,
            ..RunStats::default()
        };
        skewed.cells.insert(Buffer, (130, Some(best)));
        skewed.first_hit_ratio.insert(Buffer, 0.73);
        // The oracle's files, from nothing mapped: what an online policy can
        // expect at best.
        skewed.oracle_hit_ratio = Some(0.75);
        let g = goals(&[skewed]);
        let min = g
            .iter()
            .find(|g| g.label == "skewed small files: buffer hit ratio, first run / Belady's MIN")
            .expect("the goal against MIN");
        assert!((min.value - 0.73 / 0.8).abs() < 1e-9);
        assert!(!min.met);
        // Beside it, how near MIN the oracle came.
        assert!((min.oracle.unwrap() - 0.75 / 0.8).abs() < 1e-9);
        let mut table = Vec::new();
        for g in &g {
            write_goal(&mut table, g, 52).unwrap();
        }
        let table = String::from_utf8(table).unwrap();
        assert!(
            table.contains("×0.91 (goal ≥ ×0.95): missed; the oracle's is ×0.94\n"),
            "{table}"
        );
    }

    #[test]
    fn goals_and_scaling_come_from_the_rows() {
        use MethodId::*;
        let small_threads = "small_files_random_4k_threads";
        let rows = [
            row("random_1byte", 100, &[(Buffer, 110), (Mmap, 100)]),
            threaded(
                3,
                row("random_4k_threads", 300, &[(Buffer, 105), (Mmap, 100)]),
            ),
            row("switch_1byte", 100, &[(Buffer, 400), (Mmap, 100)]),
            threaded(
                3,
                row(
                    "switch_4k_threads",
                    300,
                    &[(Buffer, 120), (Cursor, 130), (Mmap, 100)],
                ),
            ),
            row(
                "small_files_random_4k",
                100,
                &[
                    (Buffer, 1400),
                    (Pread, 1000),
                    (Cursor, 1300),
                    (MapUnmap, 1000),
                    (Mmap, 100),
                ],
            ),
            threaded(
                2,
                row(
                    small_threads,
                    200,
                    &[
                        (Buffer, 1500),
                        (Pread, 1000),
                        (Cursor, 2600),
                        (MapUnmap, 1000),
                        (Mmap, 100),
                    ],
                ),
            ),
            threaded(3, row(small_threads, 300, &[(Buffer, 2400), (Pread, 1500)])),
            row(
                "small_files_skewed_4k",
                100,
                &[(Buffer, 130), (Pread, 1000), (Mmap, 100), (Oracle, 125)],
            ),
        ];
        // Only the small files have their one-thread row here.
        let s = scaling(&rows);
        assert_eq!(
            s.keys().copied().collect::<Vec<_>>(),
            ["small_files_random_4k"]
        );
        let by = &s["small_files_random_4k"];
        assert_eq!(by.keys().copied().collect::<Vec<_>>(), [2, 3]);
        // Twice the reads in 1500 ns against 100 in 1400: ×1.87.
        assert!((by[&2]["buffer"] - 2.0 * 1400.0 / 1500.0).abs() < 1e-9);
        assert!((by[&2]["cursor"] - 1.0).abs() < 1e-9);
        // At 3 threads, only the methods both rows have.
        assert_eq!(
            by[&3].keys().copied().collect::<Vec<_>>(),
            ["buffer", "pread"]
        );
        assert!((by[&3]["buffer"] - 1.75).abs() < 1e-9);
        assert!((by[&3]["pread"] - 2.0).abs() < 1e-9);
        let largest = at_largest(&s);
        assert_eq!(largest["small_files_random_4k"], by[&3]);

        let g = goals(&rows);
        let got: Vec<(&str, bool)> = g.iter().map(|g| (g.label.as_str(), g.met)).collect();
        assert_eq!(
            got,
            [
                ("small files: buffer / pread", true),
                ("small files: buffer throughput, 2 threads vs 1", true),
                ("skewed small files: buffer / min(pread, raw mmap)", false),
                ("small files: cursor / map+unmap floor", false),
                ("window switches, 1-byte reads: buffer / raw mmap", false),
                ("large file, 1-byte reads: buffer / raw mmap", true),
                (
                    "window switches, 4 KiB reads, 3 threads: buffer / raw mmap",
                    true
                ),
                (
                    "window switches, 4 KiB reads, 3 threads: cursor / raw mmap",
                    false
                ),
                (
                    "large file, 4 KiB reads, 3 threads: buffer / raw mmap",
                    true
                ),
                ("small files, 3 threads: buffer / pread", false),
                (
                    "small files, 3 threads vs 1: buffer scaling / pread scaling",
                    true
                ),
            ]
        );
        let value = |i: usize| g[i].value;
        // The threads-vs-1 goal takes the 2-thread row.
        assert!((value(1) - 2.0 * 1400.0 / 1500.0).abs() < 1e-9);
        assert!((value(2) - 1.3).abs() < 1e-9);
        assert!((value(4) - 4.0).abs() < 1e-9);
        assert!((value(9) - 1.6).abs() < 1e-9);
        assert!((value(10) - 0.875).abs() < 1e-9);
        // Only the skewed row has an oracle, and without MIN's and the
        // oracle's hit ratios only its time goal compares with it.
        assert!((g[2].oracle.unwrap() - 1.25).abs() < 1e-9);
        assert!(g.iter().filter(|g| g.oracle.is_some()).count() == 1);
        // Without a 2-thread row, the threads-vs-1 goal takes the smallest
        // count.
        let no_two: Vec<Row> = rows
            .into_iter()
            .filter(|r| !(r.name == small_threads && r.threads == 2))
            .collect();
        let g = goals(&no_two);
        assert_eq!(g[1].label, "small files: buffer throughput, 3 threads vs 1");
        assert!((g[1].value - 1.75).abs() < 1e-9);
        // A run without small files or raw mmap has no goals.
        assert!(goals(&[row("random_4k", 10, &[(Buffer, 1)])]).is_empty());
    }
}
