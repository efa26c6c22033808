//! Many threads on one manager with tight limits: every byte read checked,
//! invariants checked at the end.

mod common;

use std::sync::Arc;

use common::{byte, g, make_file, stress_ops, xorshift};
use smmap::{SlidingWindowMapBuffer, SlidingWindowMapManager, WindowCursor};

/// 8 threads × random operations on 16 files, 2-page windows, a memory limit
/// of 24 pages, 32 handles and 4 descriptors: each thread holds at most 3
/// cursors and a buffer, so 32 regions may be in use at once and no use may
/// be refused.
/// The `SMMAP_STRESS_OPS` variable raises the
/// operation count (the reliability run uses 100,000 per thread).
#[test]
fn eight_threads_tight_limits() {
    tight_limits(8);
}

/// The same with 16 threads, 64 handles and 48 pages.
#[test]
fn sixteen_threads_tight_limits() {
    tight_limits(16);
}

/// `n` threads × random operations on 16 files, 2-page windows, a memory
/// limit of 3 pages per thread, 4 handles per thread and 4 descriptors.
fn tight_limits(n: u64) {
    let handles = 4 * n as usize;
    let ops = stress_ops();
    let dir = tempfile::tempdir().unwrap();
    let files: Arc<Vec<_>> = Arc::new(
        (0..16)
            .map(|i| {
                (
                    make_file(dir.path(), &format!("f{i}"), i, (i + 1) * 3 * g() + i * 77).0,
                    i,
                )
            })
            .collect(),
    );
    let m = SlidingWindowMapManager::builder()
        .window_size(2 * g())
        .max_memory_size(3 * n * g())
        .max_open_handles(handles)
        // Four descriptors for 16 files: threads close each other's while
        // they read through them.
        .max_open_files(4)
        .build();
    let threads: Vec<_> = (0..n)
        .map(|t| {
            let m = m.manager().clone();
            let files = files.clone();
            std::thread::spawn(move || {
                let mut rng = 0x1234_5678 ^ ((t + 1) * 0x9E37_79B9);
                let mut held: Vec<(u64, WindowCursor)> = Vec::new();
                let mut verified = 0u64;
                for _ in 0..ops {
                    let r = xorshift(&mut rng);
                    match r % 10 {
                        0 | 1 if held.len() < 2 => {
                            let (path, seed) = &files[(r >> 8) as usize % files.len()];
                            held.push((*seed, m.make_cursor(path).unwrap()));
                        }
                        0..=5 if !held.is_empty() => {
                            let i = (r >> 8) as usize % held.len();
                            let (seed, c) = &mut held[i];
                            let fsize = c.file_size().unwrap();
                            let ofs = (r >> 16) % fsize;
                            match c.use_region(ofs, 0) {
                                Ok(c) => {
                                    let b = c.buffer();
                                    assert_eq!(b[0], byte(*seed, ofs));
                                    let last = b.len() as u64 - 1;
                                    assert_eq!(b[last as usize], byte(*seed, ofs + last));
                                    verified += 2;
                                }
                                // At most 4 per thread are in use at once,
                                // so a refusal would be a bug.
                                Err(e) => panic!("refused: {e}"),
                            }
                        }
                        6 if !held.is_empty() => {
                            let i = (r >> 8) as usize % held.len();
                            let copy = held[i].1.clone();
                            let seed = held[i].0;
                            held.push((seed, copy));
                            if held.len() > 3 {
                                held.remove(0);
                            }
                        }
                        7 if !held.is_empty() => {
                            held.swap_remove((r >> 8) as usize % held.len());
                        }
                        8 if (r >> 8) % 4 == 0 => {
                            // The invariant check, among the other threads'
                            // reads and evictions: exact only when they
                            // stop, so its verdict is not asked here, but
                            // it must neither panic nor read a cell being
                            // emptied (it holds the evictor's hand).
                            let _ = m.verify_invariants();
                        }
                        8 => {
                            m.collect();
                        }
                        9 if !held.is_empty() => {
                            // Release and take back: without the lock,
                            // racing the other threads' evictions.
                            let i = (r >> 8) as usize % held.len();
                            let (seed, c) = &mut held[i];
                            let ofs = (r >> 16) % c.file_size().unwrap();
                            for _ in 0..2 {
                                let b = c.use_region(ofs, 1).unwrap().buffer();
                                assert_eq!(b[0], byte(*seed, ofs));
                                verified += 1;
                                c.unuse_region();
                            }
                        }
                        _ => {
                            let (path, seed) = &files[(r >> 8) as usize % files.len()];
                            let mut buf = SlidingWindowMapBuffer::new(
                                m.make_cursor(path).unwrap(),
                                0,
                                u64::MAX,
                            )
                            .unwrap();
                            let start = (r >> 20) % buf.len();
                            let n = ((r >> 40) % 9000).min(buf.len() - start);
                            let got = buf.slice(start..start + n).unwrap();
                            for (k, &b) in got.iter().enumerate().step_by(97) {
                                assert_eq!(b, byte(*seed, start + k as u64));
                                verified += 1;
                            }
                        }
                    }
                }
                verified
            })
        })
        .collect();
    let mut verified = 0;
    for t in threads {
        verified += t.join().expect("no thread panics");
    }
    assert!(verified > ops);
    m.verify_invariants().unwrap();
    let s = m.stats();
    eprintln!(
        "stress: {n} threads x {ops} operations, {verified} bytes verified, {} maps, {} evictions, {} collected, {} waits, peak {} windows (limit {handles})",
        s.maps, s.evictions, s.collected, s.waits, s.peak_windows
    );
    assert!(s.peak_windows <= handles);
    assert!(s.evictions > 0, "tight limits must evict: {s:?}");
    m.collect();
    assert_eq!(m.mapped_memory_size(), 0);
    assert_eq!(m.stats().known_files, 0);
}

