//! The buffer: relative indexing, stitched slices, io traits, typed reads and
//! searches that straddle windows.

mod common;

use std::borrow::Cow;
use std::io::{BufRead, Read, Seek, SeekFrom};

use common::{g, make_file};
use smmap::{AccessHint, Endian, Error, SlidingWindowMapBuffer, SlidingWindowMapManager, Value};

fn small_windows() -> SlidingWindowMapManager {
    SlidingWindowMapManager::builder()
        .window_size(g())
        .max_memory_size(3 * g())
        .build()
}

#[test]
fn indices_are_relative_to_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let len = 5 * g() + 17;
    let (path, bytes) = make_file(dir.path(), "f", 1, len);
    let m = small_windows();
    let off = g() + 3;
    let mut buf =
        SlidingWindowMapBuffer::new(m.make_cursor(&path).unwrap(), off, u64::MAX).unwrap();
    assert_eq!(buf.offset(), off);
    assert_eq!(buf.len(), len - off);
    for i in [0, 1, g(), 2 * g() - 1, len - off - 1] {
        assert_eq!(buf.get(i).unwrap(), bytes[(off + i) as usize], "index {i}");
    }
    let e = buf.get(len - off).unwrap_err();
    assert!(matches!(e, Error::OutOfRange { .. }), "{e}");
    // A size smaller than the rest of the file is kept.
    let mut buf = SlidingWindowMapBuffer::new(m.make_cursor(&path).unwrap(), 10, 100).unwrap();
    assert_eq!(buf.len(), 100);
    assert!(buf.get(100).is_err());
    assert_eq!(buf.get(99).unwrap(), bytes[109]);
}

#[test]
fn slices_borrow_within_a_window_and_stitch_across() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 2, 6 * g());
    let m = small_windows();
    let mut buf = SlidingWindowMapBuffer::new(m.make_cursor(&path).unwrap(), 0, u64::MAX).unwrap();
    let within = buf.slice(10..100).unwrap();
    assert!(matches!(within, Cow::Borrowed(_)));
    assert_eq!(&*within, &bytes[10..100]);
    let across = buf.slice(g() - 10..3 * g() + 10).unwrap();
    assert!(matches!(across, Cow::Owned(_)));
    assert_eq!(&*across, &bytes[g() as usize - 10..3 * g() as usize + 10]);
    // The whole file, through a memory limit of three windows.
    assert_eq!(&*buf.slice(0..6 * g()).unwrap(), &bytes[..]);
    assert!(buf.slice(0..0).unwrap().is_empty());
    #[allow(clippy::reversed_empty_ranges)]
    let reversed = 5..4;
    assert!(buf.slice(reversed).is_err());
    assert!(buf.slice(0..6 * g() + 1).is_err());
    assert!(m.mapped_memory_size() <= 3 * g());
    m.verify_invariants().unwrap();
}

#[test]
fn read_at_copies_across_windows() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 3, 4 * g() + 5);
    let m = small_windows();
    let mut buf = SlidingWindowMapBuffer::new(m.make_cursor(&path).unwrap(), 0, u64::MAX).unwrap();
    let mut out = vec![0; 2 * g() as usize];
    assert_eq!(buf.read_at(g() / 2, &mut out).unwrap(), out.len());
    assert_eq!(out, &bytes[g() as usize / 2..g() as usize / 2 + out.len()]);
    // Short at the end, zero exactly at it, an error past it.
    let mut out = vec![0; 100];
    assert_eq!(buf.read_at(4 * g(), &mut out).unwrap(), 5);
    assert_eq!(buf.read_at(4 * g() + 5, &mut out).unwrap(), 0);
    assert!(buf.read_at(4 * g() + 6, &mut out).is_err());
    assert!(buf.read_exact_at(4 * g(), &mut out).is_err());
    assert!(buf.read_exact_at(u64::MAX, &mut out).is_err());
}

