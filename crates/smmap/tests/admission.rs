//! The adaptive read policy's promises when the windows it would evict are
//! in use: a copy read that a `pread` can serve never fails for lack of a
//! handle and never maps past `max_memory_size` — also when the regions in
//! use were released and taken back without the lock (so they sit among
//! the regions the evictor looks at, in use) — and the statistics count
//! what happened.

mod common;

use common::{g, make_file};
use smmap::{SlidingWindowMapBuffer, SlidingWindowMapManager, Stats, WindowCursor};

/// `holders` cursors, each on a file of its own, each holding one window
/// that it released and took back without the lock (in use and listed).
fn held_and_taken_back(
    m: &SlidingWindowMapManager,
    dir: &std::path::Path,
    holders: usize,
) -> Vec<WindowCursor> {
    (0..holders)
        .map(|i| {
            let (path, bytes) = make_file(dir, &format!("held{i}"), 100 + i as u64, g());
            let mut c = m.make_cursor(&path).unwrap();
            c.use_region(0, 0).unwrap();
            c.unuse_region();
            c.use_region(0, 0).unwrap();
            assert_eq!(c.buffer(), &bytes[..], "taken back");
            c
        })
        .collect()
}

/// Reads 16 different pages of one window of a fresh file through a buffer,
/// each twice (so every page is asked for again while remembered); returns
/// the statistics after. A page here is the mapping granularity, the least
/// a copy reads (4 KiB; 64 KiB on Windows), so that each page is a read of
/// its own on every platform.
fn sixteen_pages(m: &SlidingWindowMapManager, dir: &std::path::Path) -> Stats {
    let (path, bytes) = make_file(dir, "read", 7, 16 * g());
    let mut buf = SlidingWindowMapBuffer::new(m.make_cursor(&path).unwrap(), 0, u64::MAX).unwrap();
    for round in 0..2 {
        for page in 0..16u64 {
            let at = page * g() + 17 * round;
            let got = buf
                .get(at)
                .unwrap_or_else(|e| panic!("read {page} of round {round}: {e}"));
            assert_eq!(got, bytes[at as usize]);
            // A slice of the same page, copied or borrowed.
            let s = buf.slice(at..at + 100).unwrap();
            assert_eq!(&*s, &bytes[at as usize..at as usize + 100]);
        }
    }
    m.verify_invariants().unwrap();
    m.stats()
}

#[test]
fn no_handle_free_and_every_region_in_use_copies() {
    for holders in [1, 4] {
        let dir = tempfile::tempdir().unwrap();
        let m = SlidingWindowMapManager::builder()
            .window_size(16 * g())
            .max_open_handles(holders)
            .build();
        let held = held_and_taken_back(&m, dir.path(), holders);
        let s = sixteen_pages(&m, dir.path());
        assert_eq!(s.maps, holders as u64, "{s:?}");
        assert_eq!((s.ghost_hits, s.evictions), (0, 0), "{s:?}");
        assert!(s.preads >= 16, "{s:?}");
        assert_eq!(s.windows, holders);
        drop(held);
    }
}

#[test]
fn no_room_under_the_memory_limit_and_every_region_in_use_copies() {
    let dir = tempfile::tempdir().unwrap();
    let m = SlidingWindowMapManager::builder()
        .window_size(16 * g())
        .max_memory_size(g())
        .build();
    let held = held_and_taken_back(&m, dir.path(), 1);
    let s = sixteen_pages(&m, dir.path());
    assert_eq!(
        (
            s.maps,
            s.ghost_hits,
            s.over_limit_bytes,
            s.peak_over_limit_bytes
        ),
        (1, 0, 0, 0),
        "{s:?}"
    );
    assert!(s.preads >= 16, "{s:?}");
    drop(held);
}

