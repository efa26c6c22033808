//! Traces: what a program reads is recorded, read back, and replayed; a
//! replay under the same limits is served exactly as the recording was
//! (the engine's decisions depend on the reads alone), whatever the mix of
//! cursors, buffers, clones, releases and collections — also on files that
//! hold no data, which is how a policy is judged on a trace without its
//! files and without I/O.

mod common;

use std::sync::{Arc, Mutex};

use common::{g, make_file};
use proptest::prelude::*;
use smmap::{
    Event, Manager, Op, ReadPolicy, Served, SlidingWindowMapBuffer, SlidingWindowMapManager, Trace,
    TraceReader, WindowCursor,
};

/// A trace written into memory, read back once the writer is gone.
#[derive(Clone, Default)]
struct Memory(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Memory {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Memory {
    fn read(&self, dir: &std::path::Path, name: &str) -> TraceReader {
        let p = dir.join(name);
        std::fs::write(&p, &*self.0.lock().unwrap()).unwrap();
        TraceReader::open(&p).unwrap()
    }
}

#[derive(Clone, Copy, Debug)]
struct Limits {
    window_pages: u64,
    memory_pages: u64,
    handles: usize,
    policy: ReadPolicy,
}

fn manager(l: Limits, trace: Trace) -> Manager {
    SlidingWindowMapManager::builder()
        .window_size(l.window_pages * g())
        .max_memory_size(l.memory_pages * g())
        .max_open_handles(l.handles)
        .read_policy(l.policy)
        .trace(trace)
        .build()
        .into()
}

#[derive(Clone, Debug)]
enum Step {
    Buffer(usize),
    Cursor(usize),
    Get(usize, u16),
    Slice(usize, u16, u16),
    Use(usize, u16, u16),
    Unuse(usize),
    Clone(usize),
    Drop(usize),
    Collect,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => (0..3usize).prop_map(Step::Buffer),
        1 => (0..3usize).prop_map(Step::Cursor),
        5 => (0..8usize, any::<u16>()).prop_map(|(b, at)| Step::Get(b, at)),
        3 => (0..8usize, any::<u16>(), 0..9000u16).prop_map(|(b, at, n)| Step::Slice(b, at, n)),
        4 => (0..8usize, any::<u16>(), 0..9000u16).prop_map(|(c, at, n)| Step::Use(c, at, n)),
        2 => (0..8usize).prop_map(Step::Unuse),
        1 => (0..8usize).prop_map(Step::Clone),
        1 => (0..8usize).prop_map(Step::Drop),
        1 => Just(Step::Collect),
    ]
}

fn limits() -> impl Strategy<Value = Limits> {
    (
        1..4u64,
        1..10u64,
        1..6usize,
        prop_oneof![Just(ReadPolicy::Adaptive), Just(ReadPolicy::AlwaysMap)],
    )
        .prop_map(|(window_pages, memory_pages, handles, policy)| Limits {
            window_pages,
            memory_pages,
            handles,
            policy,
        })
}

/// Runs `steps` over the files at `paths` through `m`.
fn run(m: &Manager, paths: &[std::path::PathBuf], steps: &[Step]) {
    let mut bufs: Vec<SlidingWindowMapBuffer> = Vec::new();
    let mut cursors: Vec<WindowCursor> = Vec::new();
    for s in steps {
        match *s {
            Step::Buffer(f) => {
                let c = m.make_cursor(&paths[f % paths.len()]).unwrap();
                if let Ok(b) = SlidingWindowMapBuffer::new(c, 0, u64::MAX) {
                    bufs.push(b);
                }
            }
            Step::Cursor(f) => cursors.push(m.make_cursor(&paths[f % paths.len()]).unwrap()),
            Step::Get(b, at) if !bufs.is_empty() => {
                let n = bufs.len();
                let b = &mut bufs[b % n];
                let _ = b.get(u64::from(at) % b.len());
            }
            Step::Slice(b, at, k) if !bufs.is_empty() => {
                let n = bufs.len();
                let b = &mut bufs[b % n];
                let at = u64::from(at) % b.len();
                let end = (at + u64::from(k)).min(b.len());
                let _ = b.slice(at..end);
            }
            Step::Use(c, at, k) if !cursors.is_empty() => {
                let n = cursors.len();
                let c = &mut cursors[c % n];
                let size = c.file_size().unwrap();
                let _ = c.use_region(u64::from(at) * 7 % (size + 1), usize::from(k));
            }
            Step::Unuse(c) if !cursors.is_empty() => {
                let n = cursors.len();
                cursors[c % n].unuse_region();
            }
            Step::Clone(c) if !cursors.is_empty() => {
                let n = cursors.len();
                let copy = cursors[c % n].clone();
                cursors.push(copy);
            }
            Step::Drop(c) if !cursors.is_empty() => {
                let n = cursors.len();
                cursors.swap_remove(c % n);
            }
            Step::Collect => {
                m.collect();
            }
            _ => {}
        }
    }
}

proptest! {
    #![proptest_config(common::proptest_config(100))]

    /// Recorded, then replayed through a fresh manager with the same
    /// limits: the replay's own trace is the recording, event for event —
    /// every read served the same way.
    #[test]
    fn a_replay_is_served_as_the_recording(l in limits(), steps in prop::collection::vec(step(), 1..80)) {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<_> = [3 * g() + 17, 40_000, 9 * g()]
            .iter()
            .enumerate()
            .map(|(i, &n)| make_file(dir.path(), &format!("f{i}"), i as u64, n).0)
            .collect();
        let (first, again) = (Memory::default(), Memory::default());
        {
            let m = manager(l, Trace::to_writer(first.clone()));
            run(&m, &paths, &steps);
        }
        let recorded = first.read(dir.path(), "first.trace");
        // The trace names each file as the program gave it.
        let named: Vec<std::path::PathBuf> = recorded.files().iter().map(|f| f.name.clone()).collect();
        {
            let m = manager(l, Trace::to_writer(again.clone()));
            recorded.replay(&m, &named, |_| {}).unwrap();
        }
        let replayed = again.read(dir.path(), "again.trace");
        prop_assert_eq!(recorded.files(), replayed.files());
        prop_assert_eq!(recorded.events(), replayed.events());

        // Without the data: files of the same sizes that hold nothing
        // (sparse: reading them reads no disk), as `smmap bench --replay
        // --make-files` makes. The decisions depend on the reads alone.
        let holes = tempfile::tempdir().unwrap();
        let sparse: Vec<_> = recorded
            .files()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let p = holes.path().join(format!("hole{i}"));
                std::fs::File::create(&p).unwrap().set_len(f.size).unwrap();
                p
            })
            .collect();
        let third = Memory::default();
        let mut bytes_seen = 0u64;
        {
            let m = manager(l, Trace::to_writer(third.clone()));
            recorded
                .replay(&m, &sparse, |r| {
                    if let Ok(b) = r.bytes {
                        bytes_seen += b.iter().map(|&x| u64::from(x)).sum::<u64>();
                    }
                })
                .unwrap();
        }
        prop_assert_eq!(bytes_seen, 0, "the holes read as zeros");
        let without_data = third.read(dir.path(), "third.trace");
        prop_assert_eq!(recorded.events(), without_data.events());
    }
}