#[test]
fn io_traits_read_the_whole_view() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 4, 5 * g() + 99);
    let m = small_windows();
    let off = 1000;
    let mut buf =
        SlidingWindowMapBuffer::new(m.make_cursor(&path).unwrap(), off, u64::MAX).unwrap();
    let mut all = Vec::new();
    buf.read_to_end(&mut all).unwrap();
    assert_eq!(all, &bytes[off as usize..]);
    assert_eq!(buf.read(&mut [0; 10]).unwrap(), 0);

    // BufRead hands out whole windows without copying (with the adaptive
    // policy, under this 3-page budget, a cold window is a 64 KiB copy).
    let always = SlidingWindowMapManager::builder()
        .window_size(g())
        .max_memory_size(3 * g())
        .read_policy(smmap::ReadPolicy::AlwaysMap)
        .build();
    let mut buf =
        SlidingWindowMapBuffer::new(always.make_cursor(&path).unwrap(), off, u64::MAX).unwrap();
    let mut total = 0;
    loop {
        let chunk = buf.fill_buf().unwrap();
        if chunk.is_empty() {
            break;
        }
        // Aligning an unaligned start may add one granule to a window.
        assert!(chunk.len() as u64 <= 2 * g());
        assert_eq!(
            chunk,
            &bytes[(off + total) as usize..(off + total) as usize + chunk.len()]
        );
        let n = chunk.len();
        total += n as u64;
        buf.consume(n);
    }
    assert_eq!(total, buf.len());

    assert_eq!(buf.seek(SeekFrom::End(-10)).unwrap(), buf.len() - 10);
    let mut tail = Vec::new();
    buf.read_to_end(&mut tail).unwrap();
    assert_eq!(tail, &bytes[bytes.len() - 10..]);
    assert_eq!(buf.seek(SeekFrom::Current(-5)).unwrap(), buf.len() - 5);
    assert!(buf
        .seek(SeekFrom::Current(-(buf.len() as i64) - 1))
        .is_err());
    assert_eq!(buf.seek(SeekFrom::Start(u64::MAX)).unwrap(), u64::MAX);
    assert_eq!(buf.read(&mut [0; 4]).unwrap(), 0);
    assert_eq!(buf.position(), u64::MAX);
    let mut lines = 0;
    buf.seek(SeekFrom::Start(0)).unwrap();
    for _ in (&mut buf).split(0) {
        lines += 1;
    }
    assert!(lines > 0);
}

#[test]
fn typed_reads_in_both_orders_across_a_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t");
    let mut data = vec![0u8; 3 * g() as usize];
    let at = g() as usize - 3; // straddles the first window boundary
    data[at..at + 8].copy_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
    data[10..14].copy_from_slice(&(-2i32).to_le_bytes());
    data[20..28].copy_from_slice(&1.25f64.to_be_bytes());
    std::fs::write(&path, &data).unwrap();
    let m = small_windows();
    let mut buf = SlidingWindowMapBuffer::new(m.make_cursor(&path).unwrap(), 0, u64::MAX).unwrap();
    assert_eq!(
        buf.read_be::<u64>(at as u64).unwrap(),
        0x0102_0304_0506_0708
    );
    assert_eq!(
        buf.read_le::<u64>(at as u64).unwrap(),
        0x0807_0605_0403_0201
    );
    assert_eq!(buf.read_be::<u16>(at as u64 + 2).unwrap(), 0x0304);
    assert_eq!(buf.read_le::<i32>(10).unwrap(), -2);
    assert_eq!(buf.read_value::<f64>(20, Endian::Big).unwrap(), 1.25);
    assert_eq!(buf.read_le::<u8>(at as u64).unwrap(), 1);
    assert_eq!(
        buf.read_typed(10, "i32le".parse().unwrap()).unwrap(),
        Value::I32(-2)
    );
    assert_eq!(
        buf.read_typed(20, "f64be".parse().unwrap())
            .unwrap()
            .to_string(),
        "1.25"
    );
    let e = buf.read_le::<u32>(3 * g() - 3).unwrap_err();
    assert!(matches!(e, Error::OutOfRange { .. }), "{e}");
}