#[test]
fn cursors_and_buffers_move_between_threads() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 1, 8 * g());
    let m = SlidingWindowMapManager::builder().window_size(g()).build();
    let mut c = m.make_cursor(&path).unwrap();
    c.use_region(g(), 0).unwrap();
    let buf = SlidingWindowMapBuffer::new(m.make_cursor(&path).unwrap(), 0, u64::MAX).unwrap();
    let (c, mut buf) = std::thread::spawn(move || {
        assert_eq!(c.buffer()[0], byte(1, g()));
        (c, buf)
    })
    .join()
    .unwrap();
    assert_eq!(c.buffer()[0], bytes[g() as usize]);
    assert_eq!(buf.get(5 * g()).unwrap(), bytes[5 * g() as usize]);
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<smmap::Manager>();
    is_send_sync::<WindowCursor>();
    is_send_sync::<SlidingWindowMapBuffer>();
    is_send_sync::<smmap::MapRegion>();
}

/// Threads missing on the same offset at the same moment map one window,
/// once: the others wait for it (a window being mapped sits in its file's
/// slots) or find it mapped, and share it. Whether a round races depends on
/// the scheduler (under valgrind threads rarely overlap), so the test checks
/// what must hold either way, every round; the wake-up of the waiters is
/// model-checked with loom (`signal.rs`
/// `loom_a_change_under_the_lock_wakes_every_waiter`).
#[test]
fn racing_misses_share_one_region() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 3, 64 * g());
    let bytes = Arc::new(bytes);
    let m = SlidingWindowMapManager::builder()
        .window_size(4 * g())
        .build();
    let barrier = Arc::new(std::sync::Barrier::new(4));
    let rounds = 300;
    for round in 1..=rounds {
        m.collect();
        let ofs = (round % 60) * g() + 17;
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let (m, b, bytes, path) = (
                    m.manager().clone(),
                    barrier.clone(),
                    bytes.clone(),
                    path.clone(),
                );
                std::thread::spawn(move || {
                    let mut c = m.make_cursor(&path).unwrap();
                    b.wait();
                    c.use_region(ofs, 0).unwrap();
                    assert_eq!(c.buffer()[0], bytes[ofs as usize]);
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        m.verify_invariants().unwrap();
        assert_eq!(m.stats().maps, round, "one window mapped per round");
    }
    let s = m.stats();
    eprintln!("racing misses: {} waits in {rounds} rounds", s.waits);
}

/// The memory limit with threads racing: 16 threads, each with one cursor
/// on a file of its own, one-page windows, a limit of 4 pages. While every
/// region is in use the limit is passed — by no more than the windows the
/// cursors hold (one each, and one more for the moment between a release
/// and its eviction) — and once the cursors are gone nothing unused stays
/// over it.
#[test]
fn sixteen_threads_pass_the_memory_limit_only_by_the_windows_in_use() {
    let ops = stress_ops();
    let dir = tempfile::tempdir().unwrap();
    let files: Arc<Vec<_>> = Arc::new(
        (0..16)
            .map(|i| make_file(dir.path(), &format!("f{i}"), i, 64 * g()).0)
            .collect(),
    );
    let m = SlidingWindowMapManager::builder()
        .window_size(g())
        .max_memory_size(4 * g())
        .build();
    // Every thread holds a window at once first: 16 pages in use against a
    // limit of 4, so the limit is passed whatever the scheduling.
    let all_in_use = Arc::new(std::sync::Barrier::new(16));
    let threads: Vec<_> = (0..16u64)
        .map(|t| {
            let (m, files, all_in_use) = (m.manager().clone(), files.clone(), all_in_use.clone());
            std::thread::spawn(move || {
                let mut c = m.make_cursor(&files[t as usize]).unwrap();
                assert_eq!(c.use_region(0, 1).unwrap().buffer()[0], byte(t, 0));
                all_in_use.wait();
                let mut rng = 0xdead_beef ^ ((t + 1) * 0x9E37_79B9);
                for _ in 0..ops {
                    let r = xorshift(&mut rng);
                    if r % 5 == 0 {
                        c.unuse_region();
                        continue;
                    }
                    let ofs = (r >> 8) % (64 * g());
                    assert_eq!(c.use_region(ofs, 1).unwrap().buffer()[0], byte(t, ofs));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("no thread panics");
    }
    let s = m.stats();
    eprintln!(
        "memory limit 4 pages, 16 threads: peak {} pages mapped, peak {} pages over, {} evictions",
        s.peak_mapped_bytes / g(),
        s.peak_over_limit_bytes / g(),
        s.evictions
    );
    assert!(s.peak_over_limit_bytes > 0, "the limit was passed: {s:?}");
    assert!(
        s.peak_mapped_bytes <= 17 * g(),
        "more than the windows in use and one: {s:?}"
    );
    assert_eq!(s.over_limit_bytes, 0, "released windows went: {s:?}");
    m.verify_invariants().unwrap();
}
