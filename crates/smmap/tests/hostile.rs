//! Hostile input. A property test drives arbitrary operation sequences with
//! unconstrained arguments (any u64 offset, any usize size, extreme limits,
//! arbitrary patterns and seeks) through the public API: no panic, no
//! invariant broken. It stands in for a coverage-guided fuzzer, which needs
//! a nightly toolchain; `SMMAP_PROPTEST_CASES` raises the case count (CI
//! runs 20,000). Then a table of bad inputs, each with its expected error.

mod common;

use std::io::{Read, Seek, SeekFrom};

use common::{g, is_not_found, make_file, never_open, BAD_DESCRIPTOR, DEVICE};
use proptest::prelude::*;
use smmap::{
    Error, Manager, MapRegion, SlidingWindowMapBuffer, SlidingWindowMapManager,
    StaticWindowMapManager, WindowCursor,
};

#[derive(Clone, Debug)]
enum Op {
    Use(usize, u64, usize),
    Unuse(usize),
    Clone(usize),
    Drop(usize),
    Collect,
    CollectLru(u64),
    Buffer { offset: u64, size: u64 },
    Get(u64),
    Slice(u64, u64),
    ReadAt(u64, u16),
    Find(Vec<u8>, u64),
    Rfind(Vec<u8>, u64),
    Seek(i64, u8),
    Read(u16),
    Typed(u64, u8),
    Region(u64, u64),
}

fn any_offset() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        0..64 * 1024u64,
        Just(u64::MAX),
        Just(u64::MAX - 1)
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (
            0..6usize,
            any_offset(),
            prop_oneof![any::<usize>(), 0..10_000usize]
        )
            .prop_map(|(c, o, s)| Op::Use(c, o, s)),
        (0..6usize).prop_map(Op::Unuse),
        (0..6usize).prop_map(Op::Clone),
        (0..6usize).prop_map(Op::Drop),
        Just(Op::Collect),
        any::<u64>().prop_map(Op::CollectLru),
        (any_offset(), any_offset()).prop_map(|(offset, size)| Op::Buffer { offset, size }),
        any_offset().prop_map(Op::Get),
        (any_offset(), any_offset()).prop_map(|(a, b)| Op::Slice(a, b)),
        (any_offset(), any::<u16>()).prop_map(|(o, n)| Op::ReadAt(o, n)),
        (prop::collection::vec(any::<u8>(), 0..6), any_offset()).prop_map(|(p, s)| Op::Find(p, s)),
        (prop::collection::vec(any::<u8>(), 0..6), any_offset()).prop_map(|(p, s)| Op::Rfind(p, s)),
        (any::<i64>(), 0..3u8).prop_map(|(d, w)| Op::Seek(d, w)),
        any::<u16>().prop_map(Op::Read),
        (any_offset(), any::<u8>()).prop_map(|(o, t)| Op::Typed(o, t)),
        (any_offset(), any_offset()).prop_map(|(o, s)| Op::Region(o, s)),
    ]
}

fn limits() -> impl Strategy<Value = (bool, u64, u64, usize)> {
    (
        prop::bool::weighted(0.2),
        prop_oneof![Just(0u64), Just(1), Just(u64::MAX), 1..100_000u64],
        prop_oneof![Just(0u64), Just(1), Just(u64::MAX), 1..200_000u64],
        prop_oneof![Just(0usize), Just(1), Just(usize::MAX), 1..10usize],
    )
}

const TYPES: [&str; 10] = [
    "u8", "u16le", "u32be", "u64le", "i8", "i16be", "i32le", "i64be", "f32le", "f64be",
];

