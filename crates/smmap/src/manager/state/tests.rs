//! The algorithm driven step by step, including the interleavings that
//! threads produce: a window in flight, an unmapping in flight, a refusal.

use super::*;
use crate::source::PathOrFd;
use crate::ALLOCATIONGRANULARITY;

fn g() -> u64 {
    *ALLOCATIONGRANULARITY
}

fn setup(pages: u64) -> (tempfile::TempDir, State, usize) {
    let (dir, mut st, idx) = setup_for(pages, None);
    let (desc, _) = st.file(idx).file().open().unwrap();
    st.install_desc(&limits(Kind::Sliding, 0, u64::MAX, usize::MAX), idx, desc);
    (dir, st, idx)
}

/// A file of `pages` pages attached to a new state, made for `l` if given
/// (its descriptor not opened yet).
fn setup_for(pages: u64, l: Option<&Limits>) -> (tempfile::TempDir, State, usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    std::fs::write(&path, vec![7u8; (pages * g()) as usize]).unwrap();
    let mut st = l.map_or_else(State::default, State::new);
    let (idx, _) = st.attach(PinnedFile::stat(PathOrFd::from(path.as_path())).unwrap());
    (dir, st, idx)
}

fn limits(kind: Kind, window: u64, memory: u64, handles: usize) -> Limits {
    Limits {
        kind,
        window_size: window,
        max_memory_size: memory,
        max_open_handles: handles,
        max_open_files: 8,
        policy: ReadPolicy::AlwaysMap,
    }
}

/// Opens file `idx` and caches its descriptor, as `Manager::obtain` does
/// when asked to ([`Obtain::Open`]).
fn open(st: &mut State, l: &Limits, idx: usize) {
    let (desc, _) = st.file(idx).file().open().unwrap();
    st.install_desc(l, idx, desc);
}

fn map(st: &State, res: &Reservation) -> Result<MapRegion> {
    let file = st.file(res.idx).file();
    MapRegion::map_opened(file, &res.desc, res.window.ofs, res.window.size)
}

/// Runs both halves of the miss path, as `Manager::obtain` does, with
/// nothing else in flight.
fn obtain(st: &mut State, l: &Limits, idx: usize, offset: u64) -> MapRegion {
    loop {
        let mut rel = Released::default();
        let step = st
            .begin_obtain(
                l,
                idx,
                offset,
                1,
                &mut None,
                Want::Map,
                &mut false,
                &mut rel,
            )
            .unwrap();
        st.unmapped(rel.room);
        match step {
            Obtain::Found(r) => return r,
            Obtain::Map(res) => {
                match st.finish_obtain(l, &res, map(st, &res), false, false, &mut rel) {
                    Ok(Finish::Done(r)) => return r,
                    _ => panic!("mapped"),
                }
            }
            Obtain::Unmap => {}
            Obtain::Open => open(st, l, idx),
            _ => panic!("nothing in flight, nothing to copy"),
        }
    }
}

#[test]
fn placement_fills_between_neighbours() {
    let (_d, mut st, idx) = setup(20);
    let l = limits(Kind::Sliding, 4 * g(), u64::MAX, usize::MAX);
    let a = obtain(&mut st, &l, idx, 0);
    let b = obtain(&mut st, &l, idx, 10 * g());
    assert_eq!((a.ofs_begin(), a.ofs_end()), (0, 4 * g()));
    // One byte wanted at 10g: grown left towards a's end up to the
    // window size, [6g + 1, 10g + 1), then aligned: [6g, 11g).
    assert_eq!((b.ofs_begin(), b.ofs_end()), (6 * g(), 11 * g()));
    // Between them, the gap [4g, 6g) is filled exactly.
    let gap = st.place(&l, idx, 5 * g(), 1);
    assert_eq!(gap, MapWindow::new(4 * g(), 2 * g()));
    // After the last region: [15g + 1, 19g + 1), aligned to [15g, 20g),
    // which the file's end allows.
    let last = st.place(&l, idx, 19 * g(), 1);
    assert_eq!(last, MapWindow::new(15 * g(), 5 * g()));
    // Wanting a whole window from 12g grows right instead.
    let forward = st.place(&l, idx, 12 * g(), 4 * g());
    assert_eq!(forward, MapWindow::new(12 * g(), 4 * g()));
    let s = limits(Kind::Static, 0, u64::MAX, usize::MAX);
    assert_eq!(st.place(&s, idx, 19 * g(), 1), MapWindow::new(0, 20 * g()));
    st.verify(&l).unwrap();
}

