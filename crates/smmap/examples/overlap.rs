//! What a read costs when every read misses the caches:
//! `cargo run --release -p smmap --example overlap [SIZE_MIB] [READS]`.
//!
//! Random 1-byte reads of a file (1 GiB by default, written to a temporary
//! directory first) through a raw whole-file map, through one raw map per
//! 1 MiB window, and through a buffer with 1 MiB windows, all of them mapped,
//! so that every read is a switch to another window. Each also as a
//! dependent chain: the same offsets, each made to depend on the byte read
//! before (so that no two reads overlap). On x86-64, the raw loop also with
//! instructions that do nothing useful added to every read (`lea`, `cmp`,
//! `nop`), which shows how much work a read's path may carry before the
//! processor overlaps fewer of the misses. The loops alternate, three
//! rounds; the table gives the best and the median ns per read, and every
//! loop's checksum must agree. `BENCHMARKS.md` §4 reads the figures.

use std::fs::File;
use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::time::Instant;

use memmap2::{Mmap, MmapOptions};
use smmap::{SlidingWindowMapBuffer, SlidingWindowMapManager};

const WINDOW: u64 = 1 << 20;

/// The next value of a xorshift generator.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// A positive count from the command line, named `what`: `default` if
/// not given.
fn count(arg: Option<String>, what: &str, default: u64) -> Result<u64, String> {
    let Some(arg) = arg else {
        return Ok(default);
    };
    match arg.parse::<u64>() {
        Ok(0) => Err(format!("{what} {arg:?}: must be positive")),
        Ok(n) => Ok(n),
        Err(e) => Err(format!(
            "{what} {arg:?}: {e} (usage: overlap [SIZE_MIB] [READS])"
        )),
    }
}

/// Folds a byte into a checksum.
#[inline(always)]
fn mix(h: u64, b: u8) -> u64 {
    h.wrapping_mul(31).wrapping_add(u64::from(b))
}

/// Do-nothing instructions, `n` a read, from inline assembly (x86-64).
#[cfg(target_arch = "x86_64")]
mod pad {
    /// `$body` repeated `$k` times, with the operands in `($ops)`.
    macro_rules! rept {
        ($k:literal, $body:literal, ($($ops:tt)*)) => {
            // SAFETY: the instructions write only the scratch register
            // named as an output (and the flags); they touch no memory and
            // no stack.
            unsafe {
                std::arch::asm!(
                    concat!(".rept ", $k, "\n", $body, "\n.endr"),
                    $($ops)*
                    options(nomem, nostack)
                )
            }
        };
    }

