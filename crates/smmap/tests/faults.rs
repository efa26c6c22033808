//! Fault tests: the operating system running out of what it hands out. Each
//! scenario runs in a child process (this test binary again, filtered to the
//! one test), so that lowered limits stay there and a crash fails only that
//! test. Each prints its figures on stderr (`--nocapture` shows them).
//!
//! Linux with glibc only: the limits are lowered with `setrlimit`
//! (`RLIMIT_AS`, `RLIMIT_NOFILE`) and read from `/proc`, and a truncated
//! mapping is shown to raise `SIGBUS` — none of which Windows has.
#![cfg(all(target_os = "linux", target_env = "gnu"))]

mod common;

use std::os::fd::AsRawFd;
use std::process::Command;

use common::{fds_under, g, in_child, make_file, maps_of, truncate, CHILD};
use smmap::{Error, SlidingWindowMapBuffer, SlidingWindowMapManager, StaticWindowMapManager};

fn set_limit(resource: libc::__rlimit_resource_t, soft: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the valid struct we pass.
    assert_eq!(unsafe { libc::getrlimit(resource, &mut lim) }, 0);
    lim.rlim_cur = soft.min(lim.rlim_max);
    // SAFETY: setrlimit reads the valid struct we pass.
    assert_eq!(unsafe { libc::setrlimit(resource, &lim) }, 0);
}

fn sparse(dir: &std::path::Path, name: &str, len: u64) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p).unwrap().set_len(len).unwrap();
    p
}

/// `vm.max_map_count`, or `None` (saying so) where it is too large for
/// `test` to use up in a test's time and space: above 2^18 (some
/// distributions set 2^20, some 2^31 - 5; Debian's default is 65,530),
/// exhausting it would take a million maps or billions, a page of a
/// sparse file each, which tmpfs backs with memory.
fn max_map_count(test: &str) -> Option<u64> {
    let max: u64 = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    if max > 1 << 18 {
        eprintln!("{test}: skipped: vm.max_map_count {max} is too large to use up in a test (at most 2^18)");
        return None;
    }
    Some(max)
}

/// Takes `n` of the process's mappings, as the rest of a program (an
/// allocator, an interpreter) does: one anonymous region whose every other
/// page is made inaccessible, so that the kernel keeps `n` separate maps.
fn hog_maps(n: u64) {
    let page = g() as usize;
    let len = n as usize * page;
    // SAFETY: an anonymous private mapping at an address the kernel picks;
    // it is never freed (the child process exits) and never read.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    assert_ne!(base, libc::MAP_FAILED);
    for i in (1..n as usize).step_by(2) {
        // SAFETY: the page lies inside the mapping made above.
        let r = unsafe {
            libc::mprotect(
                base.cast::<u8>().add(i * page).cast(),
                page,
                libc::PROT_NONE,
            )
        };
        assert_eq!(r, 0, "mprotect: {}", std::io::Error::last_os_error());
    }
}

/// Reads the first byte of each of the sparse file's `windows` windows
/// through one cursor (each a new mapping); returns the manager's figures.
fn read_every_window(m: &smmap::Manager, path: &std::path::Path, windows: u64) -> smmap::Stats {
    let mut c = m.make_cursor(path).unwrap();
    for i in 0..windows {
        let c = c.use_region(i * g(), 0).unwrap();
        assert_eq!(c.buffer()[0], 0);
    }
    m.stats()
}

/// More windows than `vm.max_map_count` allows, with the default limits:
/// the manager keeps its mappings at half the kernel's limit, evicting as it
/// must, and the kernel never refuses it.
#[test]
fn map_count_is_never_reached_by_default() {
    in_child("map_count_is_never_reached_by_default", || {
        let Some(max) = max_map_count("map_count_is_never_reached_by_default") else {
            return;
        };
        let windows = max + max / 10;
        let dir = tempfile::tempdir().unwrap();
        let path = sparse(dir.path(), "sparse", windows * g());
        let m = SlidingWindowMapManager::builder().window_size(g()).build();
        assert_eq!(m.max_file_handles() as u64, max / 2);
        let s = read_every_window(&m, &path, windows);
        eprintln!(
            "map_count_is_never_reached_by_default: vm.max_map_count {max}, {windows} windows read, {} maps, {} refused, peak {} windows",
            s.maps, s.map_failures, s.peak_windows
        );
        assert_eq!((s.maps, s.map_failures), (windows, 0));
        assert_eq!(s.peak_windows as u64, max / 2);
        m.verify_invariants().unwrap();
    });
}

