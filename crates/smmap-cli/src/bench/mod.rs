//! `smmap bench`: the engine measured against raw whole-file `mmap` and
//! `pread` on this machine, on data it generates and removes afterwards.
//!
//! Six workloads, each read four ways (see [`workloads::Method`]), each way
//! timed `--repeat` times, keeping the best. Managers, raw mappings and open
//! files live from run to run, as in a long-running program, so the best run
//! measures reading through mappings already faulted in rather than page
//! faults (the first run pays those, alike for every method). Every run of a workload must
//! produce the same checksum (and the sequential scan the sum of the bytes
//! written), so no number can come from a broken read.
//!
//! # JSON (`--json`), schema 1
//!
//! The field names are stable; new fields may be added.
//!
//! - `schema`: 1.
//! - `config`: `data_dir`, `file_size`, `small_files`, `small_files_bytes`,
//!   `read_size`, `window_size`, `max_memory_size` (large-file workloads),
//!   `small_max_memory_size`, `small_max_handles` (small-files workloads),
//!   `threads`, `repeat`, `seed`, `granularity`.
//! - `workloads`: one object per row, in this order: `name`
//!   (`sequential_scan`, `random_1byte`, `random_4k`, `random_4k_threads`,
//!   `small_files_random_4k`, `small_files_random_4k_threads`; the last two
//!   only with `--files` above 0), `label`, `ops` (reads per run, all
//!   threads; 1 for the scan), `bytes` (bytes read per run), `threads`,
//!   `buffer_ns`, `cursor_ns`, `mmap_ns`, `pread_ns` (best wall time of a
//!   run, nanoseconds), `buffer_ratio`, `cursor_ratio`, `pread_ratio` (time
//!   divided by `mmap_ns`), `checksum` (hex string, equal for every method
//!   and run), `buffer_stats`, `cursor_stats` (the manager's counters in the
//!   best run: `evictions`, `peak_mapped_bytes`, `maps`, `misses`, `hits`).
//! - `thread_scaling`: for `random_4k` and `small_files_random_4k`, an
//!   object `buffer`, `cursor`, `mmap`, `pread`: the throughput of the
//!   `…_threads` row divided by that of the one-thread row.
//! - `checksums_verified`: always `true` (a mismatch is an error instead).

mod data;
mod workloads;

use std::collections::BTreeMap;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;
use smmap::{Manager, SlidingWindowMapManager};

use crate::progress::Progress;
use crate::size::{human, parse_count, parse_size};
use crate::Exit;
use data::{Rng, TempDir};
use workloads::{BigFile, Method, Run, RunStats, SmallRead, SmallSet, READ};

/// Options of `smmap bench`.
#[derive(Args, Debug)]
#[command(after_help = "\
Rows: sequential scan of the large file; random 1-byte reads; random 4 KiB reads; the same \
from --threads threads sharing one manager; random 4 KiB reads across the small files \
(under --max-handles and --max-memory, so most reads map a window); the same from --threads \
threads sharing one manager. Columns: the engine's SlidingWindowMapBuffer and WindowCursor, \
one raw whole-file memmap2 mapping per file, and pread; then the engine's times divided by raw \
mmap's (1.00 = as fast), and the evictions and peak mapped bytes of the buffer's run from \
Manager::stats(). Managers, raw mappings and open files are kept from run to run, so the best \
of the runs reads through pages already mapped. Every method must read the same bytes \
(checksums are compared), or the benchmark fails. The data is removed afterwards, also on errors and Ctrl-C.

--json fields (stable): schema, config {data_dir, file_size, small_files, small_files_bytes, \
read_size, window_size, max_memory_size, small_max_memory_size, small_max_handles, threads, \
repeat, seed, granularity}, workloads [{name, label, ops, bytes, threads, buffer_ns, cursor_ns, \
mmap_ns, pread_ns, buffer_ratio, cursor_ratio, pread_ratio, checksum, buffer_stats, \
cursor_stats}], thread_scaling {random_4k, small_files_random_4k: {buffer, cursor, mmap, \
pread}}, checksums_verified. Workload names: sequential_scan, random_1byte, random_4k, \
random_4k_threads, small_files_random_4k, small_files_random_4k_threads. The *_ns fields are \
the best wall time of a run in nanoseconds; *_ratio = *_ns / mmap_ns; *_stats are {evictions, \
peak_mapped_bytes, maps, misses, hits}; thread_scaling is the threads' throughput over one \
thread's.

