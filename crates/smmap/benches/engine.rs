//! Criterion benchmarks: each group puts our code beside its baseline (raw
//! whole-file memmap2, or `pread`) on the same page-cached data, so the ratio
//! is read within one run. `cargo bench -p smmap`; `SMMAP_BENCH_SCAN_MIB`
//! sets the sequential-scan file size (default 1024).
#![allow(missing_docs)] // criterion_group! generates an undocumented function

use std::fs::File;
use std::hint::black_box;
use std::io::BufRead;
#[cfg(unix)]
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use smmap::{SlidingWindowMapBuffer, SlidingWindowMapManager};

const MIB: u64 = 1 << 20;

/// `pread` on Windows: `seek_read`, which reads at the offset given (it
/// also moves the file position, which these benchmarks never use).
#[cfg(windows)]
trait FileExt {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize>;

    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(buf, offset)? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => (buf, offset) = (&mut buf[n..], offset + n as u64),
            }
        }
        Ok(())
    }
}

#[cfg(windows)]
impl FileExt for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        std::os::windows::fs::FileExt::seek_read(self, buf, offset)
    }
}

struct Data {
    _dir: tempfile::TempDir,
    random: PathBuf,
    scan: PathBuf,
    scan_len: u64,
}

/// The bench files, written once: 256 MiB for random reads, and the scan
/// file, both read once so that they are in the page cache.
fn data() -> &'static Data {
    static DATA: OnceLock<Data> = OnceLock::new();
    DATA.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let scan_mib = std::env::var("SMMAP_BENCH_SCAN_MIB")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1024u64);
        let random = write(dir.path(), "random", 256 * MIB);
        let scan = write(dir.path(), "scan", scan_mib * MIB);
        Data {
            _dir: dir,
            random,
            scan,
            scan_len: scan_mib * MIB,
        }
    })
}

fn write(dir: &Path, name: &str, len: u64) -> PathBuf {
    use std::io::Write;
    let path = dir.join(name);
    let mut f = std::io::BufWriter::new(File::create(&path).expect("create"));
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut block = vec![0u8; MIB as usize];
    for _ in 0..len / MIB {
        for chunk in block.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        f.write_all(&block).expect("write");
    }
    f.flush().expect("flush");
    drop(f);
    // Warm the page cache.
    let mut r = std::io::BufReader::with_capacity(MIB as usize, File::open(&path).expect("open"));
    while !r.fill_buf().expect("read").is_empty() {
        let n = r.buffer().len();
        r.consume(n);
    }
    path
}

fn offsets(len: u64, n: usize, align: u64) -> Vec<u64> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % (len - align)) / align.max(1) * align.max(1)
        })
        .collect()
}

fn raw_map(path: &Path) -> memmap2::Mmap {
    // SAFETY: a read-only map of a bench file nobody else writes.
    unsafe { memmap2::Mmap::map(&File::open(path).expect("open")) }.expect("map")
}

/// `use_region` on an offset inside the current region, then one byte.
fn cursor_hit(c: &mut Criterion) {
    let d = data();
    let raw = raw_map(&d.random);
    let offs = offsets(256 * MIB, 1 << 16, 1);
    let m = SlidingWindowMapManager::new();
    let mut cursor = m.make_cursor(&d.random).expect("cursor");
    cursor.use_region(0, 0).expect("map");
    let mut g = c.benchmark_group("cursor_hit");
    g.throughput(Throughput::Elements(offs.len() as u64));
    g.bench_function("smmap_cursor", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            for &o in &offs {
                let c = cursor.use_region(o, 1).expect("hit");
                sum += c.buffer()[0] as u64;
            }
            sum
        })
    });
    g.bench_function("raw_memmap2", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            for &o in &offs {
                sum += black_box(&raw)[o as usize] as u64;
            }
            sum
        })
    });
    g.finish();
}

