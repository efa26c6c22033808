//! [`DescRing`]: which files keep a cached descriptor open, and which one
//! closes first when there are too many — the least recently used, by the
//! CLOCK approximation of LRU.
//!
//! Marking a descriptor used happens on every miss, under the manager's
//! lock, for files spread over memory; CLOCK makes it one store into a
//! compact array, where an exact LRU order (a tree or a linked list through
//! the file entries) costs several cache misses. Closing one — rare: only
//! when a file is opened beyond `max_open_files` — sweeps the ring from its
//! hand, clearing the marks it passes, to the first entry not used since the
//! hand last passed it.

/// One cached descriptor's file and whether it was used since the hand
/// last passed it.
#[derive(Debug)]
struct Entry {
    idx: usize,
    used: bool,
}

/// The files with a cached descriptor, each at a position its file entry
/// keeps (positions change only through [`remove`](DescRing::remove), which
/// says which file moved).
#[derive(Debug, Default)]
pub(super) struct DescRing {
    ring: Vec<Entry>,
    hand: usize,
}

impl DescRing {
    /// Cached descriptors.
    pub(super) fn len(&self) -> usize {
        self.ring.len()
    }

    /// Adds file `idx`, marked used; returns its position.
    pub(super) fn push(&mut self, idx: usize) -> usize {
        self.ring.push(Entry { idx, used: true });
        self.ring.len() - 1
    }

    /// Marks the descriptor at `at` used.
    #[inline]
    pub(super) fn touch(&mut self, at: usize) {
        self.ring[at].used = true;
    }

    /// The file at `at`.
    pub(super) fn file(&self, at: usize) -> usize {
        self.ring[at].idx
    }

    /// Removes the entry at `at`; returns the file moved into its place, if
    /// any, which is now at `at`.
    pub(super) fn remove(&mut self, at: usize) -> Option<usize> {
        self.ring.swap_remove(at);
        if self.hand >= self.ring.len() {
            self.hand = 0;
        }
        self.ring.get(at).map(|e| e.idx)
    }

    /// The position of the descriptor to close first: the first from the
    /// hand not used since the hand last passed it. `None` when empty.
    pub(super) fn victim(&mut self) -> Option<usize> {
        if self.ring.is_empty() {
            return None;
        }
        // Terminates: a full turn clears every mark.
        loop {
            let e = &mut self.ring[self.hand];
            if !e.used {
                return Some(self.hand);
            }
            e.used = false;
            self.hand = (self.hand + 1) % self.ring.len();
        }
    }

    /// Empties the ring; returns the files it held.
    pub(super) fn drain(&mut self) -> impl Iterator<Item = usize> + '_ {
        self.hand = 0;
        self.ring.drain(..).map(|e| e.idx)
    }

    /// The files, by position.
    pub(super) fn files(&self) -> impl Iterator<Item = usize> + '_ {
        self.ring.iter().map(|e| e.idx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_goes_first() {
        let mut r = DescRing::default();
        for idx in 10..14 {
            assert_eq!(r.push(idx), idx - 10);
        }
        // All used once, in order: the oldest goes.
        assert_eq!(r.victim().map(|at| r.file(at)), Some(10));
        assert_eq!(r.remove(0), Some(13), "the last file moved into the gap");
        assert_eq!(r.files().collect::<Vec<_>>(), [13, 11, 12]);
        // 13 and 11 used since the hand passed: 12 goes.
        r.touch(0);
        r.touch(1);
        let at = r.victim().unwrap();
        assert_eq!(r.file(at), 12);
        assert_eq!(r.remove(at), None, "the last entry moves nothing");
        assert_eq!(r.len(), 2);
        assert_eq!(r.drain().collect::<Vec<_>>(), [13, 11]);
        assert_eq!((r.len(), r.victim()), (0, None));
    }
}
