//! `smmap bench`: the engine measured against raw whole-file `mmap`,
//! `pread` and a map + unmap per read on this machine, on data it generates
//! and removes afterwards.
//!
//! Three steps: [`setup`] writes the data and opens the baselines'
//! mappings and descriptors; [`run_all`] times every workload of
//! [`workloads::plan`] with each of its methods ([`methods::MethodId`]),
//! `--repeat` times, keeping the best; [`report`](mod@report) prints the
//! table or the JSON. Managers, raw mappings and open files live from run
//! to run of a workload, as in a long-running program, so the best run
//! measures reading through mappings already faulted in rather than page
//! faults (the first run pays those, alike for every method). Every run of
//! a workload must produce the same checksum (and the sequential scan one
//! made of the sum of the bytes written), so no number can come from a
//! broken read.
//!
//! `--sweep` times instead the small files under a range of budgets
//! ([`sweep`]); `--find` times `smmap find` beside ripgrep ([`grep`]).

mod belady;
mod data;
mod grep;
mod methods;
mod replay;
mod report;
mod sweep;
mod workloads;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::bail;
use clap::Args;

use crate::progress::Progress;
use crate::size::{parse_count, parse_size};
use crate::Exit;
use data::Rng;
use methods::{FileSet, MethodId, Op};
use report::{Config, Report, Row};
use workloads::{Budget, Sizes, Workload, READ};

/// Options of `smmap bench`.
#[derive(Args, Debug)]
#[command(after_help = "\
Rows: sequential scan of the large file; random 1-byte reads; random 4 KiB reads; the same \
from each count of --threads (a list: 1,2,4,8) above 1, the threads sharing one manager; \
window switches: random 1-byte and 4 KiB reads of the large file with 1 MiB windows, whatever \
--window says, which the default limits all hold (the 4 KiB row also at each count; with a \
--size over 1 MiB, so that there are windows to switch between); random 4 \
KiB reads across the small files (under --max-handles and --max-memory, so most reads cannot \
keep a window), also at each count; the same with 80% of the reads on 20% of the files, under \
a budget the hot files fit and the whole set does not. Columns: the engine's \
SlidingWindowMapBuffer (adaptive read policy, and always-map), its WindowCursor, one raw \
whole-file memmap2 mapping per file, pread, and a map + unmap of the window per read; then \
times relative to raw mmap and the cursor's relative to map + unmap; then each threaded row's \
throughput relative to one thread, the engine's counters (Manager::stats()) of each best run, \
and the ratios the project aims at. Managers, raw mappings and open files are kept from run \
to run, so the best of the runs reads through pages already mapped. Every method must read \
the same bytes (checksums are compared), or the benchmark fails. The data is removed \
afterwards, also on errors and Ctrl-C.

--json prints the same as one JSON document (schema 1); its fields are documented on the types \
that serialize them, in crates/smmap-cli/src/bench/report.rs.

