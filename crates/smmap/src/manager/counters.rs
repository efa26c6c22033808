//! [`Counters`]: the statistics' counters, striped by thread so that
//! counting never makes threads fight over one cache line; a snapshot sums
//! the stripes. The peaks are single words raised with `fetch_max` on the
//! miss path.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::sync::Padded;

/// How many stripes: threads beyond this share them (counting stays exact,
/// only slower).
const STRIPES: usize = 16;

/// The counters kept per stripe, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub(crate) enum Counter {
    Hits,
    Misses,
    Reuses,
    Maps,
    MapFailures,
    Retries,
    Waits,
    Preads,
    PreadBytes,
    PreadWindows,
    GhostHits,
    FdOpens,
    Evictions,
    Collected,
}

const COUNTERS: usize = Counter::Collected as usize + 1;

/// The thread's stripe: threads are numbered as they first count.
pub(crate) fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static MINE: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    MINE.try_with(|s| *s).unwrap_or(0)
}

/// Every counter of a manager (see the module documentation).
#[derive(Debug)]
pub(crate) struct Counters {
    stripes: Box<[Padded<[AtomicU64; COUNTERS]>]>,
    peak_mapped_bytes: AtomicU64,
    peak_windows: AtomicUsize,
    peak_over_limit_bytes: AtomicU64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            stripes: (0..STRIPES)
                .map(|_| Padded(std::array::from_fn(|_| AtomicU64::new(0))))
                .collect(),
            peak_mapped_bytes: AtomicU64::new(0),
            peak_windows: AtomicUsize::new(0),
            peak_over_limit_bytes: AtomicU64::new(0),
        }
    }
}

impl Counters {
    /// Adds `n` to counter `c`, on the calling thread's stripe.
    #[inline]
    pub(crate) fn add(&self, c: Counter, n: u64) {
        if n != 0 {
            self.stripes[stripe() % STRIPES][c as usize].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Counter `c`, summed over the stripes.
    pub(crate) fn get(&self, c: Counter) -> u64 {
        self.stripes
            .iter()
            .map(|s| s[c as usize].load(Ordering::Relaxed))
            .sum()
    }

    /// Raises the peaks to what is tracked now: `windows` regions of
    /// `memory` exact bytes, `over` charged bytes past the limit.
    pub(crate) fn note_peaks(&self, windows: usize, memory: u64, over: u64) {
        self.peak_windows.fetch_max(windows, Ordering::Relaxed);
        self.peak_mapped_bytes.fetch_max(memory, Ordering::Relaxed);
        self.peak_over_limit_bytes
            .fetch_max(over, Ordering::Relaxed);
    }

    /// The peaks: windows, mapped bytes, bytes past the limit.
    pub(crate) fn peaks(&self) -> (usize, u64, u64) {
        (
            self.peak_windows.load(Ordering::Relaxed),
            self.peak_mapped_bytes.load(Ordering::Relaxed),
            self.peak_over_limit_bytes.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripes_add_up() {
        let c = std::sync::Arc::new(Counters::default());
        let threads: Vec<_> = (0..20)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        c.add(Counter::Preads, 1);
                    }
                    c.add(Counter::PreadBytes, 7);
                    c.add(Counter::Maps, 0);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(c.get(Counter::Preads), 20_000);
        assert_eq!(c.get(Counter::PreadBytes), 140);
        assert_eq!(c.get(Counter::Maps), 0);
        c.note_peaks(3, 100, 0);
        c.note_peaks(2, 200, 5);
        assert_eq!(c.peaks(), (3, 200, 5));
    }
}
