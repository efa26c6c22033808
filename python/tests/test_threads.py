"""Eight Python threads reading through one manager with tight limits.
(Deliberate difference: the reference manager is not thread-safe.)"""
import random

from threadrun import run_threads

from smmap import SlidingWindowMapBuffer, SlidingWindowMapManager, StaticWindowMapManager
from smmap.util import ALLOCATIONGRANULARITY as G

THREADS = 8


def test_eight_threads_buffers_and_cursors(tmp_path, big):
    path, content = big
    # Two files, so that threads also compete across files.
    other = tmp_path / "other.bin"
    other_content = content[::-1]
    other.write_bytes(other_content)
    files = [(path, content), (str(other), other_content)]
    # Every thread holds at most one region at a time, so THREADS handles
    # always suffice; memory allows only a few windows more than that.
    m = SlidingWindowMapManager(window_size=G, max_memory_size=(THREADS + 2) * G, max_open_handles=THREADS + 1)

    def work(n):
        rnd = random.Random(n)
        fpath, data = files[n % 2]
        buf = SlidingWindowMapBuffer(m.make_cursor(fpath))
        cursor = m.make_cursor(files[(n + 1) % 2][0])
        cdata = files[(n + 1) % 2][1]
        for i in range(2000):
            j = rnd.randrange(len(data))
            assert buf[j] == data[j]
            a = rnd.randrange(len(data))
            b = a + rnd.randrange(1, 3 * G)
            assert buf[a:b] == data[a:b]
            if i % 4 == 0:
                buf.end_access()  # hold at most one region at a time
                ofs = rnd.randrange(len(cdata))
                mv = cursor.use_region(ofs, 100).buffer()
                # A reused region may give fewer bytes than asked.
                assert 1 <= len(mv) <= 100
                assert bytes(mv) == cdata[ofs:ofs + len(mv)]
                cursor.unuse_region()
                assert buf.begin_access()
        assert m.num_file_handles() <= THREADS + 1

    run_threads(work, THREADS)
    stats = m.stats()
    assert stats["peak_windows"] <= THREADS + 1
    assert stats["evictions"] > 0
    m._verify_invariants()
    m.collect()  # every thread's buffer and cursor is gone: all unused
    assert m.num_file_handles() == 0 and m.mapped_memory_size() == 0


def test_threads_share_a_static_manager(big):
    path, content = big
    m = StaticWindowMapManager(max_open_handles=1)

    def work(n):
        rnd = random.Random(100 + n)
        for _ in range(300):
            c = m.make_cursor(path).use_region()
            mp = c.map()
            a = rnd.randrange(len(content))
            assert mp[a:a + 50] == content[a:a + 50]
            del c

    run_threads(work, THREADS)
    assert m.num_file_handles() <= 1


def test_threads_sharing_one_buffer(big):
    # One buffer (so one cursor) used by every thread at once: each read
    # takes the buffer's and the cursor's state in turn, and a read that
    # misses (1-granule windows, a budget of three) maps or reads with the
    # interpreter released while the others wait for the state.
    path, content = big
    m = SlidingWindowMapManager(window_size=G, max_memory_size=3 * G, max_open_handles=3)
    buf = SlidingWindowMapBuffer(m.make_cursor(path))

    def work(n):
        rnd = random.Random(200 + n)
        for _ in range(1500):
            a = rnd.randrange(len(content))
            assert buf[a] == content[a]
            b = a + rnd.randrange(1, 2 * G)
            assert buf[a:b] == content[a:b]

    run_threads(work, THREADS)
    assert m.num_file_handles() <= 3
    m._verify_invariants()