Examples:
  cargo run --release -p smmap-cli -- bench
  smmap bench --size 256MiB --files 500 --json > bench.json
  smmap bench --window 64MiB --dir /mnt/nvme      # sliding 64 MiB windows, data on another disk")]
pub struct BenchArgs {
    /// Size of the large file
    #[arg(long, value_name = "SIZE", default_value = "1GiB", value_parser = parse_size)]
    size: u64,

    /// Number of small files (4–64 KiB each)
    #[arg(long, value_name = "N", default_value = "2000", value_parser = parse_count)]
    files: usize,

    /// Where to make the temporary data directory (default: the system's temporary directory)
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,

    /// Print JSON instead of a table (fields listed below)
    #[arg(long)]
    json: bool,

    /// Window size for every workload (default: the engine's, 1 GiB on 64-bit)
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    window: Option<u64>,

    /// Memory limit of the small-files workloads
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = parse_size)]
    max_memory: u64,

    /// Mapping limit of the small-files workloads
    #[arg(long, value_name = "N", default_value = "64", value_parser = parse_count)]
    max_handles: usize,

    /// Threads of the last row, sharing one manager
    #[arg(long, value_name = "N", default_value = "2", value_parser = parse_count)]
    threads: usize,

    /// Random 1-byte reads per run (default: size / 1 KiB, within 10,000–1,000,000); the 4 KiB reads of the large file are a quarter as many, those across the small files a tenth, per thread
    #[arg(long, value_name = "N", value_parser = parse_count)]
    ops: Option<usize>,

    /// Runs of each method per workload; the best counts
    #[arg(long, value_name = "N", default_value = "3", value_parser = parse_count)]
    repeat: usize,

    /// Seed of the generated data and the read offsets
    #[arg(long, default_value = "1")]
    seed: u64,

    /// No progress on stderr
    #[arg(short, long)]
    quiet: bool,
}

/// The configuration, as reported.
#[derive(Serialize, Debug)]
struct Config {
    data_dir: String,
    file_size: u64,
    small_files: usize,
    small_files_bytes: u64,
    read_size: usize,
    window_size: u64,
    max_memory_size: u64,
    small_max_memory_size: u64,
    small_max_handles: usize,
    threads: usize,
    repeat: usize,
    seed: u64,
    granularity: u64,
}

/// One row of the table.
#[derive(Serialize, Debug)]
struct Row {
    name: &'static str,
    label: &'static str,
    ops: u64,
    bytes: u64,
    threads: usize,
    buffer_ns: u64,
    cursor_ns: u64,
    mmap_ns: u64,
    pread_ns: u64,
    buffer_ratio: f64,
    cursor_ratio: f64,
    pread_ratio: f64,
    checksum: String,
    buffer_stats: RunStats,
    cursor_stats: RunStats,
}

/// Throughput with threads over throughput without, per method.
#[derive(Serialize, Debug, Clone, Copy)]
struct Scaling {
    buffer: f64,
    cursor: f64,
    mmap: f64,
    pread: f64,
}

/// The whole result.
#[derive(Serialize, Debug)]
struct Report {
    schema: u32,
    config: Config,
    workloads: Vec<Row>,
    thread_scaling: BTreeMap<&'static str, Scaling>,
    checksums_verified: bool,
}

