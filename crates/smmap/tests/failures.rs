//! Failures in the middle of a sequence of reads: the file removed, renamed
//! over, its descriptor number reused, replaced by a FIFO, a read too large
//! to copy. Every object stays usable: the next read gives the right bytes
//! or an error naming the file — never another file's bytes, a crash, a hang
//! or an abort.

mod common;

use std::path::Path;

use common::{g, in_child, is_not_found, make_file, remove_mapped, ACCESS_DENIED, NO_MEMORY};
use smmap::{Error, SlidingWindowMapBuffer, SlidingWindowMapManager};

fn one_handle() -> SlidingWindowMapManager {
    SlidingWindowMapManager::builder()
        .window_size(g())
        .max_open_handles(1)
        .build()
}

/// The sequence that once read unmapped memory through the buffer's cached
/// address: the only handle is in use at 0, the file is removed (and the
/// manager's descriptor of it closed), a read at 2 pages fails to open it;
/// the read at 0 then gives the right byte.
#[test]
fn a_failed_move_leaves_the_buffer_reading_its_window() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 1, 3 * g());
    let m = one_handle();
    let mut buf = SlidingWindowMapBuffer::new(m.make_cursor(&path).unwrap(), 0, u64::MAX).unwrap();
    assert_eq!(buf.get(0).unwrap(), bytes[0]);
    remove_mapped(&path);
    // While the manager keeps its descriptor, the removed file is read.
    assert_eq!(buf.get(g()).unwrap(), bytes[g() as usize]);
    assert_eq!(buf.get(0).unwrap(), bytes[0]);
    m.collect();
    let e = buf.get(2 * g()).unwrap_err();
    assert!(matches!(e, Error::Open { .. }), "{e}");
    assert!(is_not_found(&e), "{e}");
    assert!(e.to_string().contains(&*path.to_string_lossy()), "{e}");
    assert_eq!(buf.get(0).unwrap(), bytes[0]);
    assert_eq!(buf.get(g() - 1).unwrap(), bytes[g() as usize - 1]);
    let mut out = [0; 8];
    assert!(
        buf.read_at(2 * g() - 4, &mut out).is_err(),
        "crosses into the lost page"
    );
    assert_eq!(buf.get(5).unwrap(), bytes[5]);
    m.verify_invariants().unwrap();
}

#[test]
fn a_failed_move_leaves_the_cursor_reading_its_window() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 2, 3 * g());
    let m = one_handle();
    let mut c = m.make_cursor(&path).unwrap();
    c.use_region(0, 0).unwrap();
    remove_mapped(&path);
    m.collect();
    assert!(c.use_region(2 * g(), 0).is_err());
    assert!(c.is_valid(), "the cursor keeps its region");
    assert_eq!(c.buffer(), &bytes[..g() as usize]);
    c.use_region(7, 1).unwrap();
    assert_eq!(c.buffer(), &bytes[7..8]);
    // A refused mapping (not an open) leaves the cursor invalid, and usable.
    let (other, obytes) = make_file(dir.path(), "g", 3, 3 * g());
    let mut c2 = m.make_cursor(&other).unwrap();
    drop(c);
    m.fail_next_maps(2, NO_MEMORY);
    let e = c2.use_region(g(), 0).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(NO_MEMORY));
    assert!(e.to_string().contains(&format!("offset {}", g())), "{e}");
    assert!(!c2.is_valid());
    c2.use_region(g(), 0).unwrap();
    assert_eq!(c2.buffer(), &obytes[g() as usize..2 * g() as usize]);
    m.verify_invariants().unwrap();
}

