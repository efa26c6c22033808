"""Reads while the interpreter shuts down: from `atexit` callbacks and
`__del__` during finalization, and from daemon threads still running at
exit. A read then works, or raises a Python exception; the process always
exits with the status the program chose, never with an abort.

Each case runs in a fresh interpreter (see `isolated`)."""
import os

import pytest

from conftest import G, make_bytes
from isolated import assert_exited, run_script

# Enough rounds that an abort which happens in one exit of several shows.
ROUNDS = 12


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A file of 64 granules: (path, content)."""
    content = make_bytes(64 * G, seed=90)
    path = tmp_path_factory.mktemp("shutdown") / "data.bin"
    path.write_bytes(content)
    return str(path), content


# Reads through a buffer and a cursor at exit: misses (one-granule windows,
# a budget of two), a stride, an index. A reader reports with what it keeps,
# as module globals and builtins may be gone when its finalizer runs. The
# callbacks in `at_exit` run after smmap's own `atexit` callback (registered
# later, when smmap is imported), so after shutdown began.
READER = r"""
import atexit, os, sys
at_exit = []
atexit.register(lambda: [f() for f in at_exit])
from smmap import SlidingWindowMapBuffer, SlidingWindowMapManager

path, G, status = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "rb") as f:
    content = f.read()
m = SlidingWindowMapManager(window_size=G, max_memory_size=2 * G, max_open_handles=8)

class Reader:
    def __init__(self, name):
        self.name = name
        self.buf = SlidingWindowMapBuffer(m.make_cursor(path))
        self.cursor = m.make_cursor(path)
        self.content = content
        self.write = os.write
        self.bytes = bytes

    def __del__(self):
        self.report()

    def report(self):
        buf, content, G = self.buf, self.content, len(self.content) // 64
        try:
            checks = (
                buf[5 * G + 1:5 * G + 100] == content[5 * G + 1:5 * G + 100],
                buf[1:3 * G:G + 1] == content[1:3 * G:G + 1],
                buf[7 * G] == content[7 * G],
                buf[-1] == content[-1],
                self.bytes(self.cursor.use_region(2 * G, 10).buffer()) == content[2 * G:2 * G + 10],
                buf.__len__() == len(content),
            )
            self.write(1, b"%s read %d%d%d%d%d%d\n" % ((self.name,) + checks))
        except BaseException as e:
            self.write(1, b"%s raised %r\n" % (self.name, e))
"""


def test_a_finalizer_reads_during_shutdown(data):
    path, content = data
    out = run_script(READER + r"""
reader = Reader(b"global")          # dropped when the module is torn down
cycle = Reader(b"cycle")            # collected by shutdown's collection
cycle.me = cycle
del cycle
import gc
gc.disable()
sys.exit(status)
""", path, G, 7)
    assert_exited(out, 7)
    # Alone at shutdown, the main thread's reads work.
    for name in ("global", "cycle"):
        assert f"{name} read 111111" in out.stdout, out.stdout + out.stderr


def test_an_atexit_callback_reads_after_shutdown_began(data):
    path, content = data
    out = run_script(READER + r"""
at_exit.append(Reader(b"atexit").report)
sys.exit(status)
""", path, G, 6)
    assert_exited(out, 6)
    assert "atexit read 111111" in out.stdout, out.stdout + out.stderr


DAEMONS = r"""
import random, threading, time
from smmap import SlidingWindowMapBuffer, SlidingWindowMapManager

kind = sys.argv[4]
shared = SlidingWindowMapBuffer(m.make_cursor(path))
started = threading.Barrier(4 + 1)

def read(n):
    rnd = random.Random(n)
    buf = shared if kind == "shared" else SlidingWindowMapBuffer(m.make_cursor(path))
    cursor = m.make_cursor(path)
    size = len(content)
    started.wait()
    while True:
        a = rnd.randrange(size)
        if kind == "cursor":
            cursor.use_region(a, 100).buffer()
        else:
            buf[a]
            buf[a:a + G]
            buf[a::G]

for n in range(4):
    threading.Thread(target=read, args=(n,), daemon=True).start()
started.wait()
time.sleep(0.05)
sys.exit(status)
"""


@pytest.mark.parametrize("kind", ["buffers", "shared", "cursor"])
def test_daemon_threads_reading_at_exit(data, kind):
    # Four daemon threads read (each its own buffer, one shared buffer, or
    # cursors) through a manager whose windows keep being replaced, so most
    # reads release the interpreter, and the main thread exits meanwhile.
    path, _ = data
    for _ in range(ROUNDS):
        out = run_script(READER + DAEMONS, path, G, 5, kind)
        assert_exited(out, 5)


# A daemon thread is inside a long read through a cursor (a gigabyte of a
# sparse file) when the main thread exits; an `atexit` callback, and a
# finalizer where the interpreter runs it at exit (not 3.11's, with a daemon
# thread alive), then read through the same cursor.
LONG_READ = r"""
import atexit, os, sys, threading, time
at_exit = []
atexit.register(lambda: [f() for f in at_exit])
from smmap import SlidingWindowMapBuffer, SlidingWindowMapManager

