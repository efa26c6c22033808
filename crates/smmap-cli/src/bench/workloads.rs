//! The timed loops: each workload read four ways — through the engine's
//! buffer, through a bare cursor, through one raw whole-file `memmap2`
//! mapping per file, and with `pread` — each returning its time and a
//! checksum of everything it read.

use std::fs::File;
use std::io::BufRead;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use memmap2::{Advice, Mmap};
use serde::Serialize;
use smmap::{AccessHint, Manager, SlidingWindowMapBuffer, WindowCursor};

use super::data::{byte_sum, mix, SmallFile};

/// Bytes per read of the 4 KiB workloads.
pub const READ: usize = 4096;

/// The four ways of reading, in the order of the table's columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// [`SlidingWindowMapBuffer`].
    Buffer,
    /// [`WindowCursor`] and `use_region`.
    Cursor,
    /// One `memmap2` mapping of each whole file, no limits.
    Mmap,
    /// `pread(2)` into a buffer.
    Pread,
}

impl Method {
    /// All of them, in column order.
    pub const ALL: [Method; 4] = [Method::Buffer, Method::Cursor, Method::Mmap, Method::Pread];

    /// The column heading.
    pub fn label(self) -> &'static str {
        match self {
            Method::Buffer => "buffer",
            Method::Cursor => "cursor",
            Method::Mmap => "raw mmap",
            Method::Pread => "pread",
        }
    }
}

/// The manager's counters over one timed run (set-up excluded), from
/// `Manager::stats()`. JSON fields: `evictions`, `peak_mapped_bytes`,
/// `maps`, `misses`, `hits`.
#[derive(Serialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Windows unmapped to stay within the limits during the run.
    pub evictions: u64,
    /// Most bytes mapped at once by the manager (set-up included).
    pub peak_mapped_bytes: u64,
    /// Windows mapped during the run.
    pub maps: u64,
    /// Reads that needed the manager (took its lock).
    pub misses: u64,
    /// Reads served by the cursor's current window without a lock.
    pub hits: u64,
}

impl RunStats {
    fn between(before: &smmap::Stats, after: &smmap::Stats) -> Self {
        RunStats {
            evictions: after.evictions - before.evictions,
            peak_mapped_bytes: after.peak_mapped_bytes,
            maps: after.maps - before.maps,
            misses: after.misses - before.misses,
            hits: after.hits - before.hits,
        }
    }
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

/// The large file, the manager that reads it and its raw mapping. Both
/// live as long as the benchmark, so that after the first run every method
/// reads through mappings whose pages are already faulted in: the best run
/// measures the read path, not page faults.
pub struct BigFile<'a> {
    /// Its path.
    pub path: &'a Path,
    /// The manager with the large-file limits.
    pub manager: &'a Manager,
    /// The whole file, mapped once.
    pub map: &'a Mmap,
}

/// The small files, the manager that reads them, one raw mapping and one
/// open descriptor per file, all kept from run to run.
pub struct SmallSet<'a> {
    /// The files.
    pub files: &'a [SmallFile],
    /// The manager with the small-files limits.
    pub manager: &'a Manager,
    /// Each file mapped whole, once.
    pub maps: &'a [Mmap],
    /// Each file open, for pread.
    pub open: &'a [File],
}

/// A cursor on `path`, with an access hint for the kernel if given.
///
/// Only the sequential scan gives one (to both the engine and raw mmap): the
/// engine passes a cursor's hint to madvise each time the cursor moves to
/// another window, already mapped or not, which would charge the random
/// reads a system call per window switch that raw mmap never pays.
fn cursor_on(
    manager: &Manager,
    path: &Path,
    hint: Option<AccessHint>,
) -> anyhow::Result<WindowCursor> {
    let mut cursor = manager.make_cursor(path)?;
    cursor.set_access_hint(hint);
    Ok(cursor)
}

/// Maps the whole file at `path`, read-only, with `advice`.
pub fn map_whole(path: &Path, advice: Advice) -> anyhow::Result<Mmap> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: a read-only mapping of a file only this benchmark writes, and
    // it writes no file while reading.
    let map =
        unsafe { Mmap::map(&file) }.with_context(|| format!("cannot map {}", path.display()))?;
    // Advice is advice: a kernel that ignores it changes nothing.
    let _ = map.advise(advice);
    Ok(map)
}