/// A miss that evicted for its room maps under the evictor's hand. When the
/// kernel refuses the map, and again after the retry that unmaps every
/// unused region, the read fails and the hand is let go with the error: a
/// later miss that must evict, on another thread, maps.
#[test]
fn a_map_refused_after_an_eviction_lets_go_of_the_hand() {
    let dir = tempfile::tempdir().unwrap();
    let (pa, a) = make_file(dir.path(), "a", 11, 2 * g());
    let (pb, b) = make_file(dir.path(), "b", 12, 2 * g());
    let m = one_handle();
    let mut ca = m.make_cursor(&pa).unwrap();
    ca.use_region(0, 0).unwrap();
    ca.unuse_region();
    // The only handle is a's window, unused: b's miss evicts it, then its
    // map is refused twice.
    m.fail_next_maps(2, NO_MEMORY);
    let (e, errno) = on_a_thread(&m, &pb, g()).unwrap_err();
    assert_eq!(errno, Some(NO_MEMORY));
    assert!(e.contains(&*pb.to_string_lossy()), "{e}");
    let s = m.stats();
    assert_eq!(
        (s.map_failures, s.retries, s.evictions, s.windows),
        (2, 1, 1, 0),
        "{s:?}"
    );
    // a's window mapped again and left unused: the next miss must evict.
    ca.use_region(0, 0).unwrap();
    assert_eq!(ca.buffer(), &a[..g() as usize]);
    ca.unuse_region();
    assert_eq!(on_a_thread(&m, &pb, 0).unwrap(), &b[..g() as usize]);
    assert_eq!(m.stats().evictions, 2);
    m.verify_invariants().unwrap();
}

/// Only a refusal that unmapping can cure is retried. A refusal for lack
/// of memory unmaps every unused region and maps once more, which
/// succeeds; the region a cursor uses stays. A refusal for another reason
/// (access denied) is returned at once, naming the file and offset, and
/// unmaps nothing. Each leaves the manager mapping the next window as
/// before.
#[test]
fn only_a_refusal_that_unmapping_can_cure_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let (pa, a) = make_file(dir.path(), "a", 21, 3 * g());
    let (pb, b) = make_file(dir.path(), "b", 22, 3 * g());
    let m = SlidingWindowMapManager::builder()
        .window_size(g())
        .max_open_handles(8)
        .build();
    let mut unused = m.make_cursor(&pa).unwrap();
    unused.use_region(0, 0).unwrap();
    unused.unuse_region();
    let mut held = m.make_cursor(&pa).unwrap();
    held.use_region(g(), 0).unwrap();

    // Lack of memory, once: the unused window goes, the map is tried again.
    m.fail_next_maps(1, NO_MEMORY);
    let mut cb = m.make_cursor(&pb).unwrap();
    cb.use_region(0, 0).unwrap();
    assert_eq!(cb.buffer(), &b[..g() as usize]);
    let s = m.stats();
    assert_eq!(
        (s.map_failures, s.retries, s.evictions, s.windows),
        (1, 1, 1, 2),
        "{s:?}"
    );
    assert_eq!(held.buffer(), &a[g() as usize..2 * g() as usize]);
    cb.unuse_region();

    // Access denied: returned at once; b's unused window stays mapped.
    m.fail_next_maps(1, ACCESS_DENIED);
    let e = unused.use_region(2 * g(), 0).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(ACCESS_DENIED), "{e}");
    let text = e.to_string();
    assert!(
        text.contains(&*pa.to_string_lossy()) && text.contains(&format!("offset {}", 2 * g())),
        "{text}"
    );
    let s = m.stats();
    assert_eq!(
        (s.map_failures, s.retries, s.evictions, s.windows),
        (2, 1, 1, 2),
        "{s:?}"
    );
    // The next reads map as before, and b's window is still there.
    unused.use_region(2 * g(), 0).unwrap();
    assert_eq!(unused.buffer(), &a[2 * g() as usize..]);
    cb.use_region(0, 0).unwrap();
    assert_eq!(m.stats().maps, 4);
    assert_eq!(cb.buffer(), &b[..g() as usize]);
    m.verify_invariants().unwrap();
}

/// The window at `offset` of `path` read by a cursor on a thread of its
/// own, or the error (text and errno); a read that hangs fails the test.
fn on_a_thread(
    m: &SlidingWindowMapManager,
    path: &Path,
    offset: u64,
) -> Result<Vec<u8>, (String, Option<i32>)> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (m, path) = (m.clone(), path.to_path_buf());
    std::thread::spawn(move || {
        let mut c = m.make_cursor(&path).unwrap();
        let r = c.use_region(offset, 0).map(|c| c.buffer().to_vec());
        let _ = tx.send(r.map_err(|e| (e.to_string(), e.raw_os_error())));
    });
    rx.recv_timeout(std::time::Duration::from_secs(60))
        .expect("the read waited for a hand nobody should hold")
}

