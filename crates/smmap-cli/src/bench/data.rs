//! The benchmark's data: the generated files in a temporary directory that
//! removes itself, a small fast PRNG, the checksum, and Ctrl-C handling that
//! lets the directory be removed.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use anyhow::{bail, Context};

/// A fast, small pseudo-random generator (xorshift64*), seeded through
/// splitmix64 so that nearby seeds give unrelated streams.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        // splitmix64 of the seed; xorshift needs a non-zero state.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Rng(if z == 0 { 0x2545_F491_4F6C_DD1D } else { z })
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n > 0`), by multiply-shift.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Fills `out` with random bytes.
    pub fn fill(&mut self, out: &mut [u8]) {
        let mut words = out.chunks_exact_mut(8);
        for w in &mut words {
            w.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = words.into_remainder();
        let last = self.next_u64().to_le_bytes();
        rest.copy_from_slice(&last[..rest.len()]);
    }
}

/// The sum of all bytes, whatever way they are split into slices: the
/// benchmark's checksum of a read. Eight bytes at a time, in 16-bit lanes.
#[inline]
pub fn byte_sum(bytes: &[u8]) -> u64 {
    if let [b] = bytes {
        return u64::from(*b);
    }
    const LO: u64 = 0x00ff_00ff_00ff_00ff;
    let mut total = 0u64;
    let mut words = bytes.chunks_exact(8);
    loop {
        // Each 16-bit lane grows by at most 2 × 255 per word: 128 words fit.
        let mut acc = 0u64;
        let mut n = 0;
        for w in words.by_ref().take(128) {
            let mut a = [0u8; 8];
            a.copy_from_slice(w);
            let x = u64::from_le_bytes(a);
            acc += (x & LO) + ((x >> 8) & LO);
            n += 1;
        }
        total += (acc & 0xffff) + ((acc >> 16) & 0xffff) + ((acc >> 32) & 0xffff) + (acc >> 48);
        if n < 128 {
            break;
        }
    }
    total + words.remainder().iter().map(|&b| u64::from(b)).sum::<u64>()
}

/// Folds one read's value into a running checksum; the order of reads
/// matters, so two methods agree only if they read the same bytes in the
/// same order.
#[inline]
pub fn mix(h: u64, v: u64) -> u64 {
    (h.rotate_left(5) ^ v).wrapping_mul(0x0100_0000_01B3)
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The data directories made ([`temp_dir`]): what a second Ctrl-C removes
/// before it ends the program (those removed already are gone).
static DATA_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Makes Ctrl-C (and SIGTERM) set a flag that [`check_interrupted`] turns
/// into an error, so that the data directory is removed on the way out. A
/// second Ctrl-C ends the program at once, as it would by default, once it
/// has removed the data directories itself (the program may be in a step
/// that looks at the flag only when it ends: timing a command, writing
/// data).
pub fn catch_interrupts() {
    // Fails only if a handler is set already: then it is this one.
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            let dirs = DATA_DIRS.lock().unwrap_or_else(PoisonError::into_inner);
            for d in dirs.iter() {
                let _ = std::fs::remove_dir_all(d);
            }
            std::process::exit(130);
        }
    });
}

/// An error if Ctrl-C was pressed.
pub fn check_interrupted() -> anyhow::Result<()> {
    if INTERRUPTED.load(Ordering::Relaxed) {
        bail!(Interrupted);
    }
    Ok(())
}

/// The error [`check_interrupted`] returns.
#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// A directory `smmap-bench-…` made under `parent` for one run; it is
/// removed with everything in it when dropped (also on errors and Ctrl-C).
pub fn temp_dir(parent: &Path) -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix("smmap-bench-")
        .tempdir_in(parent)
        .with_context(|| format!("cannot create a data directory in {}", parent.display()))?;
    DATA_DIRS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(dir.path().to_path_buf());
    Ok(dir)
}

/// The smallest and largest small file.
pub const SMALL_MIN: u64 = 4096;
/// See [`SMALL_MIN`].
pub const SMALL_MAX: u64 = 64 * 1024;

/// Writes `size` random bytes to `path`; returns the sum of the bytes (the
/// sequential scan's checksum).
pub fn write_big(path: &Path, size: u64, seed: u64) -> anyhow::Result<u64> {
    let mut file =
        File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut rng = Rng::new(seed);
    let mut block = vec![0u8; 1 << 20];
    let mut left = size;
    let mut sum = 0u64;
    while left > 0 {
        check_interrupted()?;
        let n = left.min(block.len() as u64) as usize;
        rng.fill(&mut block[..n]);
        sum += byte_sum(&block[..n]);
        file.write_all(&block[..n])
            .with_context(|| format!("cannot write {}", path.display()))?;
        left -= n as u64;
    }
    // Written pages flushed now do not disturb the timings later.
    file.sync_data()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(sum)
}

/// Writes `count` files of 4–64 KiB of random bytes into `dir`.
pub fn write_small(dir: &Path, count: usize, seed: u64) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut rng = Rng::new(seed);
    let mut block = vec![0u8; SMALL_MAX as usize];
    let mut files = Vec::with_capacity(count);
    for i in 0..count {
        if i % 64 == 0 {
            check_interrupted()?;
        }
        let size = SMALL_MIN + rng.below(SMALL_MAX - SMALL_MIN + 1);
        let path = dir.join(format!("{i:05}.bin"));
        rng.fill(&mut block[..size as usize]);
        let mut file =
            File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        file.write_all(&block[..size as usize])
            .with_context(|| format!("cannot write {}", path.display()))?;
        flush(&file, Flush::Start).with_context(|| format!("cannot write {}", path.display()))?;
        files.push(path);
    }
    // As for the large file: written pages flushed now do not disturb the
    // timings later.
    for (i, path) in files.iter().enumerate() {
        if i % 64 == 0 {
            check_interrupted()?;
        }
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        flush(&file, Flush::Wait).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(files)
}

/// What [`flush`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flush {
    /// Starts writing the file's dirty pages out, without waiting.
    Start,
    /// Writes them out and waits until they are written.
    Wait,
}

/// Flushes a small file's written pages. On Linux by `sync_file_range`,
/// which writes the file's data without the journal commit that a
/// `sync_data` forces per file (2,000 files are flushed in one pass of
/// starts, then one of waits). Elsewhere the files are left to the
/// system's writeback.
fn flush(file: &File, how: Flush) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let flags = match how {
            Flush::Start => libc::SYNC_FILE_RANGE_WRITE,
            Flush::Wait => {
                libc::SYNC_FILE_RANGE_WAIT_BEFORE
                    | libc::SYNC_FILE_RANGE_WRITE
                    | libc::SYNC_FILE_RANGE_WAIT_AFTER
            }
        };
        // SAFETY: `sync_file_range` reads only its arguments; `file` keeps
        // the descriptor open until after the call.
        if unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, flags) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, how);
    Ok(())
}

/// Descriptors kept free for everything but the small files: the large
/// file, the process's own, the data directory's.
pub const SPARE_FILES: u64 = 256;

/// Sets of a descriptor per small file open at once when every method
/// keeps its own from run to run: the baselines' and those of a row's two
/// managers (adaptive, and always-map), each up to one per file.
pub const SETS_AT_ONCE: u64 = 3;

/// The limit on open files under which every set is kept at once for
/// `files` small files (see [`descriptor_plan`]).
pub fn files_for_all_sets(files: usize) -> u64 {
    SETS_AT_ONCE * files as u64 + SPARE_FILES
}

/// How the descriptors of `files` small files are shared out under a
/// limit on open files of `limit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DescriptorPlan {
    /// Descriptors each manager may keep: one per file where the limit
    /// leaves them beside [`SPARE_FILES`] (and the other sets, if kept),
    /// else what is left (at least 8, the engine's own least).
    pub engine: usize,
    /// Whether the baselines keep every file open for the whole bench,
    /// beside both managers' descriptors. If not, each method has the
    /// limit to itself while it runs (see `workloads::measure`).
    pub baselines_keep: bool,
}

