//! Belady's MIN with bypass: the hit ratio of the best eviction policy that
//! knows the future, offline, under the same limits as the engine — what
//! the adaptive policy is compared with.
//!
//! The reads are first turned into window accesses, as the engine places
//! windows for reads that copy: the window-size slot holding each read
//! ([`accesses`]). Then, walking the accesses with every window's next use
//! known ([`min`]):
//!
//! - an access to a window held is a hit;
//! - on a miss, the window is kept if it fits the limits once the held
//!   windows used farthest in the future are evicted — as long as each of
//!   those is used later than it; if the window itself is used later than
//!   every window it would have to evict (or never again), it is not kept
//!   (the bypass: a read that copies instead of mapping).
//!
//! A program's cursors add one rule, the engine's: the window a cursor
//! holds stays mapped until the cursor moves off it or lets it go (a read
//! with a cursor pins its window; [`Read::release`] unpins; a miss unpins
//! the cursor's window before room is made for the next, which may evict
//! it, as the engine gives the region back), even over the limits, and a
//! read that must map (a cursor's `use_region`) is never bypassed. Pinned windows are never evicted; the rest is MIN. Reads
//! without a cursor (the bench's rows) pin nothing.
//!
//! With windows of one size and a limit on their number, this is Belady's
//! MIN, the optimum. With windows of different sizes under a byte limit,
//! evicting the farthest next use first is a reference, not a proven
//! optimum (the problem is NP-hard in general): it says how far the engine
//! is from a very good offline policy, not from the best possible.
//!
//! [`fixed_set`] is the other reference: a reader that keeps a fixed set of
//! files mapped whole, each counted as mapped at its first read, and copies
//! the rest — how the bench counts its oracle (which maps its files before
//! the clock starts). Where reads fall on files independently, each with
//! fixed odds (the independent reference model), and each file is one
//! window under a limit on their number, keeping the likeliest files the
//! limit holds is, in expectation and once the odds are known, the best a
//! policy that does not know the future can do; under a byte limit the
//! best set also weighs the files' sizes. So on such reads the oracle's hit
//! ratio over MIN's says how near MIN an online policy can expect to come.

use std::collections::{BinaryHeap, HashMap};

/// One read of a trace or a workload: `len` bytes at `offset` of file
/// `file` (an index), whose size is `size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Read {
    /// The file, by index.
    pub file: u32,
    /// Where the read starts.
    pub offset: u64,
    /// How many bytes.
    pub len: u64,
    /// The cursor that reads, which holds the window it maps; `None`: no
    /// cursor holds anything.
    pub cursor: Option<u32>,
    /// The read maps its window whatever the limits (a cursor's
    /// `use_region`): never bypassed.
    pub must_map: bool,
}

impl Read {
    /// A read of `len` bytes at `offset` of `file` by no cursor.
    pub fn at(file: u32, offset: u64, len: u64) -> Read {
        Read {
            file,
            offset,
            len,
            cursor: None,
            must_map: false,
        }
    }

    /// Not a read: `cursor` lets its window go.
    pub fn release(cursor: u32) -> Read {
        Read {
            file: RELEASE.0,
            offset: 0,
            len: 0,
            cursor: Some(cursor),
            must_map: false,
        }
    }
}

/// The window key of a release.
const RELEASE: (u32, u64) = (u32::MAX, u64::MAX);

/// One window accessed: its key and its cost (bytes charged), and the
/// cursor and kind of the read (see [`Read`]); or a cursor's release (the
/// key [`RELEASE`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// `(file, slot index)`.
    pub window: (u32, u64),
    /// Bytes charged for the window (whole pages).
    pub cost: u64,
    /// The cursor that reads.
    pub cursor: Option<u32>,
    /// Never bypassed.
    pub must_map: bool,
}

impl Access {
    /// A cursor's release, not a window.
    pub fn is_release(&self) -> bool {
        self.window == RELEASE
    }
}

/// The windows `reads` touch, in order, for windows of `window` bytes
/// (`u64::MAX`: whole files) over files of `sizes`, each window charged in
/// whole units of `page`. A read that spans windows touches each, except
/// one that must map, which maps the window at its offset (its view ends
/// there).
pub fn accesses(reads: &[Read], sizes: &[u64], window: u64, page: u64) -> Vec<Access> {
    let mut out = Vec::with_capacity(reads.len());
    for r in reads {
        if r.file == RELEASE.0 {
            out.push(Access {
                window: RELEASE,
                cost: 0,
                cursor: r.cursor,
                must_map: false,
            });
            continue;
        }
        let size = sizes[r.file as usize];
        let Some((first, last)) = windows_of(r, size, window) else {
            continue;
        };
        for k in first..=last {
            let (lo, hi) = if window == u64::MAX {
                (0, size)
            } else {
                (k * window, (k * window).saturating_add(window).min(size))
            };
            out.push(Access {
                window: (r.file, k),
                cost: (hi - lo).div_ceil(page) * page,
                cursor: r.cursor,
                must_map: r.must_map,
            });
        }
    }
    out
}