--sweep times 4 KiB reads across the small files under a range of budgets (a share of the \
files' mappings and bytes) for the adaptive policy, always-map and pread, prints a table and a \
chart, and draws the chart to --svg.

--find times `smmap find --count` on a --size file of random bytes (all CPUs, then one thread) \
beside `rg --count-matches -a -F` when ripgrep is on the PATH, each as a process of its own, \
best and median of --repeat runs (at least 5); the counts must agree.

--replay TRACE does again what a program recorded (smmap::Trace; SMMAP_TRACE=PATH for a \
Python program) against the files it read (where it read them, under --dir by name, or files \
of their sizes with --make-files): through the engine under the adaptive policy and \
always-map, with pread and through a raw map of every file, under --window, --max-memory and \
--max-handles — or with --sweep under budgets from 1% to all of the trace's working set, \
drawn to --svg — and prints time per read, hit ratio, maps, preads and peak mapped bytes \
beside the hit ratio of Belady's MIN with bypass over the same reads. A trace (gzip-compressed \
or not) is read whole into memory, up to 64 MiB uncompressed.

Examples:
  cargo run --release -p smmap-cli -- bench
  smmap bench --size 256MiB --files 500 --json > bench.json
  smmap bench --threads 1,2,4,8,16                # scaling from 1 to 16 threads
  smmap bench --window 64MiB --dir /mnt/nvme      # sliding 64 MiB windows, data on another disk
  smmap bench --sweep --svg crates/smmap-cli/sweep.svg
  smmap bench --find                              # smmap find beside ripgrep on 1 GiB
  smmap bench --replay gitdb.trace --dir .git/objects/pack --sweep")]
pub struct BenchArgs {
    /// Size of the large file
    #[arg(long, value_name = "SIZE", default_value = "1GiB", value_parser = parse_size)]
    size: u64,

    /// Number of small files (4–64 KiB each), at most 1048576
    #[arg(long, value_name = "N", default_value = "2000", value_parser = parse_files)]
    files: usize,

    /// Where to make the temporary data directory (default: the system's temporary directory); with --replay, the directory that holds the trace's files (found by name), or with --make-files where to make them
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,

    /// Print JSON instead of a table
    #[arg(long)]
    json: bool,

    /// Window size of the workloads (the window switches keep 1 MiB; default: the engine's, 1 GiB on 64-bit)
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    window: Option<u64>,

    /// Memory limit of the uniform small-files workloads (0: the engine's default)
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = parse_size)]
    max_memory: u64,

    /// Mapping limit of the uniform small-files workloads
    #[arg(long, value_name = "N", default_value = "64", value_parser = crate::limits::parse_positive)]
    max_handles: usize,

    /// Descriptors the engine keeps open: in the small-files workloads and the sweep (default: one per file, as the pread baseline keeps, or as many as the open-file limit leaves), and in a replay (default: one per file of the trace)
    #[arg(long, value_name = "N", value_parser = crate::limits::parse_positive)]
    max_open_files: Option<usize>,

    /// Run each method of the small-files workloads all its runs in turn, not interleaved with the others, so that each has the limit on open files (and each engine method its manager) to itself; the default where the limit cannot hold a descriptor per file for the baselines and for each of the engine's two managers at once
    #[arg(long)]
    in_turn: bool,

    /// Thread counts of the threaded rows, sharing one manager, as a list (1,2,4,8), each at most 1024; one thread always runs
    #[arg(long, value_name = "N,...", default_value = "2", value_parser = ThreadCounts::parse)]
    threads: ThreadCounts,

    /// Random 1-byte reads per run (default: size / 1 KiB, within 10,000–1,000,000; at most 2^28); the 4 KiB reads of the large file are a quarter as many, those across the small files a tenth, per thread
    #[arg(long, value_name = "N", value_parser = parse_ops)]
    ops: Option<usize>,

    /// Runs of each method per workload, 1 to 1000; the best counts
    #[arg(long, value_name = "N", default_value = "3", value_parser = parse_repeat)]
    repeat: usize,

    /// Seed of the generated data and the read offsets
    #[arg(long, default_value = "1")]
    seed: u64,

    /// Time the small files under a range of budgets instead (see below)
    #[arg(long, conflicts_with = "find")]
    sweep: bool,

    /// Time `smmap find --count` on the large file beside ripgrep instead (see below)
    #[arg(long)]
    find: bool,

    /// With --sweep: where to draw the chart
    #[arg(long, value_name = "PATH", default_value = "smmap-sweep.svg")]
    svg: PathBuf,

    /// Replay a recorded trace instead (see below): under --window, --max-memory and --max-handles, or with --sweep under a range of budgets
    #[arg(long, value_name = "TRACE", conflicts_with = "find")]
    replay: Option<PathBuf>,

    /// With --replay: read files of the trace's sizes made for the run (zeros) instead of the files it names
    #[arg(long, requires = "replay")]
    make_files: bool,

    /// No progress on stderr
    #[arg(short, long)]
    quiet: bool,
}

