//! The semantics callers rely on (DESIGN.md), one test each.

mod common;

use common::{
    g, is_not_found, lent, make_file, never_open, remove_mapped, truncate, BAD_DESCRIPTOR, DEVICE,
};
use smmap::{Error, SlidingWindowMapManager, StaticWindowMapManager, WindowCursor};

#[test]
fn defaults_and_special_values() {
    let m = SlidingWindowMapManager::new();
    assert_eq!(m.window_size(), 1024 << 20);
    assert_eq!(m.max_mapped_memory_size(), 8192 << 20);
    assert_eq!(m.max_file_handles(), smmap::default_max_open_handles());
    let m = StaticWindowMapManager::new();
    assert_eq!(m.window_size(), 0);
    assert_eq!(m.max_mapped_memory_size(), 8192 << 20);
    let m = SlidingWindowMapManager::builder()
        .max_memory_size(0)
        .max_open_handles(0)
        .build();
    assert_eq!(m.max_mapped_memory_size(), 8192 << 20);
    assert_eq!(m.max_file_handles(), 1);
}

/// Memory is charged in whole pages: ten-byte files cost a page each
/// against `max_memory_size`, so a limit of three pages keeps three of
/// them mapped, not three thousand.
#[test]
fn memory_is_charged_in_whole_pages() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<_> = (0..5)
        .map(|i| make_file(dir.path(), &format!("f{i}"), 30 + i, 10))
        .collect();
    // The page, as the manager charges it: one ten-byte file mapped alone.
    let page = {
        let m = SlidingWindowMapManager::new();
        let mut c = m.make_cursor(&files[0].0).unwrap();
        c.use_region(0, 0).unwrap();
        m.stats().charged_bytes
    };
    assert!(page >= 4096 && page.is_power_of_two(), "{page}");
    let m = SlidingWindowMapManager::builder()
        .max_memory_size(3 * page)
        .build();
    for (path, bytes) in &files {
        let mut c = m.make_cursor(path).unwrap();
        c.use_region(0, 0).unwrap();
        assert_eq!(c.buffer(), &bytes[..]);
        let s = m.stats();
        assert!(s.charged_bytes <= 3 * page, "{s:?}");
        assert_eq!(
            (s.charged_bytes, s.mapped_bytes),
            (s.windows as u64 * page, s.windows as u64 * 10),
            "{s:?}"
        );
    }
    let s = m.stats();
    assert_eq!(
        (s.windows, s.evictions, s.over_limit_bytes),
        (3, 2, 0),
        "{s:?}"
    );
    m.verify_invariants().unwrap();
}

/// The manager keeps at most `max_open_files` descriptors, and reuses a
/// kept one for every window of its file: a new window of a file whose
/// descriptor is kept opens nothing; one whose descriptor was closed to
/// stay within the limit opens it again.
#[test]
fn descriptors_are_kept_up_to_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<_> = (0..4)
        .map(|i| make_file(dir.path(), &format!("f{i}"), 40 + i, 3 * g()))
        .collect();
    let m = SlidingWindowMapManager::builder()
        .window_size(g())
        .max_open_files(2)
        .build();
    assert_eq!(m.max_open_files(), 2);
    let mut cursors: Vec<_> = files
        .iter()
        .map(|(p, _)| m.make_cursor(p).unwrap())
        .collect();
    let read = |c: &mut WindowCursor, bytes: &[u8], w: u64| {
        c.use_region(w * g(), 0).unwrap();
        assert_eq!(
            c.buffer(),
            &bytes[(w * g()) as usize..((w + 1) * g()) as usize]
        );
    };
    for (c, (_, bytes)) in cursors.iter_mut().zip(&files) {
        read(c, bytes, 0);
        assert!(m.stats().open_descriptors <= 2, "{:?}", m.stats());
    }
    let s = m.stats();
    assert_eq!(
        (s.fd_opens, s.open_descriptors, s.windows),
        (4, 2, 4),
        "{s:?}"
    );
    // The last file's descriptor is kept: its next window opens nothing.
    read(&mut cursors[3], &files[3].1, 1);
    assert_eq!(m.stats().fd_opens, 4, "{:?}", m.stats());
    // The first file's was closed: its next window opens it again.
    read(&mut cursors[0], &files[0].1, 1);
    let s = m.stats();
    assert_eq!((s.fd_opens, s.open_descriptors), (5, 2), "{s:?}");
    m.verify_invariants().unwrap();
}

#[test]
fn use_region_clamps_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let len = 10 * g() + 123;
    let (path, bytes) = make_file(dir.path(), "f", 1, len);
    let m = SlidingWindowMapManager::builder()
        .window_size(4 * g())
        .build();
    let mut c = m.make_cursor(&path).unwrap();
    assert!(c.is_associated() && !c.is_valid());
    assert_eq!(c.file_size(), Some(len));
    assert_eq!(c.path(), Some(path.as_path()));
    assert!(matches!(c.path_or_fd(), Some(smmap::PathOrFd::Path(_))));

    // size 0: as much as possible, clamped to the window size.
    c.use_region(0, 0).unwrap();
    assert!(c.is_valid());
    assert_eq!(c.size() as u64, 4 * g());
    assert_eq!(c.buffer(), &bytes[..4 * g() as usize]);
    // A size larger than the window is clamped too.
    c.use_region(1, usize::MAX).unwrap();
    assert_eq!(c.size() as u64, 4 * g() - 1);
    assert_eq!((c.ofs_begin(), c.ofs_end()), (1, 4 * g()));
    assert!(c.includes_ofs(1) && !c.includes_ofs(0) && !c.includes_ofs(4 * g()));

    // Reusing the current region gives fewer bytes than asked: allowed.
    c.use_region(4 * g() - 10, 100).unwrap();
    assert_eq!(c.size(), 10);
    assert_eq!(m.num_file_handles(), 1);

    // Near the end the view is clipped to the file.
    c.use_region(len - 5, 0).unwrap();
    assert_eq!(c.buffer(), &bytes[len as usize - 5..]);
    assert_eq!(c.region().unwrap().ofs_end(), len);

    // At or past the end: invalid, no error, region released.
    for past in [len, len + 1, u64::MAX] {
        c.use_region(past, 0).unwrap();
        assert!(!c.is_valid());
        assert!(c.buffer().is_empty() && c.map().is_empty());
    }
    assert!(c.region().is_none());
}