/// `get(i)` at random offsets, with one window covering the file, and with
/// 1 MiB windows under a 16 MiB limit.
fn buffer_get(c: &mut Criterion) {
    let d = data();
    let raw = raw_map(&d.random);
    let offs = offsets(256 * MIB, 1 << 16, 1);
    let mut g = c.benchmark_group("buffer_get");
    g.throughput(Throughput::Elements(offs.len() as u64));
    let whole = SlidingWindowMapManager::new();
    let mut buf =
        SlidingWindowMapBuffer::new(whole.make_cursor(&d.random).expect("cursor"), 0, u64::MAX)
            .expect("buf");
    g.bench_function("smmap_one_window", |b| {
        b.iter(|| {
            offs.iter()
                .map(|&o| buf.get(o).expect("byte") as u64)
                .sum::<u64>()
        })
    });
    let small = SlidingWindowMapManager::builder()
        .window_size(MIB)
        .max_memory_size(16 * MIB)
        .build();
    let mut sbuf =
        SlidingWindowMapBuffer::new(small.make_cursor(&d.random).expect("cursor"), 0, u64::MAX)
            .expect("buf");
    g.bench_function("smmap_1MiB_windows_16MiB_limit", |b| {
        b.iter(|| {
            offs.iter()
                .map(|&o| sbuf.get(o).expect("byte") as u64)
                .sum::<u64>()
        })
    });
    g.bench_function("raw_memmap2", |b| {
        b.iter(|| {
            offs.iter()
                .map(|&o| black_box(&raw)[o as usize] as u64)
                .sum::<u64>()
        })
    });
    g.finish();
}

/// Random 4 KiB reads: `read_at` vs copying from a raw map vs `pread`.
fn read_4k(c: &mut Criterion) {
    let d = data();
    let raw = raw_map(&d.random);
    let file = File::open(&d.random).expect("open");
    let offs = offsets(256 * MIB, 1 << 14, 1);
    let mut out = vec![0u8; 4096];
    let mut g = c.benchmark_group("read_4k");
    g.throughput(Throughput::Bytes(offs.len() as u64 * 4096));
    let m = SlidingWindowMapManager::new();
    let mut buf =
        SlidingWindowMapBuffer::new(m.make_cursor(&d.random).expect("cursor"), 0, u64::MAX)
            .expect("buf");
    g.bench_function("smmap_read_at", |b| {
        b.iter(|| {
            for &o in &offs {
                buf.read_exact_at(o, &mut out).expect("read");
            }
            out[0]
        })
    });
    g.bench_function("raw_memmap2_copy", |b| {
        b.iter(|| {
            for &o in &offs {
                out.copy_from_slice(&raw[o as usize..o as usize + 4096]);
            }
            black_box(&out)[0]
        })
    });
    g.bench_function("pread", |b| {
        b.iter(|| {
            for &o in &offs {
                file.read_exact_at(&mut out, o).expect("pread");
            }
            out[0]
        })
    });
    g.finish();
}

fn sum_bytes(bytes: &[u8]) -> u64 {
    // Eight lanes so the compiler vectorises; the same code for every side.
    let mut lanes = [0u64; 8];
    let chunks = bytes.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            lanes[i] += c[i] as u64;
        }
    }
    lanes.iter().sum::<u64>() + rest.iter().map(|&b| b as u64).sum::<u64>()
}

/// A sequential scan through `BufRead` of a buffer vs summing a raw map vs
/// `pread` of 64 KiB chunks.
fn seq_scan(c: &mut Criterion) {
    let d = data();
    let raw = raw_map(&d.scan);
    let file = File::open(&d.scan).expect("open");
    let mut g = c.benchmark_group("seq_scan");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Bytes(d.scan_len));
    let m = SlidingWindowMapManager::new();
    g.bench_function("smmap_bufread", |b| {
        b.iter(|| {
            let mut buf =
                SlidingWindowMapBuffer::new(m.make_cursor(&d.scan).expect("cursor"), 0, u64::MAX)
                    .expect("buf");
            let mut sum = 0;
            loop {
                let chunk = buf.fill_buf().expect("read");
                if chunk.is_empty() {
                    break sum;
                }
                sum += sum_bytes(chunk);
                let n = chunk.len();
                buf.consume(n);
            }
        })
    });
    g.bench_function("raw_memmap2", |b| b.iter(|| sum_bytes(black_box(&raw[..]))));
    let mut chunk = vec![0u8; 64 << 10];
    g.bench_function("pread_64k", |b| {
        b.iter(|| {
            let (mut ofs, mut sum) = (0, 0);
            while ofs < d.scan_len {
                let n = file.read_at(&mut chunk, ofs).expect("pread");
                sum += sum_bytes(&chunk[..n]);
                ofs += n as u64;
            }
            sum
        })
    });
    g.finish();
}

