//! The limits as the operating system sees them, under threads.
//!
//! This binary defines `mmap`, `mmap64` and `munmap` itself. The linker
//! resolves the engine's (memmap2's) calls to these definitions instead of
//! glibc's, so every mapping the engine makes passes through the wrappers
//! below, which make the real system calls with `libc::syscall` and count the
//! file mappings (`fd >= 0`, not anonymous): live and peak count, live and
//! peak bytes. The allocator calls mmap/munmap too, so the wrappers neither
//! allocate nor lock: addresses sit in a fixed table of atomic slots claimed
//! with `compare_exchange`. A mapping is counted from before its `mmap` call
//! until after its `munmap` returns, so the peaks never undercount what the
//! kernel held. The sanity check proves the interposition is in effect.
//!
//! Everything runs in one `#[test]`, sequentially, because the counters are
//! process-wide. Only Linux with glibc on 64-bit targets (where `SYS_mmap`
//! takes a byte offset); elsewhere the file is empty.
#![cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier};

use common::{g, make_file, xorshift};
use libc::{c_int, c_long, c_void, off64_t, off_t, size_t};
use smmap::{Error, SlidingWindowMapManager, WindowCursor};

const SLOTS: usize = 8192;
/// Start addresses of tracked mappings; 0 is free, `addr | 1` is being unmapped.
static ADDRS: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
static LENS: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
/// Live and peak tracked file mappings: `[count, bytes]`.
static LIVE: [AtomicUsize; 2] = [const { AtomicUsize::new(0) }; 2];
static PEAK: [AtomicUsize; 2] = [const { AtomicUsize::new(0) }; 2];
/// File mappings that found no free slot (and so are not tracked).
static OVERFLOW: AtomicUsize = AtomicUsize::new(0);

/// Adds (raising the peaks) or removes one mapping of `len` bytes.
fn count(add: bool, len: usize) {
    for (i, n) in [1, len].into_iter().enumerate() {
        if add {
            PEAK[i].fetch_max(LIVE[i].fetch_add(n, SeqCst) + n, SeqCst);
        } else {
            LIVE[i].fetch_sub(n, SeqCst);
        }
    }
}

/// Records the result `r` of a file mapping counted before it was made.
fn mapped(r: c_long, len: usize) {
    if r != -1 {
        let claim = |s: &AtomicUsize| {
            s.load(SeqCst) == 0 && s.compare_exchange(0, r as usize, SeqCst, SeqCst).is_ok()
        };
        if let Some(i) = ADDRS.iter().position(claim) {
            return LENS[i].store(len, SeqCst);
        }
        OVERFLOW.fetch_add(1, SeqCst);
    }
    count(false, len);
}

macro_rules! interpose_mmap {
    ($($name:ident: $off:ty),*) => {$(
        /// Interposes glibc's function of this name (memmap2 calls `mmap64`):
        /// the real system call; a file mapping is counted from before it.
        ///
        /// # Safety
        /// As for `mmap(2)`.
        #[no_mangle]
        pub unsafe extern "C" fn $name(
            addr: *mut c_void, len: size_t, prot: c_int, flags: c_int, fd: c_int, off: $off,
        ) -> *mut c_void {
            let file = fd >= 0 && flags & libc::MAP_ANONYMOUS == 0;
            if file {
                count(true, len);
            }
            let (p, f, d) = (prot as c_long, flags as c_long, fd as c_long);
            // SAFETY: the caller upholds mmap(2)'s contract; SYS_mmap takes
            // these six arguments, each read as a `long` (hence the casts;
            // the offset is in bytes on 64-bit Linux).
            let r = unsafe { libc::syscall(libc::SYS_mmap, addr, len, p, f, d, off as c_long) };
            if file {
                mapped(r, len);
            }
            // On failure syscall() returned -1, which is MAP_FAILED, and set errno.
            r as *mut c_void
        }
    )*};
}
interpose_mmap!(mmap: off_t, mmap64: off64_t);