/// A file renamed over a mapped one is never read through the old entry:
/// new windows come from the old file while the manager keeps its
/// descriptor, and are refused once it is closed; once refused, a new
/// cursor reads the new file while the old cursors keep the old one. (Unix: Windows refuses
/// to rename over a mapped file; the next test is its counterpart.)
#[cfg(unix)]
#[test]
fn a_file_renamed_over_is_not_read_through_the_old_entry() {
    let dir = tempfile::tempdir().unwrap();
    let mib = 1 << 20;
    let (pack, old) = make_file(dir.path(), "pack", 4, 4 * mib);
    let (other, new) = make_file(dir.path(), "new", 5, 4 * mib);
    let m = SlidingWindowMapManager::builder().window_size(mib).build();
    let mut c = m.make_cursor(&pack).unwrap();
    c.use_region(0, 0).unwrap();
    assert_eq!(c.buffer()[..16], old[..16]);
    std::fs::rename(&other, &pack).unwrap();
    c.use_region(mib, 0).unwrap();
    assert_eq!(
        c.buffer()[..16],
        old[mib as usize..][..16],
        "the file it opened"
    );
    // Until a read finds the path replaced, another cursor on it joins the
    // old entry (a known path is not looked at again).
    let mut early = m.make_cursor(&pack).unwrap();
    early.use_region(5, 0).unwrap();
    assert_eq!(early.buffer()[0], old[5], "the old file");
    c.use_region(0, 0).unwrap();
    m.collect();
    for at in [mib, 2 * mib, 3 * mib] {
        let e = c.use_region(at, 0).unwrap_err();
        assert!(matches!(e, Error::Replaced { .. }), "{e}");
        assert!(e.to_string().contains("pack"), "{e}");
        assert_eq!(e.raw_os_error(), Some(libc::ESTALE));
        assert_eq!(c.buffer()[..16], old[..16], "still the old window");
    }
    // The refusal retired the old entry: a cursor made now meets the new
    // file, while the old cursors, and their clones, keep the old one.
    let mut c2 = m.make_cursor(&pack).unwrap();
    c2.use_region(2 * mib, 0).unwrap();
    assert_eq!(c2.buffer()[..16], new[2 * mib as usize..][..16]);
    assert_eq!(m.stats().known_files, 2);
    let mut clone = c.clone();
    assert!(matches!(
        clone.use_region(2 * mib, 0),
        Err(Error::Replaced { .. })
    ));
    assert!(matches!(
        early.use_region(3 * mib, 0),
        Err(Error::Replaced { .. })
    ));
    clone.use_region(5, 0).unwrap();
    assert_eq!(clone.buffer()[0], old[5], "the old window is shared");
    m.verify_invariants().unwrap();
    let mut c3 = m.make_cursor(&pack).unwrap();
    c3.use_region(2 * mib + 7, 0).unwrap();
    assert_eq!(
        c3.buffer()[0],
        new[2 * mib as usize + 7],
        "the new entry's window"
    );
    assert_eq!(m.stats().known_files, 2);
    drop((c, clone, early));
    m.collect();
    assert_eq!(
        m.stats().known_files,
        1,
        "the retired entry went with its last cursor"
    );
    m.verify_invariants().unwrap();
    drop((c2, c3));
    m.collect();
    assert_eq!(m.stats().known_files, 0);
    let mut c = m.make_cursor(&pack).unwrap();
    c.use_region(3 * mib, 0).unwrap();
    assert_eq!(c.buffer()[..16], new[3 * mib as usize..][..16]);
    m.verify_invariants().unwrap();
}