#[test]
fn a_miss_inside_a_window_in_flight_waits_for_it() {
    let (_d, mut st, idx) = setup(8);
    let l = limits(Kind::Sliding, 2 * g(), u64::MAX, 1);
    let mut rel = Released::default();
    let Ok(Obtain::Map(mine)) =
        st.begin_obtain(&l, idx, g(), 1, &mut None, Want::Map, &mut false, &mut rel)
    else {
        panic!("a miss")
    };
    assert_eq!((st.pending.handles, st.pending.bytes), (1, 2 * g()));
    st.verify(&l).unwrap();
    // Another thread asking for the same window waits, whatever the limit.
    let seen = st.generation();
    assert!(matches!(
        st.begin_obtain(&l, idx, g() + 5, 1, &mut None, Want::Map, &mut false, &mut rel),
        Ok(Obtain::Wait(s)) if s == seen
    ));
    // So does one that needs the only handle, which is in flight.
    assert!(matches!(
        st.begin_obtain(
            &l,
            idx,
            6 * g(),
            1,
            &mut None,
            Want::Map,
            &mut false,
            &mut rel
        ),
        Ok(Obtain::Wait(_))
    ));
    let Ok(Finish::Done(r)) = st.finish_obtain(&l, &mine, map(&st, &mine), false, false, &mut rel)
    else {
        panic!("done")
    };
    assert_ne!(st.generation(), seen, "the waiters wake");
    // Asked again, the waiter finds the region.
    let Ok(Obtain::Found(again)) = st.begin_obtain(
        &l,
        idx,
        g() + 5,
        1,
        &mut None,
        Want::Map,
        &mut false,
        &mut rel,
    ) else {
        panic!("found")
    };
    assert!(again.same_mapping(&r));
    assert_eq!(
        (r.client_count(), st.stats.maps, st.stats.reuses),
        (3, 1, 1)
    );
    assert_eq!(st.pending, Room::default());
    // With both cursors using it, the other offset is a true refusal.
    let e = st
        .begin_obtain(
            &l,
            idx,
            6 * g(),
            1,
            &mut None,
            Want::Map,
            &mut false,
            &mut rel,
        )
        .err()
        .expect("every region in use");
    assert!(matches!(e, Error::HandleLimit { limit: 1, .. }), "{e}");
    st.verify(&l).unwrap();
}

#[test]
fn an_evicted_region_holds_its_handle_until_unmapped() {
    let (_d, mut st, idx) = setup(8);
    let l = limits(Kind::Sliding, g(), u64::MAX, 1);
    let r = obtain(&mut st, &l, idx, 0);
    let mut rel = Released::default();
    st.release(&l, idx, r, &mut rel);
    // Thread A evicts it to map another window: it must unmap first.
    let mut a = Released::default();
    assert!(matches!(
        st.begin_obtain(
            &l,
            idx,
            4 * g(),
            1,
            &mut None,
            Want::Map,
            &mut false,
            &mut a
        ),
        Ok(Obtain::Unmap)
    ));
    assert_eq!((a.regions.len(), st.unmapping.handles), (1, 1));
    st.verify(&l).unwrap();
    // Thread B, meanwhile, must not take the handle: it waits.
    let mut b = Released::default();
    assert!(matches!(
        st.begin_obtain(
            &l,
            idx,
            2 * g(),
            1,
            &mut None,
            Want::Map,
            &mut false,
            &mut b
        ),
        Ok(Obtain::Wait(_))
    ));
    assert!(b.regions.is_empty());
    // A unmaps; whoever asks next gets the handle.
    drop(a.regions);
    st.unmapped(a.room);
    let mut a = Released::default();
    let Ok(Obtain::Map(res)) = st.begin_obtain(
        &l,
        idx,
        4 * g(),
        1,
        &mut None,
        Want::Map,
        &mut false,
        &mut a,
    ) else {
        panic!("A maps")
    };
    st.verify(&l).unwrap();
    assert!(matches!(
        st.finish_obtain(&l, &res, map(&st, &res), false, false, &mut a),
        Ok(Finish::Done(_))
    ));
    assert_eq!((st.handles(), st.unmapping.handles), (1, 0));
    st.verify(&l).unwrap();
}