/// The rest of the process has taken all but a few thousand of the
/// kernel's maps: the kernel refuses a mapping before the handle limit is
/// reached, the manager unmaps every unused window and retries, and every
/// read succeeds.
#[test]
fn map_count_exhausted() {
    in_child("map_count_exhausted", || {
        let Some(max) = max_map_count("map_count_exhausted") else {
            return;
        };
        hog_maps(max - 3000);
        let windows = 10_000;
        let dir = tempfile::tempdir().unwrap();
        let path = sparse(dir.path(), "sparse", windows * g());
        let m = SlidingWindowMapManager::builder().window_size(g()).build();
        let s = read_every_window(&m, &path, windows);
        eprintln!(
            "map_count_exhausted: vm.max_map_count {max}, all but 3000 taken, {windows} windows read, {} maps, {} refused, {} retries, {} evictions",
            s.maps, s.map_failures, s.retries, s.evictions
        );
        assert_eq!(s.maps, windows);
        assert!(s.retries >= 1 && s.map_failures >= 1, "{s:?}");
        m.verify_invariants().unwrap();
    });
}

fn vm_size() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap();
    kb * 1024
}

/// `RLIMIT_AS` too low for three 1 GiB files at once: read in turn, they
/// all succeed; a single mapping larger than the limit gives a clear error,
/// and the manager works afterwards.
#[test]
fn address_space_exhausted() {
    in_child("address_space_exhausted", || {
        const GIB: u64 = 1 << 30;
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<_> = (0..3)
            .map(|i| sparse(dir.path(), &format!("f{i}"), GIB))
            .collect();
        let huge = sparse(dir.path(), "huge", 4 * GIB);
        let m = SlidingWindowMapManager::builder().window_size(0).build();
        set_limit(libc::RLIMIT_AS, vm_size() + 2 * GIB + GIB / 2);
        for round in 0..3 {
            for p in &files {
                let mut c = m.make_cursor(p).unwrap();
                c.use_region(0, 0).unwrap();
                assert_eq!(c.size() as u64, GIB);
                assert_eq!(
                    (c.buffer()[0], c.buffer()[GIB as usize - 1]),
                    (0, 0),
                    "round {round}"
                );
            }
        }
        let s = m.stats();
        assert!(s.retries >= 1, "{s:?}");
        let mut c = m.make_cursor(&huge).unwrap();
        let e = c.use_region(0, 0).unwrap_err();
        assert!(
            matches!(&e, Error::Map { len, .. } if *len == 4 * GIB),
            "{e}"
        );
        assert_eq!(e.raw_os_error(), Some(libc::ENOMEM));
        assert!(
            e.to_string().contains("huge") && e.to_string().contains("offset 0"),
            "{e}"
        );
        drop(c);
        // Still works.
        let mut c = m.make_cursor(&files[1]).unwrap();
        c.use_region(GIB - 1, 0).unwrap();
        assert_eq!(c.buffer(), &[0]);
        let s = m.stats();
        eprintln!(
            "address_space_exhausted: {} maps, {} refused, {} retries, {} evictions, peak {} MiB mapped",
            s.maps, s.map_failures, s.retries, s.evictions, s.peak_mapped_bytes >> 20
        );
        m.verify_invariants().unwrap();
    });
}

