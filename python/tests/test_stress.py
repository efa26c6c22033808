"""Stress: 8 Python threads x N random operations (make cursor, use region,
read, copy, drop, collect, buffer slices) on one manager over 16 files with
tight limits; every byte read is checked, invariants are checked at the end.
scripts/test-python-ft runs it on a free-threaded interpreter, GIL off.
N is SMMAP_STRESS_OPS (default 5,000; .ci/run sets 100,000).
(Deliberate difference: the reference manager is not thread-safe.)"""
import copy
import os
import random
import sys

from threadrun import run_threads

from smmap import SlidingWindowMapBuffer, SlidingWindowMapManager
from smmap.util import ALLOCATIONGRANULARITY as G

THREADS = 8
OPS = int(os.environ.get("SMMAP_STRESS_OPS", "5000"))


def test_stress_eight_threads_sixteen_files(tmp_path):
    files = []
    for i in range(16):
        rnd = random.Random(i)
        data = bytes(rnd.getrandbits(8) for _ in range((i + 1) * 3 * G + i * 77))
        p = tmp_path / f"f{i}"
        p.write_bytes(data)
        files.append((str(p), data))
    # Each thread holds at most 3 cursors and one buffer: 32 regions in use
    # at most, so no use may be refused; memory allows only 24 pages.
    m = SlidingWindowMapManager(window_size=2 * G, max_memory_size=24 * G, max_open_handles=32)
    verified = [0] * THREADS

    def work(n):
        rnd = random.Random(1000 + n)
        held = []  # (data, cursor)
        for _ in range(OPS):
            r = rnd.randrange(10)
            if r < 2 and len(held) < 2:
                path, data = files[rnd.randrange(16)]
                held.append((data, m.make_cursor(path)))
            elif r < 6 and held:
                data, c = held[rnd.randrange(len(held))]
                ofs = rnd.randrange(len(data))
                mv = c.use_region(ofs, 0).buffer()
                assert len(mv) >= 1 and mv == data[ofs:ofs + len(mv)]
                verified[n] += len(mv)
            elif r == 6 and held:
                data, c = held[rnd.randrange(len(held))]
                held.append((data, copy.copy(c)))
                if len(held) > 3:
                    held.pop(0)
            elif r == 7 and held:
                held.pop(rnd.randrange(len(held)))
            elif r == 8:
                m.collect()
            else:
                path, data = files[rnd.randrange(16)]
                buf = SlidingWindowMapBuffer(m.make_cursor(path))
                a = rnd.randrange(len(data))
                b = min(len(data), a + rnd.randrange(1, 9000))
                assert buf[a:b] == data[a:b]
                verified[n] += b - a
                buf.end_access()

    run_threads(work, THREADS)
    m._verify_invariants()
    stats = m.stats()
    assert stats["peak_windows"] <= 32
    assert stats["evictions"] > 0
    print(
        f"python stress: {THREADS} threads x {OPS} operations, {sum(verified)} bytes verified, "
        f"{stats['maps']} maps, {stats['evictions']} evictions, peak {stats['peak_windows']} windows (limit 32)",
        file=sys.stderr,
    )
    m.collect()
    assert m.num_file_handles() == 0 and m.mapped_memory_size() == 0
