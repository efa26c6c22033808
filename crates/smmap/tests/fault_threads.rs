//! Failures in the middle of many threads' reads: while eight threads read
//! one manager under tight limits, another makes the next mappings fail
//! (for want of memory, which is retried, or of permission, which is not),
//! makes the next mapping panic, closes every descriptor, and removes files
//! and puts others, of other bytes, in their place. Every read gives its
//! cursor's file's bytes, all of one version of the file, or an error that
//! names the file; a thread that unwinds leaves its cursor usable; no read
//! waits for good; and once every cursor is gone, the limits held and
//! nothing is left mapped.
//!
//! The panic hook is the process's, so this binary holds this test alone.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{byte, g, make_file, remove_mapped, stress_ops, xorshift, ACCESS_DENIED, NO_MEMORY};
use smmap::{Error, Manager, SlidingWindowMapBuffer, SlidingWindowMapManager, WindowCursor};

const FILES: usize = 8;
const READERS: u64 = 8;
/// Versions of a file at most (a cursor's candidates are bits of a `u64`).
const VERSIONS: u32 = 64;
const PANIC: &str = "a panic injected in place of a mapping";

/// Operations per reading thread: a quarter of the stress tests' (5,000
/// by default).
fn ops() -> u64 {
    (stress_ops() / 4).max(1)
}

/// The seed of version `v` of file `f`.
fn seed(f: usize, v: u32) -> u64 {
    (f as u64 + 1) * 1_000 + u64::from(v)
}

/// The size of file `f`, the same in every version.
fn size(f: usize) -> u64 {
    (f as u64 + 2) * 3 * g() + f as u64 * 77
}

/// The files, and the latest version of each (raised before that version
/// is in place, so that it bounds what any cursor can have met).
struct Files {
    dir: tempfile::TempDir,
    latest: Vec<AtomicU32>,
}

impl Files {
    fn new() -> Self {
        let files = Files {
            dir: tempfile::tempdir().unwrap(),
            latest: (0..FILES).map(|_| AtomicU32::new(0)).collect(),
        };
        for f in 0..FILES {
            files.write(f, 0, &format!("f{f}"));
        }
        files
    }

    fn path(&self, f: usize) -> PathBuf {
        self.dir.path().join(format!("f{f}"))
    }

    /// Writes version `v` of file `f` under `name`.
    fn write(&self, f: usize, v: u32, name: &str) -> PathBuf {
        make_file(self.dir.path(), name, seed(f, v), size(f)).0
    }

    /// Removes file `f` (while windows of it may be mapped) and puts its
    /// next version in its place, whole at once: false once it has had
    /// all its versions.
    fn replace(&self, f: usize) -> bool {
        let v = self.latest[f].load(Ordering::Relaxed) + 1;
        if v >= VERSIONS {
            return false;
        }
        let next = self.write(f, v, &format!("next{f}"));
        let path = self.path(f);
        self.latest[f].store(v, Ordering::SeqCst);
        remove_mapped(&path);
        std::fs::rename(&next, &path).unwrap();
        true
    }

    /// The versions of file `f` that could have been met so far.
    fn met(&self, f: usize) -> u64 {
        let v = self.latest[f].load(Ordering::SeqCst);
        u64::MAX >> (63 - v)
    }

    /// Of the versions `candidates` of file `f`, those whose byte at `ofs`
    /// is `b`.
    fn having(f: usize, candidates: u64, ofs: u64, b: u8) -> u64 {
        let mut left = candidates;
        let mut kept = 0;
        while left != 0 {
            let v = left.trailing_zeros();
            left &= left - 1;
            if byte(seed(f, v), ofs) == b {
                kept |= 1 << v;
            }
        }
        kept
    }
}

/// What the threads saw go wrong, for the check that the faults happened.
#[derive(Default)]
struct Seen {
    refused: AtomicU64,
    panics: AtomicU64,
    gone: AtomicU64,
}

/// Checks an error from a read or a `make_cursor` of file `f`: one the
/// faults can cause, naming the file.
fn expected(e: &Error, path: &Path, seen: &Seen) {
    let named = e.to_string().contains(&*path.to_string_lossy());
    assert!(named, "the error does not name {}: {e}", path.display());
    match e {
        Error::Map { .. } => {
            let errno = e.raw_os_error();
            assert!(
                errno == Some(NO_MEMORY) || errno == Some(ACCESS_DENIED),
                "{e}"
            );
            seen.refused.fetch_add(1, Ordering::Relaxed);
        }
        Error::Open { .. } | Error::Stat { .. } | Error::Replaced { .. } => {
            seen.gone.fetch_add(1, Ordering::Relaxed);
        }
        e => panic!("an error no fault here causes: {e}"),
    }
}