/// How many accesses [`accesses`] makes of `reads` (releases included),
/// without making them: what a caller checks first, since a read of many
/// windows is as many accesses.
pub fn access_count(reads: &[Read], sizes: &[u64], window: u64) -> u64 {
    reads
        .iter()
        .map(|r| {
            if r.file == RELEASE.0 {
                return 1;
            }
            windows_of(r, sizes[r.file as usize], window).map_or(0, |(a, b)| b - a + 1)
        })
        .fold(0u64, u64::saturating_add)
}

/// The first and last window `r` touches in a file of `size` bytes, for
/// windows of `window` bytes (`u64::MAX`: the whole file, window 0); none
/// at or past the end, or for no bytes.
fn windows_of(r: &Read, size: u64, window: u64) -> Option<(u64, u64)> {
    if r.offset >= size || r.len == 0 {
        return None;
    }
    let end = r.offset.saturating_add(r.len).min(size);
    Some(if window == u64::MAX {
        (0, 0)
    } else if r.must_map {
        (r.offset / window, r.offset / window)
    } else {
        (r.offset / window, (end - 1) / window)
    })
}

/// The limits MIN keeps to: windows held and bytes charged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Windows held at most.
    pub handles: usize,
    /// Bytes charged at most.
    pub bytes: u64,
}

/// What MIN did over a sequence of accesses.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Outcome {
    /// Accesses to a window held.
    pub hits: u64,
    /// Windows brought in (maps, for the engine).
    pub admitted: u64,
    /// Misses not kept (copies, for the engine).
    pub bypassed: u64,
    /// Windows evicted.
    pub evicted: u64,
}

impl Outcome {
    /// Hits over accesses; 1 with no access (none missed), as the engine's
    /// hit ratio is counted.
    pub fn hit_ratio(&self) -> f64 {
        let n = self.hits + self.admitted + self.bypassed;
        if n == 0 {
            return 1.0;
        }
        self.hits as f64 / n as f64
    }
}

/// A policy's hit ratio `hit` over MIN's, `min`: how near the optimum it
/// came. Both 0 (reads no policy could hit, such as one read of each
/// window) is 1: as good as MIN.
pub fn over_min(hit: f64, min: f64) -> f64 {
    match (hit, min) {
        (_, m) if m > 0.0 => hit / m,
        (h, _) if h > 0.0 => f64::INFINITY,
        _ => 1.0,
    }
}