/// The same reads with the holders' windows never released: they are not
/// listed, and the reads copy too (this always held; it is the baseline the
/// two tests above are held to).
#[test]
fn regions_never_released_are_not_evicted_either() {
    let dir = tempfile::tempdir().unwrap();
    let m = SlidingWindowMapManager::builder()
        .window_size(16 * g())
        .max_open_handles(1)
        .build();
    let (path, _) = make_file(dir.path(), "held", 3, g());
    let mut c = m.make_cursor(&path).unwrap();
    c.use_region(0, 0).unwrap();
    let s = sixteen_pages(&m, dir.path());
    assert_eq!((s.maps, s.ghost_hits, s.evictions), (1, 0, 0), "{s:?}");
    drop(c);
}

/// A window hot enough to be admitted, with an unused window to evict: it
/// is mapped in place of it, and counted once as a ghost hit — when it was
/// mapped, not when admission said yes.
#[test]
fn an_admitted_window_is_counted_when_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let m = SlidingWindowMapManager::builder()
        .window_size(16 * g())
        .max_open_handles(1)
        .build();
    let (cold, _) = make_file(dir.path(), "cold", 4, g());
    let mut c = m.make_cursor(&cold).unwrap();
    c.use_region(0, 0).unwrap();
    c.unuse_region();
    let s = sixteen_pages(&m, dir.path());
    assert_eq!((s.ghost_hits, s.maps, s.evictions), (1, 2, 1), "{s:?}");
    drop(c);
}

/// Admission said yes while a window was unused, but a cursor took it back
/// before the evictor reached it: nothing is left to evict, and the read is
/// copied (the cursor holding it is untouched).
#[test]
fn admitted_but_its_victim_taken_back_copies() {
    let dir = tempfile::tempdir().unwrap();
    let m = SlidingWindowMapManager::builder()
        .window_size(16 * g())
        .max_open_handles(1)
        .build();
    let (cold, cold_bytes) = make_file(dir.path(), "cold", 5, g());
    let (path, bytes) = make_file(dir.path(), "read", 6, 16 * g());
    let mut c = m.make_cursor(&cold).unwrap();
    c.use_region(0, 0).unwrap();
    c.unuse_region();
    let mut buf = SlidingWindowMapBuffer::new(m.make_cursor(&path).unwrap(), 0, u64::MAX).unwrap();
    // Heat the read window with copies while `c` holds nothing: the first
    // read past the admission threshold is mapped in place of `c`'s.
    let mut maps_before = m.stats().maps;
    for page in 0..16u64 {
        // Release and take back between copy reads.
        c.use_region(0, 0).unwrap();
        assert_eq!(c.buffer(), &cold_bytes[..]);
        assert_eq!(buf.get(page * g()).unwrap(), bytes[(page * g()) as usize]);
        assert_eq!(
            m.stats().maps,
            maps_before,
            "nothing mapped while c is in use"
        );
        c.unuse_region();
        maps_before = m.stats().maps;
    }
    let s = m.stats();
    assert_eq!((s.ghost_hits, s.evictions), (0, 0), "{s:?}");
    m.verify_invariants().unwrap();
}

/// A buffer that holds its own window while every other handle is in use:
/// the only window a hot read can take the place of is the buffer's own,
/// given back as it moves; a read asked for often enough is mapped in its
/// place (a ghost hit, one eviction), colder ones are copied, and the other
/// cursors' windows stay.
#[test]
fn a_hot_window_takes_the_place_of_the_buffers_own() {
    let dir = tempfile::tempdir().unwrap();
    let m = SlidingWindowMapManager::builder()
        .window_size(g())
        .max_open_handles(2)
        .build();
    let (path, bytes) = make_file(dir.path(), "read", 8, 16 * g());
    let mut buf = SlidingWindowMapBuffer::new(m.make_cursor(&path).unwrap(), 0, u64::MAX).unwrap();
    assert_eq!(buf.get(0).unwrap(), bytes[0]);
    let held = held_and_taken_back(&m, dir.path(), 1);
    // Page 5 five times (hot: the admission bar), other pages once (cold).
    for (i, page) in [5u64, 1, 5, 2, 5, 3, 5, 4, 5, 6].into_iter().enumerate() {
        let at = page * g() + i as u64;
        assert_eq!(buf.get(at).unwrap(), bytes[at as usize]);
    }
    let s = m.stats();
    assert_eq!((s.ghost_hits, s.evictions, s.maps), (1, 1, 3), "{s:?}");
    assert_eq!(s.preads, 9, "every other read copied: {s:?}");
    assert_eq!(
        held[0].region().unwrap().client_count(),
        2,
        "the cursor's window stays"
    );
    m.verify_invariants().unwrap();
    drop(held);
}