/// Reads `len` bytes at `offset` through a cursor, window by window; returns
/// their sum.
#[inline]
fn cursor_sum(cursor: &mut WindowCursor, offset: u64, len: usize) -> anyhow::Result<u64> {
    let mut done = 0usize;
    let mut sum = 0u64;
    while done < len {
        let at = offset + done as u64;
        let view = cursor.use_region(at, len - done)?.buffer();
        if view.is_empty() {
            bail!("the cursor could not map offset {at}");
        }
        sum += byte_sum(view);
        done += view.len();
    }
    Ok(sum)
}

/// Times `body` with the manager of `big`, returning its counters.
fn timed_engine(
    big: &BigFile<'_>,
    body: impl FnOnce(&Manager) -> anyhow::Result<u64>,
) -> anyhow::Result<Run> {
    let manager = big.manager;
    let before = manager.stats();
    let start = Instant::now();
    let checksum = body(manager)?;
    let time = start.elapsed();
    let stats = Some(RunStats::between(&before, &manager.stats()));
    Ok(Run {
        time,
        checksum,
        stats,
    })
}

fn timed(body: impl FnOnce() -> anyhow::Result<u64>) -> anyhow::Result<Run> {
    let start = Instant::now();
    let checksum = body()?;
    Ok(Run {
        time: start.elapsed(),
        checksum,
        stats: None,
    })
}

/// Reads the whole large file front to back; the checksum is the sum of its
/// bytes.
pub fn sequential(big: &BigFile<'_>, method: Method) -> anyhow::Result<Run> {
    let path = big.path;
    match method {
        Method::Buffer => timed_engine(big, |m| {
            let cursor = cursor_on(m, path, Some(AccessHint::Sequential))?;
            let mut buf = SlidingWindowMapBuffer::new(cursor, 0, u64::MAX)?;
            let mut sum = 0u64;
            loop {
                let chunk = buf.fill_buf()?;
                if chunk.is_empty() {
                    break;
                }
                sum += byte_sum(chunk);
                let n = chunk.len();
                buf.consume(n);
            }
            Ok(sum)
        }),
        Method::Cursor => timed_engine(big, |m| {
            let mut cursor = cursor_on(m, path, Some(AccessHint::Sequential))?;
            let size = cursor.file_size().unwrap_or(0);
            let mut offset = 0;
            let mut sum = 0u64;
            while offset < size {
                let view = cursor.use_region(offset, 0)?.buffer();
                if view.is_empty() {
                    bail!("the cursor could not map offset {offset}");
                }
                sum += byte_sum(view);
                offset += view.len() as u64;
            }
            Ok(sum)
        }),
        Method::Mmap => timed(|| {
            let _ = big.map.advise(Advice::Sequential);
            let sum = byte_sum(big.map);
            let _ = big.map.advise(Advice::Normal);
            Ok(sum)
        }),
        Method::Pread => timed(|| {
            let file =
                File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            let mut block = vec![0u8; 1 << 20];
            let mut offset = 0u64;
            let mut sum = 0u64;
            loop {
                let n = file.read_at(&mut block, offset)?;
                if n == 0 {
                    break;
                }
                sum += byte_sum(&block[..n]);
                offset += n as u64;
            }
            Ok(sum)
        }),
    }
}