/// Runs `smmap bench`.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    // Each check where its options are used: the large file is written
    // by the rows and by --find; the threaded rows only by the rows; the
    // small files are read by the rows and the sweep (not a replay's).
    let rows = !args.sweep && !args.find && args.replay.is_none();
    let small_sweep = args.sweep && args.replay.is_none();
    if (rows || args.find) && args.size < 64 * 1024 {
        bail!("--size must be at least 64KiB (got {})", args.size);
    }
    let threads = args.threads.largest();
    // Only the small files' rows keep to --max-handles.
    if rows && args.files > 0 && args.max_handles < threads {
        bail!(
            "--max-handles {} is fewer than --threads {threads}: each thread holds a window while it reads",
            args.max_handles,
        );
    }
    // The rows of the most threads hold every thread's reads at once.
    let held = (ops_of(args) / 4).max(1).saturating_mul(threads);
    if rows && held > MAX_READS {
        bail!(
            "--ops {} with --threads {threads}: the rows of {threads} threads would hold \
             {held} reads in memory at once (a quarter of --ops each), and a run holds at most \
             {MAX_READS} reads; give fewer --ops or threads",
            ops_of(args)
        );
    }
    if small_sweep && args.files == 0 {
        bail!("--sweep reads the small files: --files must be at least 1");
    }
    if args.sweep {
        // Before the measurements, not after them.
        let dir = match args.svg.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        if !dir.is_dir() {
            bail!(
                "cannot draw {}: {} is not a directory",
                args.svg.display(),
                dir.display()
            );
        }
        if args.svg.is_dir() {
            bail!("cannot draw {}: it is a directory", args.svg.display());
        }
    }
    data::catch_interrupts();
    let result = if let Some(trace) = &args.replay {
        replay::run(args, trace)
    } else if args.sweep {
        sweep::run(args)
    } else if args.find {
        grep::run(args)
    } else {
        bench(args)
    };
    match result {
        Err(e) if e.is::<data::Interrupted>() => {
            let _ = writeln!(
                std::io::stderr(),
                "smmap: interrupted; the benchmark data was removed"
            );
            Err(Exit(130).into())
        }
        other => other,
    }
}

/// The most threads of a row (`--threads`): more than the cores of any
/// machine the bench is meant for, and few enough that their stacks and
/// reads fit in memory.
const MAX_THREADS: usize = 1024;

/// The most runs of each method (`--repeat`).
const MAX_REPEAT: usize = 1000;

/// The most small files (`--files`): the bench keeps a descriptor open
/// per file, and Linux allows a process at most 2^20 by default
/// (`fs.nr_open`).
const MAX_FILES: usize = 1 << 20;

/// The most reads a run holds in memory, all its threads' together (24
/// bytes each: 6 GiB); `--ops` is at most this too.
const MAX_READS: usize = 1 << 28;

/// Parses `--files`: at most [`MAX_FILES`].
fn parse_files(input: &str) -> Result<usize, String> {
    match parse_count(input)? {
        n if n > MAX_FILES => Err(format!(
            "{n} files: at most {MAX_FILES} small files (the bench keeps a descriptor open \
             per file, and {MAX_FILES} is Linux's default ceiling, fs.nr_open)"
        )),
        n => Ok(n),
    }
}

/// Parses `--ops`: at most [`MAX_READS`].
fn parse_ops(input: &str) -> Result<usize, String> {
    match parse_count(input)? {
        0 => Err("0 reads: at least 1 read per run is needed".to_string()),
        n if n > MAX_READS => Err(format!(
            "{n} reads: at most {MAX_READS} reads per run (the bench holds every read in \
             memory, 24 bytes each, before it runs them)"
        )),
        n => Ok(n),
    }
}

/// Parses `--repeat`: 1 to [`MAX_REPEAT`].
fn parse_repeat(input: &str) -> Result<usize, String> {
    match parse_count(input)? {
        0 => Err("0 runs: at least 1 run of each method is needed".to_string()),
        n if n > MAX_REPEAT => Err(format!("{n} runs: at most {MAX_REPEAT} runs")),
        n => Ok(n),
    }
}

/// Random 1-byte reads per run: `--ops`, or by default one per KiB of
/// `--size`, within 10,000–1,000,000.
fn ops_of(args: &BenchArgs) -> usize {
    args.ops
        .unwrap_or_else(|| (args.size / 1024).clamp(10_000, 1_000_000) as usize)
        .max(1)
}

/// The thread counts of `--threads`: ascending, without duplicates, each
/// from 1 to [`MAX_THREADS`], and one at least 2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadCounts(Vec<usize>);