#[test]
fn memory_is_charged_in_whole_pages() {
    let dir = tempfile::tempdir().unwrap();
    let mut st = State::default();
    let l = limits(Kind::Sliding, 0, 3 * g(), usize::MAX);
    let mut idx = Vec::new();
    for i in 0..4 {
        let path = dir.path().join(format!("tiny{i}"));
        std::fs::write(&path, b"0123456789").unwrap();
        idx.push(
            st.attach(PinnedFile::stat(PathOrFd::from(path.as_path())).unwrap())
                .0,
        );
    }
    let mut held = Vec::new();
    for &i in &idx[..3] {
        held.push((i, obtain(&mut st, &l, i, 0)));
    }
    assert_eq!((st.memory(), st.mapped.bytes), (30, 3 * g()));
    // Three pages charged: the fourth file's page needs one released.
    let mut rel = Released::default();
    let (i0, r0) = held.remove(0);
    st.release(&l, i0, r0, &mut rel);
    st.unmapped(rel.room);
    let _r3 = obtain(&mut st, &l, idx[3], 0);
    assert_eq!((st.handles(), st.stats.evictions), (3, 1));
    st.verify(&l).unwrap();
}

#[test]
fn refusal_for_lack_of_memory_retries_once() {
    let (_d, mut st, idx) = setup(8);
    let l = limits(Kind::Sliding, g(), u64::MAX, usize::MAX);
    let unused = obtain(&mut st, &l, idx, 5 * g());
    let mut rel = Released::default();
    st.release(&l, idx, unused, &mut rel);
    let refusal = |errno| {
        Err(Error::Map {
            file: PathOrFd::from("f"),
            offset: 0,
            len: g(),
            reason: std::io::Error::from_raw_os_error(errno),
        })
    };
    let Ok(Obtain::Map(res)) =
        st.begin_obtain(&l, idx, 0, 1, &mut None, Want::Map, &mut false, &mut rel)
    else {
        panic!("a miss")
    };
    assert!(matches!(
        st.finish_obtain(
            &l,
            &res,
            refusal(crate::sys::NO_MEMORY),
            false,
            false,
            &mut rel
        ),
        Ok(Finish::Retry)
    ));
    assert_eq!(
        (st.handles(), st.stats.retries, st.stats.evictions),
        (0, 1, 1),
        "every unused region went"
    );
    st.unmapped(rel.room);
    let mut rel = Released::default();
    let Ok(Obtain::Map(res)) =
        st.begin_obtain(&l, idx, 0, 1, &mut None, Want::Map, &mut false, &mut rel)
    else {
        panic!("a miss")
    };
    let e = st
        .finish_obtain(
            &l,
            &res,
            refusal(crate::sys::NO_MEMORY),
            true,
            false,
            &mut rel,
        )
        .err()
        .expect("no second retry");
    assert_eq!(e.raw_os_error(), Some(crate::sys::NO_MEMORY));
    assert_eq!(st.stats.map_failures, 2);
    assert_eq!((st.pending, st.handles()), (Room::default(), 0));
    st.verify(&l).unwrap();
}