/// Belady's MIN with bypass over `accesses` under `limits` (see the module
/// documentation).
pub fn min(accesses: &[Access], limits: Limits) -> Outcome {
    const NEVER: usize = usize::MAX;
    type Window = (u32, u64);
    // next[i]: the index of the next access to the same window, or NEVER.
    let mut next = vec![NEVER; accesses.len()];
    let mut seen: HashMap<Window, usize> = HashMap::new();
    for i in (0..accesses.len()).rev() {
        if accesses[i].is_release() {
            continue;
        }
        if let Some(j) = seen.insert(accesses[i].window, i) {
            next[i] = j;
        }
    }
    // Held windows: their next use, cost and how many cursors pin them. The
    // heap orders them by next use, farthest first; entries whose next use
    // changed are stale and skipped (lazy deletion).
    let mut held: HashMap<Window, (usize, u64, u32)> = HashMap::new();
    let mut heap: BinaryHeap<(usize, Window)> = BinaryHeap::new();
    let mut pins: HashMap<u32, Window> = HashMap::new();
    let (mut bytes, mut out) = (0u64, Outcome::default());
    // `cursor` now holds `w` (or nothing).
    let repin = |held: &mut HashMap<Window, (usize, u64, u32)>,
                 pins: &mut HashMap<u32, Window>,
                 cursor: u32,
                 w: Option<Window>| {
        let old = match w {
            Some(w) => pins.insert(cursor, w),
            None => pins.remove(&cursor),
        };
        if old == w {
            return;
        }
        if let Some(h) = w.and_then(|w| held.get_mut(&w)) {
            h.2 += 1;
        }
        if let Some(h) = old.and_then(|o| held.get_mut(&o)) {
            h.2 -= 1;
        }
    };
    for (i, a) in accesses.iter().enumerate() {
        if a.is_release() {
            if let Some(c) = a.cursor {
                repin(&mut held, &mut pins, c, None);
            }
            continue;
        }
        let nu = next[i];
        if let Some(h) = held.get_mut(&a.window) {
            out.hits += 1;
            h.0 = nu;
            heap.push((nu, a.window));
            if let Some(c) = a.cursor {
                repin(&mut held, &mut pins, c, Some(a.window));
            }
            continue;
        }
        let forced = a.must_map;
        if !forced && (a.cost > limits.bytes || limits.handles == 0 || nu == NEVER) {
            out.bypassed += 1;
            continue;
        }
        // The cursor moves off its window: as the engine gives the region
        // back before it makes room for the next, the pin goes first (and
        // comes back if the read is bypassed: a copy leaves the cursor
        // where it was).
        let moved_from = a.cursor.and_then(|c| pins.get(&c).copied());
        if let Some(c) = a.cursor {
            repin(&mut held, &mut pins, c, None);
        }
        // Evict the farthest-used unpinned windows while the new one does
        // not fit, as long as each is used later than the new one (any, for
        // a window that must be mapped).
        let (mut victims, mut pinned) = (Vec::new(), Vec::new());
        let (mut n, mut b) = (held.len(), bytes);
        let mut fits = n < limits.handles && b + a.cost <= limits.bytes;
        while !fits {
            let Some(&(far, w)) = heap.peek() else { break };
            let Some(&(at, _, pins_on)) = held.get(&w) else {
                heap.pop();
                continue;
            };
            if at != far {
                heap.pop();
                continue;
            }
            if pins_on > 0 {
                pinned.push(heap.pop().expect("peeked"));
                continue;
            }
            if !forced && far <= nu {
                break;
            }
            heap.pop();
            victims.push((far, w));
            n -= 1;
            b -= held[&w].1;
            fits = n < limits.handles && b + a.cost <= limits.bytes;
        }
        heap.extend(pinned);
        if !fits && !forced {
            // Bypass: put back the windows that were to go.
            heap.extend(victims);
            out.bypassed += 1;
            if let Some(c) = a.cursor {
                repin(&mut held, &mut pins, c, moved_from);
            }
            continue;
        }
        for (_, w) in victims {
            let (_, cost, _) = held.remove(&w).expect("a victim is held");
            bytes -= cost;
            out.evicted += 1;
        }
        held.insert(a.window, (nu, a.cost, 0));
        heap.push((nu, a.window));
        bytes += a.cost;
        out.admitted += 1;
        if let Some(c) = a.cursor {
            repin(&mut held, &mut pins, c, Some(a.window));
        }
    }
    out
}

