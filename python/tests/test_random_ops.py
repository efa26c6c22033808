"""Random sequences of every operation on one manager with tight limits:
bytes always right, invariants always held, nothing left mapped at the end."""
import copy
import gc
import random

import pytest

from smmap import SlidingWindowMapBuffer, SlidingWindowMapManager, StaticWindowMapManager, WindowCursor
from smmap.util import ALLOCATIONGRANULARITY as G

# At most 6 cursors and 3 buffers hold a region at once: that many handles
# always suffice (one fewer would make a full house an EMFILE, correctly).
HANDLES = 9


@pytest.mark.parametrize("seed", range(16))
def test_random_operations(seed, big, small):
    rnd = random.Random(seed)
    files = [big, small]
    if seed % 3 == 2:
        m = StaticWindowMapManager(max_memory_size=len(big[1]) // 2, max_open_handles=HANDLES)
    else:
        m = SlidingWindowMapManager(window_size=rnd.choice([G, 2 * G, 3 * G]),
                                    max_memory_size=rnd.choice([1, 4 * G, 8 * G]), max_open_handles=HANDLES)
    run(m, rnd, files)
    # Everything the run made is gone: nothing may stay mapped.
    gc.collect()
    m.collect()
    assert m.num_file_handles() == 0 and m.mapped_memory_size() == 0 and m.num_open_files() == 0


def run(m, rnd, files):
    cursors = []  # (cursor, content)
    buffers = []  # (buffer, content, offset)
    views = []  # (memoryview or map view, expected bytes)
    for step in range(4000):
        op = rnd.random()
        if op < 0.1 or not cursors:
            path, content = rnd.choice(files)
            if len(cursors) < 4:
                cursors.append((m.make_cursor(path), content))
        elif op < 0.35:
            c, content = rnd.choice(cursors)
            ofs = rnd.randrange(len(content) + 10)
            size = rnd.choice([0, 1, 100, G, 5 * G])
            c.use_region(ofs, size)
            if ofs >= len(content):
                assert not c.is_valid()
            else:
                assert c.ofs_begin() == ofs and 1 <= c.size()
                if rnd.random() < 0.3:
                    views.append((c.buffer(), content[ofs:ofs + c.size()]))
                if rnd.random() < 0.1:
                    r = c.region()
                    views.append((c.map(), content[r.ofs_begin():r.ofs_end()]))
        elif op < 0.4:
            c, _ = rnd.choice(cursors)
            rnd.choice([c.unuse_region, c._destroy])()
        elif op < 0.45:
            i = rnd.randrange(len(cursors))
            c, content = cursors[i]
            if rnd.random() < 0.5:
                cursors.append((copy.copy(c), content))
            else:
                d = WindowCursor(m)
                d.assign(c)
                cursors.append((d, content))
            if len(cursors) > 6:
                del cursors[0]
        elif op < 0.55:
            path, content = rnd.choice(files)
            ofs = rnd.randrange(len(content))
            if len(buffers) < 3:
                buffers.append((SlidingWindowMapBuffer(m.make_cursor(path), ofs), content, ofs))
            else:
                buffers.pop(rnd.randrange(len(buffers)))
        elif op < 0.85 and buffers:
            buf, content, ofs = rnd.choice(buffers)
            data = content[ofs:]
            assert len(buf) == len(data)
            i = rnd.randrange(-len(data), len(data))
            assert buf[i] == data[i]
            a = rnd.randrange(len(data))
            b = a + rnd.randrange(0, 3 * G)
            assert buf[a:b] == data[a:b]
        elif op < 0.9:
            m.collect()
        elif op < 0.95 and views:
            view, expected = views.pop(rnd.randrange(len(views)))
            assert bytes(view) == expected
        else:
            m._verify_invariants()
        assert m.num_file_handles() <= HANDLES
    for view, expected in views:
        assert bytes(view) == expected
    m._verify_invariants()