#[test]
fn find_sees_matches_straddling_windows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let mut data = vec![b'.'; 4 * g() as usize];
    let needle = b"NEEDLE";
    let spots = [
        5usize,
        g() as usize - 3,
        2 * g() as usize - 1,
        3 * g() as usize,
        4 * g() as usize - 6,
    ];
    for &s in &spots {
        data[s..s + needle.len()].copy_from_slice(needle);
    }
    std::fs::write(&path, &data).unwrap();
    let m = small_windows();
    let mut buf = SlidingWindowMapBuffer::new(m.make_cursor(&path).unwrap(), 0, u64::MAX).unwrap();
    let found: Vec<u64> = buf.find_iter(needle).collect::<Result<_, _>>().unwrap();
    assert_eq!(found, spots.iter().map(|&s| s as u64).collect::<Vec<_>>());
    assert_eq!(buf.find(needle, 6).unwrap(), Some(spots[1] as u64));
    assert_eq!(buf.find(b"absent", 0).unwrap(), None);
    assert_eq!(buf.find(b"", 7).unwrap(), Some(7));
    assert_eq!(buf.find(b"", 4 * g() + 1).unwrap(), None);
    // rfind walks backwards, also across boundaries.
    assert_eq!(buf.rfind(needle, u64::MAX).unwrap(), Some(spots[4] as u64));
    assert_eq!(
        buf.rfind(needle, 3 * g() + 5).unwrap(),
        Some(spots[2] as u64)
    );
    assert_eq!(
        buf.rfind(needle, 3 * g() + 6).unwrap(),
        Some(spots[3] as u64)
    );
    assert_eq!(
        buf.rfind(needle, 2 * g() + 4).unwrap(),
        Some(spots[1] as u64)
    );
    assert_eq!(buf.rfind(needle, 10).unwrap(), None);
    assert_eq!(buf.rfind(needle, 11).unwrap(), Some(5));
    // A buffer at an offset reports relative indices.
    let mut sub =
        SlidingWindowMapBuffer::new(m.make_cursor(&path).unwrap(), 100, u64::MAX).unwrap();
    assert_eq!(sub.find(needle, 0).unwrap(), Some(spots[1] as u64 - 100));
}

#[test]
fn begin_and_end_access() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 5, 2 * g());
    let m = small_windows();
    let mut buf = SlidingWindowMapBuffer::new(m.make_cursor(&path).unwrap(), 0, u64::MAX).unwrap();
    buf.set_access_hint(Some(AccessHint::Sequential));
    assert_eq!(buf.cursor().access_hint(), Some(AccessHint::Sequential));
    // Under the adaptive policy `begin_access` maps nothing: the first
    // read maps (the budget has room) and ending the access releases it.
    assert!(!buf.cursor().is_valid());
    assert_eq!(buf.get(1).unwrap(), bytes[1]);
    assert!(buf.cursor().is_valid());
    buf.end_access();
    assert!(buf.is_empty() && !buf.cursor().is_valid());
    assert!(buf.get(0).is_err());
    assert_eq!(m.collect(), 1);
    buf.begin_access(None, 7, 3).unwrap();
    assert_eq!(buf.len(), 3);
    assert_eq!(buf.get(0).unwrap(), bytes[7]);
    // Always-map: `begin_access` maps the first window, as smmap 6.0.0's does.
    let always: smmap::Manager = SlidingWindowMapManager::builder()
        .window_size(g())
        .read_policy(smmap::ReadPolicy::AlwaysMap)
        .build()
        .into();
    let b = SlidingWindowMapBuffer::new(always.make_cursor(&path).unwrap(), g() + 1, 5).unwrap();
    assert!(b.cursor().is_valid() && b.cursor().includes_ofs(g() + 1));
    // Past the end: an error naming the offset, and an empty buffer.
    let e = buf.begin_access(None, 2 * g(), u64::MAX).unwrap_err();
    assert!(e.to_string().contains(&(2 * g()).to_string()), "{e}");
    assert!(buf.is_empty());
    let e = SlidingWindowMapBuffer::new(smmap::WindowCursor::new(None), 0, 1).unwrap_err();
    assert!(matches!(e, Error::NotAssociated));
    let cursor = buf.into_cursor();
    assert!(cursor.is_associated());
}