/// Placement under churn: every read a miss, windows much smaller than the
/// file, the memory limit holding `live` regions, so each operation places,
/// evicts the LRU region and maps. The cost per operation should not grow
/// with the number of live regions.
fn churn(c: &mut Criterion) {
    let d = data();
    let page = *smmap::ALLOCATIONGRANULARITY;
    // A sparse file of 2^20 pages, so that even 100,000 live regions cover
    // under a tenth of it and almost every read is a miss.
    let sparse_len = (1u64 << 20) * page;
    let sparse = d._dir.path().join("sparse");
    File::create(&sparse)
        .and_then(|f| f.set_len(sparse_len))
        .expect("sparse file");
    let max_maps: u64 = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(65530);
    // Leave room for the process's own mappings.
    let most = max_maps.saturating_sub(8192);
    let mut g = c.benchmark_group("churn");
    for wanted in [1_000u64, 100_000] {
        let live = wanted.min(most);
        if live < wanted {
            eprintln!("churn: vm.max_map_count is {max_maps}: measuring {live} live regions instead of {wanted}");
        }
        let m = SlidingWindowMapManager::builder()
            .window_size(page)
            .max_memory_size(live * page)
            .build();
        let mut cursor = m.make_cursor(&sparse).expect("cursor");
        // Fill the manager to its limit first.
        for i in 0..live {
            cursor.use_region(i * page, 0).expect("fill");
        }
        // A long list consumed in turn, so that no iteration re-reads the
        // pages an earlier one left mapped.
        let offs = offsets(sparse_len, 1 << 20, page);
        let mut next = 0usize;
        const BATCH: usize = 4096;
        g.throughput(Throughput::Elements(BATCH as u64));
        g.bench_function(BenchmarkId::new("use_region_miss", live), |b| {
            b.iter(|| {
                let mut sum = 0u64;
                for &o in &offs[next..next + BATCH] {
                    sum += cursor.use_region(o, 0).expect("map").buffer()[0] as u64;
                }
                next = (next + BATCH) % (offs.len() - BATCH);
                sum
            })
        });
        let s = m.stats();
        eprintln!(
            "churn {live}: {} misses, {} served by a live region, {} maps, {} evictions, {} windows",
            s.misses, s.reuses, s.maps, s.evictions, s.windows
        );
    }
    g.finish();
}

/// 1, 2 and 4 threads reading random bytes through one shared manager:
/// default windows (the hot path), and 1 MiB windows under a 64 MiB limit
/// (every thread missing often).
fn threads(c: &mut Criterion) {
    let d = data();
    let offs = offsets(256 * MIB, 1 << 16, 1);
    let mut g = c.benchmark_group("threads");
    for (label, window, limit) in [("default_windows", 0, 0), ("1MiB_windows", MIB, 64 * MIB)] {
        let m = if window == 0 {
            SlidingWindowMapManager::new()
        } else {
            SlidingWindowMapManager::builder()
                .window_size(window)
                .max_memory_size(limit)
                .build()
        };
        // Misses cost microseconds: fewer reads and samples keep the run short.
        let offs = if window == 0 {
            &offs[..]
        } else {
            &offs[..4096]
        };
        g.sample_size(if window == 0 { 100 } else { 10 });
        for n in [1usize, 2, 4] {
            g.throughput(Throughput::Elements((offs.len() * n) as u64));
            g.bench_function(BenchmarkId::new(label, n), |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    std::thread::scope(|s| {
                        for t in 0..n {
                            let m = m.manager();
                            s.spawn(move || {
                                let mut buf = SlidingWindowMapBuffer::new(
                                    m.make_cursor(&d.random).expect("cursor"),
                                    0,
                                    u64::MAX,
                                )
                                .expect("buf");
                                let mut sum = 0u64;
                                for _ in 0..iters {
                                    for &o in offs.iter().skip(t * 7919 % offs.len()) {
                                        sum += buf.get(o).expect("byte") as u64;
                                    }
                                }
                                black_box(sum)
                            });
                        }
                    });
                    start.elapsed()
                })
            });
        }
    }
    g.finish();
}

/// Making and dropping a cursor and a buffer (the per-object overhead).
fn lifetimes(c: &mut Criterion) {
    let d = data();
    let m = SlidingWindowMapManager::new();
    let keep = m.make_cursor(&d.random).expect("cursor");
    let mut g = c.benchmark_group("lifetimes");
    g.bench_function("make_use_drop_cursor", |b| {
        b.iter_batched(
            || (),
            |_| {
                let mut c = m.make_cursor(&d.random).expect("cursor");
                c.use_region(12345, 0).expect("map").buffer()[0]
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
    drop(keep);
}

criterion_group!(benches, cursor_hit, buffer_get, read_4k, seq_scan, churn, threads, lifetimes);
criterion_main!(benches);