/// A reader that maps each file `mapped` says at its first access and keeps
/// it, and copies every access to another file (bypass), over `accesses`,
/// from nothing mapped: the bench's oracle (see the module documentation).
/// A file is mapped whole, so after its first access every window of it
/// is a hit.
pub fn fixed_set(accesses: &[Access], mapped: impl Fn(u32) -> bool) -> Outcome {
    let mut seen = std::collections::HashSet::new();
    let mut out = Outcome::default();
    for a in accesses.iter().filter(|a| !a.is_release()) {
        let file = a.window.0;
        if !mapped(file) {
            out.bypassed += 1;
        } else if seen.insert(file) {
            out.admitted += 1;
        } else {
            out.hits += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The next number of a xorshift sequence at `x`.
    fn xorshift(x: &mut u64) -> u64 {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x
    }

    /// An access of cost 1 to `window`, by no cursor.
    fn unit(window: (u32, u64)) -> Access {
        Access {
            window,
            cost: 1,
            cursor: None,
            must_map: false,
        }
    }

    /// Accesses to windows `ws` of file 0.
    fn acc(ws: &[u64]) -> Vec<Access> {
        ws.iter().map(|&w| unit((0, w))).collect()
    }

    #[test]
    fn the_classic_sequence() {
        // 3 frames, the textbook reference string: MIN (with demand paging)
        // faults 9 times on these 20 references; with bypass it never does
        // worse.
        let s = acc(&[7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2, 1, 2, 0, 1, 7, 0, 1]);
        let o = min(
            &s,
            Limits {
                handles: 3,
                bytes: u64::MAX,
            },
        );
        let misses = o.admitted + o.bypassed;
        assert!(misses <= 9, "{o:?}");
        assert_eq!(o.hits + misses, 20);
    }

    /// No access: none missed, for MIN as for the engine; reads that no
    /// policy hits put a policy that hits none at MIN's level, not at 0.
    #[test]
    fn no_access_and_no_possible_hit() {
        let limits = Limits {
            handles: 1,
            bytes: u64::MAX,
        };
        assert_eq!(min(&[], limits).hit_ratio(), 1.0);
        assert_eq!(over_min(0.0, 0.0), 1.0);
        assert_eq!(over_min(0.4, 0.8), 0.5);
        assert_eq!(over_min(0.1, 0.0), f64::INFINITY);
    }

    #[test]
    fn a_window_used_once_is_bypassed() {
        let o = min(
            &acc(&[1, 1, 2, 1, 3, 1]),
            Limits {
                handles: 1,
                bytes: u64::MAX,
            },
        );
        // 1 is kept; 2 and 3 are never used again: bypassed, 1 stays.
        assert_eq!((o.hits, o.admitted, o.bypassed, o.evicted), (3, 1, 2, 0));
        assert!((o.hit_ratio() - 0.5).abs() < 1e-12);
    }

    #[test]
    fn the_byte_limit_and_windows_too_large() {
        let s = vec![
            Access {
                window: (0, 0),
                cost: 8,
                cursor: None,
                must_map: false,
            },
            Access {
                window: (0, 1),
                cost: 4,
                cursor: None,
                must_map: false,
            },
            Access {
                window: (0, 0),
                cost: 8,
                cursor: None,
                must_map: false,
            },
            Access {
                window: (0, 1),
                cost: 4,
                cursor: None,
                must_map: false,
            },
            Access {
                window: (0, 2),
                cost: 20,
                cursor: None,
                must_map: false,
            },
            Access {
                window: (0, 2),
                cost: 20,
                cursor: None,
                must_map: false,
            },
        ];
        let o = min(
            &s,
            Limits {
                handles: 10,
                bytes: 12,
            },
        );
        assert_eq!((o.hits, o.admitted, o.bypassed), (2, 2, 2), "{o:?}");
    }

    fn pinned(steps: &[(u32, u64, bool)]) -> Vec<Access> {
        // (cursor, window, must map); window u64::MAX: the cursor's release.
        steps
            .iter()
            .map(|&(c, w, must_map)| {
                if w == u64::MAX {
                    let r = Read::release(c);
                    return accesses(&[r], &[], 1, 1)[0];
                }
                Access {
                    window: (0, w),
                    cost: 1,
                    cursor: Some(c),
                    must_map,
                }
            })
            .collect()
    }

    #[test]
    fn a_cursors_window_stays_mapped_over_the_limit() {
        // One mapping allowed, two cursors that each must map their own
        // window: both are mapped (the engine's rule), and each cursor's
        // next read of its window hits.
        let one = Limits {
            handles: 1,
            bytes: u64::MAX,
        };
        let o = min(
            &pinned(&[(0, 1, true), (1, 2, true), (0, 1, true), (1, 2, true)]),
            one,
        );
        assert_eq!((o.hits, o.admitted, o.bypassed, o.evicted), (2, 2, 0, 0));
        // Once cursor 0 lets its window go, the next map evicts it; a read
        // that may copy is bypassed while both are pinned.
        let o = min(
            &pinned(&[
                (0, 1, true),
                (1, 2, false),
                (0, u64::MAX, false),
                (1, 3, true),
                (0, 1, true),
            ]),
            one,
        );
        assert_eq!(
            (o.hits, o.admitted, o.bypassed, o.evicted),
            (0, 3, 1, 1),
            "{o:?}"
        );
    }

    #[test]
    fn a_cursor_that_moves_lets_its_window_go_first() {
        // One mapping allowed, one cursor going back and forth between two
        // windows: each move evicts the window it leaves (as the engine
        // gives the region back), so nothing is ever held twice and no
        // read hits.
        let one = Limits {
            handles: 1,
            bytes: u64::MAX,
        };
        let steps: Vec<_> = (0..10).map(|i| (0, i % 2, true)).collect();
        let o = min(&pinned(&steps), one);
        assert_eq!(
            (o.hits, o.admitted, o.bypassed, o.evicted),
            (0, 10, 0, 9),
            "{o:?}"
        );
        // A read that may copy, bypassed, leaves the cursor's window
        // pinned: the next read of it hits.
        let o = min(
            &pinned(&[
                (0, 1, true),
                (1, 2, true),
                (0, 3, false),
                (0, 1, true),
                (0, 3, true),
            ]),
            one,
        );
        assert_eq!((o.hits, o.bypassed), (1, 1), "{o:?}");
    }

    #[test]
    fn a_read_that_must_map_touches_its_offsets_window_only() {
        let mut r = Read::at(0, 4000, 10_000);
        r.cursor = Some(0);
        r.must_map = true;
        let a = accesses(&[r], &[100_000], 4096, 4096);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].window, (0, 0));
        assert!(!a[0].is_release());
    }

    #[test]
    fn reads_become_window_accesses() {
        let reads = [
            Read::at(0, 10, 4096),
            Read::at(1, 0, 1),
            Read::at(0, 9000, 1),
            Read::at(0, 20_000, 1),
        ];
        let a = accesses(&reads, &[10_000, 100], 4096, 4096);
        let ws: Vec<_> = a.iter().map(|a| (a.window, a.cost)).collect();
        assert_eq!(
            ws,
            [
                ((0, 0), 4096),
                ((0, 1), 4096),
                ((1, 0), 4096),
                ((0, 2), 4096)
            ]
        );
        let whole = accesses(&reads, &[10_000, 100], u64::MAX, 4096);
        assert_eq!(whole.len(), 3);
        assert_eq!(whole[0].cost, 12_288);
    }

    #[test]
    fn never_worse_than_lru_on_random_sequences() {
        let mut x = 12345u64;
        for _ in 0..50 {
            let s: Vec<u64> = (0..500).map(|_| xorshift(&mut x) % 20).collect();
            let a = acc(&s);
            let o = min(
                &a,
                Limits {
                    handles: 5,
                    bytes: u64::MAX,
                },
            );
            let mut lru: Vec<u64> = Vec::new();
            let mut lru_hits = 0;
            for &w in &s {
                if let Some(p) = lru.iter().position(|&v| v == w) {
                    lru.remove(p);
                    lru_hits += 1;
                } else if lru.len() == 5 {
                    lru.remove(0);
                }
                lru.push(w);
            }
            assert!(o.hits >= lru_hits, "MIN {} < LRU {lru_hits}", o.hits);
        }
    }

    /// Accesses to whole files (window 0 of each).
    fn files(fs: &[u32]) -> Vec<Access> {
        fs.iter().map(|&f| unit((f, 0))).collect()
    }

    #[test]
    fn a_fixed_set_maps_its_files_at_their_first_read_and_copies_the_rest() {
        let mut a = files(&[1, 2, 1, 3, 1, 2, 3]);
        a.insert(
            2,
            Access {
                window: RELEASE,
                cost: 0,
                cursor: Some(0),
                must_map: false,
            },
        );
        let o = fixed_set(&a, |f| f == 1 || f == 2);
        // 1 and 2: mapped at their first reads, hits after; 3 is copied;
        // the release is not an access.
        assert_eq!((o.hits, o.admitted, o.bypassed, o.evicted), (3, 2, 2, 0));
        assert!((o.hit_ratio() - 3.0 / 7.0).abs() < 1e-12);
    }

    #[test]
    fn a_fixed_set_maps_a_file_whole() {
        // Two windows of file 1: the second is a hit once the file is mapped.
        let mut a = files(&[1, 1]);
        a[1].window = (1, 5);
        let o = fixed_set(&a, |f| f == 1);
        assert_eq!((o.hits, o.admitted, o.bypassed), (1, 1, 0));
    }

    #[test]
    fn no_fixed_set_beats_min() {
        // Windows of one size under a limit on their number: MIN is the
        // optimum, so no fixed set of as many files hits more, the likeliest
        // ones (those a skewed row reads most) included.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..50 {
            let s: Vec<u32> = (0..400)
                .map(|_| {
                    let x = xorshift(&mut x);
                    // Files 0..4 take about half the reads.
                    if x % 2 == 0 {
                        (x >> 8) as u32 % 4
                    } else {
                        (x >> 8) as u32 % 30
                    }
                })
                .collect();
            let a = files(&s);
            let k = 3 + round % 4;
            let o = min(
                &a,
                Limits {
                    handles: k,
                    bytes: u64::MAX,
                },
            );
            for first in 0..8u32 {
                let f = fixed_set(&a, |file| file >= first && file < first + k as u32);
                assert!(
                    f.hits <= o.hits,
                    "{k} files from {first}: {f:?} against MIN {o:?}"
                );
            }
        }
    }
}
