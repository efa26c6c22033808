"""Two threads sharing one object both make progress: a thread that waits
for an object gets it when the thread using it lets go, however quickly
that thread asks for it again (with the GIL, or without it).

Each case counts both threads' operations over a second and bounds their
ratio, generously: a fair lock alternates the two (a ratio near 1), a
starving one gives one thread all but a handful."""
import gc
import random
import sys
import threading
import time

import pytest

from conftest import make_bytes
from smmap import SlidingWindowMapBuffer, SlidingWindowMapManager
from smmap.util import ALLOCATIONGRANULARITY as G

SECONDS = 1.0
RATIO = 10


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A file of 64 granules: (path, content)."""
    content = make_bytes(64 * G, seed=95)
    path = tmp_path_factory.mktemp("fairness") / "data.bin"
    path.write_bytes(content)
    return str(path), content


def tight_manager():
    """One-granule windows, at most two: nearly every read at a random
    offset misses, and the miss releases the interpreter while the object
    read is held."""
    return SlidingWindowMapManager(window_size=G, max_memory_size=2 * G, max_open_handles=2)


def race(*ops):
    """Runs each op in a loop in a thread of its own for SECONDS; returns how
    many times each completed."""
    counts = [0] * len(ops)
    errors = []
    stop = threading.Event()
    barrier = threading.Barrier(len(ops) + 1)

    def work(k):
        rnd = random.Random(k)
        barrier.wait()
        try:
            while not stop.is_set():
                ops[k](rnd)
                counts[k] += 1
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(ops))]
    for t in threads:
        t.start()
    barrier.wait()
    time.sleep(SECONDS)
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors
    return counts


def assert_fair(counts):
    assert min(counts) > 0 and max(counts) <= RATIO * min(counts), f"operations per thread: {counts}"


def test_two_threads_reading_one_buffer(data):
    path, content = data
    buf = SlidingWindowMapBuffer(tight_manager().make_cursor(path))

    def read(rnd):
        a = rnd.randrange(len(content))
        assert buf[a] == content[a]
        assert buf[a:a + 100] == content[a:a + 100]

    assert_fair(race(read, read))


def test_one_thread_repoints_a_buffer_another_reads(data):
    path, content = data
    m = tight_manager()
    cursor = m.make_cursor(path)
    buf = SlidingWindowMapBuffer(cursor)

    # Both miss nearly every time, and an operation of either costs about
    # as much as one of the other alone (a re-point maps a window; a read
    # operation is two reads, which copy): the buffer starts in the first
    # half of the file, and reads in its first half. (The counts of a cheap
    # operation against a dear one would measure their costs, not the
    # lock's fairness.)
    half = len(content) // 2

    def repoint(rnd):
        assert buf.begin_access(cursor, rnd.randrange(half))

    def read(rnd):
        # A read between two re-points may see either start.
        assert 0 <= buf[rnd.randrange(half)] < 256
        assert 0 <= buf[rnd.randrange(half)] < 256

    assert_fair(race(repoint, read))


def test_two_threads_moving_one_cursor(data):
    path, content = data
    cursor = tight_manager().make_cursor(path)

    def move(rnd):
        a = rnd.randrange(len(content))
        cursor.use_region(a, 10)

    assert_fair(race(move, move))


@pytest.fixture(scope="module")
def sparse(tmp_path_factory):
    """A sparse file of 65,536 granules (the tests write nothing), its
    pages (zeros) brought into the page cache once."""
    path = tmp_path_factory.mktemp("fairness") / "sparse.bin"
    with open(path, "wb") as f:
        f.truncate(65536 * G)
    with open(path, "rb") as f:
        while f.read(1 << 20):
            pass
    return str(path)


def sparse_cursor(path):
    """A cursor over `path` (the `sparse` file), and one long call that
    holds it: a strided read, through a buffer, whose every byte misses its
    one-granule window (about a tenth of a second)."""
    cursor = tight_manager().make_cursor(path)
    buf = SlidingWindowMapBuffer(cursor)

    def hold():
        assert buf[0:len(buf):G] == bytes(65536)

    return cursor, hold


def queue_up(cursor, hold, names, main=None, first=None, attempts=10):
    """Runs `hold` once for each of `names`, in a thread of its own (the
    calling thread's for `main`), each starting once those before it are in
    line for `cursor` (`_waits_begun`); the first two race for it. Returns
    the names in the order their calls finished, which is the order they
    were served in, as each call is long.

    An attempt in which some thread did not wait (those before it had all
    finished by the time it started), or in which `first` (if given) was
    not served first, proves nothing and is made again."""
    waited = []
    for _ in range(attempts):
        base = cursor._waits_begun()
        served = []
        errors = []
        done = [threading.Event() for _ in names]
        calling = [threading.Event() for _ in names]
        # Every thread is up before the first call (starting a thread can
        # take longer than a call on a loaded machine): the threads, and the
        # calling thread if it makes one of the calls, meet here.
        up = threading.Barrier(len(names))

        def turn(k):
            if names[k] != main:
                up.wait()
            # Once k - 1 threads have begun to wait (or all before it are
            # done, which spoils the attempt).
            while cursor._waits_begun() - base < k - 1 and not all(d.is_set() for d in done[:k]):
                time.sleep(0.001)
            calling[k].set()
            try:
                hold()
                served.append(names[k])
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)
            finally:
                done[k].set()

        threads = [threading.Thread(target=turn, args=(k,)) for k, name in enumerate(names) if name != main]
        for t in threads:
            t.start()
        if main is not None:
            up.wait()
            k = names.index(main)
            if k > 0:
                # Leave the thread before it the interpreter for a moment,
                # to take the cursor first.
                calling[k - 1].wait()
                time.sleep(0.01)
            turn(k)
        for t in threads:
            t.join()
        assert not errors, errors
        waited.append(cursor._waits_begun() - base)
        if waited[-1] == len(names) - 1 and first in (None, served[0]):
            return served
    pytest.fail(f"in {attempts} attempts, the threads never queued up as the test needs: "
                f"{waited} waits of {len(names) - 1}")


def test_waiters_are_served_in_order_of_arrival(sparse):
    """Threads that wait for one object get it in the order they began to
    wait, however long each waits: a waiter that has slept its period and
    looked again keeps its place (once it went to the back of the line).
    Each call holds the cursor for about a tenth of a second, so the
    waiters sleep many periods of 10 ms."""
    cursor, hold = sparse_cursor(sparse)
    names = ["a", "b", "c", "d", "e"]
    served = queue_up(cursor, hold, names)
    assert sorted(served[:2]) == ["a", "b"] and served[2:] == names[2:], served


@pytest.mark.skipif(
    not getattr(sys, "_is_gil_enabled", lambda: True)(),
    reason="free-threaded, another thread may let go of the object in the "
    "microseconds the main thread is out of line (once every 10 ms)",
)
def test_the_main_thread_keeps_its_place_while_it_checks_for_signals(sparse):
    """The main thread's wait leaves the line every 10 ms to run signal
    handlers, and goes back to its place: a thread that began to wait after
    it is served after it. (With the GIL, and no handler or collection to
    run, the main thread holds the GIL while it is out of line, so no thread
    can let go of the object meanwhile: the collector is off.)"""
    cursor, hold = sparse_cursor(sparse)
    was = gc.isenabled()
    gc.disable()
    try:
        # The main thread must wait (behind the holder) for the test to
        # prove anything: an attempt in which it took the cursor first is
        # made again.
        served = queue_up(cursor, hold, ["holder", "main", "later"], main="main", first="holder")
    finally:
        if was:
            gc.enable()
    assert served == ["holder", "main", "later"], served