/// A window asked for more often than a warm one (asked for past half the
/// counters' range) takes its place, and a colder one does not: the rule
/// compares with the victim's count, and no margin over it keeps a hot
/// window out for good once the counters are near their top.
#[test]
fn a_hotter_window_takes_the_place_of_a_warm_one() {
    let dir = tempfile::tempdir().unwrap();
    let m = SlidingWindowMapManager::builder()
        .window_size(16 * g())
        .max_open_handles(1)
        .build();
    // The only handle held: the warm window's reads are all copied, and
    // counted.
    let mut held = held_and_taken_back(&m, dir.path(), 1);
    let (warm, warm_bytes) = make_file(dir.path(), "warm", 9, 16 * g());
    let mut buf = SlidingWindowMapBuffer::new(m.make_cursor(&warm).unwrap(), 0, u64::MAX).unwrap();
    for page in 0..9u64 {
        let at = page * g();
        assert_eq!(buf.get(at).unwrap(), warm_bytes[at as usize]);
    }
    assert_eq!((m.stats().maps, m.stats().ghost_hits), (1, 0));
    // The handle given back: the warm window's next ask maps it in place
    // of the held one; then it is left unused, the next to go.
    held[0].unuse_region();
    assert_eq!(buf.get(9 * g()).unwrap(), warm_bytes[(9 * g()) as usize]);
    assert_eq!((m.stats().maps, m.stats().ghost_hits), (2, 1));
    buf.end_access();
    // A window asked for less often than the warm one is copied...
    let (hot, hot_bytes) = make_file(dir.path(), "hot", 10, 16 * g());
    let mut hot_buf =
        SlidingWindowMapBuffer::new(m.make_cursor(&hot).unwrap(), 0, u64::MAX).unwrap();
    for page in 0..8u64 {
        let at = page * g();
        assert_eq!(hot_buf.get(at).unwrap(), hot_bytes[at as usize]);
        let s = m.stats();
        assert_eq!((s.maps, s.ghost_hits), (2, 1), "ask {}: {s:?}", page + 1);
    }
    // ...and once asked for more often, it is mapped in its place.
    let mut page = 8;
    while m.stats().ghost_hits == 1 {
        assert!(page < 16, "never admitted: {:?}", m.stats());
        let at = page * g();
        assert_eq!(hot_buf.get(at).unwrap(), hot_bytes[at as usize]);
        page += 1;
    }
    let s = m.stats();
    assert_eq!((s.maps, s.ghost_hits, s.evictions), (3, 2, 2), "{s:?}");
    assert_eq!(hot_buf.cursor().region().unwrap().client_count(), 2);
    m.verify_invariants().unwrap();
    drop(held);
}

/// `n` times: the cursor gives its region back and takes it back without
/// the lock, one more use each time for the evictor's hand to find.
fn take_back_often(c: &mut WindowCursor, n: usize) {
    for _ in 0..n {
        c.unuse_region();
        c.use_region(0, 0).unwrap();
    }
}