#[test]
fn holds_tells_a_hit_before_the_read() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 3, 8 * g());
    let m = SlidingWindowMapManager::builder()
        .window_size(2 * g())
        .build();
    let mut c = m.make_cursor(&path).unwrap();
    assert!(!c.holds(0, 0) && !c.holds(0, 1));
    c.use_region(3 * g() + 5, 10).unwrap();
    let r = c.region().unwrap();
    let (begin, end) = (r.ofs_begin(), r.ofs_end());
    assert!(begin <= 3 * g() + 5 && 3 * g() + 15 <= end);
    // Every range inside the region, and nothing that leaves it, whatever
    // the view.
    assert!(c.holds(begin, end - begin) && c.holds(end - 1, 1) && c.holds(begin, 0));
    assert!(!c.holds(begin, end - begin + 1) && !c.holds(end - 1, 2) && !c.holds(end, 0));
    if begin > 0 {
        assert!(!c.holds(begin - 1, 1));
    }
    assert!(!c.holds(u64::MAX, 1) && !c.holds(begin, u64::MAX));
    // What it promises: reading there is a hit.
    let misses = m.stats().misses;
    assert_eq!(c.byte_at(end - 1).unwrap(), bytes[end as usize - 1]);
    assert_eq!(c.chunk_at(begin).unwrap().len() as u64, end - begin);
    assert_eq!(m.stats().misses, misses);
    c.unuse_region();
    assert!(!c.holds(begin, 1));
}

#[test]
fn new_windows_fill_gaps_between_neighbours() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 2, 20 * g());
    let m = SlidingWindowMapManager::builder()
        .window_size(8 * g())
        .build();
    let mut a = m.make_cursor(&path).unwrap();
    let mut b = m.make_cursor(&path).unwrap();
    let mut c = m.make_cursor(&path).unwrap();
    // The region grows right up to the window size, whatever the view.
    a.use_region(0, 2 * g() as usize).unwrap();
    assert_eq!(a.region().unwrap().ofs_end(), 8 * g());
    assert_eq!(a.size() as u64, 2 * g());
    // Left of 10g is a's end at 8g: the new region starts there.
    b.use_region(10 * g() + 5, g() as usize).unwrap();
    let rb = b.region().unwrap();
    assert_eq!((rb.ofs_begin(), rb.ofs_end()), (8 * g(), 16 * g()));
    // The last one is clipped to the file's end.
    c.use_region(17 * g() + 7, 0).unwrap();
    let rc = c.region().unwrap();
    assert_eq!((rc.ofs_begin(), rc.ofs_end()), (16 * g(), 20 * g()));
    assert_eq!(c.buffer()[0], bytes[17 * g() as usize + 7]);
    // Free a's region; a miss in [0, 8g) now is placed between 0 and b.
    a.unuse_region();
    m.collect();
    a.use_region(3 * g(), 1).unwrap();
    let ra = a.region().unwrap();
    assert_eq!((ra.ofs_begin(), ra.ofs_end()), (0, 8 * g()));
    assert_eq!(m.num_file_handles(), 3);
    assert_eq!(m.num_open_files(), 1);
    m.verify_invariants().unwrap();
}

#[test]
fn client_counts_collect_and_file_entries() {
    let dir = tempfile::tempdir().unwrap();
    let (p1, _) = make_file(dir.path(), "a", 3, 3 * g());
    let (p2, _) = make_file(dir.path(), "b", 4, 3 * g());
    let m = SlidingWindowMapManager::new();
    let mut c1 = m.make_cursor(&p1).unwrap();
    c1.use_region(0, 0).unwrap();
    assert_eq!(c1.region().unwrap().client_count(), 2);
    let c1b = c1.clone();
    assert_eq!(c1.region().unwrap().client_count(), 3);
    assert_eq!(c1b.buffer(), c1.buffer());
    drop(c1b);
    assert_eq!(c1.region().unwrap().client_count(), 2);
    let region = c1.region().unwrap().clone();
    c1.unuse_region();
    assert!(!c1.is_valid() && c1.is_associated());
    assert_eq!(region.client_count(), 1, "only the manager uses it now");

    let mut c2 = m.make_cursor(&p2).unwrap();
    c2.use_region(0, 0).unwrap();
    assert_eq!(m.num_open_files(), 2);
    assert_eq!(m.mapped_memory_size(), 6 * g());
    // collect unmaps only unused regions and says how many.
    assert_eq!(m.collect(), 1);
    assert_eq!(region.client_count(), 0, "no longer tracked");
    assert_eq!(
        region.as_slice().len() as u64,
        3 * g(),
        "but still readable through its handle"
    );
    assert_eq!(m.num_file_handles(), 1);
    assert_eq!(m.num_open_files(), 1);
    assert_eq!(m.collect(), 0);
    // The file entry goes once its last cursor is gone and it has no regions.
    assert_eq!(m.stats().known_files, 2);
    drop(c1);
    assert_eq!(m.stats().known_files, 1);
    drop(c2);
    assert_eq!(m.stats().known_files, 1, "b still has its (unused) region");
    assert_eq!(m.collect(), 1);
    assert_eq!(m.stats().known_files, 0);
    m.verify_invariants().unwrap();
}

