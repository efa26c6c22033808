//! `smmap bench --replay TRACE`: a program's recorded reads (a
//! [`smmap::Trace`]) done again under the limits a user gives — or, with
//! `--sweep`, under a range of budgets — by the engine under the adaptive
//! policy and under always-map, by `pread` and through a raw map of every
//! file, beside the hit ratio of Belady's MIN with bypass over the same
//! reads. It answers "what `max_memory_size` and `max_open_handles` does my
//! program need?".

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use memmap2::Mmap;
use plotters::prelude::*;
use serde::Serialize;
use smmap::{Event, FileRead, Manager, Op, ReadPolicy, SlidingWindowMapManager, TraceReader};

use super::belady;
use super::{BenchArgs, Notes};

/// The budgets of `--sweep`, as a share of the trace's working set: the
/// windows it reads and their bytes.
const SHARES: [f64; 8] = [0.01, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 1.0];

/// Bytes every method reads for a cursor read with no length
/// (`use_region(offset, 0)`: the program reads some of the view).
const VIEW_READ: u64 = 4096;

/// The most bytes every method reads for one read (a longer read is a
/// long copy in every method alike).
const READ_MAX: u64 = 256 * 1024;

/// The most bytes of trace read into memory (after decompression): fifty
/// times the largest trace recorded here (1.2 MB, 190,000 reads). A gzip
/// stream that inflates past it is refused, not inflated without end; and
/// as each record becomes an event of 32 bytes, even a trace of 1-byte
/// records stays under 2 GiB of events.
const TRACE_MAX: u64 = 64 << 20;

/// The ways a trace is replayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum How {
    Adaptive,
    AlwaysMap,
    Pread,
    Mmap,
}

impl How {
    const ALL: [How; 4] = [How::Adaptive, How::AlwaysMap, How::Pread, How::Mmap];

    fn key(self) -> &'static str {
        match self {
            How::Adaptive => "adaptive",
            How::AlwaysMap => "always_map",
            How::Pread => "pread",
            How::Mmap => "mmap",
        }
    }

    fn label(self) -> &'static str {
        match self {
            How::Adaptive => "adaptive",
            How::AlwaysMap => "always-map",
            How::Pread => "pread",
            How::Mmap => "raw mmap",
        }
    }
}

/// One method's best run (JSON).
#[derive(Serialize, Debug, Clone, Default)]
struct Result {
    /// Best time per read, nanoseconds.
    ns_per_read: f64,
    /// Window accesses served by a window already mapped (or a copy
    /// held): `1 − (maps + windows copied + failed reads) / accesses`
    /// (`Stats::pread_windows`: a copy spanning three windows is three
    /// misses), where the
    /// accesses are counted as MIN counts them — each window a read touches
    /// (a copy read spanning three windows is three; a cursor's read is
    /// the window at its offset; a buffer's first map is none; a read past
    /// the end is none); 1 for the raw map, 0 for `pread`.
    hit_ratio: f64,
    /// Reads that failed (the engine's error; a limit the program's own
    /// cursors exceed, say), counted as misses.
    failed_reads: u64,
    /// The first of those errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    first_error: Option<String>,
    /// Windows mapped.
    maps: u64,
    /// Reads copied with `pread` by the engine.
    preads: u64,
    /// Windows unmapped to stay within the limits.
    evictions: u64,
    /// Most bytes mapped at once by the engine.
    peak_mapped_bytes: u64,
}

/// The replay under one budget (JSON).
#[derive(Serialize, Debug, Clone)]
struct Point {
    /// The budget as a share of the trace's working set (1 without
    /// `--sweep`... or whatever the limits given are: `null` then).
    #[serde(skip_serializing_if = "Option::is_none")]
    share: Option<f64>,
    /// Mappings allowed.
    max_handles: usize,
    /// Bytes allowed.
    max_memory_size: u64,
    /// By method key (`adaptive`, `always_map`, `pread`, `mmap`).
    methods: std::collections::BTreeMap<&'static str, Result>,
    /// Belady's MIN with bypass over the same reads under the same limits,
    /// offline (a reference with windows of different sizes).
    belady_hit_ratio: f64,
}