/// `RLIMIT_NOFILE` of 64 while 1,000 files are read through path cursors
/// (all alive at once: a live mapping is not a descriptor) and through the
/// caller's descriptors: no failure, and no more descriptors of ours open
/// than `max_open_files` (an eighth of the limit). A full table makes the
/// manager close the descriptors it keeps and try again; with none to
/// close, mapping a new window is a clear `EMFILE` error.
#[test]
fn descriptors_exhausted() {
    in_child("descriptors_exhausted", || {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<_> = (0..1000)
            .map(|i| make_file(dir.path(), &format!("f{i}"), i, 2 * g() + i))
            .collect();
        set_limit(libc::RLIMIT_NOFILE, 64);
        let m = SlidingWindowMapManager::new();
        assert_eq!(m.max_open_files(), 8);
        let mut cursors = Vec::new();
        for (path, bytes) in &files {
            let mut c = m.make_cursor(path).unwrap();
            c.use_region(g() + 1, 0).unwrap();
            assert_eq!(c.buffer(), &bytes[g() as usize + 1..]);
            cursors.push(c);
        }
        assert_eq!(m.num_file_handles(), 1000);
        assert!(fds_under(dir.path()) <= 8);
        for (path, bytes) in &files {
            let f = std::fs::File::open(path).unwrap();
            let mut buf =
                SlidingWindowMapBuffer::new(m.make_cursor_fd(f.as_raw_fd()).unwrap(), 0, u64::MAX)
                    .unwrap();
            assert_eq!(&*buf.slice(0..bytes.len() as u64).unwrap(), &bytes[..]);
        }
        let kept = fds_under(dir.path());
        assert!((1..=8).contains(&kept), "{kept} descriptors kept");
        // Fill the table: the manager gives back what it keeps, and maps.
        let (extra, extra_bytes) = make_file(dir.path(), "emfile-probe", 1, 10);
        let (extra2, _) = make_file(dir.path(), "emfile-probe2", 2, 10);
        let mut hog = Vec::new();
        while let Ok(f) = std::fs::File::open(&files[0].0) {
            hog.push(f);
        }
        let mut c = m.make_cursor(&extra).unwrap();
        c.use_region(0, 0).unwrap();
        assert_eq!(c.buffer(), &extra_bytes[..]);
        // Fill it again, with nothing of the manager's to give back: EMFILE.
        while let Ok(f) = std::fs::File::open(&files[0].0) {
            hog.push(f);
        }
        m.collect();
        hog.push(std::fs::File::open(&files[0].0).unwrap());
        let e = m
            .make_cursor(&extra2)
            .and_then(|mut c| c.use_region(0, 0).map(|_| ()))
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}");
        assert!(e.to_string().contains("emfile-probe2"), "{e}");
        drop(hog);
        let mut c2 = m.make_cursor(&extra2).unwrap();
        c2.use_region(0, 0).unwrap();
        let s = m.stats();
        eprintln!(
            "descriptors_exhausted: RLIMIT_NOFILE 64, 2000 file reads, {} windows mapped at once, {} descriptors kept of 8 allowed, {} opened in all",
            s.peak_windows, kept, s.fd_opens
        );
        drop((cursors, c, c2));
        m.collect();
        assert_eq!(fds_under(dir.path()), 0);
        assert_eq!(m.num_file_handles(), 0);
        assert_eq!(files.iter().map(|(p, _)| maps_of(p)).sum::<usize>(), 0);
    });
}

/// A descriptor table that fills while threads read: a manager allowed to
/// keep more descriptors than the table holds (as the bench's is, one per
/// file) closes the ones it keeps when an open finds the table full, and
/// opens again — also when other threads hit the full table at the same
/// moment and find nothing left to close (the first is still closing).
/// No read fails.
#[test]
fn descriptors_exhausted_by_threads_at_once() {
    in_child("descriptors_exhausted_by_threads_at_once", || {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<_> = (0..3000)
            .map(|i| make_file(dir.path(), &format!("f{i}"), i, g() + i))
            .collect();
        set_limit(libc::RLIMIT_NOFILE, 2048);
        let m = SlidingWindowMapManager::builder()
            .window_size(g())
            .max_memory_size(4 * g())
            .max_open_handles(4)
            .max_open_files(100_000)
            .build();
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let (m, files) = (&m, &files);
                s.spawn(move || {
                    let mut bufs: Vec<_> = files
                        .iter()
                        .map(|(p, _)| {
                            SlidingWindowMapBuffer::new(m.make_cursor(p).unwrap(), 0, u64::MAX)
                                .unwrap()
                        })
                        .collect();
                    for round in 0..4u64 {
                        for (i, b) in bufs.iter_mut().enumerate() {
                            let at = (round * 7 + t + i as u64) % b.len();
                            let got = b.get(at).unwrap_or_else(|e| panic!("round {round}: {e}"));
                            assert_eq!(got, files[i].1[at as usize]);
                        }
                    }
                });
            }
        });
        let s = m.stats();
        eprintln!(
            "descriptors_exhausted_by_threads_at_once: RLIMIT_NOFILE 2048, 3000 files, 4 threads: {} opened in all, {} reads copied",
            s.fd_opens, s.preads
        );
        assert!(s.fd_opens > 3000, "the table filled and was emptied: {s:?}");
        m.verify_invariants().unwrap();
    });
}

/// The documented hazard, shown: a mapped page whose file is truncated
/// raises SIGBUS when read. The child is expected to die by that signal.
#[test]
fn truncation_under_a_mapping_raises_sigbus() {
    if std::env::var(CHILD).as_deref() == Ok("sigbus") {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = make_file(dir.path(), "f", 1, 4 * g());
        let m = StaticWindowMapManager::new();
        let mut c = m.make_cursor(&path).unwrap();
        c.use_region(0, 0).unwrap();
        truncate(&path, 0);
        let b = c.buffer();
        // Reading the lost page: SIGBUS.
        std::hint::black_box(b[3 * g() as usize]);
        std::process::exit(0);
    }
    use std::os::unix::process::ExitStatusExt;
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "truncation_under_a_mapping_raises_sigbus",
            "--test-threads=1",
        ])
        .env(CHILD, "sigbus")
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(libc::SIGBUS), "{:?}", out.status);
}