/// A file renamed over one whose windows are all unmapped, while a cursor
/// still holds its entry, is refused as another file — on every system; on
/// Windows, the only way a file can be replaced under a manager, which
/// refuses to rename over it while a window is mapped or the manager keeps
/// it open.
#[test]
fn a_file_renamed_over_an_unmapped_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (pack, old) = make_file(dir.path(), "pack", 4, 4 * g());
    let (other, new) = make_file(dir.path(), "new", 5, 4 * g());
    let m = SlidingWindowMapManager::builder().window_size(g()).build();
    let mut c = m.make_cursor(&pack).unwrap();
    c.use_region(0, 0).unwrap();
    assert_eq!(c.buffer(), &old[..g() as usize]);
    if cfg!(windows) {
        assert!(
            std::fs::rename(&other, &pack).is_err(),
            "Windows refuses to rename over a mapped file"
        );
    }
    c.unuse_region();
    m.collect();
    std::fs::rename(&other, &pack).unwrap();
    let e = c.use_region(g(), 0).unwrap_err();
    assert!(matches!(e, Error::Replaced { .. }), "{e}");
    assert!(e.to_string().contains("pack"), "{e}");
    assert!(!c.is_valid());
    // Found replaced, the old entry is retired: a new cursor meets the new
    // file while the old one lives.
    let mut n = m.make_cursor(&pack).unwrap();
    n.use_region(3 * g(), 0).unwrap();
    assert_eq!(n.buffer(), &new[3 * g() as usize..]);
    assert!(matches!(c.use_region(0, 0), Err(Error::Replaced { .. })));
    m.verify_invariants().unwrap();
    drop(c);
    m.verify_invariants().unwrap();
    assert_eq!(m.stats().known_files, 1);
}

/// A descriptor number closed by its owner and reused for another file:
/// the cursor made from it refuses to map the other file. (Unix: `dup2`
/// forces the reuse; a handle value cannot be chosen on Windows.)
#[cfg(unix)]
#[test]
fn a_reused_descriptor_number_is_refused() {
    use std::os::fd::AsRawFd;
    let dir = tempfile::tempdir().unwrap();
    let (pa, a) = make_file(dir.path(), "a", 6, 4 * g());
    let (pb, _) = make_file(dir.path(), "b", 7, 4 * g());
    let fa = std::fs::File::open(&pa).unwrap();
    let fb = std::fs::File::open(&pb).unwrap();
    let n = fa.as_raw_fd();
    let m = SlidingWindowMapManager::builder().window_size(g()).build();
    let mut c = m.make_cursor_fd(n).unwrap();
    c.use_region(0, 0).unwrap();
    assert_eq!(c.buffer(), &a[..g() as usize]);
    // The caller closes `n` and the number comes back for b (forced).
    // SAFETY: both descriptors are open; `fa` owns `n` and closes it.
    assert_eq!(unsafe { libc::dup2(fb.as_raw_fd(), n) }, n);
    // The manager's own duplicate still reads a.
    c.use_region(g(), 0).unwrap();
    assert_eq!(c.buffer(), &a[g() as usize..2 * g() as usize]);
    m.collect();
    let e = c.use_region(2 * g(), 0).unwrap_err();
    assert!(matches!(e, Error::Replaced { .. }), "{e}");
    assert!(
        e.to_string().contains(&format!("file descriptor {n}")),
        "{e}"
    );
    assert_eq!(
        c.buffer(),
        &a[g() as usize..2 * g() as usize],
        "a's window, still"
    );
    drop(c);
    drop(fa);
}

/// A path replaced by a FIFO: the next window is refused at once. (A plain
/// open of a FIFO blocks until a writer comes.) Unix: Windows has no FIFO
/// in its file systems.
#[cfg(unix)]
#[test]
fn a_path_replaced_by_a_fifo_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = make_file(dir.path(), "victim", 8, 2 * g());
    let m = SlidingWindowMapManager::builder().window_size(g()).build();
    let mut c = m.make_cursor(&path).unwrap();
    c.use_region(0, 0).unwrap();
    c.unuse_region();
    m.collect();
    std::fs::remove_file(&path).unwrap();
    mkfifo(&path);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = c.use_region(0, 0).map(|_| ()).map_err(|e| e.to_string());
        let _ = tx.send(r);
    });
    let r = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("use_region blocked on the FIFO");
    let e = r.unwrap_err();
    assert!(e.contains("FIFO") && e.contains("victim"), "{e}");
}

#[cfg(unix)]
fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a NUL-terminated path that lives across the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

