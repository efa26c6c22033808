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

/// Decaying counts of the windows asked for.
#[derive(Debug, Default)]
pub(super) struct Heat {
    counts: HashMap<Key, u32>,
    /// Asks counted since the counts were last halved.
    asks: usize,
    /// Asks between two halvings.
    period: usize,
}

impl Heat {
    /// Counts that halve every `period` asks (TinyLFU's sample size, some
    /// multiple of the number of windows the budget holds).
    pub(super) fn new(period: usize) -> Self {
        Heat {
            period: period.max(16),
            ..Heat::default()
        }
    }

    /// Counts one ask for `key`; returns its count now.
    pub(super) fn ask(&mut self, key: Key) -> u32 {
        self.asks += 1;
        if self.asks >= self.period || self.counts.len() >= 4 * self.period {
            self.halve();
        }
        let c = self.counts.entry(key).or_insert(0);
        *c = c.saturating_add(1);
        *c
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
}