/// A cursor of file `f`, and the versions of the file that every byte it
/// has read so far belongs to.
struct Reading {
    f: usize,
    cursor: WindowCursor,
    candidates: u64,
}

impl Reading {
    fn check(&mut self, files: &Files, ofs: u64, bytes: &[u8]) {
        narrow(files, self.f, &mut self.candidates, ofs, bytes);
    }
}

/// Narrows `candidates`, versions of file `f`, to those whose bytes at
/// `ofs` are `bytes` (sampled), and checks that one is left.
fn narrow(files: &Files, f: usize, candidates: &mut u64, ofs: u64, bytes: &[u8]) {
    *candidates &= files.met(f);
    let step = (bytes.len() / 8).max(1);
    for (k, &b) in bytes.iter().enumerate().step_by(step) {
        *candidates = Files::having(f, *candidates, ofs + k as u64, b);
    }
    if let Some(&b) = bytes.last() {
        let last = ofs + bytes.len() as u64 - 1;
        *candidates = Files::having(f, *candidates, last, b);
    }
    assert_ne!(
        *candidates,
        0,
        "{} bytes read at {ofs} of {} are of no single version of it",
        bytes.len(),
        files.path(f).display()
    );
}

/// One reading thread's run: `n` random operations, each of which may
/// unwind with the injected panic.
fn read(m: &Manager, files: &Files, seen: &Seen, t: u64, n: u64) {
    let mut rng = 0x2545_F491 ^ ((t + 1) * 0x9E37_79B9);
    let mut held: Vec<Reading> = Vec::new();
    for _ in 0..n {
        let r = xorshift(&mut rng);
        let f = (r >> 8) as usize % FILES;
        let op = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match r % 8 {
            0 if held.len() < 3 => match m.make_cursor(files.path(f)) {
                Ok(cursor) => held.push(Reading {
                    f,
                    cursor,
                    candidates: u64::MAX,
                }),
                Err(e) => expected(&e, &files.path(f), seen),
            },
            0..=3 if !held.is_empty() => {
                let i = (r >> 12) as usize % held.len();
                let h = &mut held[i];
                let ofs = (r >> 20) % size(h.f);
                match h.cursor.use_region(ofs, 0) {
                    Ok(c) => {
                        let bytes = c.buffer().to_vec();
                        h.check(files, ofs, &bytes);
                    }
                    Err(e) => expected(&e, &files.path(h.f), seen),
                }
                if r >> 60 == 0 {
                    h.cursor.unuse_region();
                }
            }
            4 if !held.is_empty() => {
                held.swap_remove((r >> 12) as usize % held.len());
            }
            5 if !held.is_empty() && held.len() < 3 => {
                let i = (r >> 12) as usize % held.len();
                let copy = Reading {
                    f: held[i].f,
                    cursor: held[i].cursor.clone(),
                    candidates: held[i].candidates,
                };
                held.push(copy);
            }
            _ => {
                // A buffer's copy reads, released and taken back between
                // them: all of one version of the file.
                let path = files.path(f);
                let buf = m
                    .make_cursor(&path)
                    .and_then(|c| SlidingWindowMapBuffer::new(c, 0, u64::MAX));
                let mut buf = match buf {
                    Ok(buf) => buf,
                    Err(e) => return expected(&e, &path, seen),
                };
                let mut candidates = u64::MAX;
                for k in 0..3u64 {
                    let start = (r >> (20 + 8 * k)) % size(f);
                    let len = ((r >> (24 + 8 * k)) % (3 * g())).min(size(f) - start);
                    match buf.slice(start..start + len) {
                        Ok(bytes) => narrow(files, f, &mut candidates, start, &bytes),
                        Err(e) => expected(&e, &path, seen),
                    }
                    buf.end_access();
                    if let Err(e) = buf.begin_access(None, 0, u64::MAX) {
                        return expected(&e, &path, seen);
                    }
                }
            }
        }));
        if let Err(payload) = op {
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
            assert_eq!(message, Some(PANIC), "only the injected panic unwinds");
            seen.panics.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Whether files are removed and replaced: not under valgrind, whose own
/// bookkeeping of the address space fails an assertion now and then when a
/// mapped file is removed (`scripts/valgrind`).
fn replaces() -> bool {
    std::env::var_os("SMMAP_VALGRIND").is_none()
}

/// The faults, one every few hundred microseconds, until `done`.
fn disturb(m: &Manager, files: &Files, done: &AtomicBool) -> u64 {
    let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
    let mut replaced = 0;
    while !done.load(Ordering::Relaxed) {
        let r = xorshift(&mut rng);
        match r % 8 {
            0 | 1 => m.fail_next_maps(1 + (r >> 8) as usize % 3, NO_MEMORY),
            2 => m.fail_next_maps(1, ACCESS_DENIED),
            3 => m.panic_next_maps(1),
            4 => {
                m.collect();
            }
            _ if replaces() => replaced += u64::from(files.replace((r >> 8) as usize % FILES)),
            _ => {
                m.collect();
            }
        }
        std::thread::sleep(Duration::from_micros(200 + (r >> 40) % 600));
    }
    replaced
}

#[test]
fn threads_read_through_failing_maps_panics_and_replaced_files() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&PANIC) {
            default_hook(info);
        }
    }));
    let files = Arc::new(Files::new());
    let handles = 4 * READERS as usize;
    let m: Manager = SlidingWindowMapManager::builder()
        .window_size(2 * g())
        .max_memory_size(3 * READERS * g())
        .max_open_handles(handles)
        // Four descriptors for eight files: they are closed and opened
        // again, and an open meets the file put in the place of another.
        .max_open_files(4)
        .build()
        .into();
    let seen = Arc::new(Seen::default());
    let done = Arc::new(AtomicBool::new(false));
    let n = ops();
    let (tx, rx) = std::sync::mpsc::channel();
    for t in 0..READERS {
        let (m, files, seen, tx) = (m.clone(), files.clone(), seen.clone(), tx.clone());
        std::thread::spawn(move || {
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                read(&m, &files, &seen, t, n);
            }));
            tx.send(run.map_err(|p| {
                p.downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_else(|| "a panic".into())
            }))
            .unwrap();
        });
    }
    drop(tx);
    let disturber = {
        let (m, files, done) = (m.clone(), files.clone(), done.clone());
        std::thread::spawn(move || disturb(&m, &files, &done))
    };
    for _ in 0..READERS {
        // A read that waits for good (for a window a panic left pending,
        // say) fails the test instead of hanging it.
        let run = rx
            .recv_timeout(Duration::from_secs(300))
            .expect("a reading thread waited for good");
        if let Err(why) = run {
            done.store(true, Ordering::Relaxed);
            panic!("a reading thread failed: {why}");
        }
    }
    done.store(true, Ordering::Relaxed);
    let replaced = disturber.join().unwrap();
    m.fail_next_maps(0, 0);
    m.panic_next_maps(0);

    m.verify_invariants().unwrap();
    let s = m.stats();
    let (refused, panics, gone) = (
        seen.refused.load(Ordering::Relaxed),
        seen.panics.load(Ordering::Relaxed),
        seen.gone.load(Ordering::Relaxed),
    );
    eprintln!(
        "{READERS} threads x {n} operations: {refused} refused, {panics} panics, {gone} files gone or replaced, {replaced} replacements; {} maps, {} evictions, peak {} windows (limit {handles})",
        s.maps, s.evictions, s.peak_windows
    );
    assert!(s.peak_windows <= handles, "{s:?}");
    assert!(refused > 0 && panics > 0);
    assert!(!replaces() || (gone > 0 && replaced > 0));

    // Nothing is left held: each file, read afresh, is its latest version.
    m.collect();
    assert_eq!(m.mapped_memory_size(), 0);
    assert_eq!(m.stats().known_files, 0);
    for f in 0..FILES {
        let mut c = m.make_cursor(files.path(f)).unwrap();
        let v = files.latest[f].load(Ordering::SeqCst);
        for ofs in [0, size(f) / 2, size(f) - 1] {
            assert_eq!(
                c.use_region(ofs, 1).unwrap().buffer()[0],
                byte(seed(f, v), ofs)
            );
        }
    }
    m.verify_invariants().unwrap();
}