/// A relative path is resolved when the manager first meets it: a later
/// `chdir` does not point it at another file, in reads or in the trace.
/// (In a child process: the working directory is the whole process's.)
#[test]
fn a_relative_path_is_resolved_once() {
    in_child("a_relative_path_is_resolved_once", || {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let (_, bytes_a) = make_file(a.path(), "data", 9, 4 * g());
        make_file(b.path(), "data", 10, 4 * g());
        std::env::set_current_dir(a.path()).unwrap();
        let trace_path = a.path().join("reads.trace");
        let m = SlidingWindowMapManager::builder()
            .window_size(g())
            .trace(smmap::Trace::create(&trace_path).unwrap())
            .build();
        let mut c = m.make_cursor("data").unwrap();
        c.use_region(0, 0).unwrap();
        std::env::set_current_dir(b.path()).unwrap();
        c.use_region(3 * g(), 0).unwrap();
        assert_eq!(c.buffer(), &bytes_a[3 * g() as usize..]);
        assert_eq!(c.path(), Some(Path::new("data")), "named as given");
        // A new cursor on "data" now means b's file: another entry.
        let mut cb = m.make_cursor("data").unwrap();
        cb.use_region(0, 0).unwrap();
        assert_ne!(cb.buffer(), &bytes_a[..g() as usize]);
        assert_eq!(m.num_open_files(), 2);
        // The trace tells them apart too, each under the name given.
        drop((c, cb, m));
        let trace = smmap::TraceReader::open(&trace_path).unwrap();
        let names: Vec<_> = trace
            .files()
            .iter()
            .map(|f| f.name.to_str().unwrap())
            .collect();
        assert_eq!(names, ["data", "data"]);
    });
}

/// A slice too large to copy is an error, not an abort.
///
/// On Linux in a child process whose address space is capped at 1 TiB:
/// where the kernel grants any allocation (`vm.overcommit_memory = 1`),
/// 8 TiB would be granted, and filling it would use memory until the
/// process was killed.
#[test]
fn a_slice_too_large_to_copy_is_an_error() {
    #[cfg(target_os = "linux")]
    in_child("a_slice_too_large_to_copy_is_an_error", || {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the valid struct we pass.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut lim) }, 0);
        lim.rlim_cur = lim.rlim_max.min(1 << 40);
        // SAFETY: setrlimit reads the valid struct we pass.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) }, 0);
        slice_too_large_to_copy();
    });
    #[cfg(not(target_os = "linux"))]
    slice_too_large_to_copy();
}

fn slice_too_large_to_copy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge");
    let f = std::fs::File::create(&path).unwrap();
    // 32 TiB where the file system allows it; ext4 stops below 16 TiB.
    let len = [1u64 << 45, (1 << 44) - g(), 1 << 43]
        .into_iter()
        .find(|&len| f.set_len(len).is_ok())
        .expect("a sparse file of 8 TiB or more");
    let m = SlidingWindowMapManager::builder()
        .window_size(1 << 20)
        .build();
    let mut buf = SlidingWindowMapBuffer::new(m.make_cursor(&path).unwrap(), 0, u64::MAX).unwrap();
    assert_eq!(buf.len(), len);
    let e = buf.slice(0..len).unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e}");
    assert!(e.to_string().contains("huge"), "{e}");
    assert_eq!(buf.get(len - 1).unwrap(), 0, "still usable");
    assert_eq!(&*buf.slice(len - 3..len).unwrap(), &[0, 0, 0]);
}