/// An admitted copy read whose walk evicts a cold region and then meets
/// hotter ones: the read is copied, the eviction is counted, and the
/// cursor, whose own region went back before the walk so that the hand
/// could take it, is left without a region and with an empty view (its
/// region, spared, is found again on the next read).
#[test]
fn admission_refused_after_an_eviction_counts_it_and_empties_the_view() {
    let dir = tempfile::tempdir().unwrap();
    // Room for the cold and the hot file's page and one 8-page window.
    let m = SlidingWindowMapManager::builder()
        .window_size(8 * g())
        .max_memory_size(10 * g())
        .max_open_handles(16)
        .build();
    let (cold, _) = make_file(dir.path(), "cold", 11, g());
    let (hot, _) = make_file(dir.path(), "hot", 12, g());
    let (read, bytes) = make_file(dir.path(), "read", 13, 16 * g());
    // The cold page, used once; the hot one, taken back often (uses the
    // hand turns into heat as it passes).
    let mut a = m.make_cursor(&cold).unwrap();
    a.use_region(0, 0).unwrap();
    a.unuse_region();
    let mut h = m.make_cursor(&hot).unwrap();
    h.use_region(0, 0).unwrap();
    take_back_often(&mut h, 14);
    h.unuse_region();
    // The reading cursor holds the file's first window, used often too.
    let mut c = m.make_cursor(&read).unwrap();
    c.use_region(0, 0).unwrap();
    take_back_often(&mut c, 14);
    assert_eq!(c.size() as u64, 8 * g());
    let before = m.stats();
    assert_eq!((before.maps, before.evictions), (3, 0), "{before:?}");
    // Pages of the second window: copied (no room) while asked for less
    // than the admission bar, the cursor's window kept.
    for page in 8..12u64 {
        let at = page * g() + 5;
        assert_eq!(c.byte_at(at).unwrap(), bytes[at as usize]);
        assert!(c.is_valid(), "a copy decided up front keeps the window");
        assert_eq!(c.size() as u64, 8 * g());
    }
    // The fifth ask is admitted: the cursor's window goes back, the hand
    // evicts the cold page, finds the hot page (and then the window given
    // back) hotter, and the read is copied after all.
    let at = 12 * g() + 5;
    assert_eq!(c.byte_at(at).unwrap(), bytes[at as usize]);
    let s = m.stats();
    assert_eq!(
        (s.maps, s.evictions, s.preads, s.ghost_hits, s.windows),
        (3, 1, 5, 0, 2),
        "{s:?}"
    );
    assert!(!c.is_valid(), "the window went back before the walk");
    assert_eq!(c.size(), 0, "and the view with it");
    assert_eq!(c.ofs_end(), c.ofs_begin());
    assert!(c.buffer().is_empty());
    m.verify_invariants().unwrap();
    // Spared by the hand, the window is found again.
    c.use_region(0, 0).unwrap();
    assert_eq!(c.buffer(), &bytes[..(8 * g()) as usize]);
    assert_eq!(m.stats().maps, 3);
    a.use_region(0, 0).unwrap();
    assert_eq!(m.stats().maps, 4, "the cold page was unmapped");
    m.verify_invariants().unwrap();
}

/// A read across two windows moves to the second through the file's
/// mapped window when one is there, as a read inside a window does: no
/// copy of bytes already mapped, though no handle is free and the window
/// is not hot.
#[test]
fn a_read_across_windows_uses_the_next_window_mapped_already() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 3, 2 * g());
    let m = SlidingWindowMapManager::builder()
        .window_size(g())
        .max_open_handles(2)
        .build();
    let mut other = m.make_cursor(&path).unwrap();
    other.use_region(g(), 0).unwrap();
    let mut buf = SlidingWindowMapBuffer::new(m.make_cursor(&path).unwrap(), 0, u64::MAX).unwrap();
    assert_eq!(buf.get(0).unwrap(), bytes[0]);
    let before = m.stats();
    assert_eq!(before.windows, 2, "both handles in use");
    let at = g() - 2;
    let want = u32::from_le_bytes(bytes[at as usize..at as usize + 4].try_into().unwrap());
    assert_eq!(buf.read_le::<u32>(at).unwrap(), want);
    let mut out = [0; 8];
    buf.read_exact_at(at - 2, &mut out).unwrap();
    assert_eq!(out, bytes[at as usize - 2..at as usize + 6]);
    drop(buf);
    let s = m.stats();
    assert_eq!((s.preads, s.pread_windows), (0, 0), "{s:?}");
    assert_eq!(s.maps, before.maps, "{s:?}");
    assert!(s.reuses > before.reuses, "{s:?}");
    m.verify_invariants().unwrap();
    drop(other);
}

