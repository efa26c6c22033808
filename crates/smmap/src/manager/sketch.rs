//! [`Sketch`]: how often each window was asked for lately, in a count-min
//! sketch of 4-bit counters (TinyLFU's frequency estimate), kept by readers
//! without any lock; and the admission rule that uses it: a copy read maps
//! a window only when it has proved hotter than the window it would evict.
//!
//! - **Counting** is lossy on purpose: a thread reads a counter word and
//!   writes it back one higher (no read-modify-write), so two threads
//!   counting at once may count once. Four rows, each counter of the key's
//!   that is the smallest raised (the "conservative update"), estimate a
//!   window's asks as the smallest of its four counters.
//! - **Ageing**: every `sample` asks (counted per thread stripe, summed
//!   every 64 asks of a stripe) every counter is halved, so old heat fades.
//! - **Admission**: a window asked for `n` times may take the place of one
//!   asked for `v` times if `n >= 5` and `n > v` (TinyLFU's rule, with a
//!   floor). A map and the unmap it later costs take as long as several
//!   copies (many more with threads on other CPUs, whose TLBs the unmap
//!   must flush), so a window must prove hot: under uniformly random reads
//!   over more windows than fit, where no window is worth mapping, chance
//!   gives a window three asks in a sample often enough to churn windows,
//!   and five rarely. The floor, not a margin over the victim, keeps the
//!   cold out: the counters stop at 15, so a rule such as `n > 2v` could
//!   never replace a window asked for 8 times or more, and hot windows
//!   left out once (by a cold scan, or a budget full of warm ones) stayed
//!   out (with 8,000 files, 80 % of the reads on a fifth of them, it kept
//!   the hit ratio at 74 % where Belady's MIN reaches 84 %; this rule,
//!   81 %). The evictor publishes
//!   the estimate of the window its hand would take next
//!   ([`publish_victim`](Sketch::publish_victim)), or that none can be
//!   evicted now ([`close`](Sketch::close): every region is in use); a copy
//!   read compares with that, without any lock
//!   ([`may_admit`](Sketch::may_admit)), and only a window that passes asks
//!   the evictor, which compares again with the window it really would
//!   evict. A release that leaves a region unused opens a closed gate again
//!   ([`reopen`](Sketch::reopen)): one load of a word that changes rarely;
//!   so does each halving, in case a release raced with the close (its
//!   load saw the gate open, just before the walk that found it in use
//!   closed it).

use crate::sync::{AtomicU32, AtomicU64, Ordering, Padded};

/// Asks a window needs, at least, to be mapped in place of another.
pub(crate) const ADMIT_ASKS: u32 = 5;

/// The published victim when no region can be evicted.
const CLOSED: u32 = u32::MAX;

const ROWS: usize = 4;
const MAX: u64 = 15;
/// Stripes of the ask count.
const STRIPES: usize = 16;
/// A stripe's asks between two looks at the sum.
const BATCH: u64 = 64;

/// A window's key: its file entry's serial number (never reused, so the
/// counts of a forgotten file just fade) and its index (its start over the
/// window size).
pub(crate) type Key = (u64, u64);

/// Decaying, lossy counts of the windows asked for (see the module
/// documentation).
#[derive(Debug)]
pub(crate) struct Sketch {
    /// `ROWS` rows of `width` 4-bit counters, 16 to a word.
    words: Box<[AtomicU64]>,
    width: usize,
    /// Asks between two halvings.
    sample: u64,
    /// Asks counted, per thread stripe.
    asks: Box<[Padded<AtomicU64>]>,
    /// The sum of the asks at which the next halving is due.
    next_halving: AtomicU64,
    /// The estimate of the window the evictor would take next, or
    /// [`CLOSED`]; on a line of its own, as every release reads it.
    victim: Padded<AtomicU32>,
}

