//! Deterministic release: once the manager and every cursor are dropped, no
//! mapping of ours is left in /proc/self/maps and no descriptor in
//! /proc/self/fd (while they live, only the descriptors the managers keep,
//! within `max_open_files`); descriptors the caller lends are never closed.
//!
//! Linux only: it reads `/proc`. (On Windows, where a mapped or open file
//! cannot be renamed over, `collect_lets_the_caller_replace_and_delete_the_file`
//! in `semantics.rs` shows the same release.)
#![cfg(target_os = "linux")]

mod common;

use std::os::fd::AsRawFd;

use common::{fds_under, g, make_file, maps_of};
use smmap::{SlidingWindowMapBuffer, SlidingWindowMapManager, StaticWindowMapManager};

#[test]
fn nothing_remains_after_ten_thousand_lifetimes() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<_> = (0..10)
        .map(|i| make_file(dir.path(), &format!("f{i}"), i, 4 * g() + i).0)
        .collect();
    let lent = std::fs::File::open(&files[0]).unwrap();
    {
        let m = SlidingWindowMapManager::builder()
            .window_size(g())
            .max_open_handles(8)
            .build();
        let s = StaticWindowMapManager::builder()
            .max_open_handles(3)
            .build();
        for i in 0..10_000u64 {
            let path = &files[(i % 10) as usize];
            let mut c = m.make_cursor(path).unwrap();
            c.use_region((i * 977) % (4 * g()), 0).unwrap();
            let copy = c.clone();
            let mut buf =
                SlidingWindowMapBuffer::new(s.make_cursor(path).unwrap(), i % 100, u64::MAX)
                    .unwrap();
            buf.get(0).unwrap();
            let mut fdc = m.make_cursor_fd(lent.as_raw_fd()).unwrap();
            fdc.use_region(i % (4 * g()), 0).unwrap();
            drop((copy, buf, fdc));
            // Our own descriptors: those the managers keep, no more.
            let kept = m.stats().open_descriptors + s.stats().open_descriptors;
            assert!(kept <= m.max_open_files() + s.max_open_files());
            assert_eq!(
                fds_under(dir.path()),
                1 + kept,
                "the lent one and the kept ones"
            );
        }
        assert!(m.num_file_handles() <= 8);
        assert!(files.iter().map(|p| maps_of(p)).sum::<usize>() > 0);
    }
    for p in &files {
        assert_eq!(maps_of(p), 0, "{} is still mapped", p.display());
    }
    assert_eq!(fds_under(dir.path()), 1);
    // SAFETY: F_GETFD only queries the descriptor table.
    let flags = unsafe { libc::fcntl(lent.as_raw_fd(), libc::F_GETFD) };
    assert_ne!(flags, -1, "lent descriptor closed");
}

#[test]
fn region_handles_keep_pages_after_collect_then_release() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 1, 2 * g());
    let m = SlidingWindowMapManager::new();
    let mut c = m.make_cursor(&path).unwrap();
    c.use_region(0, 0).unwrap();
    let kept = c.region().unwrap().clone();
    drop(c);
    assert_eq!(m.collect(), 1);
    assert_eq!(m.mapped_memory_size(), 0);
    assert_eq!(maps_of(&path), 1, "still mapped for the handle");
    assert_eq!(kept.as_slice(), &bytes[..]);
    drop(kept);
    assert_eq!(maps_of(&path), 0);
}