/// Shares out the descriptors (see [`DescriptorPlan`]).
pub fn descriptor_plan(limit: u64, files: usize) -> DescriptorPlan {
    let baselines_keep = limit >= files_for_all_sets(files);
    let left = if baselines_keep {
        files as u64
    } else {
        limit.saturating_sub(SPARE_FILES)
    };
    DescriptorPlan {
        engine: usize::try_from(left)
            .unwrap_or(usize::MAX)
            .clamp(8, files.max(8)),
        baselines_keep,
    }
}

/// Raises the soft limit on open files towards the hard limit so that the
/// pread baseline can keep `needed` files open; returns the limit in force.
// `rlim_t` is not `u64` on every platform.
#[allow(clippy::unnecessary_cast)]
#[cfg(unix)]
pub fn raise_open_file_limit(needed: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit through a valid pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 0;
    }
    let cur = lim.rlim_cur as u64;
    if cur >= needed || lim.rlim_cur >= lim.rlim_max {
        return cur;
    }
    let raised = libc::rlimit {
        rlim_cur: lim.rlim_max.min(needed as libc::rlim_t),
        rlim_max: lim.rlim_max,
    };
    // SAFETY: setrlimit reads one rlimit through a valid pointer; raising the
    // soft limit up to the hard one needs no privilege.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        raised.rlim_cur as u64
    } else {
        cur
    }
}