fn mix(mut x: u64) -> u64 {
    // splitmix64's finaliser.
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Sketch {
    /// A sketch for a cache of about `windows` windows, halved every 16
    /// asks per window; 8 counters in each row for each of at least 1,024
    /// windows, as the windows asked for are often many more than those
    /// kept (each collision raises an estimate).
    pub(crate) fn new(windows: usize) -> Self {
        let windows = windows.clamp(16, 4096);
        let width = (8 * windows.max(1024)).next_power_of_two();
        let sample = 16 * windows as u64;
        Sketch {
            words: (0..ROWS * width / 16).map(|_| AtomicU64::new(0)).collect(),
            width,
            sample,
            asks: (0..STRIPES).map(|_| Padded(AtomicU64::new(0))).collect(),
            next_halving: AtomicU64::new(sample),
            victim: Padded(AtomicU32::new(0)),
        }
    }

    /// The counter of `key` in each row: (word, shift).
    #[inline]
    fn counters(&self, key: Key) -> [(usize, u32); ROWS] {
        let h1 = mix(key.0.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ key.1);
        let h2 = mix(h1 ^ 0x5851_f42d_4c95_7f2d) | 1;
        std::array::from_fn(|row| {
            let i = (h1.wrapping_add((row as u64).wrapping_mul(h2)) as usize) & (self.width - 1);
            (row * self.width / 16 + i / 16, 4 * (i % 16) as u32)
        })
    }

    /// The estimate of `key`'s asks.
    pub(crate) fn estimate(&self, key: Key) -> u32 {
        self.counters(key)
            .iter()
            .map(|&(w, sh)| (self.words[w].load(Ordering::Relaxed) >> sh) & MAX)
            .min()
            .unwrap_or(0) as u32
    }

    /// Counts `n` asks for `key` (a miss: one; uses of a mapped window the
    /// evictor's hand found: their number); returns the estimate now.
    ///
    /// The conservative update: every counter of the key below the least
    /// one plus `n` is raised to that, so that the estimate (the least
    /// counter) is that afterwards, whatever other keys raised some of the
    /// counters to before.
    pub(crate) fn add(&self, key: Key, n: u32) -> u32 {
        if n == 0 {
            return self.estimate(key);
        }
        let cs = self.counters(key);
        let now: [u64; ROWS] =
            std::array::from_fn(|r| (self.words[cs[r].0].load(Ordering::Relaxed) >> cs[r].1) & MAX);
        let min = now.iter().copied().min().unwrap_or(0);
        let to = (min + u64::from(n)).min(MAX);
        for (r, &(w, sh)) in cs.iter().enumerate() {
            if now[r] < to {
                // Lossy: a racing writer of the same word may undo this,
                // or undo a halving's store to it (`halve` loads and stores
                // apart): then that word's sixteen counters keep their
                // weight until the next halving, which biases admission
                // for one sample and is never unsafe.
                let word = &self.words[w];
                let v = word.load(Ordering::Relaxed);
                word.store(v & !(MAX << sh) | (to << sh), Ordering::Relaxed);
            }
        }
        self.count_asks(u64::from(n));
        to as u32
    }

    /// Counts `n` asks towards the next halving; halves when it is due.
    fn count_asks(&self, n: u64) {
        let stripe = &self.asks[super::counters::stripe() % STRIPES];
        let was = stripe.fetch_add(n, Ordering::Relaxed);
        if (was + n) / BATCH == was / BATCH && n < BATCH {
            return;
        }
        let total: u64 = self.asks.iter().map(|s| s.load(Ordering::Relaxed)).sum();
        let due = self.next_halving.load(Ordering::Relaxed);
        if total >= due
            && self
                .next_halving
                .compare_exchange(
                    due,
                    total + self.sample,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            self.halve();
        }
    }

    /// Halves every counter (and the published victim's estimate), and
    /// opens a closed gate.
    fn halve(&self) {
        // Each 4-bit counter shifted right, none spilling into its
        // neighbour.
        const KEEP: u64 = 0x7777_7777_7777_7777;
        for w in self.words.iter() {
            let v = w.load(Ordering::Relaxed);
            w.store((v >> 1) & KEEP, Ordering::Relaxed);
        }
        // A closed gate opens too: a release that came while the walk that
        // closed it was ending (its `reopen` saw the gate still open) is
        // not lost for longer than a sample. If every region is still in
        // use, the next read hot enough walks the hand and closes it again:
        // two turns of the hand per sample of asks, at most.
        let v = self.victim.load(Ordering::Relaxed);
        self.victim
            .store(if v == CLOSED { 0 } else { v / 2 }, Ordering::Relaxed);
    }

    /// True if a window asked for `count` times is hot enough to take the
    /// place of one asked for `victim` times: asked for at least
    /// [`ADMIT_ASKS`] times, and more often than the victim.
    pub(crate) fn admits(count: u32, victim: u32) -> bool {
        count >= ADMIT_ASKS && count > victim
    }

    /// True if a window asked for `count` times may be hotter than the one
    /// the evictor would take next, as it last published.
    #[inline]
    pub(crate) fn may_admit(&self, count: u32) -> bool {
        let victim = self.victim.load(Ordering::Relaxed);
        victim != CLOSED && Self::admits(count, victim)
    }

    /// No region can be evicted now: copy reads stop asking the evictor
    /// until a release [reopens](Self::reopen) the gate.
    pub(crate) fn close(&self) {
        self.victim.store(CLOSED, Ordering::Relaxed);
    }

    /// A region became unused: if the gate was closed, copy reads may ask
    /// the evictor again (which publishes the real victim's estimate).
    #[inline]
    pub(crate) fn reopen(&self) {
        if self.victim.load(Ordering::Relaxed) == CLOSED {
            self.victim.store(0, Ordering::Relaxed);
        }
    }

    /// The evictor's estimate of the window its hand would take next.
    pub(crate) fn publish_victim(&self, estimate: u32) {
        self.victim.store(estimate, Ordering::Relaxed);
    }

    /// Windows with a count in the first row now (an estimate of how many
    /// are being counted).
    pub(crate) fn counted(&self) -> usize {
        self.words[..self.width / 16]
            .iter()
            .map(|w| {
                let v = w.load(Ordering::Relaxed);
                (0..16).filter(|k| (v >> (4 * k)) & MAX != 0).count()
            })
            .sum()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// A credit of many uses raises the key's estimate by that many, also
    /// when a colliding key raised one of its counters above the least.
    #[test]
    fn a_credit_of_many_raises_every_counter_below_the_new_count() {
        let s = Sketch::new(16);
        let k = (7, 7);
        let (w, sh) = s.counters(k)[2];
        // A colliding key's asks in one of `k`'s counters.
        s.words[w].store(3 << sh, Ordering::Relaxed);
        assert_eq!(s.add(k, 1), 1);
        assert_eq!(s.add(k, 6), 7);
        assert_eq!(s.estimate(k), 7);
        assert_eq!(s.add(k, 1), 8);
    }

    #[test]
    fn counts_saturate_decay_and_admission_needs_clear_heat() {
        let s = Sketch::new(16);
        assert_eq!(
            (s.add((1, 0), 1), s.add((1, 0), 1), s.add((1, 0), 1)),
            (1, 2, 3)
        );
        assert_eq!((s.estimate((1, 0)), s.estimate((1, 1))), (3, 0));
        assert!(Sketch::admits(5, 4) && !Sketch::admits(5, 5) && !Sketch::admits(4, 0));
        // A warm victim, past half the counters' range, still gives way to
        // a hotter window; a saturated one to none.
        assert!(Sketch::admits(15, 14) && !Sketch::admits(15, 15));
        assert_eq!(s.add((2, 5), 40), 15, "4-bit counters saturate");
        assert!(s.may_admit(5));
        s.publish_victim(6);
        assert!(!s.may_admit(6) && s.may_admit(7));
        // 16 windows: halved every 256 asks (counted in batches of 64).
        for i in 0..256 {
            s.add((3, i), 1);
        }
        assert!(s.estimate((2, 5)) <= 7, "halved: {}", s.estimate((2, 5)));
        assert!(s.estimate((1, 0)) <= 1);
        assert_eq!(
            s.victim.load(Ordering::Relaxed),
            3,
            "the victim's estimate halves too"
        );
        assert!(s.counted() > 0);
        s.close();
        assert!(!s.may_admit(15), "nothing to evict");
        for i in 0..256 {
            s.add((4, i), 1);
        }
        assert!(s.may_admit(5), "open again at the halving");
        s.close();
        s.reopen();
        assert!(s.may_admit(5));
    }

    #[test]
    fn uniform_asks_over_a_few_thousand_windows_rarely_reach_the_bar() {
        // 2,000 windows asked for uniformly, a cache of 64: the sketch is
        // halved every 1,024 asks, so each window has about one ask at a
        // time; five within a sample is rare.
        let s = Sketch::new(64);
        let mut x = 88_172_645_463_325_252u64;
        let mut over = 0;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if s.add((1, x % 2000), 1) >= ADMIT_ASKS {
                over += 1;
            }
        }
        assert!(over < 500, "{over} of 100,000 asks reached the bar");
    }

    #[test]
    fn many_cold_windows_stay_below_the_bar() {
        // Uniform asks over far more windows than the cache holds: none
        // reaches the admission bar; a hot window among them does.
        let s = Sketch::new(64);
        let mut hot = 0;
        for round in 0..20_000u64 {
            s.add((1, (round * 7919) % 50_000), 1);
            if round % 10 == 0 {
                hot = s.add((2, 0), 1);
            }
        }
        let cold = (0..1000)
            .filter(|&i| s.estimate((1, i)) >= ADMIT_ASKS)
            .count();
        assert!(cold < 20, "{cold} cold windows look hot");
        assert!(hot >= ADMIT_ASKS, "{hot}");
    }
}
