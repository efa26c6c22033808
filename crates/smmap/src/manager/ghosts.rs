//! [`Ghosts`]: windows a copy read was served for without mapping them, as
//! 2Q and ARC remember pages they declined. A window asked for again while
//! its ghost is remembered has shown it is hot, and is mapped.

use std::collections::{BTreeMap, HashMap};

/// A window's key: its file entry's serial number (never reused, so the
/// ghosts of a forgotten file just age out) and its slot of the window
/// size.
pub(super) type Key = (u64, u64);

/// A bounded set of remembered windows; the oldest is forgotten first.
#[derive(Debug, Default)]
pub(super) struct Ghosts {
    capacity: usize,
    clock: u64,
    by_key: HashMap<Key, u64>,
    by_age: BTreeMap<u64, Key>,
}

impl Ghosts {
    pub(super) fn new(capacity: usize) -> Self {
        Ghosts {
            capacity: capacity.max(1),
            ..Ghosts::default()
        }
    }

    /// Forgets `key` if it was remembered; true if it was.
    pub(super) fn take(&mut self, key: Key) -> bool {
        match self.by_key.remove(&key) {
            Some(stamp) => {
                self.by_age.remove(&stamp);
                true
            }
            None => false,
        }
    }

    /// Remembers `key`, forgetting the oldest ghost beyond the capacity.
    pub(super) fn remember(&mut self, key: Key) {
        self.take(key);
        self.clock += 1;
        self.by_key.insert(key, self.clock);
        self.by_age.insert(self.clock, key);
        while self.by_key.len() > self.capacity {
            let Some((_, old)) = self.by_age.pop_first() else {
                break;
            };
            self.by_key.remove(&old);
        }
    }

    pub(super) fn len(&self) -> usize {
        self.by_key.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_a_bounded_number_oldest_first_out() {
        let mut g = Ghosts::new(2);
        g.remember((0, 1));
        g.remember((0, 2));
        g.remember((1, 1));
        assert_eq!(g.len(), 2);
        assert!(!g.take((0, 1)), "the oldest was forgotten");
        assert!(g.take((0, 2)));
        assert!(!g.take((0, 2)), "taken once");
        g.remember((1, 7));
        assert_eq!(g.len(), 2);
    }
}