#[test]
fn static_manager_maps_whole_files() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 5, 7 * g() + 3);
    let m = StaticWindowMapManager::new();
    let mut c = m.make_cursor(&path).unwrap();
    c.use_region(5 * g(), 10).unwrap();
    assert_eq!(c.map(), &bytes[..]);
    assert_eq!(c.buffer(), &bytes[5 * g() as usize..5 * g() as usize + 10]);
    let mut d = m.make_cursor(&path).unwrap();
    d.use_region(0, 0).unwrap();
    assert!(d.region().unwrap().same_mapping(c.region().unwrap()));
    assert_eq!(m.num_file_handles(), 1);
    drop(d);
    assert_eq!(m.stats().reuses, 1, "counted once the cursor goes");
    // A static manager with a window size still clamps the view.
    let m = StaticWindowMapManager::builder().window_size(100).build();
    let mut c = m.make_cursor(&path).unwrap();
    c.use_region(0, 0).unwrap();
    assert_eq!(c.size(), 100);
    assert_eq!(c.map().len(), bytes.len());
}

/// Under the memory limit the evictor's hand takes unused regions in the
/// order they were mapped, passing over (once) each one a cursor took since
/// the hand last passed: CLOCK's second chance, an approximation of LRU.
#[test]
fn memory_limit_evicts_by_clock() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<_> = (0..4)
        .map(|i| make_file(dir.path(), &format!("f{i}"), i, 2 * g()).0)
        .collect();
    let m = SlidingWindowMapManager::builder()
        .max_memory_size(6 * g())
        .build();
    let mut cursors: Vec<WindowCursor> = files.iter().map(|p| m.make_cursor(p).unwrap()).collect();
    for c in &mut cursors[..3] {
        c.use_region(0, 0).unwrap();
    }
    let regions: Vec<_> = cursors
        .iter()
        .take(3)
        .map(|c| c.region().unwrap().clone())
        .collect();
    // 0 is released, taken back (a use since the hand passed) and released
    // again; then 1 and 2 are released.
    cursors[0].unuse_region();
    cursors[0].use_region(0, 0).unwrap();
    cursors[0].unuse_region();
    cursors[1].unuse_region();
    cursors[2].unuse_region();
    cursors[3].use_region(0, 0).unwrap();
    assert_eq!(
        regions[1].client_count(),
        0,
        "the first unused and not used since went"
    );
    assert_eq!(regions[0].client_count(), 1, "a second chance");
    assert_eq!(regions[2].client_count(), 1);
    assert_eq!(m.stats().evictions, 1);
    assert_eq!(m.mapped_memory_size(), 6 * g());
    m.verify_invariants().unwrap();
    // The hand moved on: the next to go is 2, then 0 (its chance spent).
    cursors[3].unuse_region();
    cursors[1].use_region(0, 0).unwrap();
    assert_eq!(regions[2].client_count(), 0);
    assert_eq!(regions[0].client_count(), 1);
    m.verify_invariants().unwrap();
}

#[test]
fn memory_limit_exceeded_only_while_all_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<_> = (0..3)
        .map(|i| make_file(dir.path(), &format!("f{i}"), i, 2 * g()).0)
        .collect();
    let m = SlidingWindowMapManager::builder()
        .max_memory_size(3 * g())
        .build();
    let mut cs: Vec<_> = files.iter().map(|p| m.make_cursor(p).unwrap()).collect();
    for c in &mut cs {
        c.use_region(0, 0).unwrap();
    }
    let s = m.stats();
    assert_eq!(s.mapped_bytes, 6 * g());
    assert_eq!(s.over_limit_bytes, 3 * g());
    assert_eq!(s.peak_over_limit_bytes, 3 * g());
    m.verify_invariants().unwrap();
    // Releasing a region while over the limit evicts it at once.
    cs[0].unuse_region();
    assert_eq!(m.mapped_memory_size(), 4 * g());
    cs[1].unuse_region();
    assert_eq!(m.mapped_memory_size(), 2 * g());
    assert_eq!(m.stats().over_limit_bytes, 0);
    m.verify_invariants().unwrap();
}

#[test]
fn handle_limit_holds() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 9, 16 * g());
    let m = SlidingWindowMapManager::builder()
        .window_size(g())
        .max_open_handles(2)
        .build();
    let mut a = m.make_cursor(&path).unwrap();
    let mut b = m.make_cursor(&path).unwrap();
    let mut c = m.make_cursor(&path).unwrap();
    a.use_region(0, 0).unwrap();
    b.use_region(4 * g(), 0).unwrap();
    let e = c.use_region(8 * g(), 0).unwrap_err();
    assert!(
        matches!(e, Error::HandleLimit { limit: 2, offset, .. } if offset == 8 * g()),
        "{e}"
    );
    assert!(e.to_string().contains(&path.display().to_string()));
    assert!(!c.is_valid());
    assert_eq!(m.num_file_handles(), 2);
    // Once one is released, the next use evicts it.
    a.unuse_region();
    c.use_region(8 * g(), 0).unwrap();
    assert_eq!(c.buffer()[0], bytes[8 * g() as usize]);
    assert_eq!(m.num_file_handles(), 2);
    assert_eq!(m.stats().peak_windows, 2);
}