impl ThreadCounts {
    /// Parses a comma-separated list such as `1,2,4,8`; errors name the
    /// piece at fault.
    fn parse(input: &str) -> Result<Self, String> {
        let mut counts = input
            .split(',')
            .map(|piece| match parse_count(piece) {
                Ok(0) => Err("0 threads: every count must be at least 1".to_string()),
                Ok(n) if n > MAX_THREADS => Err(format!(
                    "{n} threads: every count must be at most {MAX_THREADS}"
                )),
                Ok(n) => Ok(n),
                Err(_) => Err(format!(
                    "{:?} is not a thread count: expected a list such as 1,2,4,8",
                    piece.trim()
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        counts.sort_unstable();
        counts.dedup();
        if !counts.iter().any(|&n| n >= 2) {
            return Err(format!(
                "no count of 2 or more in {input:?}: the threaded rows need one \
                 (the one-thread rows always run)"
            ));
        }
        Ok(ThreadCounts(counts))
    }

    /// The largest count.
    fn largest(&self) -> usize {
        self.0.last().copied().unwrap_or(1)
    }

    /// The counts of the threaded rows: those above 1.
    fn threaded(&self) -> Vec<usize> {
        self.0.iter().copied().filter(|&n| n > 1).collect()
    }
}

/// Progress on stderr: a bar on a terminal, a line per stage otherwise.
struct Notes {
    progress: Progress,
    plain: bool,
}

impl Notes {
    fn new(quiet: bool, steps: u64) -> Self {
        Notes {
            progress: if quiet {
                Progress::hidden()
            } else {
                Progress::steps(steps)
            },
            plain: !quiet && !std::io::stderr().is_terminal(),
        }
    }

    fn stage(&self, message: String) {
        if self.plain {
            let _ = writeln!(std::io::stderr(), "smmap bench: {message}");
        }
        self.progress.set_message(message);
    }
}

/// The generated data and what the baselines keep of it. Fields drop in
/// order: the sets (their maps and descriptors) before the directory, as
/// Windows refuses to delete a mapped file.
struct Data {
    large: FileSet,
    small: FileSet,
    /// The sum of the large file's bytes.
    large_sum: u64,
    /// The directory; removed when dropped, after the sets.
    dir: tempfile::TempDir,
}

/// Writes the data into a new directory under `--dir` and opens it; the
/// baselines keep the small files open from run to run if `keep`.
fn setup(args: &BenchArgs, notes: &Notes, large: bool, keep: bool) -> anyhow::Result<Data> {
    let parent = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = data::temp_dir(&parent)?;
    let size = if large { args.size } else { 0 };
    notes.stage(format!(
        "writing {} and {} small files to {}",
        indicatif::HumanBytes(size),
        args.files,
        dir.path().display()
    ));
    let mut large_paths = Vec::new();
    let mut large_sum = 0;
    if large {
        let path = dir.path().join("large.bin");
        large_sum = data::write_big(&path, args.size, args.seed)?;
        large_paths.push(path);
    }
    let small = data::write_small(&dir.path().join("small"), args.files, args.seed ^ 0x5a5a)?;
    data::raise_open_file_limit(args.files as u64 + data::SPARE_FILES);
    Ok(Data {
        large: FileSet::open(large_paths, true)?,
        small: FileSet::open(small, keep)?,
        large_sum,
        dir,
    })
}

fn bench(args: &BenchArgs) -> anyhow::Result<()> {
    let window = window_of(args);
    // A descriptor per small file for each manager and for the baselines:
    // all at once where the limit holds them, else in turn (each method
    // runs all its runs alone: `workloads::measure`), not a number that
    // would make the engine find the table full and close its descriptors.
    let limit = data::raise_open_file_limit(data::files_for_all_sets(args.files));
    let plan = data::descriptor_plan(limit, args.files);
    let max_open_files = Some(args.max_open_files.unwrap_or(plan.engine).max(1));
    let small_budget = Budget {
        max_memory: Some(args.max_memory),
        max_handles: Some(args.max_handles),
        max_open_files,
    };
    let ops = ops_of(args);
    // The skewed budget depends on the files' sizes: known after setup.
    let mut sizes = Sizes {
        ops,
        threads: args.threads.threaded(),
        small: small_budget,
        skewed: Budget::default(),
        small_files: args.files > 0,
        switches: args.size > workloads::SWITCH_WINDOW,
    };
    let steps: u64 = workloads::plan(&sizes)
        .iter()
        .map(|w| (w.methods.len() * args.repeat) as u64)
        .sum();
    let mut notes = Notes::new(args.quiet, 1 + steps);
    let data = setup(args, &notes, true, plan.baselines_keep && !args.in_turn)?;
    if args.files > 0 {
        sizes.skewed = workloads::hot_budget(&data.small.sizes, max_open_files);
    }
    notes.progress.inc(1);

    let plan = workloads::plan(&sizes);
    let rows = run_all(args, &data, &plan, window, &mut notes)?;
    notes.progress.finish();
    let report = report(args, &data, rows, window, &sizes);
    // The data goes before the output, so that a reader of the output
    // (`… | head`) that quits early leaves nothing behind. Unmapped and
    // closed before their files are removed.
    let Data {
        dir, large, small, ..
    } = data;
    drop((large, small));
    drop(dir);
    crate::output::print(args.json, &report, |out| report::write_table(out, &report))
}

/// The window of the workloads: `--window` rounded up to whole pages, as
/// the engine maps it (0: whole files), or the engine's default.
pub(crate) fn window_of(args: &BenchArgs) -> u64 {
    match args.window {
        Some(0) => 0,
        Some(w) => smmap::align_to_mmap(w, true),
        None => smmap::default_window_size(),
    }
}

/// Belady's window slot for `window` (from [`window_of`]): whole files
/// (`u64::MAX`) for 0.
pub(crate) fn slot_of(window: u64) -> u64 {
    if window == 0 {
        u64::MAX
    } else {
        window
    }
}

/// Belady's MIN with bypass over the reads of `lists` (the threads' reads
/// in turn) of the files of `set`, with windows of `window` bytes (the
/// engine's window size), under `limits`.
fn belady_of(
    lists: &[Vec<Op>],
    set: &FileSet,
    window: u64,
    limits: belady::Limits,
) -> belady::Outcome {
    belady::min(&accesses_of(lists, set, window), limits)
}

/// The window accesses of the reads of `lists` (the threads' reads in
/// turn) of the files of `set`, with windows of `window` bytes.
fn accesses_of(lists: &[Vec<Op>], set: &FileSet, window: u64) -> Vec<belady::Access> {
    let longest = lists.iter().map(Vec::len).max().unwrap_or(0);
    let reads: Vec<belady::Read> = (0..longest)
        .flat_map(|i| lists.iter().filter_map(move |l| l.get(i)))
        .map(|op| belady::Read::at(op.file, op.offset, op.len))
        .collect();
    belady::accesses(
        &reads,
        &set.sizes,
        slot_of(window),
        *smmap::ALLOCATIONGRANULARITY,
    )
}

/// The hit ratios the engine's are compared with, over the reads of
/// `lists` under `access`'s budget, from nothing mapped: Belady's MIN's,
/// and, where `w` runs the oracle and its windows are whole files (as the
/// oracle maps them), the oracle's files counted as mapped at their first
/// reads — on reads with fixed odds, what an online policy can expect at
/// best (see [`belady`]).
fn references(
    w: &Workload,
    set: &FileSet,
    lists: &[Vec<Op>],
    access: &methods::Access,
) -> (f64, Option<f64>) {
    let accesses = accesses_of(lists, set, access.window);
    let limits = belady::Limits {
        handles: access.managers[0].max_file_handles(),
        bytes: access.managers[0].max_mapped_memory_size(),
    };
    let min = belady::min(&accesses, limits).hit_ratio();
    let whole_files = set.sizes.iter().all(|&size| size <= slot_of(access.window));
    let oracle = (w.methods.contains(&MethodId::Oracle) && whole_files).then(|| {
        let n = methods::oracle_files(&set.sizes, &access.budget);
        belady::fixed_set(&accesses, |file| (file as usize) < n).hit_ratio()
    });
    (min, oracle)
}

/// Times every workload of `plan`.
fn run_all(
    args: &BenchArgs,
    data: &Data,
    plan: &[Workload],
    window: u64,
    notes: &mut Notes,
) -> anyhow::Result<Vec<Row>> {
    let mut rng = Rng::new(args.seed ^ 0xb1b1);
    let mut rows = Vec::new();
    for w in plan {
        let set = match w.files {
            workloads::Files::Large => &data.large,
            workloads::Files::Small => &data.small,
        };
        let lists = w.ops(set, &mut rng);
        let ops = w.total_ops(&lists);
        let bytes: u64 = lists.iter().flatten().map(|op| op.len).sum();
        notes.stage(w.label.to_string());
        let access = w.access(window);
        let methods = w
            .methods
            .iter()
            .map(|&id| Ok((id, id.prepare(set, &access)?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let progress = &mut notes.progress;
        let phased = !set.open.kept();
        let measured = workloads::measure(
            &methods,
            &lists,
            args.repeat,
            w.label,
            phased,
            |id, round| {
                progress.set_message(format!(
                    "{}: {} (run {} of {})",
                    w.label,
                    id.label(),
                    round + 1,
                    args.repeat
                ));
                progress.inc(1);
            },
        )?;
        if w.pattern == workloads::Pattern::Scan {
            let want = data::mix(0, data.large_sum);
            if measured.checksum != want {
                bail!(
                    "the sequential scan read bytes whose checksum is {:#x}, but the bytes written give {want:#x}",
                    measured.checksum
                );
            }
        }
        let mut row = Row::new(w, access.window, ops, bytes, &measured);
        if w.budget.is_set() {
            let (min, oracle) = references(w, set, &lists, &access);
            row.belady_hit_ratio = Some(min);
            row.oracle_hit_ratio = oracle;
        }
        rows.push(row);
    }
    Ok(rows)
}

/// The report of the rows.
fn report(args: &BenchArgs, data: &Data, rows: Vec<Row>, window: u64, sizes: &Sizes) -> Report {
    let hot = workloads::hot_count(data.small.sizes.len()).min(data.small.sizes.len());
    let probe = |b: Budget| b.manager(window, smmap::ReadPolicy::Adaptive);
    let (large, small, skewed) = (
        probe(Budget::default()),
        probe(sizes.small),
        probe(sizes.skewed),
    );
    let scaling = report::scaling(&rows);
    Report {
        schema: 1,
        config: Config {
            data_dir: data.dir.path().to_string_lossy().into_owned(),
            file_size: args.size,
            small_files: data.small.paths.len(),
            small_files_bytes: data.small.bytes(),
            read_size: READ,
            window_size: window,
            max_memory_size: large.max_mapped_memory_size(),
            small_max_memory_size: small.max_mapped_memory_size(),
            small_max_handles: small.max_file_handles(),
            small_max_open_files: small.max_open_files(),
            descriptors_in_turn: !data.small.open.kept(),
            skewed_max_memory_size: skewed.max_mapped_memory_size(),
            skewed_max_handles: skewed.max_file_handles(),
            hot_files: hot,
            hot_files_bytes: data.small.sizes[..hot].iter().sum(),
            hot_reads_share: workloads::HOT_READS,
            threads: args.threads.largest(),
            thread_counts: args.threads.0.clone(),
            repeat: args.repeat,
            seed: args.seed,
            granularity: *smmap::ALLOCATIONGRANULARITY,
        },
        thread_scaling: report::at_largest(&scaling),
        scaling,
        goals: report::goals(&rows),
        workloads: rows,
        checksums_verified: true,
    }
}

/// The methods the sweep compares.
const SWEPT: [MethodId; 3] = [MethodId::Buffer, MethodId::BufferMap, MethodId::Pread];

#[cfg(test)]
mod tests {
    use super::ThreadCounts;

    #[test]
    fn thread_counts_are_sorted_without_duplicates() {
        let counts = ThreadCounts::parse("8, 2,1,2").unwrap();
        assert_eq!(counts, ThreadCounts(vec![1, 2, 8]));
        assert_eq!((counts.largest(), counts.threaded()), (8, vec![2, 8]));
        for (bad, says) in [
            ("0,2", "at least 1"),
            ("1", "no count of 2 or more in \"1\""),
            ("1,1", "no count of 2"),
            ("2,x", "\"x\" is not a thread count"),
            ("2,", "\"\" is not a thread count"),
            ("2,1025", "1025 threads: every count must be at most 1024"),
        ] {
            let e = ThreadCounts::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
