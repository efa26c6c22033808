"""Hit ratios of the published online eviction policies on a recorded trace,
beside which `smmap bench --replay TRACE --sweep` prints the engine's and
Belady's MIN: does any of them do clearly better on these reads?

    python traces/policies.py TRACE[.gz] [WINDOW_BYTES]

Each read by a cursor touches the window-size slot holding its offset (the
placement MIN uses); a cursor's window stays mapped while it holds it (a
pinned window is never evicted, as in the engine), a release or drop lets it
go. Budgets are shares of the windows the trace touches, as in the bench's
sweep (never fewer windows than cursors alive at once). The policies:
LRU; CLOCK (one reference bit, the hand passing the new window); SIEVE
(Zhang et al., NSDI 2024: new windows at the head, the hand walking from
the tail without moving survivors); S3-FIFO (Yang et al., SOSP 2023: a
small FIFO of a tenth, a main FIFO, a ghost FIFO). Pure Python, no
dependencies; a few seconds per trace."""
import collections
import gzip
import sys

FIELDS = {1: 3, 2: 2, 3: 2, 4: 1, 5: 1, 6: 4, 7: 0, 8: 0}


def records(data):
    """(tag, fields) of each record of a trace (format: smmap::Trace); a
    read's offset is made absolute."""
    if data[:8] != b"SMMAPTR\x01":
        sys.exit("not a trace (format 1)")
    pos, ends = 8, {}

    def varint():
        nonlocal pos
        v = shift = 0
        while True:
            b = data[pos]
            pos += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return v

    while pos < len(data):
        tag = data[pos]
        pos += 1
        f = [varint() for _ in range(FIELDS[tag])]
        if tag == 1:
            pos += f[2]
        elif tag == 3:
            ends[f[0]] = ends.get(f[1], 0)
        elif tag == 6:
            delta = f[2]
            f[2] = ends.get(f[0], 0) + ((delta >> 1) ^ -(delta & 1))
            ends[f[0]] = f[2] + f[3]
        yield tag, f


def accesses(data, window):
    """[(cursor, window key or None for a release)], and the most cursors
    alive at once."""
    file_of, out, alive, most = {}, [], 0, 1
    for tag, f in records(data):
        if tag in (2, 3):
            file_of[f[0]] = f[1] if tag == 2 else file_of.get(f[1])
            alive += 1
            most = max(most, alive)
        elif tag in (4, 5):
            out.append((f[0], None))
            alive -= tag == 4
        elif tag == 6 and f[1] & 7 != 4:  # not a buffer's first map
            out.append((f[0], (file_of[f[0]], f[2] // window)))
    return out, most


class LRU:
    def __init__(self, cap):
        self.cap, self.d = cap, collections.OrderedDict()

    def __contains__(self, w):
        return w in self.d

    def hit(self, w):
        self.d.move_to_end(w)

    def insert(self, w, pinned):
        while len(self.d) >= self.cap:
            victim = next((v for v in self.d if not pinned(v)), None)
            if victim is None:
                break
            del self.d[victim]
        self.d[w] = True


class CLOCK:
    def __init__(self, cap):
        self.cap, self.ring, self.ref, self.hand = cap, [], {}, 0

    def __contains__(self, w):
        return w in self.ref

    def hit(self, w):
        self.ref[w] = True

    def insert(self, w, pinned):
        if len(self.ring) >= self.cap:
            for _ in range(2 * len(self.ring)):
                self.hand %= len(self.ring)
                v = self.ring[self.hand]
                if pinned(v) or self.ref[v]:
                    self.ref[v] = False
                    self.hand += 1
                    continue
                del self.ref[v]
                self.ring.pop(self.hand)
                break
        self.hand %= len(self.ring) + 1
        self.ring.insert(self.hand, w)
        self.hand += 1
        self.ref[w] = False


class SIEVE:
    def __init__(self, cap):
        self.cap, self.q, self.seen, self.hand = cap, [], {}, 0  # q[0]: the tail

    def __contains__(self, w):
        return w in self.seen

    def hit(self, w):
        self.seen[w] = True

    def insert(self, w, pinned):
        if len(self.q) >= self.cap:
            i = self.hand
            for _ in range(2 * len(self.q)):
                i %= len(self.q)
                v = self.q[i]
                if pinned(v) or self.seen[v]:
                    self.seen[v] = False
                    i += 1
                    continue
                del self.seen[v]
                self.q.pop(i)
                break
            self.hand = i
        self.q.append(w)
        self.seen[w] = False


class S3FIFO:
    def __init__(self, cap):
        self.cap, self.small_cap = cap, max(1, cap // 10)
        self.small, self.main = collections.deque(), collections.deque()
        self.freq, self.ghost = {}, collections.OrderedDict()

    def __contains__(self, w):
        return w in self.freq

    def hit(self, w):
        self.freq[w] = min(3, self.freq[w] + 1)

    def _evict_main(self, pinned):
        for _ in range(4 * len(self.main) + 1):
            if not self.main:
                return False
            v = self.main.popleft()
            if self.freq[v] > 0 or pinned(v):
                self.freq[v] = max(0, self.freq[v] - 1)
                self.main.append(v)
            else:
                del self.freq[v]
                return True
        return False

    def _evict_small(self, pinned):
        for _ in range(4 * len(self.small) + 1):
            if not self.small:
                return self._evict_main(pinned)
            v = self.small.popleft()
            if self.freq[v] > 0 or pinned(v):
                self.main.append(v)
                continue
            del self.freq[v]
            self.ghost[v] = True
            if len(self.ghost) > self.cap:
                self.ghost.popitem(last=False)
            return True
        return False

    def insert(self, w, pinned):
        while len(self.freq) >= self.cap:
            use_small = len(self.small) >= self.small_cap or not self.main
            if not (self._evict_small(pinned) if use_small else self._evict_main(pinned)):
                break
        if self.ghost.pop(w, None):
            self.main.append(w)
        else:
            self.small.append(w)
        self.freq[w] = 0


def hit_ratio(policy, seq, cap):
    cache, pins, pinned_by = policy(cap), {}, collections.Counter()
    hits = total = 0
    for cursor, w in seq:
        old = pins.get(cursor)
        if w is None:
            if old is not None:
                pinned_by[old] -= 1
                del pins[cursor]
            continue
        total += 1
        if w in cache:
            hits += 1
            cache.hit(w)
        else:
            cache.insert(w, lambda v: pinned_by[v] > 0)
        if old != w:
            if old is not None:
                pinned_by[old] -= 1
            pins[cursor] = w
            pinned_by[w] += 1
    return hits / max(1, total)


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    path = sys.argv[1]
    window = int(sys.argv[2]) if len(sys.argv) == 3 else 65536
    raw = open(path, "rb").read()
    data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    seq, cursors = accesses(data, window)
    windows = len({w for _, w in seq if w is not None})
    print(f"{path}: {sum(w is not None for _, w in seq)} reads, {windows} windows of {window} bytes")
    policies = (LRU, CLOCK, SIEVE, S3FIFO)
    print("budget  windows  " + "  ".join(f"{p.__name__:>7}" for p in policies))
    for share in (0.01, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5):
        cap = max(cursors, -(-int(windows * share * 1e6) // int(1e6)))
        ratios = "  ".join(f"{hit_ratio(p, seq, cap) * 100:6.1f}%" for p in policies)
        print(f"{share * 100:5.0f}%  {cap:7d}  {ratios}")


if __name__ == "__main__":
    main()