#[test]
fn bad_input_gives_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let m = SlidingWindowMapManager::new();
    let missing = dir.path().join("missing");
    let e = m.make_cursor(&missing).unwrap_err();
    assert!(is_not_found(&e), "{e}");
    assert!(e.to_string().contains("missing"), "{e}");
    let e = m.make_cursor(dir.path()).unwrap_err();
    assert!(matches!(e, Error::IsADirectory { .. }), "{e}");
    let e = m.make_cursor(DEVICE).unwrap_err();
    assert!(matches!(e, Error::NotRegularFile { .. }), "{e}");
    #[cfg(unix)]
    {
        let fifo = dir.path().join("fifo");
        let cpath = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(cpath.as_ptr(), 0o600) }, 0);
        let e = m.make_cursor(&fifo).unwrap_err();
        assert!(e.to_string().contains("FIFO"), "{e}");
    }
    // A closed descriptor.
    let [(closed, name), _] = never_open();
    let e = m.make_cursor(closed).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(BAD_DESCRIPTOR));
    assert!(e.to_string().contains(name), "{e}");
    // An empty file: every offset is past the end.
    let (empty, _) = make_file(dir.path(), "empty", 0, 0);
    let mut c = m.make_cursor(&empty).unwrap();
    c.use_region(0, 0).unwrap();
    assert!(!c.is_valid());
    c.use_region(u64::MAX, usize::MAX).unwrap();
    assert!(!c.is_valid());
    // An unassociated cursor.
    let mut c = WindowCursor::new(Some(m.manager().clone()));
    assert!(matches!(c.use_region(0, 0), Err(Error::NotAssociated)));
    assert_eq!(c.file_size(), None);
    assert!(c.path_or_fd().is_none());
    assert_eq!(m.num_file_handles(), 0);
}

/// A file the process may not read: the error is `EACCES`, names the path
/// and converts to `PermissionDenied`. Unix: Windows has no permission bits
/// that refuse the owner.
#[cfg(unix)]
#[test]
fn permission_denied_names_the_path() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    // Others may enter: the refusal is the file's own mode, whoever asks.
    std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o755)).unwrap();
    let (path, _) = make_file(dir.path(), "secret", 1, 100);
    std::fs::set_permissions(&path, PermissionsExt::from_mode(0o000)).unwrap();
    let m = SlidingWindowMapManager::new();
    // `stat` needs no read permission: the cursor is made with the
    // process's own rights, and only the open below is refused.
    let mut c = m.make_cursor(&path).unwrap();
    let outcome = where_refused(&path, || {
        let e = c.use_region(0, 0).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EACCES));
        assert!(matches!(e, Error::Open { .. }), "{e}");
        assert!(e.to_string().contains("secret"), "{e}");
        assert_eq!(
            std::io::Error::from(e).kind(),
            std::io::ErrorKind::PermissionDenied
        );
    });
    if let Err(why) = outcome {
        eprintln!("permission_denied_names_the_path: skipped: {why}");
    }
}

/// True if opening `path` here fails with `EACCES`.
#[cfg(unix)]
fn is_refused(path: &std::path::Path) -> bool {
    matches!(std::fs::File::open(path), Err(e) if e.raw_os_error() == Some(libc::EACCES))
}

/// Runs `check` where the calling thread cannot open `path` (mode 000). An
/// unprivileged user cannot anyway; root reads every file, so for root this
/// thread alone checks file access as the user 65534 (`nobody`) during
/// `check`. Nothing is executed, so neither where the test binary lies nor
/// who could reach it matters. `Err` (and `check` not run): why no refusal
/// can be had here.
#[cfg(unix)]
fn where_refused(path: &std::path::Path, check: impl FnOnce()) -> Result<(), String> {
    if is_refused(path) {
        check();
        return Ok(());
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // A thread that was running before, as the other tests' are: it
        // keeps its rights (a thread started later would inherit the change).
        let (go, wait) = std::sync::mpsc::channel();
        let other = std::thread::spawn({
            let path = path.to_owned();
            move || wait.recv().map(|()| !is_refused(&path))
        });
        let nobody = FsUid::enter(65534);
        go.send(()).unwrap();
        let other_reads = other.join().unwrap().unwrap();
        let _nobody = nobody?;
        assert!(other_reads, "setfsuid changed every thread's credentials");
        if !is_refused(path) {
            return Err(
                "even as the user 65534 this process opens a file of mode 000 \
                 (it keeps its capabilities)"
                    .into(),
            );
        }
        check();
        Ok(())
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        drop(check);
        Err(
            "this process reads every file, and only Linux lets one thread of it give that up"
                .into(),
        )
    }
}

/// While alive, the calling thread's file-system user id: the id the kernel
/// checks file access against. Linux keeps credentials per thread, and
/// `setfsuid` changes the calling thread's only (glibc and musl apply
/// `setuid`, not `setfsuid`, to every thread), so the tests running on
/// other threads keep theirs. Leaving 0 clears the capabilities that let
/// root read any file; going back restores them (capabilities(7)).
#[cfg(any(target_os = "linux", target_os = "android"))]
struct FsUid(libc::uid_t);

#[cfg(any(target_os = "linux", target_os = "android"))]
impl FsUid {
    fn enter(uid: libc::uid_t) -> Result<Self, String> {
        // SAFETY: setfsuid has no preconditions; it returns the previous
        // id whether or not it changed it.
        let guard = FsUid(unsafe { libc::setfsuid(uid) } as libc::uid_t);
        // SAFETY: as above; -1 is never accepted, so this only reads the id.
        let now = unsafe { libc::setfsuid(libc::uid_t::MAX) } as libc::uid_t;
        if now != uid {
            return Err(format!(
                "setfsuid({uid}) was refused (no CAP_SETUID, or {uid} is not mapped in \
                 this user namespace)"
            ));
        }
        Ok(guard)
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
impl Drop for FsUid {
    fn drop(&mut self) {
        // SAFETY: setfsuid has no preconditions.
        unsafe { libc::setfsuid(self.0) };
    }
}

#[test]
fn fd_cursors_borrow_the_descriptor() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 6, 5 * g());
    let file = std::fs::File::open(&path).unwrap();
    let m = SlidingWindowMapManager::builder().window_size(g()).build();
    {
        let mut c = m.make_cursor(lent(&file)).unwrap();
        #[cfg(unix)]
        assert_eq!(c.fd(), Some(std::os::fd::AsRawFd::as_raw_fd(&file)));
        #[cfg(windows)]
        assert_eq!(
            c.handle(),
            Some(std::os::windows::io::AsRawHandle::as_raw_handle(&file))
        );
        assert_eq!(c.path_or_fd(), Some(&lent(&file)));
        assert_eq!(c.path(), None);
        for i in 0..5 {
            c.use_region(i * g() + 1, 0).unwrap();
            assert_eq!(c.buffer()[0], bytes[(i * g() + 1) as usize]);
        }
    }
    m.collect();
    // Still open: the manager never closes a caller's descriptor.
    let mut first = [0; 4];
    std::io::Read::read_exact(&mut &file, &mut first).unwrap();
    assert_eq!(first, bytes[..4]);
    drop(file);
}

