//! [`Heat`]: how often each window has been asked for lately, so that a copy
//! read maps a window only when it has proved hotter than the one it would
//! evict (the admission rule of TinyLFU). Under uniformly random reads no
//! window is hotter than another, the mapped set settles, and the rest is
//! copied; under skewed reads the hot windows are mapped and stay.

use std::collections::HashMap;

/// A window's key: its file entry's serial number (never reused, so the
/// counts of a forgotten file just decay away) and its slot of the window
/// size.
pub(super) type Key = (u64, u64);

/// Asks a window needs, at least, to be mapped in place of another.
const ADMIT_ASKS: u32 = 3;

/// Asks between two halvings per window asked for in the last period: the
/// counts of windows asked for equally often then sit near this number, so
/// that chance differences between them stay well under the factor of two
/// [`Heat::admits`] asks for.
const ASKS_PER_WINDOW: usize = 8;

/// The longest period: bounds the counts kept to `4 × MAX_PERIOD` windows.
const MAX_PERIOD: usize = 1 << 16;

/// Decaying counts of the windows asked for.
#[derive(Debug, Default)]
pub(super) struct Heat {
    counts: HashMap<Key, u32>,
    /// Asks counted since the counts were last halved.
    asks: usize,
    /// Asks between two halvings.
    period: usize,
    /// The shortest period (some multiple of the windows the budget holds).
    min_period: usize,
}

impl Heat {
    /// Counts that halve every `min_period` asks at least (TinyLFU's sample
    /// size, some multiple of the number of windows the budget holds), or
    /// every [`ASKS_PER_WINDOW`] asks per window asked for, when more
    /// windows than that are read (at most [`MAX_PERIOD`]).
    pub(super) fn new(min_period: usize) -> Self {
        let min_period = min_period.clamp(16, MAX_PERIOD);
        Heat {
            period: min_period,
            min_period,
            ..Heat::default()
        }
    }

    /// Counts one ask for `key`; returns its count now.
    pub(super) fn ask(&mut self, key: Key) -> u32 {
        self.asks += 1;
        if self.asks >= self.period || self.counts.len() >= 4 * MAX_PERIOD {
            self.halve();
        }
        let c = self.counts.entry(key).or_insert(0);
        *c = c.saturating_add(1);
        *c
    }

    /// Counts `n` asks for `key` at once (hits on a mapped window that
    /// bypassed the lock, gathered later).
    pub(super) fn add(&mut self, key: Key, n: u64) {
        if n == 0 {
            return;
        }
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        self.asks = self.asks.saturating_add(n as usize);
        let c = self.counts.entry(key).or_insert(0);
        *c = c.saturating_add(n);
    }

    /// The count of `key`.
    pub(super) fn count(&self, key: Key) -> u32 {
        self.counts.get(&key).copied().unwrap_or(0)
    }

    /// True if a window asked for `count` times is hot enough to take the
    /// place of one asked for `victim` times.
    pub(super) fn admits(count: u32, victim: u32) -> bool {
        count >= ADMIT_ASKS && count > 2 * victim
    }

    /// Windows with a count now.
    pub(super) fn len(&self) -> usize {
        self.counts.len()
    }

    fn halve(&mut self) {
        self.asks = 0;
        // As many windows read as the budget holds, or more: each counts
        // about the same in a period either way.
        self.period = (ASKS_PER_WINDOW * self.counts.len()).clamp(self.min_period, MAX_PERIOD);
        self.counts.retain(|_, c| {
            *c /= 2;
            *c > 0
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_decay_and_admission_needs_clear_heat() {
        let mut h = Heat::new(16);
        assert_eq!((h.ask((1, 0)), h.ask((1, 0)), h.ask((1, 0))), (1, 2, 3));
        assert_eq!(h.count((1, 0)), 3);
        assert!(Heat::admits(3, 1) && !Heat::admits(3, 2) && !Heat::admits(2, 0));
        for i in 0..13 {
            h.ask((2, i));
        }
        // The 16th ask halved every count first.
        assert_eq!(h.count((1, 0)), 1);
        assert!(h.len() <= 14);
    }

    #[test]
    fn the_period_grows_with_the_windows_read() {
        let mut h = Heat::new(16);
        for i in 0..16 {
            h.ask((1, i));
        }
        // 15 windows counted when the 16th ask halved them.
        assert_eq!(h.period, ASKS_PER_WINDOW * 15);
        // Under uniform asks over 1,000 windows, the counts settle near
        // `ASKS_PER_WINDOW` instead of staying at one or two.
        for round in 0..40 {
            for i in 0..1000 {
                h.ask((2, (i * 7 + round) % 1000));
            }
        }
        assert!(h.period >= ASKS_PER_WINDOW * 900, "{}", h.period);
        let mean = (0..1000).map(|i| h.count((2, i))).sum::<u32>() / 1000;
        assert!(mean >= 4, "{mean}");
        // And never past the bound.
        let mut h = Heat::new(1 << 20);
        assert_eq!(h.period, MAX_PERIOD);
        h.ask((1, 1));
    }
}