/// One window counts at most 16,777,214 cursors, a bound only cursors
/// leaked with `mem::forget` reach: past it, a copy has no region and a
/// read of the window is `TooManyCursors`, naming the file and offset (no
/// count carried into another field, no hang waiting for an eviction that
/// cannot come); other windows are read as ever, and a cursor dropped makes
/// room. (In a child process: the leaked cursors keep the manager alive.)
#[test]
fn a_window_used_by_the_most_cursors_refuses_another() {
    in_child("a_window_used_by_the_most_cursors_refuses_another", || {
        const MOST: usize = 16_777_214;
        let dir = tempfile::tempdir().unwrap();
        let (path, bytes) = make_file(dir.path(), "f", 11, 2 * g());
        let m = SlidingWindowMapManager::builder().window_size(g()).build();
        let mut c = m.make_cursor(&path).unwrap();
        c.use_region(0, 1).unwrap();
        let spare = c.clone();
        let mut buf =
            SlidingWindowMapBuffer::new(m.make_cursor(&path).unwrap(), 0, u64::MAX).unwrap();
        assert_eq!(
            buf.get(g()).unwrap(),
            bytes[g() as usize],
            "a buffer on the other window"
        );
        for _ in 0..MOST - 2 {
            std::mem::forget(c.clone());
        }
        let copy = c.clone();
        assert!(!copy.is_valid(), "a copy past the count has no region");
        assert_eq!(copy.file_size(), Some(2 * g()), "but has the file");
        for mut other in [copy, m.make_cursor(&path).unwrap()] {
            let e = other.use_region(5, 1).unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::TooManyCursors {
                        offset: 5,
                        limit: MOST,
                        ..
                    }
                ),
                "{e}"
            );
            let msg = e.to_string();
            assert!(
                msg.contains(&*path.to_string_lossy()) && msg.contains("offset 5"),
                "{msg}"
            );
            // The other window is mapped and read as ever.
            other.use_region(g(), 1).unwrap();
            assert_eq!(other.buffer()[0], bytes[g() as usize]);
        }
        assert!(matches!(
            buf.get(7),
            Err(Error::TooManyCursors { offset: 7, .. })
        ));
        assert_eq!(c.buffer()[0], bytes[0], "the counted cursors read on");
        drop(spare);
        assert_eq!(buf.get(7).unwrap(), bytes[7], "a cursor dropped makes room");
        assert!(matches!(
            c.clone().use_region(0, 1),
            Err(Error::TooManyCursors { .. })
        ));
    });
}

/// Where a sandbox refuses `statx` (a filter answering `ENOSYS`, as a
/// kernel before 4.11 does, or `EPERM`, as old container runtimes do), the
/// engine reads sizes and identities with `fstatat` instead: files are
/// opened and read, by path and by lent descriptor, and a file renamed
/// over is still told from the one first opened. (In a child process: the
/// filter is the whole process's, for good.)
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
#[test]
fn statx_refused_by_a_sandbox_falls_back_to_fstatat() {
    common::in_children(
        "statx_refused_by_a_sandbox_falls_back_to_fstatat",
        &[libc::ENOSYS, libc::EPERM],
        |errno| {
            refuse_statx(errno);
            read_without_statx();
        },
    );
}

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
fn read_without_statx() {
    use std::os::fd::AsRawFd;
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "pack", 12, 3 * g());
    let (other, _) = make_file(dir.path(), "new", 13, 3 * g());
    let m = SlidingWindowMapManager::builder().window_size(g()).build();
    let mut c = m.make_cursor(&path).unwrap();
    assert_eq!(c.file_size(), Some(3 * g()));
    c.use_region(g(), 1).unwrap();
    assert_eq!(c.buffer()[0], bytes[g() as usize]);
    // A lent descriptor of the same file: its identity read by `fstatat`
    // on the descriptor, the path's by `fstatat` on the path.
    let lent = std::fs::File::open(&path).unwrap();
    let mut d = m.make_cursor_fd(lent.as_raw_fd()).unwrap();
    d.use_region(2 * g(), 1).unwrap();
    assert_eq!(d.buffer()[0], bytes[2 * g() as usize]);
    drop(d);
    // Renamed over: the old entry refuses to map the new file.
    c.use_region(0, 1).unwrap();
    std::fs::rename(&other, &path).unwrap();
    m.collect();
    let e = c.use_region(2 * g(), 1).unwrap_err();
    assert!(matches!(e, Error::Replaced { .. }), "{e}");
    assert_eq!(c.buffer()[0], bytes[0], "still the old window");
}