/// Reads that copy through a lent descriptor (handle) leave the caller's
/// file position where it was: the caller reads on from it after the
/// engine's reads, mapped and copied.
#[test]
fn copy_reads_leave_a_lent_descriptors_position_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 9, 6 * g());
    let mut file = std::fs::File::open(&path).unwrap();
    let mut first = [0; 4];
    std::io::Read::read_exact(&mut file, &mut first).unwrap();
    // One handle, held by a cursor: every other window is copied.
    let m = SlidingWindowMapManager::builder()
        .window_size(g())
        .max_open_handles(1)
        .build();
    let mut held = m.make_cursor(lent(&file)).unwrap();
    held.use_region(0, 1).unwrap();
    let mut buf =
        smmap::SlidingWindowMapBuffer::new(m.make_cursor(lent(&file)).unwrap(), 0, u64::MAX)
            .unwrap();
    for i in 1..6 {
        let at = i * g() + 7;
        assert_eq!(buf.get(at).unwrap(), bytes[at as usize]);
        let mut out = [0; 100];
        buf.read_exact_at(at, &mut out).unwrap();
        assert_eq!(out, bytes[at as usize..at as usize + 100]);
    }
    assert!(m.stats().preads >= 5, "{:?}", m.stats());
    assert_eq!(held.buffer()[0], bytes[0]);
    let mut next = [0; 4];
    std::io::Read::read_exact(&mut file, &mut next).unwrap();
    assert_eq!(next, bytes[4..8], "the caller's position moved");
}

/// A handle lent by a caller who opened the file without sharing reads
/// cannot be opened again by the engine, which then reads through a
/// duplicate of it: windows map and copy reads read as before.
#[cfg(windows)]
#[test]
fn a_handle_that_shares_nothing_is_still_read() {
    use std::os::windows::fs::OpenOptionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 10, 4 * g());
    let file = std::fs::OpenOptions::new()
        .read(true)
        .share_mode(0)
        .open(&path)
        .unwrap();
    assert!(std::fs::File::open(&path).is_err(), "shares nothing");
    let m = SlidingWindowMapManager::builder()
        .window_size(g())
        .max_open_handles(1)
        .build();
    let mut held = m.make_cursor(lent(&file)).unwrap();
    held.use_region(g(), 1).unwrap();
    assert_eq!(held.buffer()[0], bytes[g() as usize]);
    let mut buf =
        smmap::SlidingWindowMapBuffer::new(m.make_cursor(lent(&file)).unwrap(), 0, u64::MAX)
            .unwrap();
    let at = 3 * g() + 5;
    assert_eq!(buf.get(at).unwrap(), bytes[at as usize]);
    assert!(m.stats().preads >= 1, "{:?}", m.stats());
}

#[test]
fn statistics_count_hits_misses_maps() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = make_file(dir.path(), "f", 7, 8 * g());
    let m = SlidingWindowMapManager::builder()
        .window_size(2 * g())
        .build();
    let mut c = m.make_cursor(&path).unwrap();
    c.use_region(0, 0).unwrap(); // miss, map
    c.use_region(10, 0).unwrap(); // hit
    c.use_region(20, 0).unwrap(); // hit
    c.use_region(4 * g(), 0).unwrap(); // miss, map (flushes 2 hits)
    c.use_region(0, 0).unwrap(); // miss, reuse (a switch, counted by the cursor)
    let s = m.stats();
    assert_eq!((s.hits, s.misses, s.maps, s.reuses), (2, 2, 2, 0));
    assert_eq!(s.windows, 2);
    assert_eq!(s.peak_mapped_bytes, 4 * g());
    assert_eq!(s.open_files, 1);
    c.use_region(20, 0).unwrap(); // hit
    drop(c);
    let s = m.stats();
    assert_eq!((s.hits, s.misses, s.maps, s.reuses), (3, 3, 2, 1));
}

#[test]
fn unlinked_file_stays_readable_and_growth_is_seen_later() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 8, 3 * g());
    let m = SlidingWindowMapManager::builder().window_size(g()).build();
    let mut c = m.make_cursor(&path).unwrap();
    c.use_region(0, 0).unwrap();
    remove_mapped(&path);
    assert_eq!(c.buffer(), &bytes[..g() as usize]);
    // New windows of the unlinked file are read through the descriptor
    // the manager keeps; once it is closed, the path cannot be opened: a
    // clear error.
    c.use_region(2 * g(), 0).unwrap();
    assert_eq!(c.buffer(), &bytes[2 * g() as usize..]);
    m.collect();
    let e = c.use_region(g(), 0).unwrap_err();
    assert!(is_not_found(&e), "{e}");
    drop(c);
    m.collect();

    let (path, _) = make_file(dir.path(), "g", 8, g());
    let c = m.make_cursor(&path).unwrap();
    assert_eq!(c.file_size(), Some(g()));
    std::fs::write(&path, vec![1u8; 2 * g() as usize]).unwrap();
    let c2 = m.make_cursor(&path).unwrap();
    assert_eq!(
        c2.file_size(),
        Some(g()),
        "size read once while the file is known"
    );
    drop((c, c2));
    let c3 = m.make_cursor(&path).unwrap();
    assert_eq!(
        c3.file_size(),
        Some(2 * g()),
        "read anew once the entry was gone"
    );
}