proptest! {
    #![proptest_config(common::proptest_config(300))]

    #[test]
    fn arbitrary_operations_never_panic_or_break_invariants(
        (is_static, window, memory, handles) in limits(),
        len in prop_oneof![Just(0u64), 1..(40 * 1024u64)],
        ops in prop::collection::vec(op(), 1..40),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (path, bytes) = make_file(dir.path(), "f", 3, len);
        let m: Manager = if is_static {
            StaticWindowMapManager::builder().window_size(window).max_memory_size(memory).max_open_handles(handles).build().into()
        } else {
            SlidingWindowMapManager::builder().window_size(window).max_memory_size(memory).max_open_handles(handles).build().into()
        };
        let mut cursors: Vec<WindowCursor> = vec![m.make_cursor(&path).unwrap()];
        let mut buf: Option<SlidingWindowMapBuffer> = None;
        for op in ops {
            let n = cursors.len().max(1);
            match op {
                Op::Use(c, o, s) if !cursors.is_empty() => {
                    if let Ok(c) = cursors[c % n].use_region(o, s) {
                        if c.is_valid() {
                            prop_assert_eq!(c.buffer(), &bytes[c.ofs_begin() as usize..c.ofs_end() as usize]);
                        }
                    }
                }
                Op::Unuse(c) if !cursors.is_empty() => cursors[c % n].unuse_region(),
                Op::Clone(c) if !cursors.is_empty() => { let copy = cursors[c % n].clone(); cursors.push(copy); }
                Op::Drop(c) if !cursors.is_empty() => { cursors.swap_remove(c % n); }
                Op::Collect => { m.collect(); }
                Op::CollectLru(size) => { m.collect_lru_region(size); }
                Op::Buffer { offset, size } => {
                    let made = SlidingWindowMapBuffer::new(m.make_cursor(&path).unwrap(), offset, size);
                    match &made {
                        Ok(b) => prop_assert!(offset < len && b.len() == size.min(len - offset)),
                        Err(Error::OutOfRange { .. }) => prop_assert!(offset >= len),
                        Err(e) => prop_assert!(matches!(e, Error::HandleLimit { .. }), "{}", e),
                    }
                    buf = made.ok();
                }
                Op::Get(i) => if let Some(b) = &mut buf {
                    if let Ok(v) = b.get(i) { prop_assert_eq!(v, bytes[(b.offset() + i) as usize]); }
                },
                Op::Slice(a, z) => if let Some(b) = &mut buf {
                    let off = b.offset();
                    if let Ok(s) = b.slice(a..z) { prop_assert_eq!(&*s, &bytes[(off + a) as usize..(off + z) as usize]); }
                },
                Op::ReadAt(o, k) => if let Some(b) = &mut buf {
                    let mut out = vec![0; k as usize];
                    let off = b.offset();
                    if let Ok(got) = b.read_at(o, &mut out) {
                        prop_assert_eq!(&out[..got], &bytes[(off + o) as usize..(off + o) as usize + got]);
                    }
                },
                Op::Find(p, s) => if let Some(b) = &mut buf {
                    let off = b.offset() as usize;
                    if let Ok(Some(at)) = b.find(&p, s) {
                        prop_assert!(at >= s);
                        prop_assert_eq!(&bytes[off + at as usize..off + at as usize + p.len()], &p[..]);
                    }
                },
                Op::Rfind(p, e) => if let Some(b) = &mut buf {
                    let off = b.offset() as usize;
                    if let Ok(Some(at)) = b.rfind(&p, e) {
                        prop_assert!(at + p.len() as u64 <= e.min(b.len()));
                        prop_assert_eq!(&bytes[off + at as usize..off + at as usize + p.len()], &p[..]);
                    }
                },
                Op::Seek(d, w) => if let Some(b) = &mut buf {
                    let to = match w { 0 => SeekFrom::Start(d as u64), 1 => SeekFrom::End(d), _ => SeekFrom::Current(d) };
                    let _ = b.seek(to);
                },
                Op::Read(k) => if let Some(b) = &mut buf {
                    let pos = b.position();
                    let mut out = vec![0; k as usize];
                    if let Ok(got) = b.read(&mut out) {
                        prop_assert!(got == 0 || pos < b.len());
                        let at = (b.offset() + pos.min(b.len())) as usize;
                        prop_assert_eq!(&out[..got], &bytes[at..at + got]);
                    }
                },
                Op::Typed(o, t) => if let Some(b) = &mut buf {
                    let _ = b.read_typed(o, TYPES[t as usize % TYPES.len()].parse().unwrap());
                },
                Op::Region(o, s) => {
                    if let Ok(r) = MapRegion::new(&path, o, s) {
                        prop_assert_eq!(r.as_slice(), &bytes[o as usize..r.ofs_end() as usize]);
                    }
                }
                _ => {}
            }
            if let Err(broken) = m.verify_invariants() {
                return Err(TestCaseError::fail(broken));
            }
        }
    }
}

/// Each bad input and the error it must give.
#[test]
fn bad_inputs_table() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = make_file(dir.path(), "f", 1, 3 * g());
    let (empty, _) = make_file(dir.path(), "empty", 1, 0);
    let missing = dir.path().join("missing");
    let m = SlidingWindowMapManager::new();
    type Check = fn(&Error) -> bool;
    let [(closed, _), (negative, _)] = never_open();
    let cases: Vec<(&str, Result<(), Error>, Check)> = vec![
        (
            "missing file",
            m.make_cursor(&missing).map(drop),
            is_not_found,
        ),
        ("directory", m.make_cursor(dir.path()).map(drop), |e| {
            matches!(e, Error::IsADirectory { .. })
        }),
        ("device", m.make_cursor(DEVICE).map(drop), |e| {
            matches!(e, Error::NotRegularFile { .. })
        }),
        ("closed fd", m.make_cursor(closed).map(drop), |e| {
            e.raw_os_error() == Some(BAD_DESCRIPTOR)
        }),
        (
            "negative or null fd",
            m.make_cursor(negative).map(drop),
            |e| e.raw_os_error() == Some(BAD_DESCRIPTOR),
        ),
        (
            "buffer past end",
            SlidingWindowMapBuffer::new(m.make_cursor(&path).unwrap(), 3 * g(), 1).map(drop),
            |e| matches!(e, Error::OutOfRange { .. }),
        ),
        (
            "buffer of empty file",
            SlidingWindowMapBuffer::new(m.make_cursor(&empty).unwrap(), 0, u64::MAX).map(drop),
            |e| matches!(e, Error::OutOfRange { .. }),
        ),
        (
            "unassociated buffer",
            SlidingWindowMapBuffer::new(WindowCursor::new(None), 0, 1).map(drop),
            |e| matches!(e, Error::NotAssociated),
        ),
        (
            "unaligned region",
            MapRegion::new(&path, 1, 1).map(drop),
            |e| matches!(e, Error::Unaligned { .. }),
        ),
        (
            "region past end",
            MapRegion::new(&path, u64::MAX - u64::MAX % g(), 1).map(drop),
            |e| matches!(e, Error::OutOfRange { .. }),
        ),
    ];
    for (what, result, check) in cases {
        let e = result.expect_err(what);
        assert!(check(&e), "{what}: unexpected {e:?}");
        assert!(!e.to_string().is_empty());
        if let Some(file) = e.file() {
            let shown = file.to_string();
            assert!(
                e.to_string().contains(&shown),
                "{what}: {e} does not name {shown}"
            );
        }
    }
    // Invalid, not an error: offsets at or past the end.
    let mut c = m.make_cursor(&path).unwrap();
    for o in [3 * g(), u64::MAX] {
        assert!(!c.use_region(o, usize::MAX).unwrap().is_valid());
    }
}