/// A file pinned while `statx` worked, with the birth time, and opened
/// again after a sandbox began refusing `statx` (so without it) is still
/// the same file: identities are compared on what both sides have. A file
/// renamed over is still told apart, by its inode. (In a child process.)
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
#[test]
fn a_file_pinned_before_statx_was_refused_is_still_read() {
    common::in_children(
        "a_file_pinned_before_statx_was_refused_is_still_read",
        &[libc::ENOSYS],
        |errno| {
            let dir = tempfile::tempdir().unwrap();
            let (path, bytes) = make_file(dir.path(), "pack", 14, 3 * g());
            let (other, _) = make_file(dir.path(), "new", 15, 3 * g());
            let (kept, kept_bytes) = make_file(dir.path(), "kept", 16, 3 * g());
            let m = SlidingWindowMapManager::builder().window_size(g()).build();
            let mut c = m.make_cursor(&path).unwrap();
            c.use_region(0, 1).unwrap();
            let mut k = m.make_cursor(&kept).unwrap();
            k.use_region(0, 1).unwrap();
            k.unuse_region();
            // Nothing kept open: the next windows open the files again.
            m.collect();
            refuse_statx(errno);
            k.use_region(2 * g(), 1).unwrap();
            assert_eq!(k.buffer()[0], kept_bytes[2 * g() as usize]);
            c.use_region(g(), 1).unwrap();
            assert_eq!(c.buffer()[0], bytes[g() as usize]);
            std::fs::rename(&other, &path).unwrap();
            m.collect();
            let e = c.use_region(2 * g(), 1).unwrap_err();
            assert!(matches!(e, Error::Replaced { .. }), "{e}");
        },
    );
}

/// Installs a seccomp filter that answers every `statx` with `errno`, and
/// checks that it does.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
fn refuse_statx(errno: i32) {
    #[cfg(target_arch = "x86_64")]
    const ARCH: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
    #[cfg(target_arch = "aarch64")]
    const ARCH: u32 = 0xc000_00b7; // AUDIT_ARCH_AARCH64
    let op = |code: u32, k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let jeq = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let ret = libc::BPF_RET | libc::BPF_K;
    let mut filter = [
        // seccomp_data: the system call's number at 0, the architecture at 4.
        op(load, 4, 0, 0),
        op(jeq, ARCH, 1, 0),
        op(ret, libc::SECCOMP_RET_ALLOW, 0, 0),
        op(load, 0, 0, 0),
        op(jeq, libc::SYS_statx as u32, 0, 1),
        op(ret, libc::SECCOMP_RET_ERRNO | errno as u32, 0, 0),
        op(ret, libc::SECCOMP_RET_ALLOW, 0, 0),
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: prctl with these options reads only `prog` and the filter it
    // points to, both alive across the call; the filter only makes statx
    // fail.
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog),
            0,
            "{}",
            std::io::Error::last_os_error()
        );
    }
    let mut st = std::mem::MaybeUninit::<libc::statx>::uninit();
    // The system call itself: glibc's `statx` answers an `ENOSYS` with
    // `fstatat` of its own.
    // SAFETY: a NUL-terminated path and a buffer valid for one `statx`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_statx,
            libc::AT_FDCWD,
            c"/".as_ptr(),
            0,
            libc::STATX_SIZE,
            st.as_mut_ptr(),
        )
    };
    assert_eq!(
        (r, std::io::Error::last_os_error().raw_os_error()),
        (-1, Some(errno)),
        "statx is refused"
    );
}