/// Windows sets no low limit on open handles: `needed` are there.
#[cfg(windows)]
pub fn raise_open_file_limit(needed: u64) -> u64 {
    needed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_method_gets_a_descriptor_per_file_where_the_limit_allows() {
        let plan = |engine, baselines_keep| DescriptorPlan {
            engine,
            baselines_keep,
        };
        // Room for the three sets at once (the baselines' and two
        // managers'): one per file each, the baselines' kept.
        assert_eq!(descriptor_plan(1 << 20, 2000), plan(2000, true));
        assert_eq!(descriptor_plan(3 * 2000 + 256, 2000), plan(2000, true));
        // Room for one or two sets only: the methods take turns, each with
        // one per file (15,000 files or 8,000 under this machine's 20,000).
        assert_eq!(descriptor_plan(3 * 2000 + 255, 2000), plan(2000, false));
        assert_eq!(descriptor_plan(20_000, 8_000), plan(8_000, false));
        assert_eq!(descriptor_plan(20_000, 15_000), plan(15_000, false));
        // Less than one per file: what the limit leaves, or the least.
        assert_eq!(descriptor_plan(1024, 2000), plan(1024 - 256, false));
        assert_eq!(descriptor_plan(200, 2000), plan(8, false));
        assert_eq!(descriptor_plan(0, 3), plan(8, false));
    }

    #[test]
    fn small_files_are_written_in_range_and_flushed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("small");
        let files = write_small(&dir, 20, 7).unwrap();
        assert_eq!(files.len(), 20);
        for path in &files {
            let len = std::fs::metadata(path).unwrap().len();
            assert!((SMALL_MIN..=SMALL_MAX).contains(&len), "{len}");
        }
        // A flush that fails says why: a device cannot be flushed so.
        #[cfg(target_os = "linux")]
        {
            let err = flush(&File::open("/dev/null").unwrap(), Flush::Wait).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::ESPIPE), "{err}");
        }
    }

    #[test]
    fn byte_sum_does_not_depend_on_splitting() {
        let mut data = vec![0u8; 10_000];
        Rng::new(1).fill(&mut data);
        data[..2000].fill(0xff);
        let whole = byte_sum(&data);
        assert_eq!(whole, data.iter().map(|&b| u64::from(b)).sum::<u64>());
        for split in [1, 7, 8, 1023, 1024, 1025, 9999] {
            assert_eq!(byte_sum(&data[..split]) + byte_sum(&data[split..]), whole);
        }
        assert_eq!(byte_sum(&[]), 0);
    }

    #[test]
    fn rng_is_deterministic_and_in_range() {
        let (mut a, mut b) = (Rng::new(42), Rng::new(42));
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
            assert!(a.below(10) < 10);
            b.below(10);
        }
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
        let mut odd = [0u8; 13];
        Rng::new(3).fill(&mut odd);
        assert!(odd.iter().any(|&b| b != 0));
    }
}