/// The whole replay (JSON, schema 1).
#[derive(Serialize, Debug)]
struct Replay {
    schema: u32,
    /// The trace file.
    trace: String,
    /// Reads replayed.
    reads: u64,
    /// Files read, and their total size.
    files: usize,
    files_bytes: u64,
    /// The window size.
    window_size: u64,
    /// Windows the reads touch, and their bytes (charged in whole pages):
    /// the working set the sweep's shares are of.
    working_set_windows: usize,
    working_set_bytes: u64,
    /// Runs of each method; the best counts.
    repeat: usize,
    points: Vec<Point>,
}

/// The most window accesses a replay holds for MIN (about 40 bytes each,
/// and as much again while MIN runs).
const MAX_ACCESSES: u64 = 1 << 25;

/// Runs `smmap bench --replay`.
pub fn run(args: &BenchArgs, trace: &Path) -> anyhow::Result<()> {
    let reader = read_trace(trace)?;
    // The baselines keep every file open at once.
    let needed = reader.files().len() as u64 + super::data::SPARE_FILES;
    let limit = super::data::raise_open_file_limit(needed);
    if limit < needed {
        bail!(
            "the trace {} names {} files, which the replay keeps open at once; the open-file \
             limit allows {limit} (raise it with ulimit -n)",
            trace.display(),
            reader.files().len()
        );
    }
    let window = super::window_of(args);
    let slot = super::slot_of(window);
    let page = *smmap::ALLOCATIONGRANULARITY;
    let sizes: Vec<u64> = reader.files().iter().map(|f| f.size).collect();
    let reads = reads_of(&reader);
    // Refused before anything is made: a copy read is an access for each
    // window it spans, which MIN holds in memory (tens of bytes each).
    let count = belady::access_count(&reads, &sizes, slot);
    if count > MAX_ACCESSES {
        bail!(
            "the trace {} makes {count} window accesses with {} windows (a copy read is one for \
             each window it spans); the replay holds at most {MAX_ACCESSES}: give a larger \
             --window",
            trace.display(),
            if slot == u64::MAX {
                "whole-file".to_string()
            } else {
                crate::output::bytes(slot)
            }
        );
    }
    let made;
    let paths = if args.make_files {
        made = make_files(&reader, args.dir.as_deref())?;
        made.1.clone()
    } else {
        find_files(&reader, trace, args.dir.as_deref())?
    };
    let accesses = belady::accesses(&reads, &sizes, slot, page);
    let plan = Plan {
        bytes: plan(&reader, slot),
        touched: accesses.iter().filter(|a| !a.is_release()).count() as u64,
    };
    // Each cursor alive at once may hold a region: fewer mappings than that
    // fail the program's own reads, whatever the policy.
    let held_at_once = cursors_at_once(&reader);
    let working: std::collections::HashMap<(u32, u64), u64> = accesses
        .iter()
        .filter(|a| !a.is_release())
        .map(|a| (a.window, a.cost))
        .collect();
    let (ws_windows, ws_bytes) = (
        working.len(),
        working.values().fold(0u64, |a, &b| a.saturating_add(b)),
    );
    let budgets: Vec<(Option<f64>, usize, u64)> = if args.sweep {
        SHARES
            .iter()
            .map(|&s| {
                let handles = ((ws_windows as f64 * s).ceil() as usize).max(held_at_once);
                let bytes = ((ws_bytes as f64 * s).ceil() as u64).max(page);
                (Some(s), handles, bytes)
            })
            .collect()
    } else {
        // The limits in effect, as the engine takes them (0 bytes: its
        // default; handles at most its own ceiling), for the report and MIN.
        let probe = smmap::SlidingWindowMapManager::builder()
            .max_memory_size(args.max_memory)
            .max_open_handles(args.max_handles)
            .build();
        vec![(
            None,
            probe.max_file_handles(),
            probe.max_mapped_memory_size(),
        )]
    };
    let mut notes = Notes::new(
        args.quiet,
        (budgets.len() * How::ALL.len() * args.repeat) as u64,
    );
    let files = Files::open(&paths)?;
    let mut points = Vec::new();
    for (share, handles, memory) in budgets {
        let limits = Limits {
            window,
            handles,
            memory,
            open_files: args.max_open_files.unwrap_or(paths.len().max(1)),
        };
        let mut methods = std::collections::BTreeMap::new();
        // What each read read under the adaptive policy (which runs first):
        // pread and the raw map read the same.
        let mut read = Vec::new();
        for how in How::ALL {
            notes.stage(match share {
                Some(s) => format!("replay, budget {:.0}%: {}", s * 100.0, how.label()),
                None => format!("replay: {}", how.label()),
            });
            let mut best: Option<Result> = None;
            let mut own = Vec::new();
            for run in 0..args.repeat {
                super::data::check_interrupted()?;
                let out = if how == How::AlwaysMap {
                    &mut own
                } else {
                    &mut read
                };
                let (r, sum) = replay_once(how, &reader, &plan, out, &paths, &files, limits)?;
                notes.progress.inc(1);
                if run == 0 {
                    // Every method read the file's bytes.
                    check_sum(&reader, out, &files, sum, trace, how)?;
                }
                if best.as_ref().is_none_or(|b| r.ns_per_read < b.ns_per_read) {
                    best = Some(r);
                }
            }
            methods.insert(how.key(), best.unwrap_or_default());
        }

        let min = belady::min(
            &accesses,
            belady::Limits {
                // The engine caps the handles at what the kernel's map
                // count leaves: MIN gets no more.
                handles: handles.min(smmap::default_max_open_handles()),
                bytes: memory,
            },
        );
        points.push(Point {
            share,
            // What the engine has (and MIN got): the budget's, capped.
            max_handles: handles.min(smmap::default_max_open_handles()),
            max_memory_size: memory,
            methods,
            belady_hit_ratio: min.hit_ratio(),
        });
    }
    notes.progress.finish();
    let report = Replay {
        schema: 1,
        trace: trace.display().to_string(),
        reads: reader.reads().count() as u64,
        files: sizes.len(),
        files_bytes: sizes.iter().fold(0u64, |a, &b| a.saturating_add(b)),
        window_size: window,
        working_set_windows: ws_windows,
        working_set_bytes: ws_bytes,
        repeat: args.repeat,
        points,
    };
    let table = |out: &mut _| write_table(out, &report);
    if !args.sweep {
        return crate::output::print(args.json, &report, table);
    }
    // The chart first, whatever becomes of stdout; the figures are printed
    // even if it cannot be drawn.
    let drawn = draw_svg(&args.svg, &report);
    crate::output::print_with_chart(args.json, &report, table, &args.svg, drawn)
}

