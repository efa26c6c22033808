//! Coverage-guided fuzzing of the public API: arbitrary limits and operation
//! sequences over three files, interleaved with operations that make the
//! next open or mapping fail (the file removed, renamed over, truncated; a
//! refused mapping); any panic, crash, wrong byte or broken invariant is a
//! finding, and so is a window or byte still mapped once every cursor is
//! dropped and the manager collected. (A panic injected in place of a
//! mapping is the model test's: libFuzzer takes every panic for a crash.)
//! Run with `scripts/fuzz` (nightly toolchain and cargo-fuzz).
#![no_main]

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use smmap::{
    Manager, ReadPolicy, SlidingWindowMapBuffer, SlidingWindowMapManager, StaticWindowMapManager,
    WindowCursor,
};

#[derive(Arbitrary, Debug)]
struct Input {
    is_static: bool,
    /// `ReadPolicy::AlwaysMap` instead of the adaptive policy.
    always_map: bool,
    window: u32,
    memory: u32,
    handles: u8,
    /// Descriptors kept (`max_open_files`, at least 1): few, so that one is
    /// closed for another in the middle of reads.
    open_files: u8,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Make(u8),
    Use(u8, u64, usize),
    Unuse(u8),
    /// Release the cursor's region and take it back at the same offset
    /// (without the manager's lock once it lists the region).
    UnuseAndTakeBack(u8),
    Clone(u8),
    Drop(u8),
    Collect,
    CollectLru(u64),
    Buffer(u8, u64, u64),
    Get(u64),
    Slice(u64, u64),
    ReadAt(u64, u16),
    Find(Vec<u8>, u64),
    Rfind(Vec<u8>, u64),
    Seek(i64, u8),
    Read(u16),
    Typed(u64, u8),
    Remove(u8),
    Replace(u8),
    TruncateAndRestore(u8, u64),
    Refuse(u8, bool),
    /// `end_access`, then `begin_access` at (offset, size): the buffer's
    /// release and take-back, between its copy reads.
    Reopen(u64, u64),
    /// `read_at` through a cursor, at an absolute offset: a copy read
    /// between the cursor's releases and take-backs.
    CursorReadAt(u8, u64, u16),
    /// `find` (or `rfind`, with the last field) of bytes taken from the
    /// buffer's file at (offset, length), from (or up to) an index: the
    /// answer, match or none, is checked against the file's bytes.
    FindPlanted(u64, u8, u64, bool),
}