/// Reads one byte at each offset.
pub fn random_bytes(big: &BigFile<'_>, offsets: &[u64], method: Method) -> anyhow::Result<Run> {
    let path = big.path;
    match method {
        Method::Buffer => timed_engine(big, |m| {
            let cursor = cursor_on(m, path, None)?;
            let mut buf = SlidingWindowMapBuffer::new(cursor, 0, u64::MAX)?;
            let mut h = 0u64;
            for &o in offsets {
                h = mix(h, u64::from(buf.get(o)?));
            }
            Ok(h)
        }),
        Method::Cursor => timed_engine(big, |m| {
            let mut cursor = cursor_on(m, path, None)?;
            let mut h = 0u64;
            for &o in offsets {
                match cursor.use_region(o, 1)?.buffer().first() {
                    Some(&b) => h = mix(h, u64::from(b)),
                    None => bail!("the cursor could not map offset {o}"),
                }
            }
            Ok(h)
        }),
        Method::Mmap => timed(|| {
            let map = big.map;
            let mut h = 0u64;
            for &o in offsets {
                h = mix(h, u64::from(map[o as usize]));
            }
            Ok(h)
        }),
        Method::Pread => timed(|| {
            let file =
                File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            let mut byte = [0u8; 1];
            let mut h = 0u64;
            for &o in offsets {
                file.read_exact_at(&mut byte, o)?;
                h = mix(h, u64::from(byte[0]));
            }
            Ok(h)
        }),
    }
}

/// Reads [`READ`] bytes at each offset of each thread's list, one thread
/// per list, all on one manager for the engine's methods (each thread with
/// its own buffer or cursor). The checksum adds up the threads' checksums.
pub fn random_blocks(big: &BigFile<'_>, lists: &[Vec<u64>], method: Method) -> anyhow::Result<Run> {
    let path = big.path;
    let n = READ as u64;
    match method {
        Method::Buffer => {
            let m = big.manager;
            let setup = || -> anyhow::Result<SlidingWindowMapBuffer> {
                Ok(SlidingWindowMapBuffer::new(
                    cursor_on(m, path, None)?,
                    0,
                    u64::MAX,
                )?)
            };
            let body = |buf: &mut SlidingWindowMapBuffer, offsets: &[u64]| -> anyhow::Result<u64> {
                let mut h = 0u64;
                for &o in offsets {
                    h = mix(h, byte_sum(&buf.slice(o..o + n)?));
                }
                Ok(h)
            };
            in_threads(lists, Some(m), setup, body)
        }
        Method::Cursor => {
            let m = big.manager;
            let setup = || cursor_on(m, path, None);
            let body = |cursor: &mut WindowCursor, offsets: &[u64]| -> anyhow::Result<u64> {
                let mut h = 0u64;
                for &o in offsets {
                    h = mix(h, cursor_sum(cursor, o, READ)?);
                }
                Ok(h)
            };
            in_threads(lists, Some(m), setup, body)
        }
        Method::Mmap => {
            let map = big.map;
            let body = |_: &mut (), offsets: &[u64]| -> anyhow::Result<u64> {
                let mut h = 0u64;
                for &o in offsets {
                    h = mix(h, byte_sum(&map[o as usize..o as usize + READ]));
                }
                Ok(h)
            };
            in_threads(lists, None, || Ok(()), body)
        }
        Method::Pread => {
            let file =
                File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            let body = |block: &mut Box<[u8; READ]>, offsets: &[u64]| -> anyhow::Result<u64> {
                let mut h = 0u64;
                for &o in offsets {
                    file.read_exact_at(&mut block[..], o)?;
                    h = mix(h, byte_sum(&block[..]));
                }
                Ok(h)
            };
            in_threads(lists, None, || Ok(Box::new([0u8; READ])), body)
        }
    }
}

/// One read of the small-files workloads: a file's index and an offset in it.
pub type SmallRead = (u32, u32);