#[test]
fn truncation_before_a_new_window_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = make_file(dir.path(), "f", 9, 4 * g());
    let m = SlidingWindowMapManager::builder().window_size(g()).build();
    let mut c = m.make_cursor(&path).unwrap();
    c.use_region(0, 0).unwrap();
    if cfg!(windows) {
        // Windows refuses to truncate a mapped file (and under the
        // handle the manager keeps): release both first. The entry, and
        // the size it read, stay while the cursor lives.
        c.unuse_region();
        m.collect();
    }
    truncate(&path, g());
    let e = c.use_region(3 * g(), 0).unwrap_err();
    assert!(
        matches!(e, Error::FileShrunk { expected, actual, .. } if expected == 4 * g() && actual == g()),
        "{e}"
    );
    assert_eq!(m.stats().map_failures, 1);
    // A window that starts in what is left names the first byte lost.
    if cfg!(windows) {
        m.collect();
    }
    truncate(&path, g() + 50);
    let e = c.use_region(g() + 100, 0).unwrap_err();
    assert!(
        matches!(e, Error::FileShrunk { offset, actual, .. } if offset == g() + 50 && actual == g() + 50),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains(&format!("offset {} is gone", g() + 50)),
        "{e}"
    );
    assert_eq!(m.stats().map_failures, 2);
    m.verify_invariants().unwrap();
}

/// A lent descriptor's duplicate shares the caller's file position: the
/// engine's size checks and copies never move it, and a truncation seen
/// through it is an error as through a path.
#[cfg(unix)]
#[test]
fn a_lent_descriptor_keeps_its_position_and_sees_truncation() {
    use smmap::SlidingWindowMapBuffer;
    use std::io::{Seek, SeekFrom};
    use std::os::fd::AsRawFd;
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 5, 4 * g());
    let mut lent = std::fs::File::open(&path).unwrap();
    lent.seek(SeekFrom::Start(7)).unwrap();
    let m = SlidingWindowMapManager::builder()
        .window_size(g())
        .max_open_handles(1)
        .build();
    let mut c = m.make_cursor_fd(lent.as_raw_fd()).unwrap();
    for w in 0..4 {
        let at = w * g();
        assert_eq!(c.use_region(at, 1).unwrap().buffer()[0], bytes[at as usize]);
    }
    c.unuse_region();
    // Copy reads (the budget has room for one window, held by `pin`).
    let mut pin = m.make_cursor_fd(lent.as_raw_fd()).unwrap();
    pin.use_region(0, 1).unwrap();
    let mut buf = SlidingWindowMapBuffer::new(c, 0, u64::MAX).unwrap();
    let at = 3 * g() + 1;
    assert_eq!(buf.get(at).unwrap(), bytes[at as usize]);
    assert_eq!(m.stats().preads, 1);
    assert_eq!(
        lent.stream_position().unwrap(),
        7,
        "the engine moved the caller's position"
    );
    drop(buf);

    // `pin` keeps the entry, and the size it pinned, across the truncation.
    pin.unuse_region();
    m.collect();
    truncate(&path, g());
    let e = pin.use_region(2 * g(), 0).unwrap_err();
    assert!(
        matches!(e, Error::FileShrunk { expected, actual, .. } if expected == 4 * g() && actual == g()),
        "{e}"
    );
    assert_eq!(lent.stream_position().unwrap(), 7);
    m.verify_invariants().unwrap();
}

/// Unix: `dup2` forces the reuse; a handle value cannot be chosen on
/// Windows.
#[cfg(unix)]
#[test]
fn a_recycled_descriptor_number_is_a_new_file() {
    use std::os::fd::AsRawFd;
    let dir = tempfile::tempdir().unwrap();
    let (pa, a) = make_file(dir.path(), "a", 1, 2 * g());
    let (pb, b) = make_file(dir.path(), "b", 2, 2 * g());
    let m = SlidingWindowMapManager::new();
    let fa = std::fs::File::open(&pa).unwrap();
    let n = fa.as_raw_fd();
    let mut c = m.make_cursor_fd(n).unwrap();
    c.use_region(0, 0).unwrap();
    assert_eq!(c.buffer(), &a[..]);
    drop(c); // its region stays mapped, unused
             // The number now names b: forced with dup2 (which closes a's
             // description), not left to the operating system's recycling, which
             // other tests' threads would race.
    let fb = std::fs::File::open(&pb).unwrap();
    // SAFETY: both descriptors are open; `fa` owns `n` and closes it (now
    // b's duplicate) when dropped.
    assert_eq!(unsafe { libc::dup2(fb.as_raw_fd(), n) }, n);
    let mut c = m.make_cursor_fd(n).unwrap();
    c.use_region(0, 0).unwrap();
    assert_eq!(c.buffer(), &b[..], "b's bytes, not a's stale window");
    assert_eq!(m.num_file_handles(), 2);
    m.verify_invariants().unwrap();
    drop(c);
    drop(fa);
}

#[test]
fn buffer_reads_count_as_hits() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = make_file(dir.path(), "f", 11, 4 * g());
    let m = SlidingWindowMapManager::new();
    let mut buf =
        smmap::SlidingWindowMapBuffer::new(m.make_cursor(&path).unwrap(), 0, u64::MAX).unwrap();
    for i in 0..10 {
        buf.get(i).unwrap();
    }
    buf.read_at(100, &mut [0; 16]).unwrap();
    drop(buf);
    let s = m.stats();
    // The first `get` maps (a miss); the other nine and the `read_at` hit.
    assert_eq!((s.misses, s.maps), (1, 1));
    assert_eq!(s.hits, 10, "{s:?}");
}