/// A buffer's hit is found in its cursor's window without a test of the
/// buffer's bounds: the window is cut to the buffer's range, so an index
/// past its end, or one so large that the offset it names wraps round to
/// a byte before the buffer, is never a hit, whatever the window holds.
#[test]
fn a_hit_never_reads_outside_the_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let len = 3 * g();
    let (path, bytes) = make_file(dir.path(), "f", 9, len);
    let whole = SlidingWindowMapManager::new();
    let small = small_windows();
    for m in [&whole, &small] {
        let off = g() + 3;
        let mut buf = SlidingWindowMapBuffer::new(m.make_cursor(&path).unwrap(), off, 5).unwrap();
        for i in 0..5 {
            assert_eq!(buf.get(i).unwrap(), bytes[(off + i) as usize]);
        }
        // The window held goes on past the buffer, and starts before it.
        assert!(buf.cursor().holds(off - 1, 7));
        for i in [5, 6, g(), u64::MAX, u64::MAX - 1, u64::MAX - off] {
            match buf.get(i) {
                Err(Error::OutOfRange { offset, .. }) => {
                    assert_eq!(offset, off.saturating_add(i), "index {i}")
                }
                other => panic!("index {i}: {other:?}"),
            }
        }
        // A range that runs past the end names the first byte the view
        // does not have; the message, the view's place in the file.
        let first_missing = |e: Error| match e {
            Error::OutOfRange {
                offset, view, size, ..
            } => {
                assert_eq!((view, size), (Some(off), 5));
                offset - off
            }
            other => panic!("{other:?}"),
        };
        let mut four = [0u8; 4];
        assert_eq!(
            first_missing(buf.read_exact_at(3, &mut four).unwrap_err()),
            5
        );
        assert_eq!(
            first_missing(buf.read_exact_at(7, &mut four).unwrap_err()),
            7
        );
        assert_eq!(first_missing(buf.read_le::<u32>(3).unwrap_err()), 5);
        assert_eq!(first_missing(buf.slice(2..9).unwrap_err()), 5);
        #[allow(clippy::reversed_empty_ranges)] // the reversed range is the test
        let reversed = 4..2;
        assert_eq!(first_missing(buf.slice(reversed).unwrap_err()), 4);
        let text = buf.get(5).unwrap_err().to_string();
        assert!(
            text.ends_with(&format!("(a view of 5 bytes at offset {off})")),
            "{text}"
        );
        // Pointed elsewhere, the cut follows.
        buf.begin_access(None, 10, 2).unwrap();
        assert_eq!(buf.get(1).unwrap(), bytes[11]);
        assert!(buf.get(2).is_err() && buf.get(u64::MAX - 9).is_err());
        // A failed `begin_access` leaves the window held and nothing in
        // the buffer; so does `end_access`.
        assert!(buf.begin_access(None, len, 1).is_err());
        assert!(buf.cursor().is_valid());
        assert!(buf.get(0).is_err() && buf.get(u64::MAX - len + 1).is_err());
        buf.begin_access(None, 0, 4).unwrap();
        assert_eq!(buf.get(3).unwrap(), bytes[3]);
        buf.end_access();
        assert!(buf.get(0).is_err());
        // The cursor taken back reads by offset again, the whole window.
        buf.begin_access(None, 2, 1).unwrap();
        assert_eq!(buf.get(0).unwrap(), bytes[2]);
        let mut cursor = buf.into_cursor();
        assert_eq!(cursor.byte_at(2).unwrap(), bytes[2]);
        assert_eq!(cursor.byte_at(g() - 1).unwrap(), bytes[(g() - 1) as usize]);
    }
}

#[test]
fn hints_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = make_file(dir.path(), "f", 6, 2 * g());
    let m = SlidingWindowMapManager::new();
    for hint in [
        AccessHint::Sequential,
        AccessHint::Random,
        AccessHint::WillNeed,
    ] {
        let mut c = m.make_cursor(&path).unwrap();
        c.set_access_hint(Some(hint));
        c.use_region(0, 0).unwrap();
        c.set_access_hint(Some(hint));
        assert!(c.is_valid());
    }
    assert_eq!(
        "sequential".parse::<AccessHint>(),
        Ok(AccessHint::Sequential)
    );
    assert_eq!("willneed".parse::<AccessHint>(), Ok(AccessHint::WillNeed));
    assert!("sideways"
        .parse::<AccessHint>()
        .unwrap_err()
        .contains("sideways"));
}

/// `Read`, `Seek` and `BufRead` follow `std::io::Cursor`'s position rules:
/// random sequences of seeks (before the start, past the end), reads,
/// `fill_buf` and `consume` give the same bytes, positions and errors.
mod like_std_cursor {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Seek(SeekFrom),
        Read(usize),
        FillBuf,
        Consume(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        let delta = prop_oneof![-20_000i64..20_000, Just(i64::MIN), Just(i64::MAX)];
        prop_oneof![
            (0..30_000u64).prop_map(|p| Op::Seek(SeekFrom::Start(p))),
            delta.clone().prop_map(|d| Op::Seek(SeekFrom::End(d))),
            delta.prop_map(|d| Op::Seek(SeekFrom::Current(d))),
            (0..10_000usize).prop_map(Op::Read),
            Just(Op::FillBuf),
            prop_oneof![0..10_000usize, Just(usize::MAX)].prop_map(Op::Consume),
        ]
    }