path, status = sys.argv[1], int(sys.argv[2])
m = SlidingWindowMapManager(window_size=1 << 20, max_memory_size=4 << 20)
cursor = m.make_cursor(path)
busy = SlidingWindowMapBuffer(cursor)
started = threading.Event()

def read():
    started.set()
    busy[0:1 << 30]

class Late:
    def __init__(self, name):
        self.name = name
        self.buf = SlidingWindowMapBuffer(cursor)
        self.write = os.write

    def __del__(self):
        self.report()

    def report(self):
        try:
            self.write(1, b"%s read %d\n" % (self.name, self.buf[12345]))
        except RuntimeError as e:
            self.write(1, b"%s raised %s\n" % (self.name, str(e).encode()))

at_exit.append(Late(b"atexit").report)
late = Late(b"global")
threading.Thread(target=read, daemon=True).start()
started.wait()
time.sleep(0.02)
sys.exit(status)
"""


@pytest.fixture(scope="module")
def sparse(tmp_path_factory):
    path = tmp_path_factory.mktemp("sparse") / "sparse.bin"
    with open(path, "wb") as f:
        f.truncate(1 << 30)
    return path


def test_a_read_at_exit_does_not_wait_for_a_daemon_thread_given_up(sparse):
    # With no wait at exit (SMMAP_EXIT_WAIT=0) smmap's callback gives up on
    # the thread at once: it may never give the cursor back, and the read
    # does not wait for it but raises RuntimeError (or works, if the thread
    # had not taken the cursor yet, or had let go of it: then try again).
    env = dict(os.environ, SMMAP_EXIT_WAIT="0")
    for _ in range(5):
        out = run_script(LONG_READ, sparse, 9, env=env)
        assert_exited(out, 9)
        if "atexit raised" in out.stdout:
            assert "shutting down" in out.stdout and "another thread" in out.stdout, out.stdout
            return
        assert "atexit read 0" in out.stdout, out.stdout + out.stderr
    pytest.fail("the daemon thread never held the cursor at exit: nothing was tested")


def test_exit_waits_for_a_daemon_threads_read_to_end(sparse):
    # Waiting long enough, smmap's callback lets the daemon thread's read
    # end and give the cursor back: the read at exit works, every time.
    env = dict(os.environ, SMMAP_EXIT_WAIT="60")
    for _ in range(3):
        out = run_script(LONG_READ, sparse, 9, env=env)
        assert_exited(out, 9)
        assert "atexit read 0" in out.stdout, out.stdout + out.stderr


def test_an_exit_callback_registered_first_joins_a_daemon_reader(data):
    # `atexit` runs the callbacks registered last first: one registered
    # before smmap was imported runs after smmap's own, once shutdown has
    # begun. It stops and joins a daemon thread that keeps missing (every
    # read maps, releasing the interpreter): the thread runs on and ends.
    path, _ = data
    code = r"""
import atexit, os, sys, threading
stop = threading.Event()
threads = []

def stop_readers():
    stop.set()
    for t in threads:
        t.join(10)
    os.write(1, b"alive after join: %d\n" % sum(t.is_alive() for t in threads))

atexit.register(stop_readers)
from smmap import SlidingWindowMapManager

path, G, status = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
m = SlidingWindowMapManager(window_size=G, max_memory_size=2 * G, max_open_handles=8)
started = threading.Barrier(3)

def read(n):
    c = m.make_cursor(path)
    i = n
    started.wait()
    while not stop.is_set():
        i = (i * 31 + 7) % 64
        assert c.use_region(i * G, 100).is_valid()

for n in range(2):
    threads.append(threading.Thread(target=read, args=(n,), daemon=True))
    threads[-1].start()
started.wait()
sys.exit(status)
"""
    for _ in range(ROUNDS // 2):
        out = run_script(code, path, G, 4)
        assert_exited(out, 4)
        assert "alive after join: 0" in out.stdout, out.stdout + out.stderr


def test_an_exit_wait_that_is_no_number_warns(data):
    path, _ = data
    env = dict(os.environ, SMMAP_EXIT_WAIT="soon")
    out = run_script("import smmap", env=env)
    assert_exited(out, 0)
    assert "RuntimeWarning" in out.stderr and "SMMAP_EXIT_WAIT" in out.stderr and "soon" in out.stderr, out.stderr


def test_exit_status_is_kept_with_daemon_threads_waiting_for_each_other(data):
    # Sixteen daemon threads share one buffer (so most are waiting for it)
    # while the main thread exits from an exception.
    path, _ = data
    code = READER + r"""
import threading, time
shared = SlidingWindowMapBuffer(m.make_cursor(path))

def read(n):
    a = n * 997
    while True:
        a = (a * 31 + 7) % len(content)
        shared[a:a + 2 * G]

for n in range(16):
    threading.Thread(target=read, args=(n,), daemon=True).start()
time.sleep(0.05)
raise SystemExit(status)
"""
    for _ in range(ROUNDS // 2):
        out = run_script(code, path, G, 3)
        assert_exited(out, 3)