/// Each part of a read is one hit or one miss: a read across two windows
/// that maps both is two misses, and a slice that one window holds (and
/// borrows) one hit or miss.
#[test]
fn each_part_of_a_read_counts_once() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 13, 4 * g());
    let m = SlidingWindowMapManager::builder().window_size(g()).build();
    let mut buf =
        smmap::SlidingWindowMapBuffer::new(m.make_cursor(&path).unwrap(), 0, u64::MAX).unwrap();
    let mut out = [0; 16];
    buf.read_exact_at(g() - 8, &mut out).unwrap();
    assert_eq!(out, bytes[g() as usize - 8..g() as usize + 8]);
    let counts = |buf: smmap::SlidingWindowMapBuffer| {
        // Cursors add their hits when dropped.
        let c = buf.into_cursor();
        drop(c);
        let s = m.stats();
        (s.hits, s.misses, s.maps)
    };
    assert_eq!(counts(buf), (0, 2, 2), "two windows, each mapped once");
    let mut buf =
        smmap::SlidingWindowMapBuffer::new(m.make_cursor(&path).unwrap(), 0, u64::MAX).unwrap();
    assert_eq!(buf.get(2 * g()).unwrap(), bytes[2 * g() as usize]);
    let s = buf.slice(2 * g()..2 * g() + 4).unwrap();
    assert_eq!(&*s, &bytes[2 * g() as usize..2 * g() as usize + 4]);
    assert_eq!(counts(buf), (1, 3, 3), "a borrowed slice is one hit");
}

#[test]
fn the_os_reason_is_said_once() {
    use std::error::Error as _;
    let m = SlidingWindowMapManager::new();
    let e = m.make_cursor("/nonexistent/smmap-test").unwrap_err();
    assert!(
        e.source().is_none(),
        "the reason is in the message, not also the source"
    );
    assert_eq!(
        e.io_error().map(|io| io.kind()),
        Some(std::io::ErrorKind::NotFound)
    );
    let text = e.to_string();
    assert_eq!(text.matches("os error").count(), 1, "{text}");
    assert!(text.contains("/nonexistent/smmap-test"), "{text}");
}

/// A mapped file cannot be deleted, truncated or renamed over on Windows,
/// and renaming over it is refused while a handle of it is open. The manager
/// lets go of everything nobody uses when asked: once the cursors are gone
/// (or moved to other files) and `collect()` has run, no window and no
/// descriptor of the file remain, and it can be replaced and deleted — on
/// every system.
#[test]
fn collect_lets_the_caller_replace_and_delete_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "pack", 12, 4 * g());
    let (other, _) = make_file(dir.path(), "other", 13, g());
    let m = SlidingWindowMapManager::builder().window_size(g()).build();
    let mut c = m.make_cursor(&path).unwrap();
    let mut buf =
        smmap::SlidingWindowMapBuffer::new(m.make_cursor(&path).unwrap(), 0, u64::MAX).unwrap();
    c.use_region(0, 0).unwrap();
    assert_eq!(buf.get(3 * g()).unwrap(), bytes[3 * g() as usize]);
    if cfg!(windows) {
        assert!(std::fs::rename(&other, &path).is_err(), "mapped: refused");
        assert!(std::fs::write(&path, b"new").is_err(), "mapped: refused");
        // Not while a cursor holds a window: collect leaves it mapped.
        drop(buf);
        m.collect();
        assert_eq!(m.num_file_handles(), 1);
        assert!(std::fs::rename(&other, &path).is_err(), "still mapped");
    } else {
        drop(buf);
    }
    drop(c);
    m.collect();
    let s = m.stats();
    assert_eq!((s.windows, s.open_descriptors), (0, 0));
    std::fs::rename(&other, &path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(!path.exists());
}

/// A read that looks at a window through the file's table and finds it
/// does not hold the offset (a window placed off the slots) gives that
/// window no second chance: with both windows unused, the one looked at
/// goes first, as the hand finds it first and nobody used it since.
#[test]
fn a_look_at_a_window_that_misses_the_offset_is_no_use_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 50, 8 * g());
    let m = SlidingWindowMapManager::builder()
        .window_size(2 * g())
        .max_open_handles(2)
        .build();
    // A read across the slot boundary at 2g: a window placed around it,
    // which reaches into the second slot without covering it.
    let mut c = m.make_cursor(&path).unwrap();
    c.use_region(2 * g() - 10, 20).unwrap();
    let first = (c.ofs_begin(), c.region().unwrap().ofs_end());
    assert!(
        first.0 < 2 * g() && 2 * g() < first.1 && first.1 < 4 * g(),
        "{first:?}"
    );
    c.unuse_region();
    c.use_region(6 * g(), 0).unwrap();
    c.unuse_region();
    // In the second slot, past the first window: the table names the first
    // window, which does not hold the offset; the read maps its own,
    // evicting one of the two.
    let at = 4 * g() - 1;
    c.use_region(at, 1).unwrap();
    assert_eq!(c.buffer(), &bytes[at as usize..at as usize + 1]);
    c.unuse_region();
    let s = m.stats();
    assert_eq!((s.maps, s.evictions), (3, 1), "{s:?}");
    // The first window went: reading it maps again; the one at 6g stayed.
    c.use_region(6 * g(), 0).unwrap();
    assert_eq!(m.stats().maps, 3, "the window at 6g was evicted");
    c.use_region(2 * g() - 10, 20).unwrap();
    assert_eq!(
        c.buffer(),
        &bytes[(2 * g() - 10) as usize..(2 * g() + 10) as usize]
    );
    assert_eq!(m.stats().maps, 4, "the window looked at was kept");
    m.verify_invariants().unwrap();
}