#[test]
fn refusals_that_eviction_cannot_cure_are_not_retried() {
    let (_d, mut st, idx) = setup(8);
    let l = limits(Kind::Sliding, g(), u64::MAX, usize::MAX);
    let unused = obtain(&mut st, &l, idx, 5 * g());
    let mut rel = Released::default();
    st.release(&l, idx, unused, &mut rel);
    #[cfg(unix)]
    let uncurable = [libc::EMFILE, libc::ENFILE, libc::EACCES];
    // ERROR_TOO_MANY_OPEN_FILES, ERROR_ACCESS_DENIED
    #[cfg(windows)]
    let uncurable = [4, 5];
    for errno in uncurable {
        let Ok(Obtain::Map(res)) =
            st.begin_obtain(&l, idx, 0, 1, &mut None, Want::Map, &mut false, &mut rel)
        else {
            panic!("a miss")
        };
        let open_failed = Err(Error::Open {
            file: PathOrFd::from("f"),
            reason: std::io::Error::from_raw_os_error(errno),
        });
        let e = st
            .finish_obtain(&l, &res, open_failed, false, false, &mut rel)
            .err()
            .expect("an error at once");
        assert_eq!(e.raw_os_error(), Some(errno));
    }
    assert_eq!((st.handles(), st.stats.retries), (1, 0), "nothing evicted");
    st.verify(&l).unwrap();
}

#[test]
fn the_previous_region_is_released_only_once_the_next_is_certain() {
    let (_dir, mut st, idx) = setup_for(8, None);
    let l = limits(Kind::Sliding, g(), u64::MAX, 1);
    let held = obtain(&mut st, &l, idx, 0);
    // Forget the descriptor, as when the cache is full.
    st.close_descs();
    let mut previous = Some(held);
    let mut rel = Released::default();
    // A window to map from a file whose descriptor is not open: open
    // first, keep the previous region (an open that fails leaves the
    // cursor as it was).
    assert!(matches!(
        st.begin_obtain(
            &l,
            idx,
            4 * g(),
            1,
            &mut previous,
            Want::Map,
            &mut false,
            &mut rel
        ),
        Ok(Obtain::Open)
    ));
    assert_eq!(previous.as_ref().map(MapRegion::client_count), Some(2));
    open(&mut st, &l, idx);
    // Opened: the previous region is released, evicted for room, unmapped.
    assert!(matches!(
        st.begin_obtain(
            &l,
            idx,
            4 * g(),
            1,
            &mut previous,
            Want::Map,
            &mut false,
            &mut rel
        ),
        Ok(Obtain::Unmap)
    ));
    assert!(previous.is_none() && rel.regions.len() == 1);
    st.unmapped(rel.room);
    st.verify(&l).unwrap();
}

