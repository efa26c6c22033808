//! Model-based property test: random sequences of make_cursor / use_region /
//! read / unuse / clone / drop / collect over several files of random sizes
//! and random limits, checked after every step against the file bytes and
//! the manager's invariants.

mod common;

use common::{g, make_file};
use proptest::prelude::*;
use smmap::{
    Error, Manager, SlidingWindowMapBuffer, SlidingWindowMapManager, StaticWindowMapManager,
    WindowCursor,
};

#[derive(Clone, Debug)]
enum Op {
    Make(usize),
    Use {
        cursor: usize,
        offset_permille: u16,
        past_end: bool,
        size: usize,
    },
    Read(usize),
    Unuse(usize),
    Clone(usize),
    Drop(usize),
    Collect,
    BufferSlice {
        file: usize,
        start_permille: u16,
        len: u16,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..4usize).prop_map(Op::Make),
        6 => (0..8usize, 0..1000u16, prop::bool::weighted(0.05), prop_oneof![Just(0usize), 1..20_000usize])
            .prop_map(|(cursor, offset_permille, past_end, size)| Op::Use { cursor, offset_permille, past_end, size }),
        3 => (0..8usize).prop_map(Op::Read),
        1 => (0..8usize).prop_map(Op::Unuse),
        1 => (0..8usize).prop_map(Op::Clone),
        1 => (0..8usize).prop_map(Op::Drop),
        1 => Just(Op::Collect),
        2 => (0..4usize, 0..1000u16, 0..10_000u16).prop_map(|(file, start_permille, len)| Op::BufferSlice { file, start_permille, len }),
    ]
}

#[derive(Clone, Debug)]
struct Config {
    sizes: Vec<u64>,
    is_static: bool,
    window_pages: u64,
    memory_pages: u64,
    handles: usize,
}

fn config() -> impl Strategy<Value = Config> {
    (
        prop::collection::vec(prop_oneof![Just(0u64), 1..(12 * 4096u64)], 1..4),
        prop::bool::weighted(0.2),
        0..5u64,
        1..12u64,
        1..8usize,
    )
        .prop_map(
            |(sizes, is_static, window_pages, memory_pages, handles)| Config {
                sizes,
                is_static,
                window_pages,
                memory_pages,
                handles,
            },
        )
}

fn manager(c: &Config) -> Manager {
    let (w, mem) = (c.window_pages * g(), c.memory_pages * g());
    if c.is_static {
        StaticWindowMapManager::builder()
            .max_memory_size(mem)
            .max_open_handles(c.handles)
            .build()
            .into()
    } else {
        SlidingWindowMapManager::builder()
            .window_size(w)
            .max_memory_size(mem)
            .max_open_handles(c.handles)
            .build()
            .into()
    }
}

/// A handle-limit error is allowed only when every mapped region is in use.
fn check_refusal(e: &Error, m: &Manager) {
    assert!(
        matches!(e, Error::HandleLimit { .. }),
        "unexpected error {e}"
    );
    assert_eq!(m.num_file_handles(), m.max_file_handles());
}

fn run(config: Config, ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<_> = config
        .sizes
        .iter()
        .enumerate()
        .map(|(i, &len)| make_file(dir.path(), &format!("f{i}"), i as u64, len))
        .collect();
    let m = manager(&config);
    let cap = if config.is_static || config.window_pages == 0 {
        u64::MAX
    } else {
        config.window_pages * g()
    };
    let mut cursors: Vec<(usize, WindowCursor)> = Vec::new();
    for op in ops {
        match op {
            Op::Make(f) => {
                let f = f % files.len();
                cursors.push((f, m.make_cursor(&files[f].0).unwrap()));
            }
            Op::Use {
                cursor,
                offset_permille,
                past_end,
                size,
            } if !cursors.is_empty() => {
                let i = cursor % cursors.len();
                let (f, c) = &mut cursors[i];
                let fsize = files[*f].1.len() as u64;
                let offset = if past_end {
                    fsize + offset_permille as u64
                } else {
                    fsize * offset_permille as u64 / 1000
                };
                match c.use_region(offset, size) {
                    Ok(c) => {
                        assert_eq!(c.is_valid(), offset < fsize, "offset {offset} of {fsize}");
                        if c.is_valid() {
                            let want = if size == 0 { fsize } else { size as u64 }
                                .min(cap)
                                .min(fsize);
                            assert_eq!(c.ofs_begin(), offset);
                            assert!(c.size() >= 1 && c.size() as u64 <= want);
                            let region = c.region().unwrap();
                            assert!(region.includes_ofs(offset));
                            assert!(region.client_count() >= 2);
                        }
                    }
                    Err(e) => check_refusal(&e, &m),
                }
            }
            Op::Read(cursor) if !cursors.is_empty() => {
                let (f, c) = &cursors[cursor % cursors.len()];
                let bytes = &files[*f].1;
                assert_eq!(
                    c.buffer(),
                    &bytes[c.ofs_begin() as usize..c.ofs_end() as usize][..c.size()]
                );
                if c.is_valid() {
                    let r = c.region().unwrap();
                    assert_eq!(
                        c.map(),
                        &bytes[r.ofs_begin() as usize..r.ofs_end() as usize]
                    );
                }
            }
            Op::Unuse(cursor) if !cursors.is_empty() => {
                let i = cursor % cursors.len();
                cursors[i].1.unuse_region();
                assert!(!cursors[i].1.is_valid());
            }
            Op::Clone(cursor) if !cursors.is_empty() => {
                let (f, c) = &cursors[cursor % cursors.len()];
                let copy = c.clone();
                assert_eq!(copy.buffer(), c.buffer());
                cursors.push((*f, copy));
            }
            Op::Drop(cursor) if !cursors.is_empty() => {
                let i = cursor % cursors.len();
                cursors.swap_remove(i);
            }
            Op::Collect => {
                let before = m.num_file_handles();
                let n = m.collect();
                assert_eq!(m.num_file_handles(), before - n);
            }
            Op::BufferSlice {
                file,
                start_permille,
                len,
            } => {
                let f = file % files.len();
                let bytes = &files[f].1;
                let start = bytes.len() as u64 * start_permille as u64 / 1000;
                let cursor = m.make_cursor(&files[f].0).unwrap();
                match SlidingWindowMapBuffer::new(cursor, start, u64::MAX) {
                    Ok(mut buf) => {
                        let end = (start + len as u64).min(bytes.len() as u64);
                        match buf.slice(0..end - start) {
                            Ok(s) => assert_eq!(&*s, &bytes[start as usize..end as usize]),
                            Err(e) => check_refusal(&e, &m),
                        }
                    }
                    Err(Error::OutOfRange { .. }) => assert!(start >= bytes.len() as u64),
                    Err(e) => check_refusal(&e, &m),
                }
            }
            _ => {}
        }
        if let Err(broken) = m.verify_invariants() {
            panic!("invariant broken: {broken}");
        }
        let s = m.stats();
        assert!(s.windows <= config.handles);
        assert_eq!(s.windows, m.num_file_handles());
    }
    drop(cursors);
    m.collect();
    let s = m.stats();
    assert_eq!((s.windows, s.mapped_bytes, s.known_files), (0, 0, 0));
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        cases: std::env::var("SMMAP_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(200),
        ..ProptestConfig::default()
    })]

    #[test]
    fn manager_matches_the_model(config in config(), ops in prop::collection::vec(op(), 1..60)) {
        run(config, ops);
    }
}