    proptest! {
        #![proptest_config(common::proptest_config(200))]

        #[test]
        fn positions_and_bytes_match(len in 1..(5 * 4096u64), ops in prop::collection::vec(op(), 1..40)) {
            let dir = tempfile::tempdir().unwrap();
            let (path, bytes) = make_file(dir.path(), "f", 12, len + 1);
            let m = SlidingWindowMapManager::builder().window_size(g()).max_open_handles(1).build();
            // The buffer views [1, len + 1): index 0 is the file's byte 1.
            let mut buf = SlidingWindowMapBuffer::new(m.make_cursor(&path).unwrap(), 1, u64::MAX).unwrap();
            let mut std_cursor = std::io::Cursor::new(&bytes[1..]);
            for op in ops {
                match op {
                    Op::Seek(to) => {
                        let ours = buf.seek(to).map_err(|e| e.kind());
                        let theirs = std_cursor.seek(to).map_err(|e| e.kind());
                        prop_assert_eq!(ours, theirs, "seek {:?}", to);
                    }
                    Op::Read(n) => {
                        let (mut a, mut b) = (vec![0; n], vec![0; n]);
                        let ka = buf.read(&mut a).unwrap();
                        let kb = std_cursor.read(&mut b).unwrap();
                        prop_assert_eq!(&a[..ka], &b[..kb]);
                    }
                    Op::FillBuf => {
                        // Ours ends where its window ends: a prefix of the
                        // rest, empty only at the end.
                        let theirs = std_cursor.fill_buf().unwrap().to_vec();
                        let ours = buf.fill_buf().unwrap();
                        prop_assert!(theirs.starts_with(ours));
                        prop_assert_eq!(ours.is_empty(), theirs.is_empty());
                    }
                    Op::Consume(n) => {
                        // std's Cursor wraps around past u64::MAX, ours
                        // saturates: compare where neither overflows.
                        if std_cursor.position().checked_add(n as u64).is_some() {
                            buf.consume(n);
                            std_cursor.consume(n);
                        }
                    }
                }
                prop_assert_eq!(buf.position(), std_cursor.position());
            }
        }
    }
}

