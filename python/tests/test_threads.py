"""Eight Python threads reading through one manager with tight limits.
(Deliberate difference: the reference manager is not thread-safe.)"""
import os
import random
import threading
import time

from conftest import make_bytes
from threadrun import run_threads

from smmap import FileReplacedError, SlidingWindowMapBuffer, SlidingWindowMapManager, StaticWindowMapManager
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


def test_threads_read_while_files_are_replaced(tmp_path):
    # Eight threads read through cursors and buffers of their own, and two
    # buffers they all share, while another thread renames
    # new versions of the files (other bytes) over them and closes the
    # manager's descriptors (collect), so that a read that needs a new
    # window opens the path again and meets another file. Every read gives
    # bytes of one version of its file, the same one for everything an
    # object reads, or an OSError that names the file; nothing waits for
    # good, and the limits hold.
    files, size, versions = 4, 6 * G, 8
    data = [[make_bytes(size, seed=1000 * f + v) for v in range(versions)] for f in range(files)]
    paths = [str(tmp_path / f"f{f}") for f in range(files)]
    latest = [0] * files  # raised before the version is in place
    for f in range(files):
        with open(paths[f], "wb") as out:
            out.write(data[f][0])
    handles = 3 * THREADS + 2
    m = SlidingWindowMapManager(window_size=G, max_memory_size=handles * G, max_open_handles=handles)
    lock = threading.Lock()
    errors = []

    class Reading:
        """An object reading file f, and the versions its bytes are of."""

        def __init__(self, f, obj):
            self.f, self.obj, self.versions = f, obj, set(range(versions))

        def check(self, ofs, got):
            with lock:
                bound = latest[self.f]
                self.versions = {
                    v for v in self.versions if v <= bound and data[self.f][v][ofs:ofs + len(got)] == got
                }
                assert self.versions, f"{len(got)} bytes at {ofs} of {paths[self.f]} are of no single version"

    def failed(e, f):
        assert isinstance(e, (FileReplacedError, FileNotFoundError)), repr(e)
        assert e.filename == paths[f] and paths[f] in str(e), repr(e)
        with lock:
            errors.append(type(e).__name__)

    def make(f, buffer):
        try:
            c = m.make_cursor(paths[f])
            return Reading(f, SlidingWindowMapBuffer(c) if buffer else c)
        except OSError as e:
            failed(e, f)
            return None

    def read(r, rnd):
        ofs = rnd.randrange(size)
        try:
            if isinstance(r.obj, SlidingWindowMapBuffer):
                end = min(size, ofs + rnd.randrange(1, 2 * G))
                r.check(ofs, r.obj[ofs:end])
            else:
                view = r.obj.use_region(ofs, rnd.randrange(1, G)).buffer()
                r.check(r.obj.ofs_begin(), bytes(view))
        except OSError as e:
            failed(e, r.f)

    shared = [make(0, True), make(1, True)]
    done = threading.Event()
    replaced = [0]

    def disturb():
        rnd = random.Random(7)
        while not done.is_set():
            f, p = rnd.randrange(files), rnd.random()
            # Spread over the run: now and then a new version, or a shared
            # buffer made anew (it meets the new version once a read has
            # found the old one replaced).
            if p < 0.03 and latest[f] + 1 < versions:
                new = str(tmp_path / f"next{f}")
                with open(new, "wb") as out:
                    out.write(data[f][latest[f] + 1])
                with lock:
                    latest[f] += 1
                os.replace(new, paths[f])
                replaced[0] += 1
            elif p < 0.06:
                k = rnd.randrange(2)
                shared[k] = make(k, True) or shared[k]
            else:
                m.collect()
            time.sleep(0.0005)

    def work(n):
        rnd = random.Random(300 + n)
        own = [None, None]
        for i in range(1500):
            k = rnd.randrange(2)
            if own[k] is None or rnd.random() < 0.05:
                own[k] = make(rnd.randrange(files), k == 0)
            for r in (own[k], shared[i % 2]):
                if r is not None:
                    read(r, rnd)

    disturber = threading.Thread(target=disturb)
    disturber.start()
    try:
        run_threads(work, THREADS)
    finally:
        done.set()
        disturber.join()
    assert replaced[0] > 0 and errors, (replaced, errors)
    assert m.stats()["peak_windows"] <= handles
    m._verify_invariants()
    del shared
    m.collect()
    assert m.num_file_handles() == 0 and m.mapped_memory_size() == 0
    for f in range(files):
        buf = SlidingWindowMapBuffer(m.make_cursor(paths[f]))
        assert buf[:] == data[f][latest[f]]