/// Reads [`READ`] bytes at each `(file, offset)` of each thread's list, one
/// thread per list, all on the set's manager for the engine's methods. The checksum adds up the threads' checksums.
pub fn small_files(
    set: &SmallSet<'_>,
    reads: &[Vec<SmallRead>],
    method: Method,
) -> anyhow::Result<Run> {
    let (files, m) = (set.files, set.manager);
    match method {
        Method::Buffer => {
            let setup = || -> anyhow::Result<Vec<SlidingWindowMapBuffer>> {
                files
                    .iter()
                    .map(|f| {
                        let mut b =
                            SlidingWindowMapBuffer::new(m.make_cursor(&f.path)?, 0, u64::MAX)?;
                        b.end_access();
                        Ok(b)
                    })
                    .collect()
            };
            let body = |bufs: &mut Vec<SlidingWindowMapBuffer>,
                        reads: &[SmallRead]|
             -> anyhow::Result<u64> {
                let mut h = 0u64;
                for &(f, o) in reads {
                    let b = &mut bufs[f as usize];
                    b.begin_access(None, u64::from(o), READ as u64)?;
                    h = mix(h, byte_sum(&b.slice(0..READ as u64)?));
                    b.end_access();
                }
                Ok(h)
            };
            in_threads(reads, Some(m), setup, body)
        }
        Method::Cursor => {
            let setup = || -> anyhow::Result<Vec<WindowCursor>> {
                files.iter().map(|f| Ok(m.make_cursor(&f.path)?)).collect()
            };
            let body =
                |cursors: &mut Vec<WindowCursor>, reads: &[SmallRead]| -> anyhow::Result<u64> {
                    let mut h = 0u64;
                    for &(f, o) in reads {
                        let c = &mut cursors[f as usize];
                        h = mix(h, cursor_sum(c, u64::from(o), READ)?);
                        c.unuse_region();
                    }
                    Ok(h)
                };
            in_threads(reads, Some(m), setup, body)
        }
        Method::Mmap => {
            let maps = set.maps;
            let body = |_: &mut (), reads: &[SmallRead]| -> anyhow::Result<u64> {
                let mut h = 0u64;
                for &(f, o) in reads {
                    let o = o as usize;
                    h = mix(h, byte_sum(&maps[f as usize][o..o + READ]));
                }
                Ok(h)
            };
            in_threads(reads, None, || Ok(()), body)
        }
        Method::Pread => {
            let open = set.open;
            let body = |block: &mut Box<[u8; READ]>, reads: &[SmallRead]| -> anyhow::Result<u64> {
                let mut h = 0u64;
                for &(f, o) in reads {
                    open[f as usize].read_exact_at(&mut block[..], u64::from(o))?;
                    h = mix(h, byte_sum(&block[..]));
                }
                Ok(h)
            };
            in_threads(reads, None, || Ok(Box::new([0u8; READ])), body)
        }
    }
}

/// Runs `body` over each list of reads, in as many threads as lists (in
/// this thread when there is one), each after its own `setup`. Only the
/// reads are timed: the clock starts when every thread has set up.
fn in_threads<S, R: Sync>(
    reads: &[Vec<R>],
    manager: Option<&Manager>,
    setup: impl Fn() -> anyhow::Result<S> + Sync,
    body: impl Fn(&mut S, &[R]) -> anyhow::Result<u64> + Sync,
) -> anyhow::Result<Run> {
    let snapshot = || manager.map(Manager::stats);
    if let [only] = reads {
        let mut state = setup()?;
        let before = snapshot();
        let start = Instant::now();
        let checksum = body(&mut state, only)?;
        let time = start.elapsed();
        drop(state);
        let stats = before
            .zip(snapshot())
            .map(|(b, a)| RunStats::between(&b, &a));
        return Ok(Run {
            time,
            checksum,
            stats,
        });
    }
    // All threads set up, then the counters are read, then all start.
    let (ready, go) = (Barrier::new(reads.len() + 1), Barrier::new(reads.len() + 1));
    let (setup, body, ready, go) = (&setup, &body, &ready, &go);
    std::thread::scope(|scope| {
        let handles: Vec<_> = reads
            .iter()
            .map(|list| {
                scope.spawn(move || {
                    let state = setup();
                    ready.wait();
                    go.wait();
                    let mut state = state?;
                    body(&mut state, list)
                })
            })
            .collect();
        ready.wait();
        let before = snapshot();
        let start = Instant::now();
        go.wait();
        let mut checksum = 0u64;
        let mut first_error = None;
        for handle in handles {
            match handle.join() {
                Ok(Ok(h)) => checksum = checksum.wrapping_add(h),
                Ok(Err(e)) => first_error = first_error.or(Some(e)),
                Err(_) => {
                    first_error =
                        first_error.or(Some(anyhow::anyhow!("a benchmark thread panicked")))
                }
            }
        }
        let time = start.elapsed();
        if let Some(e) = first_error {
            return Err(e);
        }
        let stats = before
            .zip(snapshot())
            .map(|(b, a)| RunStats::between(&b, &a));
        Ok(Run {
            time,
            checksum,
            stats,
        })
    })
}