/// What a buffer and a cursor do, as the trace shows it, agrees with the
/// manager's statistics: each read once, served as counted.
#[test]
fn the_trace_agrees_with_the_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 5, 16 * g());
    let mem = Memory::default();
    let m = SlidingWindowMapManager::builder()
        .window_size(g())
        .max_open_handles(2)
        .trace(Trace::to_writer(mem.clone()))
        .build();
    let mut buf = SlidingWindowMapBuffer::new(m.make_cursor(&path).unwrap(), 0, u64::MAX).unwrap();
    let mut c = m.make_cursor(&path).unwrap();
    for i in 0..200u64 {
        let at = i * 4099 % (16 * g());
        assert_eq!(buf.get(at).unwrap(), bytes[at as usize]);
        if i % 3 == 0 {
            assert_eq!(c.use_region(at, 1).unwrap().buffer()[0], bytes[at as usize]);
        }
    }
    c.unuse_region();
    let copy = c.clone();
    drop((buf, c, copy));
    let s = m.stats();
    drop(m);
    let t = mem.read(dir.path(), "t");
    assert_eq!(t.files().len(), 1);
    assert_eq!(t.files()[0].size, 16 * g());
    let count = |served| {
        t.reads()
            .filter(|e| matches!(e, Event::Read { served: x, .. } if *x == served))
            .count() as u64
    };
    assert_eq!(t.reads().count(), 200 + 67);
    assert_eq!(count(Served::NewWindow), s.maps, "{s:?}");
    assert!(count(Served::Copied) >= s.preads.min(1), "{s:?}");
    let kinds: Vec<_> = t
        .events()
        .iter()
        .filter(|e| !matches!(e, Event::Read { .. }))
        .collect();
    assert_eq!(
        kinds.len(),
        2 + 1 + 1 + 3,
        "two cursors, a release, a clone, three drops: {kinds:?}"
    );
    assert!(t.reads().all(|e| matches!(
        e,
        Event::Read {
            op: Op::Byte | Op::Map,
            ..
        }
    )));
}

/// A trace file that cannot be written is reported; the manager reads on.
#[test]
fn a_trace_that_cannot_be_written_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 6, 4 * g());
    let e = Trace::create(dir.path().join("no/such/dir/t")).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    struct Broken;
    impl std::io::Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk gone"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let t = Trace::to_writer(Broken);
    let m = SlidingWindowMapManager::builder().trace(t.clone()).build();
    let mut buf = SlidingWindowMapBuffer::new(m.make_cursor(&path).unwrap(), 0, u64::MAX).unwrap();
    for i in 0..100_000u64 {
        let at = i % (4 * g());
        assert_eq!(buf.get(at).unwrap(), bytes[at as usize]);
    }
    assert!(t.flush().unwrap_err().to_string().contains("disk gone"));
}