/// A typed read whose window cannot be mapped returns that error, once, as
/// `get` does: it neither tries the map a second time (which would count
/// and trace a second miss and could hide the first failure) nor reports
/// the range instead. In the middle of a run of reads: the reads before and
/// after it, within one window and straddling two, give the right values.
#[test]
fn a_typed_read_reports_a_failed_map_once() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 3, 4 * g());
    let m = SlidingWindowMapManager::builder()
        .window_size(g())
        .max_open_handles(8)
        .build();
    let mut buf = SlidingWindowMapBuffer::new(m.make_cursor(&path).unwrap(), 0, u64::MAX).unwrap();
    let le32 = |at: u64| {
        let at = at as usize;
        u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
    };
    assert_eq!(buf.read_le::<u32>(8).unwrap(), le32(8));
    let before = m.stats();

    // Inside one window not yet mapped.
    m.fail_next_maps(1, ACCESS_DENIED);
    let e = buf.read_le::<u32>(g() + 8).unwrap_err();
    assert!(matches!(e, Error::Map { .. }), "{e}");
    assert_eq!(e.raw_os_error(), Some(ACCESS_DENIED), "{e}");
    assert!(e.to_string().contains(&*path.to_string_lossy()), "{e}");
    let s = m.stats();
    assert_eq!(s.map_failures - before.map_failures, 1, "one try: {s:?}");
    assert_eq!(s.maps, before.maps, "{s:?}");
    assert_eq!(buf.read_le::<u32>(8).unwrap(), le32(8));
    assert_eq!(buf.read_le::<u32>(g() + 8).unwrap(), le32(g() + 8));

    // Straddling into a window not yet mapped: the second map fails.
    let seam = 3 * g() - 2;
    m.fail_next_maps(1, ACCESS_DENIED);
    let e = buf.read_le::<u32>(seam).unwrap_err();
    assert!(matches!(e, Error::Map { .. }), "{e}");
    assert_eq!(m.stats().map_failures - before.map_failures, 2);
    assert_eq!(buf.read_le::<u32>(seam).unwrap(), le32(seam));
    assert_eq!(buf.get(8).unwrap(), bytes[8]);

    // Past the end, it is still the range that is reported.
    let e = buf.read_le::<u32>(4 * g() - 2).unwrap_err();
    assert!(matches!(e, Error::OutOfRange { .. }), "{e}");
    m.verify_invariants().unwrap();
}

/// A miss that unwinds after it gave the cursor's region back leaves the
/// cursor invalid, its view empty, not showing the old region's bytes as
/// its own; the cursor can be used again.
#[test]
fn a_miss_that_panics_leaves_the_cursor_without_a_view() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 18, 4 * g());
    let m = SlidingWindowMapManager::builder()
        .window_size(g())
        .max_open_handles(2)
        .build();
    let mut c = m.make_cursor(&path).unwrap();
    c.use_region(0, 10).unwrap();
    m.panic_next_maps(1);
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = c.use_region(3 * g(), 1);
    }));
    assert!(unwound.is_err(), "the injected panic");
    assert!(!c.is_valid());
    assert_eq!(c.size(), 0);
    assert!(!c.includes_ofs(0));
    assert!(c.buffer().is_empty());
    m.verify_invariants().unwrap();
    c.use_region(3 * g(), 1).unwrap();
    assert_eq!(c.buffer()[0], bytes[3 * g() as usize]);
    c.use_region(0, 10).unwrap();
    assert_eq!(c.buffer(), &bytes[..10]);
    drop(c);
    m.verify_invariants().unwrap();
    assert_eq!(m.collect(), 2);
}

/// A miss that panics in the middle (a bug's panic, injected where the
/// window would be mapped) gives up its pending window, its handle and its
/// bytes as it unwinds: a thread asking for the same window maps it
/// instead of waiting for good, and every handle can be used again.
#[test]
fn a_miss_that_panics_gives_up_its_window_and_room() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 17, 4 * g());
    let m = SlidingWindowMapManager::builder()
        .window_size(g())
        .max_open_handles(2)
        .max_memory_size(2 * g())
        .build();
    let mut c = m.make_cursor(&path).unwrap();
    m.panic_next_maps(1);
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = c.use_region(g(), 1);
    }));
    assert!(unwound.is_err(), "the injected panic");
    drop(c);
    m.verify_invariants().unwrap();
    // On another thread, with a watchdog: a wait for good fails the test.
    let (tx, rx) = std::sync::mpsc::channel();
    let (m2, p2) = (m.clone(), path.clone());
    std::thread::spawn(move || {
        let mut a = m2.make_cursor(&p2).unwrap();
        let mut b = m2.make_cursor(&p2).unwrap();
        let got = (|| {
            a.use_region(g(), 1)?;
            b.use_region(3 * g(), 1)?;
            Ok::<_, Error>((a.buffer()[0], b.buffer()[0]))
        })();
        tx.send(got.map_err(|e| e.to_string())).unwrap();
    });
    let got = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("a read of the window waited for good");
    assert_eq!(
        got.unwrap(),
        (bytes[g() as usize], bytes[3 * g() as usize]),
        "both handles mapped"
    );
    m.verify_invariants().unwrap();
    let s = m.stats();
    assert_eq!((s.windows, s.maps), (2, 2), "{s:?}");
}