/// Interposes glibc's `munmap`; uncounts a tracked mapping once it is gone.
///
/// # Safety
/// As for `munmap(2)`.
#[no_mangle]
pub unsafe extern "C" fn munmap(addr: *mut c_void, len: size_t) -> c_int {
    let a = addr as usize;
    // Mark the slot as being unmapped, so a new mapping at the same address
    // (possible once the kernel frees it) is never confused with this one.
    let mark = |s: &AtomicUsize| {
        a != 0 && s.load(SeqCst) == a && s.compare_exchange(a, a | 1, SeqCst, SeqCst).is_ok()
    };
    let slot = ADDRS.iter().position(mark);
    // SAFETY: the caller upholds munmap(2)'s contract; both arguments are
    // passed as `long`, the width the raw system call reads.
    let r = unsafe { libc::syscall(libc::SYS_munmap, a as c_long, len as c_long) };
    if let Some(i) = slot {
        if r == 0 {
            count(false, LENS[i].load(SeqCst));
            ADDRS[i].store(0, SeqCst);
        } else {
            ADDRS[i].store(a, SeqCst);
        }
    }
    r as c_int // -1 with errno set by syscall() on failure
}

/// Resets the peaks to the live values; returns (live count, live bytes).
fn reset_peaks() -> (usize, usize) {
    let base = (LIVE[0].load(SeqCst), LIVE[1].load(SeqCst));
    PEAK[0].store(base.0, SeqCst);
    PEAK[1].store(base.1, SeqCst);
    base
}

fn ops() -> u64 {
    let var = std::env::var("SMMAP_STRESS_OPS").ok();
    var.and_then(|v| v.parse().ok()).unwrap_or(2000)
}

fn manager(handles: usize, memory: u64) -> SlidingWindowMapManager {
    let b = SlidingWindowMapManager::builder().window_size(g());
    b.max_memory_size(memory).max_open_handles(handles).build()
}

/// Runs `body(thread index)` on `n` threads; returns the sum of the results.
fn on_threads(n: usize, body: impl Fn(usize) -> usize + Send + Sync + 'static) -> usize {
    let body = Arc::new(body);
    let threads: Vec<_> = (0..n)
        .map(|t| {
            let body = body.clone();
            std::thread::spawn(move || body(t))
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).sum()
}

/// Checks `use_region(off, size)`; returns 1 for a HandleLimit refusal.
fn use_checked(c: &mut WindowCursor, bytes: &[u8], off: u64, size: usize) -> usize {
    match c.use_region(off, size) {
        Ok(c) => {
            let b = c.buffer();
            assert!(
                !b.is_empty() && b.len() <= size,
                "view of {} bytes",
                b.len()
            );
            assert_eq!(b, &bytes[off as usize..][..b.len()], "bytes at {off}");
            0
        }
        Err(Error::HandleLimit { .. }) => 1,
        Err(e) => panic!("use_region({off}, {size}): {e}"),
    }
}

/// 16 threads, each on its own file, one-page windows, random use/unuse with
/// every byte read checked. Returns the peak OS file mappings and mapped
/// bytes above the baseline.
fn stress(files: &Arc<Vec<(PathBuf, Vec<u8>)>>, handles: usize, memory: u64) -> (usize, usize) {
    let m = manager(handles, memory);
    let base = reset_peaks();
    let (m2, files) = (m.clone(), files.clone());
    let refused = on_threads(files.len(), move |t| {
        let (path, bytes) = &files[t];
        let mut c = m2.make_cursor(path).unwrap();
        let (mut rng, mut refused) = (0x9E37_79B9_7F4A_7C15 ^ (t as u64 + 1), 0);
        for _ in 0..ops() {
            let r = xorshift(&mut rng);
            if r % 4 == 0 {
                c.unuse_region();
            } else {
                let size = 1 + (r >> 40) as usize % g() as usize;
                refused += use_checked(&mut c, bytes, (r >> 8) % bytes.len() as u64, size);
            }
        }
        refused
    });
    m.verify_invariants().unwrap();
    let peak = (PEAK[0].load(SeqCst) - base.0, PEAK[1].load(SeqCst) - base.1);
    let engine = m.stats().peak_windows;
    println!("handles {handles}, memory {memory}: OS peak {peak:?} (mappings, bytes), engine peak_windows {engine}, {refused} refusals");
    peak
}

/// Two threads meet at a barrier each round and use the same offset through
/// new cursors, with one handle allowed: they can share the one window, so
/// every HandleLimit is a false refusal. Returns how many there were.
fn false_refusals(dir: &Path) -> usize {
    let (path, bytes) = make_file(dir, "shared", 99, 64 * g());
    let (m, barrier) = (manager(1, u64::MAX / 2), Arc::new(Barrier::new(2)));
    let m2 = m.clone();
    let refused = on_threads(2, move |_| {
        let (mut refused, mut failed) = (0, None);
        for round in 0..ops() {
            barrier.wait();
            // A failure is kept until every round is done, so that the
            // other thread is never left waiting at the barrier.
            let step = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut c = m2.make_cursor(&path).unwrap();
                use_checked(&mut c, &bytes, round * g() % bytes.len() as u64, 1)
            }));
            match step {
                Ok(n) => refused += n,
                Err(panic) => failed = failed.or(Some(panic)),
            }
        }
        if let Some(panic) = failed {
            std::panic::resume_unwind(panic);
        }
        refused
    });
    m.verify_invariants().unwrap();
    println!(
        "same offset, 1 handle: {refused} refusals in {} rounds x 2 threads",
        ops()
    );
    refused
}