/// Runs `smmap bench`.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if args.size < 64 * 1024 {
        bail!("--size must be at least 64KiB (got {})", args.size);
    }
    if args.repeat == 0 {
        bail!("--repeat must be at least 1");
    }
    if args.threads < 2 {
        bail!("--threads must be at least 2 (the one-thread row is always there)");
    }
    if args.max_handles < args.threads {
        bail!(
            "--max-handles {} is fewer than --threads {}: each thread holds a window while it reads",
            args.max_handles,
            args.threads
        );
    }
    if u32::try_from(args.files).is_err() {
        bail!("--files is too large");
    }
    data::catch_interrupts();
    match bench(args) {
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

/// Prints a line of progress on stderr when no bar is drawn there.
struct Notes {
    progress: Progress,
    plain: bool,
}

impl Notes {
    fn stage(&self, message: String) {
        if self.plain {
            let _ = writeln!(std::io::stderr(), "smmap bench: {message}");
        }
        self.progress.set_message(message);
    }
}

fn bench(args: &BenchArgs) -> anyhow::Result<()> {
    let parent = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let tmp = TempDir::new(&parent)?;
    let window = args.window.unwrap_or_else(smmap::default_window_size);
    let small_rows = args.files > 0;
    let rows = if small_rows { 6 } else { 4 };
    let mut notes = Notes {
        progress: if args.quiet {
            Progress::hidden()
        } else {
            Progress::steps(1 + rows * args.repeat as u64 * 4)
        },
        plain: !args.quiet && !std::io::stderr().is_terminal(),
    };

    // The data.
    notes.stage(format!(
        "writing {} and {} small files to {}",
        human(args.size),
        args.files,
        tmp.path().display()
    ));
    let big_path = tmp.path().join("large.bin");
    let big_sum = data::write_big(&big_path, args.size, args.seed)?;
    let small = data::write_small(&tmp.path().join("small"), args.files, args.seed ^ 0x5a5a)?;
    let small_bytes: u64 = small.iter().map(|f| f.size).sum();
    data::raise_open_file_limit(args.files as u64 + 256);
    notes.progress.inc(1);

    // The reads, the same for every method.
    let n1 = args
        .ops
        .unwrap_or_else(|| (args.size / 1024).clamp(10_000, 1_000_000) as usize)
        .max(1);
    let n4 = (n1 / 4).max(1);
    // Reads across the small files mostly map a window each: fewer of them.
    let n_small = (n1 / 10).max(1);
    let mut rng = Rng::new(args.seed ^ 0xb1b1);
    let bytes_at: Vec<u64> = (0..n1).map(|_| rng.below(args.size)).collect();
    let blocks_at = |rng: &mut Rng| -> Vec<u64> {
        (0..n4)
            .map(|_| rng.below(args.size - READ as u64 + 1))
            .collect()
    };
    let small_reads = |rng: &mut Rng| -> Vec<SmallRead> {
        (0..n_small)
            .map(|_| {
                let f = rng.below(small.len() as u64) as usize;
                let o = rng.below(small[f].size - READ as u64 + 1);
                (f as u32, o as u32)
            })
            .collect()
    };

    // One manager and one set of raw mappings for all runs (see BigFile).
    let big_manager: Manager = SlidingWindowMapManager::builder()
        .window_size(window)
        .build()
        .into();
    let big_map = workloads::map_whole(&big_path, memmap2::Advice::Normal)?;
    let big = BigFile {
        path: &big_path,
        manager: &big_manager,
        map: &big_map,
    };
    let small_manager: Manager = SlidingWindowMapManager::builder()
        .window_size(window)
        .max_memory_size(args.max_memory)
        .max_open_handles(args.max_handles.max(1))
        .build()
        .into();
    let small_maps = small
        .iter()
        .map(|f| workloads::map_whole(&f.path, memmap2::Advice::Normal))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let small_open = small
        .iter()
        .map(|f| {
            std::fs::File::open(&f.path).with_context(|| {
                format!(
                    "cannot open {} for the pread baseline, which keeps all {} files open \
                     (raise `ulimit -n` or use fewer --files)",
                    f.path.display(),
                    small.len()
                )
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let set = SmallSet {
        files: &small,
        manager: &small_manager,
        maps: &small_maps,
        open: &small_open,
    };

    let mut table = Vec::new();
    let row = measure(&mut notes, args.repeat, "sequential scan", |m| {
        workloads::sequential(&big, m)
    })?;
    if row.checksum != big_sum {
        bail!(
            "the sequential scan read bytes summing to {:#x}, but the bytes written sum to {big_sum:#x}",
            row.checksum
        );
    }
    table.push(row.into_row("sequential_scan", "sequential scan", 1, args.size, 1));
    // The random reads start from fresh windows, without the scan's hint.
    big_manager.collect();
    let row = measure(&mut notes, args.repeat, "random 1-byte reads", |m| {
        workloads::random_bytes(&big, &bytes_at, m)
    })?;
    let label = "random 1-byte reads";
    table.push(row.into_row("random_1byte", label, n1 as u64, n1 as u64, 1));

    // Each of the other workloads once in one thread, then in several.
    let threads = args.threads;
    let one = vec![blocks_at(&mut rng)];
    let label = "random 4 KiB reads";
    let row = measure(&mut notes, args.repeat, label, |m| {
        workloads::random_blocks(&big, &one, m)
    })?;
    table.push(row.into_row("random_4k", label, n4 as u64, (n4 * READ) as u64, 1));
    let many: Vec<Vec<u64>> = (0..threads).map(|_| blocks_at(&mut rng)).collect();
    let label = "random 4 KiB reads, threads";
    let row = measure(&mut notes, args.repeat, label, |m| {
        workloads::random_blocks(&big, &many, m)
    })?;
    let ops = (n4 * threads) as u64;
    table.push(row.into_row("random_4k_threads", label, ops, ops * READ as u64, threads));

    if small_rows {
        let one = vec![small_reads(&mut rng)];
        let label = "small files, 4 KiB reads";
        let row = measure(&mut notes, args.repeat, label, |m| {
            workloads::small_files(&set, &one, m)
        })?;
        let ops = n_small as u64;
        table.push(row.into_row("small_files_random_4k", label, ops, ops * READ as u64, 1));
        let many: Vec<Vec<SmallRead>> = (0..threads).map(|_| small_reads(&mut rng)).collect();
        let label = "small files, 4 KiB reads, threads";
        let row = measure(&mut notes, args.repeat, label, |m| {
            workloads::small_files(&set, &many, m)
        })?;
        let ops = (n_small * threads) as u64;
        let name = "small_files_random_4k_threads";
        table.push(row.into_row(name, label, ops, ops * READ as u64, threads));
    }
    let scaling = scaling(&table);
    notes.progress.finish();

    let report = Report {
        schema: 1,
        config: Config {
            data_dir: tmp.path().to_string_lossy().into_owned(),
            file_size: args.size,
            small_files: small.len(),
            small_files_bytes: small_bytes,
            read_size: READ,
            window_size: window,
            max_memory_size: big_manager.max_mapped_memory_size(),
            small_max_memory_size: small_manager.max_mapped_memory_size(),
            small_max_handles: small_manager.max_file_handles(),
            threads: args.threads,
            repeat: args.repeat,
            seed: args.seed,
            granularity: *smmap::ALLOCATIONGRANULARITY,
        },
        workloads: table,
        thread_scaling: scaling,
        checksums_verified: true,
    };
    // The data goes before the output, so that a reader of the output
    // (`… | head`) that quits early leaves nothing behind.
    // Unmapped and closed before their files are removed.
    let _ = (set, big);
    drop(small_open);
    drop(small_maps);
    drop(big_map);
    drop(small_manager);
    drop(big_manager);
    drop(tmp);
    let mut out = BufWriter::new(std::io::stdout().lock());
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report).context("cannot write to stdout")?;
        writeln!(out).context("cannot write to stdout")?;
    } else {
        write_table(&mut out, &report).context("cannot write to stdout")?;
    }
    out.flush().context("cannot write to stdout")?;
    Ok(())
}

/// For each workload run both in one thread and in several (the row named
/// `…_threads` right after it), the throughput of the threads over that of
/// one thread, per method.
fn scaling(table: &[Row]) -> BTreeMap<&'static str, Scaling> {
    let mut out = BTreeMap::new();
    for pair in table.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if b.name.strip_suffix("_threads") != Some(a.name) {
            continue;
        }
        let per_op = |ns: u64, ops: u64| ns as f64 / ops.max(1) as f64;
        let gain = |t1: u64, tn: u64| per_op(t1, a.ops) / per_op(tn, b.ops).max(f64::MIN_POSITIVE);
        out.insert(
            a.name,
            Scaling {
                buffer: gain(a.buffer_ns, b.buffer_ns),
                cursor: gain(a.cursor_ns, b.cursor_ns),
                mmap: gain(a.mmap_ns, b.mmap_ns),
                pread: gain(a.pread_ns, b.pread_ns),
            },
        );
    }
    out
}

/// The best run of each method of one workload.
struct Measured {
    best: [Run; 4],
    checksum: u64,
}

impl Measured {
    fn into_row(
        self,
        name: &'static str,
        label: &'static str,
        ops: u64,
        bytes: u64,
        threads: usize,
    ) -> Row {
        let ns = |m: Method| {
            self.best[m as usize]
                .time
                .as_nanos()
                .min(u128::from(u64::MAX)) as u64
        };
        let mmap = ns(Method::Mmap).max(1);
        let ratio = |m: Method| ns(m) as f64 / mmap as f64;
        let stats = |m: Method| self.best[m as usize].stats.unwrap_or_default();
        Row {
            name,
            label,
            ops,
            bytes,
            threads,
            buffer_ns: ns(Method::Buffer),
            cursor_ns: ns(Method::Cursor),
            mmap_ns: ns(Method::Mmap),
            pread_ns: ns(Method::Pread),
            buffer_ratio: ratio(Method::Buffer),
            cursor_ratio: ratio(Method::Cursor),
            pread_ratio: ratio(Method::Pread),
            checksum: format!("{:#018x}", self.checksum),
            buffer_stats: stats(Method::Buffer),
            cursor_stats: stats(Method::Cursor),
        }
    }
}

/// Runs every method `repeat` times, interleaved so that drift in the
/// machine's speed spreads over all of them; keeps each method's fastest run
/// and checks that every run read the same bytes.
fn measure(
    notes: &mut Notes,
    repeat: usize,
    label: &str,
    mut one: impl FnMut(Method) -> anyhow::Result<Run>,
) -> anyhow::Result<Measured> {
    notes.stage(label.to_string());
    let mut best: [Option<Run>; 4] = [None; 4];
    let mut first: Option<(Method, u64)> = None;
    for round in 0..repeat {
        for method in Method::ALL {
            data::check_interrupted()?;
            notes.progress.set_message(format!(
                "{label}: {} (run {} of {repeat})",
                method.label(),
                round + 1
            ));
            let run = one(method).with_context(|| format!("{label}, {}", method.label()))?;
            match first {
                None => first = Some((method, run.checksum)),
                Some((m0, c0)) if c0 != run.checksum => bail!(
                    "{label}: {} read bytes with checksum {:#x} but {} read {c0:#x}; the timings would be meaningless",
                    method.label(),
                    run.checksum,
                    m0.label()
                ),
                Some(_) => {}
            }
            let slot = &mut best[method as usize];
            if slot.is_none_or(|b| run.time < b.time) {
                *slot = Some(run);
            }
            notes.progress.inc(1);
        }
    }
    let best = best.map(|b| b.expect("repeat is at least 1"));
    Ok(Measured {
        best,
        checksum: first.map_or(0, |f| f.1),
    })
}

/// The table for people.
fn write_table(out: &mut impl Write, r: &Report) -> std::io::Result<()> {
    let c = &r.config;
    writeln!(
        out,
        "smmap bench: {} file + {} small files ({}), best of {} runs; checksums verified",
        human(c.file_size),
        c.small_files,
        human(c.small_files_bytes),
        c.repeat
    )?;
    writeln!(
        out,
        "large file: window {}, max memory {}; small files: window {}, max memory {}, max handles {}",
        human(c.window_size),
        human(c.max_memory_size),
        human(c.window_size),
        human(c.small_max_memory_size),
        c.small_max_handles
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<30} {:>9} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>11}",
        "workload",
        "ops",
        "unit",
        "buffer",
        "cursor",
        "raw mmap",
        "pread",
        "buf/mmap",
        "cur/mmap",
        "evictions",
        "peak mapped"
    )?;
    for row in &r.workloads {
        let scan = row.name == "sequential_scan";
        let (unit, cell): (&str, Box<dyn Fn(u64) -> String>) = if scan {
            let bytes = row.bytes as f64;
            (
                "GiB/s",
                Box::new(move |ns| {
                    format!(
                        "{:.2}",
                        bytes / (1u64 << 30) as f64 / (ns.max(1) as f64 / 1e9)
                    )
                }),
            )
        } else {
            let ops = row.ops.max(1) as f64;
            (
                "ns/op",
                Box::new(move |ns| format!("{:.1}", ns as f64 / ops)),
            )
        };
        let label = if row.threads > 1 {
            format!("same, {} threads, one manager", row.threads)
        } else {
            row.label.to_string()
        };
        let ops = if scan {
            human(row.bytes)
        } else {
            row.ops.to_string()
        };
        writeln!(
            out,
            "{:<30} {:>9} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9.2} {:>9.2} {:>9} {:>11}",
            label,
            ops,
            unit,
            cell(row.buffer_ns),
            cell(row.cursor_ns),
            cell(row.mmap_ns),
            cell(row.pread_ns),
            row.buffer_ratio,
            row.cursor_ratio,
            row.buffer_stats.evictions,
            human(row.buffer_stats.peak_mapped_bytes)
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "buf/mmap, cur/mmap: time relative to raw mmap (1.00 = as fast, 2.00 = twice as slow);"
    )?;
    writeln!(
        out,
        "evictions, peak mapped: Manager::stats() of the buffer's best run."
    )?;
    for (name, s) in &r.thread_scaling {
        let label = r
            .workloads
            .iter()
            .find(|w| w.name == *name)
            .map_or(*name, |w| w.label);
        writeln!(
            out,
            "{label}, {} threads vs 1: throughput ×{:.2} buffer, ×{:.2} cursor, ×{:.2} raw mmap, ×{:.2} pread.",
            c.threads, s.buffer, s.cursor, s.mmap, s.pread
        )?;
    }
    Ok(())
}
