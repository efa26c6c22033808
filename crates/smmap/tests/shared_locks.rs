//! The read paths that must scale take no lock that all files of a manager
//! share — the file registry, the descriptor ring, the evictor's hand, the
//! wait for room — in their steady state: a hit, a switch to a window mapped
//! already, a copy read of a window that is not admitted, a release and a
//! take-back, and a miss that maps within the limits. The engine counts
//! each acquisition of such a lock per thread (with the `fault-injection`
//! feature); each test warms its path up, then requires 0 per read. The
//! counter is per thread, so tests running beside each other do not mix.

mod common;

use common::{g, make_file, xorshift};
use smmap::{shared_locks_taken, SlidingWindowMapBuffer, SlidingWindowMapManager};

/// The shared locks `reads` took, and how many reads it made.
fn taken(reads: impl FnOnce() -> u64) -> (u64, u64) {
    let before = shared_locks_taken();
    let n = reads();
    (shared_locks_taken() - before, n)
}

#[test]
fn a_hit_takes_none() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 1, 16 * g());
    let m = SlidingWindowMapManager::new();
    let mut c = m.make_cursor(&path).unwrap();
    c.use_region(0, 0).unwrap();
    let (locks, n) = taken(|| {
        for i in 0..10_000u64 {
            let at = i * 7 % (16 * g());
            assert_eq!(c.use_region(at, 1).unwrap().buffer()[0], bytes[at as usize]);
        }
        10_000
    });
    assert_eq!(locks, 0, "{locks} shared locks in {n} hits");
}

/// Random reads across 16 windows that all fit: after the first pass maps
/// them, every read is a hit or a switch — through a cursor and a buffer.
#[test]
fn a_switch_to_a_mapped_window_takes_none() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 2, 16 * 4 * g());
    let m = SlidingWindowMapManager::builder()
        .window_size(4 * g())
        .build();
    let mut c = m.make_cursor(&path).unwrap();
    let mut buf = SlidingWindowMapBuffer::new(m.make_cursor(&path).unwrap(), 0, u64::MAX).unwrap();
    for w in 0..16 {
        c.use_region(w * 4 * g(), 1).unwrap();
        buf.get(w * 4 * g()).unwrap();
    }
    let maps = m.stats().maps;
    let mut rng = 7u64;
    let (locks, n) = taken(|| {
        for _ in 0..10_000 {
            let at = xorshift(&mut rng) % bytes.len() as u64;
            assert_eq!(c.use_region(at, 1).unwrap().buffer()[0], bytes[at as usize]);
            assert_eq!(buf.get(at).unwrap(), bytes[at as usize]);
        }
        20_000
    });
    assert_eq!(locks, 0, "{locks} shared locks in {n} reads");
    drop((c, buf));
    let s = m.stats();
    assert_eq!(s.maps, maps, "nothing mapped anew");
    assert!(s.reuses > 10_000, "{s:?}");
}

/// Copy reads under a budget that holds no window: every read is a `pread`
/// through the file's cached descriptor, and once the evictor has found
/// nothing to evict, none asks it again.
#[test]
fn a_copy_read_not_admitted_takes_none() {
    let dir = tempfile::tempdir().unwrap();
    // Pages of the granularity, the least a copy reads (4 KiB; 64 KiB on
    // Windows), so that each read below is a copy read of its own.
    let page = g();
    let files: Vec<_> = (0..64)
        .map(|i| make_file(dir.path(), &format!("f{i}"), i, 16 * page))
        .collect();
    let m = SlidingWindowMapManager::builder()
        .window_size(16 * page)
        .max_memory_size(g())
        .max_open_handles(4096)
        .max_open_files(64)
        .build();
    let mut bufs: Vec<_> = files
        .iter()
        .map(|(p, _)| SlidingWindowMapBuffer::new(m.make_cursor(p).unwrap(), 0, u64::MAX).unwrap())
        .collect();
    // Warm up: every file's descriptor opened (that takes the ring's
    // lock), and the windows asked for often enough that one asks the
    // evictor, which finds nothing to evict: copy reads stop asking it.
    for round in 0..5u64 {
        for b in &mut bufs {
            b.get(round * page).unwrap();
        }
    }
    let (locks, n) = taken(|| {
        // Each file's one window read twice more, at other pages.
        for round in 5..7u64 {
            for (f, b) in bufs.iter_mut().enumerate() {
                let at = (round * page + page * (f as u64 % 8) + 100) % (16 * page);
                assert_eq!(b.get(at).unwrap(), files[f].1[at as usize]);
            }
        }
        128
    });
    assert_eq!(locks, 0, "{locks} shared locks in {n} copy reads");
    let s = m.stats();
    assert_eq!((s.maps, s.windows), (0, 0), "{s:?}");
    assert!(s.preads >= 5 * 64 + 128, "{s:?}");
}

/// A buffer that ends each access: its window goes back and is taken back
/// on the next read, over 4 files whose windows all fit.
#[test]
fn a_release_and_take_back_takes_none() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<_> = (0..4)
        .map(|i| make_file(dir.path(), &format!("f{i}"), i, 8 * g()))
        .collect();
    let m = SlidingWindowMapManager::builder()
        .window_size(8 * g())
        .build();
    let mut bufs: Vec<_> = files
        .iter()
        .map(|(p, _)| SlidingWindowMapBuffer::new(m.make_cursor(p).unwrap(), 0, u64::MAX).unwrap())
        .collect();
    let mut read = |i: u64| {
        let f = (i % 4) as usize;
        let at = i * 13 % (8 * g());
        let b = &mut bufs[f];
        b.begin_access(None, 0, u64::MAX).unwrap();
        assert_eq!(b.get(at).unwrap(), files[f].1[at as usize]);
        b.end_access();
    };
    for i in 0..4 {
        read(i);
    }
    let (locks, n) = taken(|| {
        for i in 0..10_000 {
            read(i);
        }
        10_000
    });
    assert_eq!(locks, 0, "{locks} shared locks in {n} reads");
    assert_eq!(m.stats().maps, 4);
}

/// A miss that maps a window within the limits takes its file's lock and
/// the budgets' atomics only; one that must evict takes the hand.
#[test]
fn a_miss_that_maps_takes_none_unless_it_evicts() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 9, 64 * g());
    let m = SlidingWindowMapManager::builder()
        .window_size(g())
        .max_open_handles(32)
        .build();
    let mut c = m.make_cursor(&path).unwrap();
    c.use_region(0, 1).unwrap();
    let (locks, n) = taken(|| {
        for w in 1..32 {
            assert_eq!(
                c.use_region(w * g(), 1).unwrap().buffer()[0],
                bytes[(w * g()) as usize]
            );
        }
        31
    });
    assert_eq!(locks, 0, "{locks} shared locks in {n} misses that map");
    assert_eq!(m.stats().maps, 32);
    let (locks, _) = taken(|| {
        c.use_region(40 * g(), 1).unwrap();
        1
    });
    assert!(locks > 0, "an eviction takes the hand, and is counted");
    assert_eq!(m.stats().evictions, 1);
}