    /// A function that runs `n` of `$body`, for each `n` of `[$k]`.
    macro_rules! pad_fn {
        ($(#[$doc:meta])* $name:ident, $body:literal, $ops:tt, [$($k:literal),*]) => {
            $(#[$doc])*
            #[inline(always)]
            pub fn $name(n: usize) {
                match n {
                    $($k => rept!($k, $body, $ops),)*
                    _ => unreachable!("no padding of {n}"),
                }
            }
        };
    }

    pad_fn!(
        /// `n` of `lea`, each writing a register.
        lea,
        "lea {a}, [{b} + 1]",
        (a = out(reg) _, b = in(reg) 5u64,),
        [16, 32, 64, 128]
    );
    pad_fn!(
        /// `n` of `cmp`, each writing only the flags.
        cmp,
        "cmp {b}, 1",
        (b = in(reg) 5u64,),
        [64]
    );
    pad_fn!(
        /// `n` of `nop`.
        nop,
        "nop",
        (),
        [64, 128]
    );
}

/// What one loop does with the list of offsets: the checksum of its reads.
type Reads<'a> = Box<dyn FnMut(&[u64]) -> u64 + 'a>;

/// One loop of the table: a name and what it reads.
struct Loop<'a> {
    name: String,
    run: Reads<'a>,
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("overlap: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let size_mib = count(args.next(), "SIZE_MIB", 1024)?;
    let reads = usize::try_from(count(args.next(), "READS", 4_000_000)?)?;
    let size = size_mib
        .checked_mul(WINDOW)
        .ok_or_else(|| format!("SIZE_MIB {size_mib}: too large"))?;

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("data");
    let mut x = 0x2545_f491_4f6c_dd1d;
    {
        let mut w = BufWriter::new(File::create(&path)?);
        for _ in 0..size / 8 {
            w.write_all(&next(&mut x).to_le_bytes())?;
        }
        w.flush()?;
    }
    let offsets: Vec<u64> = (0..reads).map(|_| next(&mut x) % size).collect();

    let file = File::open(&path)?;
    // SAFETY: the file is this program's own, in its own temporary
    // directory, and nothing changes it while it is mapped.
    let whole = unsafe { Mmap::map(&file)? };
    let windows: Vec<Mmap> = (0..size / WINDOW)
        .map(|i| {
            // SAFETY: as above.
            unsafe {
                MmapOptions::new()
                    .offset(i * WINDOW)
                    .len(WINDOW as usize)
                    .map(&file)
            }
        })
        .collect::<Result<_, _>>()?;
    let manager = SlidingWindowMapManager::builder()
        .window_size(WINDOW)
        .max_memory_size(size + WINDOW)
        .max_open_handles(usize::try_from(size / WINDOW)? + 1)
        .build();
    let buffer = SlidingWindowMapBuffer::new(manager.make_cursor(&path)?, 0, u64::MAX)?;
    let buffer = std::cell::RefCell::new(buffer);
    for w in 0..size / WINDOW {
        buffer.borrow_mut().get(w * WINDOW)?;
    }
    let mapped = manager.stats().windows;
    let (whole, windows, buffer) = (&whole, &windows, &buffer);

    // Each offset made to depend on the byte before: `zero` is 0, which the
    // compiler cannot know.
    let zero = black_box(0u64);
    let mut loops: Vec<Loop> = vec![
        Loop {
            name: "raw whole-file map".into(),
            run: Box::new(move |o| o.iter().fold(0, |h, &o| mix(h, whole[o as usize]))),
        },
        Loop {
            name: "one raw map per 1 MiB window".into(),
            run: Box::new(move |o| {
                o.iter().fold(0, |h, &o| {
                    mix(h, windows[(o / WINDOW) as usize][(o % WINDOW) as usize])
                })
            }),
        },
        Loop {
            name: "buffer `get`, every read a switch".into(),
            run: Box::new(move |o| {
                let mut b = buffer.borrow_mut();
                o.iter().fold(0, |h, &o| mix(h, b.get(o).expect("mapped")))
            }),
        },
        Loop {
            name: "raw whole-file map, dependent".into(),
            run: Box::new(move |o| {
                let mut b = 0u8;
                o.iter().fold(0, |h, &o| {
                    b = whole[(o + u64::from(b) * zero) as usize];
                    mix(h, b)
                })
            }),
        },
        Loop {
            name: "one raw map per window, dependent".into(),
            run: Box::new(move |o| {
                let mut b = 0u8;
                o.iter().fold(0, |h, &o| {
                    let o = o + u64::from(b) * zero;
                    b = windows[(o / WINDOW) as usize][(o % WINDOW) as usize];
                    mix(h, b)
                })
            }),
        },
        Loop {
            name: "buffer `get`, dependent".into(),
            run: Box::new(move |o| {
                let mut buf = buffer.borrow_mut();
                let mut b = 0u8;
                o.iter().fold(0, |h, &o| {
                    b = buf.get(o + u64::from(b) * zero).expect("mapped");
                    mix(h, b)
                })
            }),
        },
    ];
    #[cfg(target_arch = "x86_64")]
    {
        type Pad = fn(usize);
        let pads: [(&str, Pad, usize); 7] = [
            ("lea", pad::lea, 16),
            ("lea", pad::lea, 32),
            ("lea", pad::lea, 64),
            ("lea", pad::lea, 128),
            ("cmp", pad::cmp, 64),
            ("nop", pad::nop, 64),
            ("nop", pad::nop, 128),
        ];
        for (what, pad, n) in pads {
            loops.push(Loop {
                name: format!("raw whole-file map + {n} `{what}`"),
                run: Box::new(move |o| {
                    o.iter().fold(0, |h, &o| {
                        pad(n);
                        mix(h, whole[o as usize])
                    })
                }),
            });
        }
    }

    println!(
        "overlap: {size_mib} MiB file, {reads} random 1-byte reads a loop, \
         {mapped} windows of 1 MiB mapped; ns per read, 3 rounds"
    );
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); loops.len()];
    let mut sums: Vec<u64> = vec![0; loops.len()];
    for _ in 0..3 {
        for (i, l) in loops.iter_mut().enumerate() {
            let t = Instant::now();
            sums[i] = black_box((l.run)(&offsets));
            times[i].push(t.elapsed().as_nanos() as f64 / reads as f64);
        }
    }
    println!("{:<44} {:>8} {:>8}", "loop", "best", "median");
    for (l, t) in loops.iter().zip(&mut times) {
        t.sort_by(f64::total_cmp);
        println!("{:<44} {:>8.1} {:>8.1}", l.name, t[0], t[1]);
    }
    if sums.iter().any(|&s| s != sums[0]) {
        return Err(format!("the loops read different bytes: checksums {sums:?}").into());
    }
    println!("checksums agree: {:#x}", sums[0]);
    Ok(())
}