/// The trace at `path`, gzip-compressed (as the traces kept in the
/// repository are) or not.
fn read_trace(path: &Path) -> anyhow::Result<TraceReader> {
    let file =
        File::open(path).with_context(|| format!("cannot read the trace {}", path.display()))?;
    let bytes = read_at_most(file, path, false)?;
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(TraceReader::from_bytes(path, &bytes)?);
    }
    let plain = read_at_most(flate2::read::MultiGzDecoder::new(&bytes[..]), path, true)?;
    Ok(TraceReader::from_bytes(path, &plain)?)
}

/// All of `from` (the trace at `path`, inflated from gzip if `gzip`), if
/// it holds at most [`TRACE_MAX`] bytes.
fn read_at_most(from: impl Read, path: &Path, gzip: bool) -> anyhow::Result<Vec<u8>> {
    let (verb, kind, how) = if gzip {
        ("decompress", " (gzip)", " uncompressed")
    } else {
        ("read", "", "")
    };
    let mut bytes = Vec::new();
    from.take(TRACE_MAX + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot {verb} the trace {}{kind}", path.display()))?;
    if bytes.len() as u64 > TRACE_MAX {
        bail!(
            "the trace {} holds more than {} MiB{how}: a replay reads it whole, so it is refused",
            path.display(),
            TRACE_MAX >> 20
        );
    }
    Ok(bytes)
}

/// The reads of the trace as MIN sees them: each by its cursor, which
/// holds the window it maps; a cursor's `use_region` must map; a release
/// or a drop lets the cursor's window go. A copy read touches every window
/// of its bytes (none for no bytes); any other read, its offset's window;
/// a buffer's first map is not a read of its own.
fn reads_of(reader: &TraceReader) -> Vec<belady::Read> {
    let mut file_of = std::collections::HashMap::new();
    let mut out = Vec::new();
    for e in reader.events() {
        match *e {
            Event::Cursor { id, file } => {
                file_of.insert(id, file);
            }
            Event::Clone { id, from } => {
                if let Some(&f) = file_of.get(&from) {
                    file_of.insert(id, f);
                }
            }
            Event::Release { id } | Event::Drop { id } => {
                out.push(belady::Read::release(id as u32));
            }
            Event::Read {
                cursor,
                op,
                offset,
                len,
                ..
            } if op != Op::First => {
                if let Some(&file) = file_of.get(&cursor) {
                    out.push(belady::Read {
                        file: file as u32,
                        offset,
                        // The windows the replay touches (`TraceReader::
                        // replay`): a copy read, every window of its bytes
                        // (at most 1 GiB of them); any other read, the
                        // window at its offset.
                        len: match op {
                            Op::ReadAt => len.min(1 << 30),
                            _ => 1,
                        },
                        cursor: Some(cursor as u32),
                        must_map: op == Op::Map,
                    });
                }
            }
            _ => {}
        }
    }
    out
}

/// Whether `read`, of a file of `size` bytes, touches a window as MIN
/// counts the accesses ([`reads_of`], then [`belady::accesses`]): a
/// buffer's first map does not, nor a read at or past the end of the file,
/// nor a copy of no bytes. A read that fails and touches one is a miss.
fn touches(read: &FileRead, size: u64) -> bool {
    read.op != Op::First && read.offset < size && (read.op != Op::ReadAt || read.len > 0)
}

/// Where the trace's files are: each named as the program gave it, or
/// under `dir` by its file name.
fn find_files(
    reader: &TraceReader,
    trace: &Path,
    dir: Option<&Path>,
) -> anyhow::Result<Vec<PathBuf>> {
    reader
        .files()
        .iter()
        .map(|f| {
            let named = &f.name;
            let path = match dir {
                Some(d) => d.join(named.file_name().unwrap_or(named.as_os_str())),
                None => named.clone(),
            };
            let meta = std::fs::metadata(&path).map_err(|e| {
                anyhow::anyhow!(
                    "the trace {} reads {}, which is not at {} ({e}): give --dir with the directory that holds the files, or --make-files",
                    trace.display(),
                    f.name.display(),
                    path.display()
                )
            })?;
            // Refused here, by name: a FIFO's open would wait for a writer.
            if !meta.is_file() {
                let what = if meta.is_dir() { "a directory" } else { "not a regular file" };
                bail!(
                    "the trace {} reads {}, but {} is {what}",
                    trace.display(),
                    f.name.display(),
                    path.display()
                );
            }
            let size = meta.len();
            if size < f.size {
                bail!(
                    "the trace {} read {} bytes of {}, but {} has {size}",
                    trace.display(),
                    f.size,
                    f.name.display(),
                    path.display()
                );
            }
            Ok(path)
        })
        .collect()
}

/// Files of the trace's sizes (zeros; sparse where the file system allows)
/// in a new directory under `dir` (or the system's temporary one): what a
/// policy decides depends on the reads alone, not on the bytes.
fn make_files(
    reader: &TraceReader,
    dir: Option<&Path>,
) -> anyhow::Result<(tempfile::TempDir, Vec<PathBuf>)> {
    let parent = dir.map_or_else(std::env::temp_dir, Path::to_path_buf);
    let tmp = super::data::temp_dir(&parent)?;
    let paths = reader
        .files()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let p = tmp.path().join(format!("file{i}"));
            let file =
                File::create(&p).with_context(|| format!("cannot create {}", p.display()))?;
            file.set_len(f.size).with_context(|| {
                format!(
                    "cannot make {} of {} bytes, the size the trace gives {}",
                    p.display(),
                    f.size,
                    f.name.display()
                )
            })?;
            Ok(p)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((tmp, paths))
}

/// The files open for the baselines, and mapped whole once to check what
/// every method read.
struct Files {
    open: Vec<File>,
    maps: Vec<Option<Mmap>>,
}

impl Files {
    fn open(paths: &[PathBuf]) -> anyhow::Result<Self> {
        let open = paths
            .iter()
            .map(|p| File::open(p).with_context(|| format!("cannot open {}", p.display())))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let maps = open
            .iter()
            .zip(paths)
            .map(|(f, p)| {
                let size = f
                    .metadata()
                    .with_context(|| format!("cannot stat {}", p.display()))?
                    .len();
                if size == 0 {
                    return Ok(None);
                }
                super::methods::map_whole(f, p).map(Some)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Files { open, maps })
    }

    /// File `i` mapped whole, afresh (a read of it read at least a byte,
    /// so it is not empty).
    fn map(&self, i: usize, paths: &[PathBuf]) -> anyhow::Result<Mmap> {
        super::methods::map_whole(&self.open[i], &paths[i])
    }
}

/// The limits of one replay.
#[derive(Clone, Copy, Debug)]
struct Limits {
    window: u64,
    handles: usize,
    memory: u64,
    open_files: usize,
}

fn manager(l: Limits, policy: ReadPolicy) -> Manager {
    SlidingWindowMapManager::builder()
        .window_size(l.window)
        .max_memory_size(l.memory)
        .max_open_handles(l.handles)
        .max_open_files(l.open_files)
        .read_policy(policy)
        .build()
        .into()
}

/// What a replay reads: the bytes each read reads, and how many window
/// accesses the reads make (counted as MIN counts them: the hit ratios'
/// denominator, the engine's as MIN's).
struct Plan {
    bytes: Vec<u32>,
    touched: u64,
}

/// Replays the trace once as `how` says; times it; returns the sum of the
/// bytes read. Through the engine, each read reads the bytes `plan` says
/// of it, or fewer if its answer holds fewer (a view ends where its region
/// does), as the program did; `read` gets how many. `pread` and the raw map
/// read as many as `read` says.
fn replay_once(
    how: How,
    reader: &TraceReader,
    plan: &Plan,
    read: &mut Vec<u32>,
    paths: &[PathBuf],
    files: &Files,
    limits: Limits,
) -> anyhow::Result<(Result, u64)> {
    let reads = plan.bytes.len() as u64;
    let per_read = |t: Duration| t.as_nanos() as f64 / reads.max(1) as f64;
    let mut sum = 0u64;
    let add = |sum: u64, bytes: &[u8]| bytes.iter().fold(sum, |s, &b| s.wrapping_add(u64::from(b)));
    match how {
        How::Adaptive | How::AlwaysMap => {
            let policy = if how == How::Adaptive {
                ReadPolicy::Adaptive
            } else {
                ReadPolicy::AlwaysMap
            };
            let m = manager(limits, policy);
            // Failed reads; those of them that touched a window, misses.
            let (mut failed, mut failed_touching) = (0u64, 0u64);
            let mut first_error = None;
            read.clear();
            read.resize(plan.bytes.len(), 0);
            let start = Instant::now();
            reader
                .replay(&m, paths, |r| match r.bytes {
                    Ok(b) => {
                        let n = (plan.bytes[r.index] as usize).min(b.len());
                        sum = add(sum, &b[..n]);
                        read[r.index] = n as u32;
                    }
                    Err(e) => {
                        failed += 1;
                        failed_touching +=
                            u64::from(touches(&r.read, reader.files()[r.read.file].size));
                        first_error.get_or_insert_with(|| e.to_string());
                    }
                })
                .context("the replay failed")?;
            let t = start.elapsed();
            let s = m.stats();
            let result = Result {
                ns_per_read: per_read(t),
                hit_ratio: (1.0
                    - (s.maps + s.pread_windows + failed_touching) as f64
                        / plan.touched.max(1) as f64)
                    .max(0.0),
                failed_reads: failed,
                first_error,
                maps: s.maps,
                preads: s.preads,
                evictions: s.evictions,
                peak_mapped_bytes: s.peak_mapped_bytes,
            };
            Ok((result, sum))
        }
        How::Pread | How::Mmap => {
            let reads = reader.file_reads();
            let mut scratch = vec![0u8; READ_MAX as usize];
            // The raw map of each file is made at its first read, in the
            // timed run, as the engine's first window of it is: each run
            // starts with nothing mapped, for both.
            let mut maps: Vec<Option<Mmap>> = Vec::new();
            maps.resize_with(files.open.len(), || None);
            let start = Instant::now();
            for (r, &n) in reads.iter().zip(read.iter()) {
                let n = n as usize;
                if n == 0 {
                    continue;
                }
                if how == How::Pread {
                    let (f, path) = (&files.open[r.file], &paths[r.file]);
                    read_exact_at(f, path, &mut scratch[..n], r.offset)?;
                    sum = add(sum, &scratch[..n]);
                } else {
                    let map = match &mut maps[r.file] {
                        Some(map) => map,
                        empty => empty.insert(files.map(r.file, paths)?),
                    };
                    let at = r.offset as usize;
                    sum = add(sum, &map[at..at + n]);
                }
            }
            let t = start.elapsed();
            let result = Result {
                ns_per_read: per_read(t),
                hit_ratio: if how == How::Mmap { 1.0 } else { 0.0 },
                ..Result::default()
            };
            Ok((result, std::hint::black_box(sum)))
        }
    }
}

/// Fails unless `sum` is the sum of the bytes `read` says each read of the
/// trace read, taken from a raw map of its file: `how` read the right bytes.
fn check_sum(
    reader: &TraceReader,
    read: &[u32],
    files: &Files,
    sum: u64,
    trace: &Path,
    how: How,
) -> anyhow::Result<()> {
    let mut want = 0u64;
    for (r, &n) in reader.file_reads().iter().zip(read) {
        if let (Some(map), n @ 1..) = (&files.maps[r.file], n as usize) {
            let at = r.offset as usize;
            want = map[at..at + n]
                .iter()
                .fold(want, |s, &b| s.wrapping_add(u64::from(b)));
        }
    }
    if want != sum {
        bail!(
            "the replay of {} read different bytes: {} summed {sum:#x}, the raw map {want:#x}",
            trace.display(),
            how.label()
        );
    }
    Ok(())
}

/// The bytes each read of the trace reads at most: what it asked for (a
/// page of a view asked with no length), within its window's slot and the
/// file, at most [`READ_MAX`].
fn plan(reader: &TraceReader, slot: u64) -> Vec<u32> {
    reader
        .file_reads()
        .iter()
        .map(|r| {
            let want = match r.op {
                Op::First => 0,
                Op::Map if r.len == 0 => VIEW_READ,
                Op::ReadAt => r.len,
                _ => r.len.max(1),
            };
            let size = reader.files()[r.file].size;
            let slot_end = (r.offset / slot).saturating_add(1).saturating_mul(slot);
            let n = want
                .min(size.saturating_sub(r.offset))
                .min(slot_end - r.offset)
                .min(READ_MAX);
            n as u32
        })
        .collect()
}

/// The most cursors alive at once in the trace.
fn cursors_at_once(reader: &TraceReader) -> usize {
    let (mut alive, mut most) = (0usize, 1usize);
    for e in reader.events() {
        match e {
            smmap::Event::Cursor { .. } | smmap::Event::Clone { .. } => {
                alive += 1;
                most = most.max(alive);
            }
            smmap::Event::Drop { .. } => alive = alive.saturating_sub(1),
            _ => {}
        }
    }
    most
}

/// Reads `buf.len()` bytes at `offset` of `f`, the file at `path` (which
/// the error names).
fn read_exact_at(f: &File, path: &Path, buf: &mut [u8], offset: u64) -> anyhow::Result<()> {
    let len = buf.len() as u64;
    read_all_at(f, buf, offset).with_context(|| {
        format!(
            "cannot read {} at offset {offset} of {}",
            crate::output::bytes(len),
            path.display()
        )
    })
}

#[cfg(unix)]
fn read_all_at(f: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(f, buf, offset)
}

#[cfg(windows)]
fn read_all_at(f: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(f, buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => (buf, offset) = (&mut buf[n..], offset + n as u64),
        }
    }
    Ok(())
}

fn write_table(out: &mut impl Write, r: &Replay) -> std::io::Result<()> {
    writeln!(
        out,
        "smmap bench --replay {}: {} reads of {} files ({}), {}; best of {} runs",
        r.trace,
        r.reads,
        r.files,
        indicatif::HumanBytes(r.files_bytes),
        match r.window_size {
            0 => "whole-file windows".to_string(),
            w => format!("windows of {}", indicatif::HumanBytes(w)),
        },
        r.repeat
    )?;
    writeln!(
        out,
        "working set: {} windows, {}",
        r.working_set_windows,
        indicatif::HumanBytes(r.working_set_bytes)
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{:>7} {:>8} {:>11}  {:<10} {:>9} {:>7} {:>9} {:>9} {:>9} {:>11} {:>7}",
        "budget",
        "handles",
        "memory",
        "method",
        "ns/read",
        "hit",
        "maps",
        "preads",
        "evictions",
        "peak mapped",
        "MIN"
    )?;
    for p in &r.points {
        let budget = p.share.map_or("-".into(), |s| format!("{:.0}%", s * 100.0));
        for how in How::ALL {
            let m = &p.methods[how.key()];
            let engine = matches!(how, How::Adaptive | How::AlwaysMap);
            let count = |v: u64| if engine { v.to_string() } else { "-".into() };
            writeln!(
                out,
                "{:>7} {:>8} {:>11}  {:<10} {:>9.1} {:>6.1}% {:>9} {:>9} {:>9} {:>11} {:>6.1}%",
                budget,
                p.max_handles,
                indicatif::HumanBytes(p.max_memory_size).to_string(),
                how.label(),
                m.ns_per_read,
                m.hit_ratio * 100.0,
                count(m.maps),
                count(m.preads),
                count(m.evictions),
                if engine {
                    indicatif::HumanBytes(m.peak_mapped_bytes).to_string()
                } else {
                    "-".into()
                },
                p.belady_hit_ratio * 100.0
            )?;
        }
    }
    for p in &r.points {
        for how in How::ALL {
            let m = &p.methods[how.key()];
            if let Some(e) = &m.first_error {
                writeln!(
                    out,
                    "{} under {} mappings and {}: {} of the reads failed, counted as misses; the first: {e}",
                    how.label(),
                    p.max_handles,
                    indicatif::HumanBytes(p.max_memory_size),
                    m.failed_reads
                )?;
            }
        }
    }
    writeln!(
        out,
        "hit: window accesses served by a window already mapped (each window a read touches, as MIN counts \
         them); MIN: Belady's MIN with bypass over the same reads under the same limits, offline (with \
         windows of different sizes a reference, not a proven optimum)."
    )?;
    if let Some(p) = half_point(r) {
        let m = |k: &str| p.methods[k].hit_ratio;
        writeln!(
            out,
            "at the budget where always-map hits nearest 50% ({:.0}%): adaptive hits {:.1}%, always-map {:.1}%, MIN {:.1}%: adaptive / MIN = {:.2}",
            p.share.unwrap_or(1.0) * 100.0,
            m("adaptive") * 100.0,
            m("always_map") * 100.0,
            p.belady_hit_ratio * 100.0,
            belady::over_min(m("adaptive"), p.belady_hit_ratio)
        )?;
    }
    if let Some(full) = r.points.iter().find(|p| p.share == Some(1.0)) {
        let ns = |k: &str| full.methods[k].ns_per_read;
        writeln!(
            out,
            "with the whole working set in the budget: adaptive / raw mmap = {:.2}",
            ns("adaptive") / ns("mmap").max(f64::MIN_POSITIVE)
        )?;
    }
    Ok(())
}

/// The sweep's point where always-map's hit ratio is nearest 50%.
fn half_point(r: &Replay) -> Option<&Point> {
    r.points
        .iter()
        .filter(|p| p.share.is_some())
        .min_by(|a, b| {
            let d = |p: &Point| (p.methods["always_map"].hit_ratio - 0.5).abs();
            d(a).total_cmp(&d(b))
        })
}

/// The sweep's chart: µs per read and hit ratio by budget, one line per
/// method (and MIN's hit ratio).
fn draw_svg(path: &Path, r: &Replay) -> anyhow::Result<()> {
    const COLORS: [RGBColor; 4] = [
        RGBColor(0x1f, 0x77, 0xb4),
        RGBColor(0xd6, 0x27, 0x28),
        RGBColor(0x2c, 0xa0, 0x2c),
        RGBColor(0x7f, 0x7f, 0x7f),
    ];
    let draw = || -> std::result::Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::new(path, (960, 420)).into_drawing_area();
        root.fill(&WHITE)?;
        let panels = root.split_evenly((1, 2));
        let points: Vec<&Point> = r.points.iter().filter(|p| p.share.is_some()).collect();
        let x = |p: &Point| p.share.unwrap_or(1.0);
        let ns: Vec<f64> = points
            .iter()
            .flat_map(|p| p.methods.values().map(|m| m.ns_per_read / 1000.0))
            .filter(|v| *v > 0.0)
            .collect();
        let lo = ns.iter().copied().fold(f64::MAX, f64::min).max(1e-3);
        let hi = ns.iter().copied().fold(0.0, f64::max).max(lo * 10.0);
        let (lo, hi) = (
            10f64.powf(lo.log10().floor()),
            10f64.powf(hi.log10().ceil()),
        );
        let mut time = ChartBuilder::on(&panels[0])
            .caption("time per read", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d((0.008f64..1.25).log_scale(), (lo..hi).log_scale())?;
        time.configure_mesh()
            .x_desc("budget: share of the working set")
            .y_desc("µs per read")
            .x_label_formatter(&|v| format!("{:.0}%", v * 100.0))
            .draw()?;
        let mut hits = ChartBuilder::on(&panels[1])
            .caption("hit ratio", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d((0.008f64..1.25).log_scale(), 0f64..1.0)?;
        hits.configure_mesh()
            .x_desc("budget: share of the working set")
            .y_desc("reads served by a window mapped")
            .x_label_formatter(&|v| format!("{:.0}%", v * 100.0))
            .draw()?;
        for (how, color) in How::ALL.iter().zip(COLORS) {
            let line: Vec<(f64, f64)> = points
                .iter()
                .map(|p| (x(p), p.methods[how.key()].ns_per_read / 1000.0))
                .collect();
            time.draw_series(LineSeries::new(line, color.stroke_width(2)))?
                .label(how.label())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            if matches!(how, How::Adaptive | How::AlwaysMap) {
                let line: Vec<(f64, f64)> = points
                    .iter()
                    .map(|p| (x(p), p.methods[how.key()].hit_ratio))
                    .collect();
                hits.draw_series(LineSeries::new(line, color.stroke_width(2)))?
                    .label(how.label())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
            }
        }
        let min: Vec<(f64, f64)> = points.iter().map(|p| (x(p), p.belady_hit_ratio)).collect();
        hits.draw_series(LineSeries::new(min, BLACK.stroke_width(2)))?
            .label("Belady's MIN")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2)));
        time.configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        hits.configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| anyhow::anyhow!("cannot draw {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push(v as u8 | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    /// A trace made by hand: `files` files of `size` bytes, one cursor on
    /// the first, and a read of `len` bytes at 0 by operation `op`.
    fn by_hand(files: u64, size: u64, op: u64, len: u64) -> Vec<u8> {
        let mut t = b"SMMAPTR\x01".to_vec();
        for id in 0..files {
            t.push(1);
            for v in [id, size, 1] {
                var(&mut t, v);
            }
            t.push(b'f');
        }
        t.extend([2, 0, 0, 6, 0]);
        for v in [op, 0, len] {
            var(&mut t, v);
        }
        t.push(8);
        t
    }

    /// A read to the end of a huge file touches for MIN the windows the
    /// replay touches: a chunk, the window at its offset; a copy, the
    /// windows of the most the replay copies (1 GiB, not 2³² windows).
    #[test]
    fn a_read_of_any_length_costs_min_what_the_replay_reads() {
        for (op, windows) in [(2, 1), (3, (1 << 30) / (64 << 10))] {
            let t = TraceReader::from_bytes("t", &by_hand(1, 1 << 43, op, u64::MAX)).unwrap();
            let reads = reads_of(&t);
            assert_eq!(reads.len(), 1);
            let accesses = belady::accesses(&reads, &[1 << 43], 64 << 10, 4096);
            assert_eq!(accesses.len() as u64, windows, "op {op}");
        }
    }

    /// A trace is read whole up to [`TRACE_MAX`] bytes, and refused past
    /// it, by name, without reading on (a gzip bomb, `/dev/zero`).
    #[test]
    fn a_trace_is_read_up_to_its_limit() {
        let p = Path::new("big.trace");
        let just = read_at_most(std::io::repeat(7).take(TRACE_MAX), p, false).unwrap();
        assert_eq!(just.len() as u64, TRACE_MAX);
        let e = read_at_most(std::io::repeat(7), p, true).unwrap_err();
        assert!(
            e.to_string().contains("big.trace")
                && e.to_string().contains("more than 64 MiB uncompressed"),
            "{e}"
        );
    }
}
