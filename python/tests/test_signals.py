"""Python code that runs while a thread waits for an object another thread
uses: a signal handler, and the collector (which, from 3.12 on, also runs
where a wait checks for signals) calling a finalizer. Either may use the
very objects the waiting call was given, so a wait must hold nothing.

Each case runs in a fresh interpreter with a watchdog (see `isolated`): a
deadlock is the failure looked for."""
import sys

import pytest

from isolated import assert_exited, run_script

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs setitimer")

# Thread B reads a gigabyte of a sparse file (1 MiB windows under a 4 MiB
# budget: at least a tenth of a second) through a cursor; the main thread's
# buffer shares that cursor, so its `buf[...]` waits for B. The scenario is
# tried again when the Python code under test did not run during that wait
# (the machine was too slow to start B first); a run that never managed to
# is a failure, not a pass.
SETUP = r"""
import gc, signal, sys, threading, time
from smmap import SlidingWindowMapBuffer, SlidingWindowMapManager

READ = 1 << 30
m = SlidingWindowMapManager(window_size=1 << 20, max_memory_size=4 << 20)
cursor = m.make_cursor(sys.argv[1])
busy = SlidingWindowMapBuffer(cursor)
buf = SlidingWindowMapBuffer(cursor)
state = {"inside": False}

def start_reader():
    started = threading.Event()

    def read():
        started.set()
        busy[0:READ]

    t = threading.Thread(target=read)
    t.start()
    started.wait()
    time.sleep(0.005)
    return t
"""


@pytest.fixture(scope="module")
def sparse(tmp_path_factory):
    path = tmp_path_factory.mktemp("signals") / "sparse.bin"
    with open(path, "wb") as f:
        f.truncate(1 << 30)
    return str(path)


# The main thread waits for B while SIGALRM comes; the handler reads the
# buffer it waits with. Prints "handled inside the wait: ..." if it ran
# during the wait, as a wait on the main thread checks for signals.
HANDLED = r"""
seen = []

def handler(signum, frame):
    seen.append((state["inside"], len(buf), buf[7], buf.cursor() is cursor))

signal.signal(signal.SIGALRM, handler)
for attempt in range(5):
    seen.clear()
    t = start_reader()
    state["inside"] = True
    signal.setitimer(signal.ITIMER_REAL, 0.01)
    assert buf[0] == 0
    state["inside"] = False
    t.join()
    signal.setitimer(signal.ITIMER_REAL, 0)
    if seen and seen[0][0]:
        print("handled inside the wait:", seen[0])
        break
else:
    print("the handler never ran inside the wait:", seen)
"""

WAS_HANDLED = f"handled inside the wait: (True, {1 << 30}, 0, True)"


def test_a_signal_handler_uses_the_buffer_its_thread_waits_with(sparse):
    out = run_script(SETUP + HANDLED + "sys.exit(0)\n", sparse)
    assert_exited(out, 0)
    assert WAS_HANDLED in out.stdout, out.stdout


def test_the_main_thread_is_known_when_another_thread_imports_the_module(sparse):
    # Only the main thread's waits check for signals: the module must know
    # it even when another thread imports it (with `threading` loaded).
    out = run_script(r"""
import threading

def load():
    import smmap  # noqa: F401

t = threading.Thread(target=load)
t.start()
t.join()
""" + SETUP + HANDLED + "sys.exit(0)\n", sparse)
    assert_exited(out, 0)
    assert WAS_HANDLED in out.stdout, out.stdout


def test_a_child_forked_by_another_thread_checks_for_signals_on_it(sparse):
    # A child forked by a thread that is not the main one has that thread as
    # its main thread, the one that runs signal handlers there: its waits
    # must check for signals. The child makes its own objects.
    out = run_script(r"""
import os, sys, threading
import smmap  # noqa: F401 - imported, and its main thread noted, before the fork
CHILD = sys.argv[2]
status = []

def fork():
    pid = os.fork()
    if pid == 0:
        try:
            exec(CHILD, {"__name__": "__child__"})
        finally:
            sys.stdout.flush()
            os._exit(0)
    status.append(os.waitpid(pid, 0)[1])

t = threading.Thread(target=fork)
t.start()
t.join()
sys.exit(0 if status == [0] else 1)
""", sparse, SETUP + HANDLED)
    assert_exited(out, 0)
    assert WAS_HANDLED in out.stdout, out.stdout


def test_a_finalizer_uses_the_buffer_its_thread_waits_with(sparse):
    # The key's __index__ makes enough lists (600 BUILD_LISTs, none of
    # which checks for pending work) that the collector is due when it
    # returns: from 3.12 on it then runs at the wait's first check, and
    # collects a cycle whose finalizer reads the buffer. (Before 3.12 it runs
    # inside __index__ itself: the test then shows no deadlock, nothing more.)
    lists = "[" + ", ".join(["[]"] * 600) + "]"
    out = run_script(SETUP + r"""
ran = []

class Garbage:
    def __del__(self):
        ran.append((state["inside"], len(buf), buf[7]))

class Key:
    def __index__(self):
        gc.enable()
        x = LISTS
        state["inside"] = True
        return 0

gc.disable()
gc.set_threshold(1, 0)
for attempt in range(5):
    ran.clear()
    g = Garbage()
    g.me = g
    del g
    t = start_reader()
    assert buf[Key()] == 0
    state["inside"] = False
    gc.disable()
    t.join()
    gc.collect()
    if ran and ran[0][0]:
        print("collected inside the wait:", ran[0])
        break
else:
    print("never collected inside the wait:", ran)
sys.exit(0)
""".replace("LISTS", lists), sparse)
    assert_exited(out, 0)
    if sys.version_info >= (3, 12):
        assert f"collected inside the wait: (True, {1 << 30}, 0)" in out.stdout, out.stdout
    else:
        assert f"{1 << 30}, 0)" in out.stdout, out.stdout