/// A trace's writer that panics (the caller's code, run from the middle of
/// a read) ends the recording as a write error does: the panic does not
/// unwind through the engine, where it left the window just mapped
/// counted for good, so that with one handle every later miss failed.
#[test]
fn a_trace_writer_that_panics_is_reported_and_leaks_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 8, 64 * g());
    struct Panics(Arc<Mutex<usize>>);
    impl std::io::Write for Panics {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            *self.0.lock().unwrap() += 1;
            panic!("a trace writer's bug");
        }
        fn flush(&mut self) -> std::io::Result<()> {
            panic!("flushed after panicking");
        }
    }
    let writes = Arc::new(Mutex::new(0));
    let t = Trace::to_writer(Panics(writes.clone()));
    let m = SlidingWindowMapManager::builder()
        .window_size(g())
        .max_open_handles(1)
        .read_policy(ReadPolicy::AlwaysMap)
        .trace(t.clone())
        .build();
    let mut buf = SlidingWindowMapBuffer::new(m.make_cursor(&path).unwrap(), 0, g()).unwrap();
    // Each access maps a window (one handle) and records it; the records
    // fill the trace's buffer, whose write panics, many times over.
    for k in 0..20_000u64 {
        let at = (k * 7 % 64) * g();
        buf.begin_access(None, at, g()).unwrap();
        assert_eq!(buf.get(1).unwrap(), bytes[at as usize + 1], "window {k}");
    }
    assert_eq!(
        *writes.lock().unwrap(),
        1,
        "the writer is not used after its panic"
    );
    let e = t.flush().unwrap_err();
    assert!(e.to_string().contains("panicked"), "{e}");
    drop(buf);
    m.verify_invariants().unwrap();
    assert_eq!(m.collect(), 1, "the last window, and no other, was mapped");
    assert_eq!(m.num_file_handles(), 0);
}

/// Replaying needs the files: too few paths, or a file shorter than
/// recorded, is an error naming it.
#[test]
fn a_replay_without_its_files_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = make_file(dir.path(), "f", 7, 4 * g());
    let mem = Memory::default();
    {
        let m = SlidingWindowMapManager::builder()
            .trace(Trace::to_writer(mem.clone()))
            .build();
        let mut c = m.make_cursor(&path).unwrap();
        c.use_region(3 * g(), 1).unwrap();
    }
    let t = mem.read(dir.path(), "t");
    let m = SlidingWindowMapManager::new();
    let none: [&std::path::Path; 0] = [];
    assert!(t.replay(&m, &none, |_| {}).is_err());
    let (short, _) = make_file(dir.path(), "short", 7, g());
    let e = t.replay(&m, &[&short], |_| {}).unwrap_err();
    assert!(e.to_string().contains("short"), "{e}");
    let e = t
        .replay(&m, &[dir.path().join("gone")], |_| {})
        .unwrap_err();
    assert!(e.to_string().contains("gone"), "{e}");
}

/// A replay hands each read's bytes to its caller — the file's own — or
/// the error it met: two cursors that each hold a window cannot both read
/// under a limit of one mapping.
#[test]
fn a_replay_gives_each_reads_bytes_or_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = make_file(dir.path(), "f", 8, 8 * g());
    let mem = Memory::default();
    {
        let m = SlidingWindowMapManager::builder()
            .window_size(g())
            .trace(Trace::to_writer(mem.clone()))
            .build();
        let (mut a, mut b) = (m.make_cursor(&path).unwrap(), m.make_cursor(&path).unwrap());
        a.use_region(10, 0).unwrap();
        b.use_region(5 * g() + 3, 100).unwrap();
        assert_eq!(a.byte_at(7 * g()).unwrap(), bytes[7 * g() as usize]);
    }
    let t = mem.read(dir.path(), "t");
    let mut seen = Vec::new();
    let roomy = SlidingWindowMapManager::builder().window_size(g()).build();
    t.replay(&roomy, &[&path], |r| {
        let b = r.bytes.expect("room for both");
        let at = r.read.offset as usize;
        assert_eq!(b, &bytes[at..at + b.len()]);
        seen.push((r.index, r.read.op, b.len()));
    })
    .unwrap();
    assert_eq!(
        seen,
        [
            (0, Op::Map, g() as usize),
            (1, Op::Map, 100),
            (2, Op::Byte, 1)
        ]
    );
    let tight = SlidingWindowMapManager::builder()
        .window_size(g())
        .max_open_handles(1)
        .build();
    let mut errors = Vec::new();
    t.replay(&tight, &[&path], |r| {
        if let Err(e) = r.bytes {
            errors.push((r.index, e.to_string()));
        }
    })
    .unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, 1);
}