#[test]
fn a_released_window_is_taken_back_without_a_miss_until_evicted() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 21, 3 * g());
    let m = SlidingWindowMapManager::builder().window_size(g()).build();
    let mut c = m.make_cursor(&path).unwrap();
    c.use_region(0, 10).unwrap();
    let region = c.region().unwrap().clone();
    c.unuse_region();
    assert_eq!(region.client_count(), 1);
    // Taken back: no miss, the same mapping, counted again.
    c.use_region(5, 10).unwrap();
    assert!(c.region().unwrap().same_mapping(&region));
    assert_eq!(region.client_count(), 2);
    assert_eq!(c.buffer(), &bytes[5..15]);
    let s = m.stats();
    assert_eq!((s.misses, s.maps, s.reuses), (1, 1, 0), "{s:?}");
    c.unuse_region();
    assert_eq!(region.client_count(), 1, "released without the lock");
    m.verify_invariants().unwrap();
    // Evicted meanwhile: the next read maps anew, and reads the file.
    assert_eq!(m.collect(), 1);
    assert_eq!(region.client_count(), 0);
    c.use_region(7, 10).unwrap();
    assert!(!c.region().unwrap().same_mapping(&region));
    assert_eq!(c.buffer(), &bytes[7..17]);
    let s = m.stats();
    assert_eq!((s.misses, s.maps, s.windows), (2, 2, 1), "{s:?}");
    m.verify_invariants().unwrap();
    drop(c);
    assert_eq!(m.stats().hits, 1, "the take-back counts as a hit");
}

#[test]
fn a_window_taken_back_lately_gets_a_second_chance() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 22, 3 * g());
    let m = SlidingWindowMapManager::builder()
        .window_size(g())
        .max_open_handles(2)
        .build();
    let (mut a, mut b, mut c) = (
        m.make_cursor(&path).unwrap(),
        m.make_cursor(&path).unwrap(),
        m.make_cursor(&path).unwrap(),
    );
    a.use_region(0, 1).unwrap();
    let ra = a.region().unwrap().clone();
    a.unuse_region();
    b.use_region(g(), 1).unwrap();
    let rb = b.region().unwrap().clone();
    b.unuse_region();
    // `a`'s window is the least recently released, but `a` takes it back.
    a.use_region(1, 1).unwrap();
    a.unuse_region();
    c.use_region(2 * g(), 1).unwrap();
    assert_eq!(c.buffer(), &bytes[2 * g() as usize..][..1]);
    assert_eq!((ra.client_count(), rb.client_count()), (1, 0), "b's went");
    assert_eq!(m.stats().evictions, 1);
    m.verify_invariants().unwrap();
}

#[test]
fn a_release_without_the_lock_while_over_the_limit_evicts() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 23, 2 * g());
    let m = SlidingWindowMapManager::builder()
        .window_size(g())
        .max_memory_size(g())
        .build();
    let (mut a, mut b) = (m.make_cursor(&path).unwrap(), m.make_cursor(&path).unwrap());
    a.use_region(0, 1).unwrap();
    let ra = a.region().unwrap().clone();
    a.unuse_region();
    a.use_region(0, 1).unwrap(); // taken back without the lock: in use
                                 // Every region in use: the limit is exceeded for `b`'s window.
    b.use_region(g(), 1).unwrap();
    assert_eq!(b.buffer(), &bytes[g() as usize..][..1]);
    assert_eq!(m.stats().over_limit_bytes, g());
    // `a` releases without the lock, and sees the excess: evicted now.
    a.unuse_region();
    assert_eq!(ra.client_count(), 0);
    let s = m.stats();
    assert_eq!(
        (s.over_limit_bytes, s.windows, s.mapped_bytes),
        (0, 1, g()),
        "{s:?}"
    );
    m.verify_invariants().unwrap();
}

/// A read that takes the cursor to another region mapped already (a
/// switch, without the miss path) moves its view there, as a miss does: the
/// view never names bytes the region does not hold — also when the new
/// region holds the old view's start and ends before its end.
#[test]
fn a_switch_by_a_read_moves_the_view() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 4, 20 * g());
    let m = SlidingWindowMapManager::builder()
        .window_size(4 * g())
        .build();
    let view_is_the_region = |c: &WindowCursor| {
        let r = c.region().expect("valid");
        assert!(r.ofs_begin() <= c.ofs_begin() && c.ofs_end() <= r.ofs_end());
        let (b, e) = (c.ofs_begin() as usize, c.ofs_end() as usize);
        assert_eq!(c.buffer(), &bytes[b..e]);
    };
    let mut c = m.make_cursor(&path).unwrap();
    let mut d = m.make_cursor(&path).unwrap();
    let mut e = m.make_cursor(&path).unwrap();
    // A view of a whole window's length, from inside a slot: its region
    // is placed off the slots.
    c.use_region(5 * g() + 3, 0).unwrap();
    assert_eq!((c.ofs_begin(), c.size() as u64), (5 * g() + 3, 4 * g()));
    view_is_the_region(&c);
    // A byte of a region another cursor holds: a switch.
    d.use_region(15 * g(), 1).unwrap();
    assert_eq!(
        c.byte_at(15 * g() + 1).unwrap(),
        bytes[15 * g() as usize + 1]
    );
    assert!(c.includes_ofs(15 * g() + 1));
    view_is_the_region(&c);
    // c's first region goes; a slot window holding its old view's start,
    // and ending before that view's end, is mapped by another cursor...
    m.collect();
    e.use_region(5 * g() + 3, 1).unwrap();
    let r = e.region().unwrap();
    assert_eq!((r.ofs_begin(), r.ofs_end()), (4 * g(), 8 * g()));
    // ...and c switches to it by a chunk.
    let chunk = c.chunk_at(5 * g() + 3).unwrap();
    assert_eq!(chunk, &bytes[(5 * g() + 3) as usize..(8 * g()) as usize]);
    view_is_the_region(&c);
    assert_eq!((c.ofs_begin(), c.ofs_end()), (5 * g() + 3, 8 * g()));
    m.verify_invariants().unwrap();
}