/// A copy read counts the windows its copy reaches into, from the page it
/// starts at to as far as it goes — not past the copy, nor past the file's
/// end.
#[test]
fn a_copy_counts_the_windows_it_reads() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 5, 12 * g());
    let m = SlidingWindowMapManager::builder()
        .window_size(4 * g())
        .max_open_handles(1)
        .build();
    let mut holder = m.make_cursor(&path).unwrap();
    holder.use_region(0, 0).unwrap();
    let mut buf = SlidingWindowMapBuffer::new(m.make_cursor(&path).unwrap(), 0, u64::MAX).unwrap();
    // Each copies the last page of a window (the last of the file too).
    for at in [8 * g() - 5, 12 * g() - 5] {
        assert_eq!(buf.get(at).unwrap(), bytes[at as usize]);
    }
    let s = m.stats();
    assert_eq!(s.preads, 2, "{s:?}");
    assert_eq!(s.pread_windows, 2, "one window each: {s:?}");
    drop((buf, holder));
}

/// A read about to copy, with no room, reads a mapped window that holds
/// its offset even where the file's table does not name that window (one
/// placed in the gap beside a cursor's window off the slots): it maps
/// nothing, copies nothing, and the window gets the use.
#[test]
fn a_mapped_window_the_table_does_not_name_is_read_from_its_mapping() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 11, 6 * g());
    let m = SlidingWindowMapManager::builder()
        .window_size(2 * g())
        .max_open_handles(3)
        .build();
    // A cursor's window off the slots: [g, 3g), named for slots 0 and 1.
    let mut c = m.make_cursor(&path).unwrap();
    c.use_region(g(), 2 * g() as usize).unwrap();
    assert_eq!((c.ofs_begin(), c.ofs_end()), (g(), 3 * g()));
    let mut buf = SlidingWindowMapBuffer::new(m.make_cursor(&path).unwrap(), 0, u64::MAX).unwrap();
    // [0, g) in the gap (not named: slot 0 names the cursor's), then the
    // cursor's window, then [4g, 6g): every handle taken.
    for at in [0, 2 * g(), 4 * g()] {
        assert_eq!(buf.get(at).unwrap(), bytes[at as usize]);
    }
    read_from_a_mapping_of_three(&m, &mut buf, 5, bytes[5]);
    drop(c);
}

/// The same where the table is coarse: a file of more windows than the
/// table has slots, so that a slot holds two windows and names one.
#[test]
fn a_mapped_window_a_coarse_table_does_not_name_is_read_from_its_mapping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sparse");
    // One window more than the table has slots (2^17): two windows a slot.
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(((1 << 17) + 1) * g()).unwrap();
    drop(file);
    let m = SlidingWindowMapManager::builder()
        .window_size(g())
        .max_open_handles(3)
        .build();
    let mut buf = SlidingWindowMapBuffer::new(m.make_cursor(&path).unwrap(), 0, u64::MAX).unwrap();
    // Windows 0 and 1 share slot 0, which names window 0; then window 2.
    for at in [0, g(), 2 * g(), 0] {
        assert_eq!(buf.get(at).unwrap(), 0);
    }
    read_from_a_mapping_of_three(&m, &mut buf, g() + 1, 0);
}

/// Reads `want` at `at` through `buf`, with three windows mapped and no
/// room, and checks that the read copied nothing and mapped nothing.
fn read_from_a_mapping_of_three(
    m: &SlidingWindowMapManager,
    buf: &mut SlidingWindowMapBuffer,
    at: u64,
    want: u8,
) {
    let before = m.stats();
    assert_eq!(before.windows, 3, "{before:?}");
    assert_eq!(buf.get(at).unwrap(), want);
    let after = m.stats();
    let new = (after.preads - before.preads, after.maps - before.maps);
    assert_eq!((new, after.windows), ((0, 0), 3), "{after:?}");
    m.verify_invariants().unwrap();
}