/// `get`'s hot path reads through the window held in the buffer's own
/// indices: under any run of re-aims (`begin_access` with another offset
/// and size, in the middle of a window), releases, reads that move or drop
/// the window (slices, another cursor, maps the system refuses), cursors
/// taken out and put back, and indices past the end, every byte is the
/// file's and every index outside the view is an error naming it.
mod hot_path_keeps_to_the_view {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        /// `get(i)`, `i` taken modulo a little more than the view.
        Get(u64),
        /// `get` of an index far past the end (`u64::MAX - k`).
        GetFar(u64),
        Begin(u64, u64),
        End,
        Slice(u64, u64),
        /// Another cursor of the manager reads at this offset.
        Other(u64),
        /// The next maps are refused.
        FailMaps(usize),
        /// `into_cursor`, a read through it, and a new buffer of the same
        /// view.
        Rewrap(u64),
    }

    fn op(flen: u64) -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => any::<u64>().prop_map(Op::Get),
            1 => (0..3u64).prop_map(Op::GetFar),
            2 => (0..flen + 3, prop_oneof![1..3 * g(), Just(u64::MAX)])
                .prop_map(|(o, s)| Op::Begin(o, s)),
            1 => Just(Op::End),
            1 => (0..flen, 1..2 * g()).prop_map(|(a, n)| Op::Slice(a, n)),
            1 => (0..flen).prop_map(Op::Other),
            1 => (1..3usize).prop_map(Op::FailMaps),
            1 => (0..flen).prop_map(Op::Rewrap),
        ]
    }

    proptest! {
        #![proptest_config(common::proptest_config(200))]

        #[test]
        fn bytes_and_errors_match(ops in prop::collection::vec(op(5 * g() + 9), 1..60)) {
            let dir = tempfile::tempdir().unwrap();
            let flen = 5 * g() + 9;
            let (path, bytes) = make_file(dir.path(), "f", 13, flen);
            let m = SlidingWindowMapManager::builder()
                .window_size(2 * g())
                .max_open_handles(2)
                .build();
            let mut buf = SlidingWindowMapBuffer::new(m.make_cursor(&path).unwrap(), 0, u64::MAX).unwrap();
            let mut other = m.make_cursor(&path).unwrap();
            // The view the buffer should have: absolute offset and length.
            let (mut off, mut len) = (0u64, flen);
            for op in ops {
                match op {
                    Op::Get(i) => {
                        let i = i % (len + 5);
                        match buf.get(i) {
                            Ok(b) => {
                                prop_assert!(i < len, "index {i} of {len} read");
                                prop_assert_eq!(b, bytes[(off + i) as usize], "index {}", i);
                            }
                            Err(Error::OutOfRange { offset, .. }) => {
                                prop_assert!(i >= len, "index {i} of {len} refused");
                                prop_assert_eq!(offset, off + i);
                            }
                            // A refused map: the buffer stays usable.
                            Err(e) => prop_assert!(i < len, "{e}"),
                        }
                    }
                    Op::GetFar(k) => {
                        let e = buf.get(u64::MAX - k).unwrap_err();
                        prop_assert!(matches!(e, Error::OutOfRange { .. }), "{e}");
                    }
                    Op::Begin(o, s) => {
                        let r = buf.begin_access(None, o, s);
                        if o < flen {
                            prop_assert!(r.is_ok());
                            (off, len) = (o, s.min(flen - o));
                        } else {
                            prop_assert!(r.is_err());
                            len = 0;
                        }
                        prop_assert_eq!((buf.offset(), buf.len()), (off, len));
                    }
                    Op::End => {
                        buf.end_access();
                        len = 0;
                    }
                    Op::Slice(a, n) => {
                        let (a, n) = (a.min(len), n.min(len - a.min(len)));
                        if let Ok(s) = buf.slice(a..a + n) {
                            prop_assert_eq!(&*s, &bytes[(off + a) as usize..(off + a + n) as usize]);
                        }
                    }
                    Op::Other(at) => {
                        if let Ok(c) = other.use_region(at, 0) {
                            prop_assert_eq!(c.buffer()[0], bytes[at as usize]);
                        }
                    }
                    Op::FailMaps(n) => m.fail_next_maps(n, common::NO_MEMORY),
                    Op::Rewrap(at) => {
                        // The cursor reads by offset again, on its own hot path
                        // too (the window the buffer held, if it holds `at`).
                        let mut c = buf.into_cursor();
                        if let Ok(b) = c.byte_at(at) {
                            prop_assert_eq!(b, bytes[at as usize]);
                            prop_assert_eq!(c.byte_at(at).unwrap(), bytes[at as usize]);
                        }
                        if let Ok(c) = c.use_region(at, 1) {
                            prop_assert_eq!(c.buffer()[0], bytes[at as usize]);
                        }
                        let o = if len == 0 { 0 } else { off };
                        let size = if len == 0 { u64::MAX } else { len };
                        buf = SlidingWindowMapBuffer::new(c, o, size).unwrap();
                        (off, len) = (o, buf.len());
                    }
                }
            }
        }
    }
}

/// A `begin_access` that fails, with a cursor of a shorter file or of no
/// file at all, leaves a buffer of nothing (at its old offset), which reads
/// nothing without an error, as `Read` promises at the end. An index is out
/// of the empty view of the shorter file; with no file, that is the error.
#[test]
fn a_failed_begin_access_leaves_a_buffer_that_reads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (big, bytes) = make_file(dir.path(), "big", 14, 2 * g());
    let (small, _) = make_file(dir.path(), "small", 15, 10);
    let m = SlidingWindowMapManager::new();
    let mut buf =
        SlidingWindowMapBuffer::new(m.make_cursor(&big).unwrap(), 1000, u64::MAX).unwrap();
    assert_eq!(buf.get(0).unwrap(), bytes[1000]);
    let others = [
        m.make_cursor(&small).unwrap(),
        smmap::WindowCursor::new(None),
    ];
    for (n, other) in others.into_iter().enumerate() {
        assert!(buf.begin_access(Some(other), 50, 1).is_err());
        assert_eq!(buf.len(), 0);
        let mut out = [0u8; 4];
        assert_eq!(buf.read(&mut out).unwrap(), 0, "Read at the end");
        assert_eq!(buf.read_at(0, &mut out).unwrap(), 0);
        assert!(buf.fill_buf().unwrap().is_empty());
        let mut all = Vec::new();
        assert_eq!(buf.read_to_end(&mut all).unwrap(), 0);
        // The offset stays, and an index is named from it.
        assert_eq!(buf.offset(), 1000);
        match (n, buf.get(0)) {
            (
                0,
                Err(Error::OutOfRange {
                    file,
                    offset,
                    view,
                    size,
                }),
            ) => {
                assert_eq!(file.path(), Some(small.as_path()));
                assert_eq!((offset, view, size), (1000, Some(1000), 0));
            }
            (1, Err(Error::NotAssociated)) => {}
            other => panic!("{other:?}"),
        }
    }
    // Pointed at its own file again, it reads.
    buf.begin_access(Some(m.make_cursor(&big).unwrap()), 1000, 4)
        .unwrap();
    let mut out = [0u8; 8];
    assert_eq!(buf.read(&mut out).unwrap(), 4);
    assert_eq!(&out[..4], &bytes[1000..1004]);
}

