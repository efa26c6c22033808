//! Coverage-guided fuzzing of the public API: arbitrary limits and operation
//! sequences over three files; any panic or broken invariant is a finding.
//! Run with `scripts/fuzz` (nightly toolchain and cargo-fuzz).
#![no_main]

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use smmap::{Manager, SlidingWindowMapBuffer, SlidingWindowMapManager, StaticWindowMapManager, WindowCursor};

#[derive(Arbitrary, Debug)]
struct Input {
    is_static: bool,
    window: u32,
    memory: u32,
    handles: u8,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Make(u8),
    Use(u8, u64, usize),
    Unuse(u8),
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
}

struct Files {
    _dir: PathBuf,
    files: Vec<(PathBuf, Vec<u8>)>,
}

fn files() -> &'static Files {
    static FILES: OnceLock<Files> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("smmap-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = [0usize, 5000, 70_000]
            .iter()
            .enumerate()
            .map(|(i, &len)| {
                let p = dir.join(format!("f{i}"));
                let bytes: Vec<u8> = (0..len).map(|k| (k * 31 + i) as u8).collect();
                std::fs::write(&p, &bytes).unwrap();
                (p, bytes)
            })
            .collect();
        Files { _dir: dir, files }
    })
}

const TYPES: [&str; 10] = ["u8", "u16le", "u32be", "u64le", "i8", "i16be", "i32le", "i64be", "f32le", "f64be"];

fuzz_target!(|input: Input| {
    let fs = &files().files;
    let m: Manager = if input.is_static {
        StaticWindowMapManager::builder()
            .window_size(input.window as u64)
            .max_memory_size(input.memory as u64)
            .max_open_handles(input.handles as usize)
            .build()
            .into()
    } else {
        SlidingWindowMapManager::builder()
            .window_size(input.window as u64)
            .max_memory_size(input.memory as u64)
            .max_open_handles(input.handles as usize)
            .build()
            .into()
    };
    let mut cursors: Vec<(usize, WindowCursor)> = Vec::new();
    let mut buf: Option<(usize, SlidingWindowMapBuffer)> = None;
    for op in input.ops.into_iter().take(64) {
        let n = cursors.len().max(1);
        match op {
            Op::Make(f) => {
                let f = f as usize % fs.len();
                cursors.push((f, m.make_cursor(&fs[f].0).unwrap()));
            }
            Op::Use(c, o, s) if !cursors.is_empty() => {
                let (f, c) = &mut cursors[c as usize % n];
                if let Ok(c) = c.use_region(o, s) {
                    if c.is_valid() {
                        assert_eq!(c.buffer(), &fs[*f].1[c.ofs_begin() as usize..c.ofs_end() as usize]);
                    }
                }
            }
            Op::Unuse(c) if !cursors.is_empty() => cursors[c as usize % n].1.unuse_region(),
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
                buf = SlidingWindowMapBuffer::new(m.make_cursor(&fs[f].0).unwrap(), o, s).ok().map(|b| (f, b));
            }
            Op::Get(i) => {
                if let Some((f, b)) = &mut buf {
                    if let Ok(v) = b.get(i) {
                        assert_eq!(v, fs[*f].1[(b.offset() + i) as usize]);
                    }
                }
            }
            Op::Slice(a, z) => {
                if let Some((f, b)) = &mut buf {
                    let off = b.offset() as usize;
                    if let Ok(s) = b.slice(a..z) {
                        assert_eq!(&*s, &fs[*f].1[off + a as usize..off + z as usize]);
                    }
                }
            }
            Op::ReadAt(o, k) => {
                if let Some((f, b)) = &mut buf {
                    let mut out = vec![0; k as usize];
                    let off = b.offset() as usize;
                    if let Ok(got) = b.read_at(o, &mut out) {
                        assert_eq!(&out[..got], &fs[*f].1[off + o as usize..off + o as usize + got]);
                    }
                }
            }
            Op::Find(p, s) => {
                if let Some((f, b)) = &mut buf {
                    let off = b.offset() as usize;
                    if let Ok(Some(at)) = b.find(&p, s) {
                        assert_eq!(&fs[*f].1[off + at as usize..off + at as usize + p.len()], &p[..]);
                    }
                }
            }
            Op::Rfind(p, e) => {
                if let Some((f, b)) = &mut buf {
                    let off = b.offset() as usize;
                    if let Ok(Some(at)) = b.rfind(&p, e) {
                        assert_eq!(&fs[*f].1[off + at as usize..off + at as usize + p.len()], &p[..]);
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
                if let Some((_, b)) = &mut buf {
                    let mut out = vec![0; k as usize];
                    let _ = b.read(&mut out);
                }
            }
            Op::Typed(o, t) => {
                if let Some((_, b)) = &mut buf {
                    let _ = b.read_typed(o, TYPES[t as usize % TYPES.len()].parse().unwrap());
                }
            }
            _ => {}
        }
        if let Err(broken) = m.verify_invariants() {
            panic!("invariant broken: {broken}");
        }
    }
});