#[test]
fn adaptive_copies_a_window_until_it_proves_hotter_than_its_victim() {
    let l = Limits {
        policy: ReadPolicy::Adaptive,
        ..limits(Kind::Sliding, g(), u64::MAX, 1)
    };
    let (_dir, mut st, idx) = setup_for(8, Some(&l));
    // One miss, as `Manager::obtain` makes it: the ask counted once, then
    // the steps until there is an answer (opening, unmapping).
    let miss = |st: &mut State, at: u64| {
        st.count_ask(idx, at);
        loop {
            let mut rel = Released::default();
            let step = st.begin_obtain(
                &l,
                idx,
                at,
                1,
                &mut None,
                Want::Bytes(100),
                &mut false,
                &mut rel,
            );
            st.unmapped(rel.room);
            match step.unwrap() {
                Obtain::Open => open(st, &l, idx),
                Obtain::Unmap => {}
                other => return other,
            }
        }
    };
    // With room, copy reads map.
    let Obtain::Map(res) = miss(&mut st, 0) else {
        panic!("room: map")
    };
    let mut rel = Released::default();
    let Ok(Finish::Done(r0)) = st.finish_obtain(&l, &res, map(&st, &res), false, false, &mut rel)
    else {
        panic!("mapped")
    };
    st.release(&l, idx, r0, &mut rel);
    // No room without evicting: window 3 is copied, twice, the cursor's
    // region untouched and nothing evicted.
    for n in 1..=2 {
        let Obtain::Copy { len: 100, .. } = miss(&mut st, 3 * g()) else {
            panic!("copy")
        };
        assert_eq!((st.stats.preads, st.stats.pread_bytes), (n, 100 * n));
    }
    assert_eq!(st.handles(), 1, "nothing evicted");
    // Asked a third time, more than twice as often as window 0: mapped.
    let Obtain::Map(res) = miss(&mut st, 3 * g() + 9) else {
        panic!("hot: map")
    };
    assert_eq!((st.stats.ghost_hits, st.stats.evictions), (0, 1));
    // Counted as a ghost hit once mapped.
    let mut rel = Released::default();
    let Ok(Finish::Done(_)) = st.finish_obtain(&l, &res, map(&st, &res), false, true, &mut rel)
    else {
        panic!("mapped")
    };
    assert_eq!(st.stats.ghost_hits, 1);
}

#[test]
fn uniform_reads_under_a_small_budget_settle() {
    // 100 windows, 4 handles, reads spread evenly: windows are no hotter
    // than one another, so after the first few the rest are copied.
    let l = Limits {
        policy: ReadPolicy::Adaptive,
        ..limits(Kind::Sliding, g(), u64::MAX, 4)
    };
    let (_dir, mut st, idx) = setup_for(100, Some(&l));
    open(&mut st, &l, idx);
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let at = (x % 100) * g();
        st.count_ask(idx, at);
        loop {
            let mut rel = Released::default();
            let step = st.begin_obtain(
                &l,
                idx,
                at,
                1,
                &mut None,
                Want::Bytes(1),
                &mut false,
                &mut rel,
            );
            st.unmapped(rel.room);
            match step.unwrap() {
                Obtain::Unmap => continue,
                Obtain::Map(res) => {
                    let Ok(Finish::Done(r)) =
                        st.finish_obtain(&l, &res, map(&st, &res), false, false, &mut rel)
                    else {
                        panic!("mapped")
                    };
                    st.release(&l, idx, r, &mut rel);
                }
                Obtain::Found(r) => st.release(&l, idx, r, &mut rel),
                _ => {}
            }
            st.unmapped(rel.room);
            break;
        }
    }
    let s = &st.stats;
    // A map and an unmap cost about ten copies: churn must stay far
    // below one read in a hundred.
    assert!(
        s.maps < 100,
        "{} maps for 20,000 uniform reads: churn",
        s.maps
    );
    assert!(s.preads > 15_000, "{s:?}");
    st.verify(&l).unwrap();
}

#[test]
fn descriptors_are_cached_up_to_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let l = Limits {
        max_open_files: 2,
        ..limits(Kind::Sliding, 0, u64::MAX, usize::MAX)
    };
    let mut st = State::new(&l);
    let mut idx = Vec::new();
    for i in 0..3 {
        let path = dir.path().join(format!("f{i}"));
        std::fs::write(&path, b"abc").unwrap();
        let (k, _) = st.attach(PinnedFile::stat(PathOrFd::from(path.as_path())).unwrap());
        open(&mut st, &l, k);
        idx.push(k);
    }
    assert_eq!((st.stats.fd_opens, st.descs.len()), (3, 2));
    assert!(
        st.file(idx[0]).desc.is_none(),
        "the least recently used went"
    );
    st.verify(&l).unwrap();
    // A forgotten file's descriptor goes with it.
    st.detach(idx[2]);
    assert_eq!(st.descs.len(), 1);
    assert_eq!(st.close_descs(), 1);
    st.verify(&l).unwrap();
}
