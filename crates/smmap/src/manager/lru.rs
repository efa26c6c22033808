//! [`Lru`]: the regions released at least once, the least recently used
//! first (see the manager's state for who is in it and why). Listing a
//! region, moving it to the back and evicting it are O(1) on a doubly
//! linked list kept in one array: no allocation once warm, no tree to walk.

/// Where a region's entry sits in the list (valid until it is removed).
pub(super) type Entry = u32;

/// No entry: the ends of the list, and the links of a free node.
const NONE: Entry = Entry::MAX;

#[derive(Debug, Clone, Copy)]
struct Node {
    prev: Entry,
    next: Entry,
    /// The region: its file's slab index and its first offset.
    idx: usize,
    start: u64,
}

/// Regions released at least once, least recently used first.
#[derive(Debug)]
pub(super) struct Lru {
    nodes: Vec<Node>,
    /// Nodes not in the list, to reuse.
    free: Vec<Entry>,
    head: Entry,
    tail: Entry,
    len: usize,
}

impl Default for Lru {
    fn default() -> Self {
        Lru {
            nodes: Vec::new(),
            free: Vec::new(),
            head: NONE,
            tail: NONE,
            len: 0,
        }
    }
}

impl Lru {
    /// Appends region `start` of file `idx` as the most recently used.
    pub(super) fn push(&mut self, idx: usize, start: u64) -> Entry {
        let node = Node {
            prev: self.tail,
            next: NONE,
            idx,
            start,
        };
        let at = match self.free.pop() {
            Some(at) => {
                self.nodes[at as usize] = node;
                at
            }
            None => {
                self.nodes.push(node);
                Entry::try_from(self.nodes.len() - 1).expect("fewer than 2^32 regions")
            }
        };
        match self.tail {
            NONE => self.head = at,
            t => self.nodes[t as usize].next = at,
        }
        self.tail = at;
        self.len += 1;
        at
    }

    /// Takes entry `at` out of the list.
    pub(super) fn remove(&mut self, at: Entry) {
        let Node { prev, next, .. } = self.nodes[at as usize];
        match prev {
            NONE => self.head = next,
            p => self.nodes[p as usize].next = next,
        }
        match next {
            NONE => self.tail = prev,
            n => self.nodes[n as usize].prev = prev,
        }
        self.nodes[at as usize].prev = NONE;
        self.nodes[at as usize].next = NONE;
        self.free.push(at);
        self.len -= 1;
    }

    /// The least recently used region, with its entry.
    pub(super) fn front(&self) -> Option<(Entry, usize, u64)> {
        (self.head != NONE).then(|| {
            let (idx, start) = self.region(self.head);
            (self.head, idx, start)
        })
    }

    /// Makes entry `at` the most recently used; it keeps its entry.
    pub(super) fn move_to_back(&mut self, at: Entry) {
        if self.tail == at {
            return;
        }
        let Node { prev, next, .. } = self.nodes[at as usize];
        match prev {
            NONE => self.head = next,
            p => self.nodes[p as usize].next = next,
        }
        // Not the tail, so it has a next.
        self.nodes[next as usize].prev = prev;
        let tail = self.tail;
        self.nodes[tail as usize].next = at;
        let node = &mut self.nodes[at as usize];
        node.prev = tail;
        node.next = NONE;
        self.tail = at;
    }

    /// The least recently used region, if any.
    #[cfg(test)]
    fn first(&self) -> Option<(usize, u64)> {
        (self.head != NONE).then(|| self.region(self.head))
    }

    /// Takes the least recently used region out of the list.
    #[cfg(test)]
    fn pop_first(&mut self) -> Option<(usize, u64)> {
        let at = self.head;
        if at == NONE {
            return None;
        }
        let region = self.region(at);
        self.remove(at);
        Some(region)
    }

    /// The region entry `at` names, if it is in the list.
    pub(super) fn get(&self, at: Entry) -> Option<(usize, u64)> {
        let in_list = self.nodes.get(at as usize).is_some_and(|n| {
            (n.prev != NONE || self.head == at) && (n.next != NONE || self.tail == at)
        });
        in_list.then(|| self.region(at))
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    fn region(&self, at: Entry) -> (usize, u64) {
        let n = &self.nodes[at as usize];
        (n.idx, n.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn released_order_with_removals_and_reuse() {
        let mut l = Lru::default();
        let a = l.push(0, 0);
        let b = l.push(1, 10);
        let c = l.push(2, 20);
        assert_eq!((l.len(), l.first()), (3, Some((0, 0))));
        l.remove(b);
        assert_eq!(l.get(b), None);
        assert_eq!((l.get(a), l.get(c)), (Some((0, 0)), Some((2, 20))));
        // The freed node is reused, at the tail.
        let d = l.push(3, 30);
        assert_eq!(d, b);
        l.remove(a);
        assert_eq!(l.pop_first(), Some((2, 20)));
        assert_eq!(l.pop_first(), Some((3, 30)));
        assert_eq!((l.pop_first(), l.len(), l.first()), (None, 0, None));
        // A lone entry is in the list; once removed it is not.
        let e = l.push(4, 40);
        assert_eq!(l.get(e), Some((4, 40)));
        l.remove(e);
        assert_eq!(l.get(e), None);
        assert_eq!(l.get(99), None);
    }

    #[test]
    fn moved_to_the_back_keeps_its_entry() {
        let mut l = Lru::default();
        let a = l.push(0, 0);
        let b = l.push(1, 10);
        let c = l.push(2, 20);
        l.move_to_back(c); // already last
        l.move_to_back(a); // the head
        assert_eq!(l.front(), Some((b, 1, 10)));
        l.move_to_back(c); // from the middle
        assert_eq!(l.get(a), Some((0, 0)));
        assert_eq!(
            [l.pop_first(), l.pop_first(), l.pop_first(), l.pop_first()],
            [Some((1, 10)), Some((0, 0)), Some((2, 20)), None]
        );
        let d = l.push(3, 30);
        l.move_to_back(d); // a lone entry
        assert_eq!((l.len(), l.front()), (1, Some((d, 3, 30))));
    }
}