/// The bytes of version `v` (0: as created, 1: renamed over) of file `i`:
/// a hash of the three, so that no run of bytes repeats at another offset,
/// in another file or in the other version (a window placed a page off
/// reads other bytes).
fn version(i: usize, len: usize, v: usize) -> Vec<u8> {
    (0..len)
        .map(|k| {
            let x = (k as u64) | (i as u64) << 40 | (v as u64) << 48;
            (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8
        })
        .collect()
}

/// `o` reduced to an offset of file `f` or a little past its end (most
/// raw offsets are far past it, where nothing is read).
fn near(f: usize, o: u64) -> u64 {
    o % (LENS[f] as u64 + 64)
}

const LENS: [usize; 3] = [0, 5000, 70_000];

/// The files, written afresh for each input (the previous input may have
/// removed, replaced or truncated them).
fn files() -> Vec<PathBuf> {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("smmap-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    });
    LENS.iter()
        .enumerate()
        .map(|(i, &len)| {
            let p = dir.join(format!("f{i}"));
            let _ = std::fs::remove_file(&p);
            std::fs::write(&p, version(i, len, 0)).unwrap();
            p
        })
        .collect()
}

/// True if `got` at `ofs` is a version of file `i`.
fn is_version(i: usize, ofs: usize, got: &[u8]) -> bool {
    (0..2).any(|v| version(i, LENS[i], v).get(ofs..ofs + got.len()) == Some(got))
}

/// Where `p` is in the bytes `[lo, hi)` of version `v` of file `i`,
/// relative to `lo`: the first place at or after `from`, or (`rev`) the
/// last one ending at or before `from`.
fn place_of(
    i: usize,
    v: usize,
    lo: usize,
    hi: usize,
    p: &[u8],
    from: usize,
    rev: bool,
) -> Option<usize> {
    let bytes = version(i, LENS[i], v);
    let hay = bytes.get(lo..hi)?;
    let fits = |at: usize| hay.get(at..at + p.len()) == Some(p);
    if rev {
        let last = from.min(hay.len()).checked_sub(p.len())?;
        (0..=last).rev().find(|&at| fits(at))
    } else {
        (from..hay.len()).find(|&at| fits(at))
    }
}

const TYPES: [&str; 10] = [
    "u8", "u16le", "u32be", "u64le", "i8", "i16be", "i32le", "i64be", "f32le", "f64be",
];

fuzz_target!(|input: Input| {
    let fs = files();
    let policy = if input.always_map {
        ReadPolicy::AlwaysMap
    } else {
        ReadPolicy::Adaptive
    };
    let m: Manager = if input.is_static {
        StaticWindowMapManager::builder()
            .window_size(input.window as u64)
            .max_memory_size(input.memory as u64)
            .max_open_handles(input.handles as usize)
            .max_open_files(usize::from(input.open_files % 8))
            .read_policy(policy)
            .build()
            .into()
    } else {
        SlidingWindowMapManager::builder()
            .window_size(input.window as u64)
            .max_memory_size(input.memory as u64)
            .max_open_handles(input.handles as usize)
            .max_open_files(usize::from(input.open_files % 8))
            .read_policy(policy)
            .build()
            .into()
    };
    let mut cursors: Vec<(usize, WindowCursor)> = Vec::new();
    let mut buf: Option<(usize, SlidingWindowMapBuffer)> = None;
    for op in input.ops.into_iter().take(64) {
        let n = cursors.len().max(1);
        // Reads that copy (the buffer's) never fail for lack of a handle
        // and never map past the memory limit under the adaptive policy.
        let copy_read = policy == ReadPolicy::Adaptive
            && matches!(
                op,
                Op::Get(_)
                    | Op::Slice(..)
                    | Op::ReadAt(..)
                    | Op::Find(..)
                    | Op::Rfind(..)
                    | Op::Read(_)
                    | Op::Typed(..)
                    | Op::CursorReadAt(..)
            );
        let excess_before = m.stats().over_limit_bytes;
        let over_before = m.stats().peak_over_limit_bytes;
        let mut handle_limit = false;
        match op {
            Op::Make(f) => {
                let f = f as usize % fs.len();
                if let Ok(c) = m.make_cursor(&fs[f]) {
                    cursors.push((f, c));
                }
            }
            Op::Use(c, o, s) if !cursors.is_empty() => {
                let (f, c) = &mut cursors[c as usize % n];
                if let Ok(c) = c.use_region(near(*f, o), s) {
                    if c.is_valid() {
                        assert!(is_version(*f, c.ofs_begin() as usize, c.buffer()));
                    }
                }
            }
            Op::Unuse(c) if !cursors.is_empty() => cursors[c as usize % n].1.unuse_region(),
            Op::UnuseAndTakeBack(c) if !cursors.is_empty() => {
                let (f, c) = &mut cursors[c as usize % n];
                if c.is_valid() {
                    let (o, s) = (c.ofs_begin(), c.size());
                    c.unuse_region();
                    if let Ok(c) = c.use_region(o, s) {
                        assert!(is_version(*f, o as usize, c.buffer()));
                    }
                }
            }
            Op::Clone(c) if !cursors.is_empty() => {
                let (f, c) = &cursors[c as usize % n];
                let copy = (*f, c.clone());
                cursors.push(copy);
            }
            Op::Drop(c) if !cursors.is_empty() => {
                cursors.swap_remove(c as usize % n);
            }
            Op::Collect => {
                m.collect();
            }
            Op::CollectLru(s) => {
                m.collect_lru_region(s);
            }
            Op::Buffer(f, o, s) => {
                let f = f as usize % fs.len();
                buf = m
                    .make_cursor(&fs[f])
                    .and_then(|c| SlidingWindowMapBuffer::new(c, near(f, o), s))
                    .ok()
                    .map(|b| (f, b));
            }
            Op::Get(i) => {
                if let Some((f, b)) = &mut buf {
                    match b.get(i) {
                        Ok(v) => assert!(is_version(*f, (b.offset() + i) as usize, &[v])),
                        Err(e) => handle_limit = matches!(e, smmap::Error::HandleLimit { .. }),
                    }
                }
            }
            Op::Slice(a, z) => {
                if let Some((f, b)) = &mut buf {
                    let off = b.offset() as usize;
                    match b.slice(a..z) {
                        Ok(s) => {
                            assert!(is_version(*f, off + a as usize, &s));
                            assert_eq!(s.len() as u64, z - a);
                        }
                        Err(e) => handle_limit = matches!(e, smmap::Error::HandleLimit { .. }),
                    }
                }
            }
            Op::ReadAt(o, k) => {
                if let Some((f, b)) = &mut buf {
                    let mut out = vec![0; k as usize];
                    let off = b.offset() as usize;
                    match b.read_at(o, &mut out) {
                        Ok(got) => assert!(is_version(*f, off + o as usize, &out[..got])),
                        Err(e) => handle_limit = matches!(e, smmap::Error::HandleLimit { .. }),
                    }
                }
            }
            Op::Find(p, s) => {
                if let Some((f, b)) = &mut buf {
                    let off = b.offset() as usize;
                    if let Ok(Some(at)) = b.find(&p, s) {
                        assert!(is_version(*f, off + at as usize, &p));
                    }
                }
            }
            Op::Rfind(p, e) => {
                if let Some((f, b)) = &mut buf {
                    let off = b.offset() as usize;
                    if let Ok(Some(at)) = b.rfind(&p, e) {
                        assert!(is_version(*f, off + at as usize, &p));
                    }
                }
            }
            Op::Seek(d, w) => {
                if let Some((_, b)) = &mut buf {
                    let to = match w % 3 {
                        0 => SeekFrom::Start(d as u64),
                        1 => SeekFrom::End(d),
                        _ => SeekFrom::Current(d),
                    };
                    let _ = b.seek(to);
                }
            }
            Op::Read(k) => {
                if let Some((f, b)) = &mut buf {
                    let mut out = vec![0; k as usize];
                    let (off, len) = (b.offset(), b.len());
                    let pos = b.stream_position().unwrap();
                    if let Ok(n) = b.read(&mut out) {
                        assert_eq!(n as u64, u64::from(k).min(len.saturating_sub(pos)));
                        // Nothing read (at or past the end, where a seek
                        // may go) has no bytes to compare.
                        assert!(n == 0 || is_version(*f, (off + pos) as usize, &out[..n]));
                    }
                }
            }
            Op::FindPlanted(o, k, from, rev) => {
                if let Some((f, b)) = &mut buf {
                    let (off, len) = (b.offset() as usize, b.len() as usize);
                    if len > 0 {
                        let at = o as usize % len;
                        let k = (1 + k as usize % 16).min(len - at);
                        let p = version(*f, LENS[*f], 0)[off + at..off + at + k].to_vec();
                        let from = (from % (len as u64 + 1)) as usize;
                        let got = if rev {
                            b.rfind(&p, from as u64)
                        } else {
                            b.find(&p, from as u64)
                        };
                        // The file is one version or the other (renamed over).
                        if let Ok(got) = got {
                            let got = got.map(|g| g as usize);
                            assert!(
                                (0..2)
                                    .any(|v| place_of(*f, v, off, off + len, &p, from, rev) == got),
                                "{got:?} for a pattern at {at}, from {from}, rev {rev}"
                            );
                        }
                    }
                }
            }
            Op::Typed(o, t) => {
                if let Some((_, b)) = &mut buf {
                    let _ = b.read_typed(o, TYPES[t as usize % TYPES.len()].parse().unwrap());
                }
            }
            Op::Remove(f) => {
                let _ = std::fs::remove_file(&fs[f as usize % fs.len()]);
            }
            Op::Replace(f) => {
                let i = f as usize % fs.len();
                let tmp = fs[i].with_extension("new");
                std::fs::write(&tmp, version(i, LENS[i], 1)).unwrap();
                std::fs::rename(&tmp, &fs[i]).unwrap();
            }
            Op::TruncateAndRestore(f, o) => {
                // While truncated, only a new cursor is used (no mapped
                // byte is read: that would be SIGBUS, true of every mmap
                // user); then the bytes are put back in place.
                let i = f as usize % fs.len();
                if let Ok(meta) = std::fs::metadata(&fs[i]) {
                    let file = std::fs::OpenOptions::new()
                        .write(true)
                        .open(&fs[i])
                        .unwrap();
                    let now = std::fs::read(&fs[i]).unwrap();
                    file.set_len(meta.len() / 2).unwrap();
                    if let Ok(mut c) = m.make_cursor(&fs[i]) {
                        let _ = c.use_region(o % (meta.len() + 1), 1);
                    }
                    std::os::unix::fs::FileExt::write_all_at(&file, &now, 0).unwrap();
                }
            }
            Op::Refuse(n, enomem) => {
                m.fail_next_maps(
                    n as usize % 4,
                    if enomem { libc::ENOMEM } else { libc::EACCES },
                );
            }
            Op::Reopen(o, s) => {
                if let Some((f, b)) = &mut buf {
                    b.end_access();
                    assert!(b.is_empty() && !b.cursor().is_valid());
                    if b.begin_access(None, near(*f, o), s).is_err() {
                        assert!(b.is_empty());
                    }
                }
            }
            Op::CursorReadAt(c, o, k) if !cursors.is_empty() => {
                let (f, c) = &mut cursors[c as usize % n];
                let o = near(*f, o);
                let mut out = vec![0; k as usize];
                match c.read_at(o, &mut out) {
                    Ok(got) => {
                        // The entry's size: one met while the file was cut
                        // short stays so (its inode unchanged).
                        let size = c.file_size().unwrap_or(0);
                        assert_eq!(got as u64, u64::from(k).min(size.saturating_sub(o)));
                        assert!(is_version(*f, o as usize, &out[..got]));
                    }
                    Err(e) => handle_limit = matches!(e, smmap::Error::HandleLimit { .. }),
                }
            }
            _ => {}
        }
        if let Err(broken) = m.verify_invariants() {
            panic!("invariant broken: {broken}");
        }
        if copy_read {
            assert!(!handle_limit, "a copy read failed for lack of a handle");
            let s = m.stats();
            assert_eq!(
                s.peak_over_limit_bytes, over_before,
                "a copy read mapped past the limit"
            );
            assert!(
                s.over_limit_bytes <= excess_before,
                "a copy read mapped past the limit"
            );
        }
    }
    // Nothing is left in use once every cursor is gone.
    m.fail_next_maps(0, 0);
    drop(buf);
    drop(cursors);
    m.collect();
    let s = m.stats();
    assert_eq!(
        (s.windows, s.mapped_bytes),
        (0, 0),
        "a region outlived its cursors"
    );
});