/// Under `AlwaysMap` a buffer's first window sits on the slot grid as its
/// later ones do, and one mapped already is used, not mapped again.
#[test]
fn a_buffers_first_window_is_on_the_grid() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 8, 12 * g());
    let w = 4 * g();
    let m = SlidingWindowMapManager::builder()
        .window_size(w)
        .read_policy(smmap::ReadPolicy::AlwaysMap)
        .build();
    let off = g() + 5;
    let mut buf =
        SlidingWindowMapBuffer::new(m.make_cursor(&path).unwrap(), off, u64::MAX).unwrap();
    let r = buf.cursor().region().expect("mapped by begin_access");
    assert_eq!((r.ofs_begin(), r.size() as u64), (0, w));
    assert_eq!(buf.get(0).unwrap(), bytes[off as usize]);
    assert_eq!(buf.get(w - off).unwrap(), bytes[w as usize]);
    assert_eq!(buf.cursor().region().unwrap().ofs_begin(), w);
    let before = m.stats();
    let again =
        SlidingWindowMapBuffer::new(m.make_cursor(&path).unwrap(), 2 * g(), u64::MAX).unwrap();
    assert_eq!(again.cursor().region().unwrap().ofs_begin(), 0);
    drop((buf, again));
    let s = m.stats();
    assert_eq!(s.maps, before.maps, "the window mapped already: {s:?}");
    assert_eq!(s.reuses, before.reuses + 1, "{s:?}");
}

/// A hint given to a region directly is what the region has: a cursor with
/// a hint of its own gives it again when it comes back to that region.
/// (Linux: the kernel's flags for each mapping are in `/proc/self/smaps`.)
#[cfg(target_os = "linux")]
#[test]
fn a_cursors_hint_is_given_again_after_the_regions_own() {
    /// The `VmFlags` of the mapping holding `addr`.
    fn flags(addr: usize) -> String {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut inside = false;
        for line in smaps.lines() {
            let range = line.split(' ').next().unwrap_or("");
            if let Some((lo, hi)) = range.split_once('-') {
                if let (Ok(lo), Ok(hi)) =
                    (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
                {
                    inside = lo <= addr && addr < hi;
                    continue;
                }
            }
            if inside {
                if let Some(f) = line.strip_prefix("VmFlags:") {
                    return f.trim().to_owned();
                }
            }
        }
        panic!("no mapping holds {addr:#x}")
    }
    let has = |addr, flag: &str| flags(addr).split(' ').any(|f| f == flag);
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = make_file(dir.path(), "f", 6, 2 * g());
    let m = SlidingWindowMapManager::builder().window_size(g()).build();
    let mut c = m.make_cursor(&path).unwrap();
    c.set_access_hint(Some(AccessHint::Sequential));
    c.use_region(0, 0).unwrap();
    let region = c.region().unwrap().clone();
    let addr = region.as_slice().as_ptr() as usize;
    assert!(has(addr, "sr"), "{}", flags(addr));
    region.advise(AccessHint::Random).unwrap();
    assert!(has(addr, "rr"), "{}", flags(addr));
    // Away and back: the cursor's own hint again.
    c.use_region(g(), 0).unwrap();
    c.use_region(0, 0).unwrap();
    assert!(region.same_mapping(c.region().unwrap()));
    assert!(has(addr, "sr"), "{}", flags(addr));
    assert!(!has(addr, "rr"), "{}", flags(addr));
}