#[test]
fn os_mappings_stay_within_the_limits() {
    let dir = tempfile::tempdir().unwrap();

    // Sanity: a window mapped through the manager is seen by the wrappers.
    let (path, bytes) = make_file(dir.path(), "sanity", 7, 4 * g());
    let m = manager(8, u64::MAX / 2);
    let (live, live_bytes) = reset_peaks();
    let mut c = m.make_cursor(&path).unwrap();
    assert_eq!(use_checked(&mut c, &bytes, 0, 1), 0);
    assert_eq!(LIVE[0].load(SeqCst), live + 1, "mmap64 not interposed");
    assert_eq!(LIVE[1].load(SeqCst), live_bytes + g() as usize);
    drop(c);
    m.collect();
    assert_eq!(LIVE[0].load(SeqCst), live, "munmap not interposed");
    drop(m);

    let files = (0..16).map(|i| make_file(dir.path(), &format!("f{i}"), i, 1 << 20));
    let files = Arc::new(files.collect::<Vec<_>>());
    let mut failures = Vec::new();
    // Fewer handles than threads, each thread reading windows of its own:
    // misses evict each other's windows and wait for room all the time.
    for handles in [1, 2, 8, 16] {
        let (peak, _) = stress(&files, handles, u64::MAX / 2);
        if peak > handles {
            failures.push(format!(
                "max_open_handles {handles}: the OS held {peak} file mappings at once"
            ));
        }
    }
    // Each thread holds at most one region, of at most 2 pages (a 1-page
    // window widened to page boundaries): what is in use fits the limit.
    let memory = 2 * files.len() as u64 * g();
    let (_, peak_bytes) = stress(&files, 1 << 20, memory);
    if peak_bytes as u64 > memory {
        failures.push(format!(
            "max_memory_size {memory}: the OS held {peak_bytes} mapped bytes at once"
        ));
    }
    let refused = false_refusals(dir.path());
    if refused > 0 {
        failures.push(format!(
            "{refused} HandleLimit refusals of an offset the other cursor had mapped"
        ));
    }
    assert_eq!(
        OVERFLOW.load(SeqCst),
        0,
        "slot table overflowed: counts incomplete"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
