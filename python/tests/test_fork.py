"""A process forked while other threads read through a manager: the child
never hangs. Objects made before the fork work in the child (the manager
makes new windows and cursors there, and cursors open their file again at
their position), except one that another thread was using at the moment of
the fork, whose state may be half-updated: that one raises RuntimeError
naming the fork and the fix, a new object made in the child.

Everything runs in a fresh interpreter (see `isolated`); the script forks
and watches each child, killing one that does not exit in time."""
import json
import os
import shutil

import pytest

from conftest import G, make_bytes
from isolated import assert_exited, run_script

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")

# Exit statuses of a child: it worked; it was refused with the RuntimeError
# that names the fork; anything else went wrong.
WORKED, REFUSED = 0, 10

# The child's side: `check(what)` reads through `what()` and compares.
CHILD = r"""
import gc, json, os, random, sys, threading, time, warnings
from smmap import SlidingWindowMapBuffer, SlidingWindowMapManager

warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads running
path, G = sys.argv[1], int(sys.argv[2])
with open(path, "rb") as f:
    content = f.read()

def child(work):
    # Runs in the child: its exit status says what happened.
    try:
        work()
    except RuntimeError as e:
        ok = "fork" in str(e) and "make a new" in str(e)
        os._exit(10 if ok else 3)
    except BaseException:
        import traceback
        traceback.print_exc()
        os._exit(4)
    os._exit(0)

def fork_and_watch(work, seconds=10):
    pid = os.fork()
    if pid == 0:
        child(work)
    deadline = time.monotonic() + seconds
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            return "hung"
        time.sleep(0.002)
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A file of 64 granules: (path, content)."""
    content = make_bytes(64 * G, seed=97)
    path = tmp_path_factory.mktemp("fork") / "data.bin"
    path.write_bytes(content)
    return str(path), content


def test_forks_while_threads_read(data):
    # Three threads read through one manager with a tight memory budget
    # (its lock is taken on nearly every read; handles enough for every
    # window in use) and through one shared buffer; the main thread forks
    # forty times meanwhile. Each child reads through the manager, a cursor
    # the main thread made before the fork, and the shared buffer, or drops
    # the shared buffer.
    path, _ = data
    out = run_script(CHILD + r"""
m = SlidingWindowMapManager(window_size=G, max_memory_size=3 * G, max_open_handles=16)
shared = SlidingWindowMapBuffer(m.make_cursor(path))
mine = m.make_cursor(path).use_region(5 * G, 100)
stop = threading.Event()
failed = []

def read(n):
    rnd = random.Random(n)
    buf = SlidingWindowMapBuffer(m.make_cursor(path))
    cursor = m.make_cursor(path)
    try:
        while not stop.is_set():
            a = rnd.randrange(len(content))
            assert buf[a] == content[a]
            assert shared[a:a + 50] == content[a:a + 50]
            cursor.use_region(a, 10)
    except BaseException as e:
        failed.append(repr(e))

threads = [threading.Thread(target=read, args=(n,)) for n in range(3)]
for t in threads:
    t.start()

def through_the_manager():
    rnd = random.Random(os.getpid())
    buf = SlidingWindowMapBuffer(m.make_cursor(path))
    for _ in range(200):
        a = rnd.randrange(len(content))
        assert buf[a:a + 300] == content[a:a + 300]
    m._verify_invariants()

def through_a_cursor():
    # Not in use at the fork: it works, at its position, and moves on.
    assert (mine.ofs_begin(), bytes(mine.buffer())) == (5 * G, content[5 * G:5 * G + 100])
    assert bytes(mine.use_region(9 * G + 1, 7).buffer()) == content[9 * G + 1:9 * G + 8]

def through_the_shared_buffer():
    for a in range(0, len(content), 997):
        assert shared[a] == content[a]

def dropping_the_shared_buffer():
    # In use at the fork or not, it is dropped safely, with what another
    # thread may have been changing then (its state, the queue of threads
    # waiting for it) left alone.
    global shared
    del shared
    gc.collect()

results = {}
for i in range(40):
    time.sleep(0.005)
    for name, work in (("manager", through_the_manager), ("cursor", through_a_cursor),
                       ("shared", through_the_shared_buffer),
                       ("dropped", dropping_the_shared_buffer)):
        status = fork_and_watch(work)
        results.setdefault(name, []).append(status)
stop.set()
for t in threads:
    t.join()
assert not failed, failed
print(json.dumps(results))
""", path, G, timeout=600)
    assert_exited(out, 0)
    results = json.loads(out.stdout.splitlines()[-1])
    for name, statuses in results.items():
        assert "hung" not in statuses, (name, statuses, out.stderr)
    # Only the buffer the threads use may have been in use at the fork.
    assert set(results["manager"]) == {WORKED}, (results, out.stderr)
    assert set(results["cursor"]) == {WORKED}, (results, out.stderr)
    assert set(results["dropped"]) == {WORKED}, (results, out.stderr)
    assert set(results["shared"]) <= {WORKED, REFUSED}, (results, out.stderr)


def test_an_object_in_use_at_the_fork_is_refused_in_the_child(data, tmp_path):
    # A thread is inside a long read through a cursor (a gigabyte of a
    # sparse file) when the main thread forks: in the child, that cursor
    # and a buffer on it raise RuntimeError naming the fork, every time;
    # the manager, and a new cursor of it, work. (If the thread had not
    # taken the cursor yet at the fork, the child could use it: try again.)
    path, _ = data
    sparse = tmp_path / "sparse.bin"
    with open(sparse, "wb") as f:
        f.truncate(1 << 30)
    out = run_script(CHILD + r"""
m = SlidingWindowMapManager(window_size=1 << 20, max_memory_size=4 << 20)
cursor = m.make_cursor(sys.argv[3])
busy = SlidingWindowMapBuffer(cursor)

def refused():
    for use in (lambda: cursor.use_region(0, 1), lambda: cursor.is_valid(),
                lambda: SlidingWindowMapBuffer(cursor)[0], lambda: busy[5]):
        try:
            use()
        except RuntimeError as e:
            assert "in use by another thread when the process forked" in str(e), e
            continue
        raise AssertionError("worked")
    fresh = m.make_cursor(sys.argv[3]).use_region(12345, 10)
    assert bytes(fresh.buffer()) == bytes(10)
    # Dropping them touches none of their state (it is leaked): no hang.
    global cursor, busy
    del cursor, busy
    gc.collect()
    raise RuntimeError("refused after a fork: make a new one")

for attempt in range(5):
    started = threading.Event()

    def read():
        started.set()
        busy[0:1 << 30]

    t = threading.Thread(target=read)
    t.start()
    started.wait()
    time.sleep(0.01)
    status = fork_and_watch(refused)
    t.join()
    print("child:", status)
    if status != 4:
        break
""", path, G, sparse, timeout=300)
    assert_exited(out, 0)
    assert out.stdout.splitlines()[-1] == f"child: {REFUSED}", out.stdout + out.stderr


def run_on_a_doomed_copy(data, tmp_path, script):
    """Runs `script` after CHILD and a prologue that makes `m`, a manager
    of G-byte windows, and `cursor`, at 3G of `doomed`: a copy of the data,
    which the script removes. The script prints what its child did; it
    must have worked."""
    path, content = data
    doomed = tmp_path / "doomed.bin"
    doomed.write_bytes(content)
    out = run_script(CHILD + r"""
doomed = sys.argv[3]
m = SlidingWindowMapManager(window_size=G)
cursor = m.make_cursor(doomed).use_region(3 * G, 10)
""" + script, path, G, doomed, timeout=120)
    assert_exited(out, 0)
    assert out.stdout.strip() == f"child: {WORKED}", out.stdout + out.stderr


def test_a_cursor_whose_file_is_gone_raises_in_the_child(data, tmp_path):
    # The parent reads a removed file through the descriptor its manager
    # keeps; the child opens the file again by its name, which is gone: the
    # cursor raises FileNotFoundError naming it, on each use, and works
    # again once the file is back.
    run_on_a_doomed_copy(data, tmp_path, r"""
os.remove(doomed)
assert bytes(cursor.use_region(G, 10).buffer()) == content[G:G + 10]

def gone():
    for _ in range(2):
        try:
            cursor.is_valid()
        except FileNotFoundError as e:
            assert e.filename == doomed, e
        else:
            raise AssertionError("worked")
    with open(doomed, "wb") as f:
        f.write(content)
    assert (cursor.ofs_begin(), bytes(cursor.buffer())) == (G, content[G:G + 10])

print("child:", fork_and_watch(gone))
assert bytes(cursor.use_region(5 * G, 10).buffer()) == content[5 * G:5 * G + 10]
""")


def test_a_release_in_the_child_opens_nothing(data, tmp_path):
    # A child that only lets go of what the parent's cursors and buffer
    # held (`unuse_region`, a `with` block's exit, `end_access`) opens no
    # file and maps nothing: no error, though the file is gone; the next
    # use opens it, and raises then.
    run_on_a_doomed_copy(data, tmp_path, r"""
other = m.make_cursor(doomed).use_region(4 * G, 10)
buf = SlidingWindowMapBuffer(m.make_cursor(doomed))
assert buf[5 * G] == content[5 * G]
other_buf = SlidingWindowMapBuffer(m.make_cursor(doomed))
assert other_buf[6 * G] == content[6 * G]
os.remove(doomed)

def release():
    cursor.unuse_region()
    with other:
        pass
    buf.end_access()
    with other_buf:
        pass
    assert m.num_file_handles() == 0, m.num_file_handles()
    try:
        cursor.use_region(G, 10)
    except FileNotFoundError as e:
        assert e.filename == doomed, e
    else:
        raise AssertionError("worked")
    assert m.num_file_handles() == 0

print("child:", fork_and_watch(release))
assert bytes(cursor.use_region(G, 10).buffer()) == content[G:G + 10]
""")


def test_a_release_while_the_child_reopens_holds(data):
    # In the child, one thread's first use of a cursor opens its file again
    # and maps the parent's view, with the cursor let go meanwhile; another
    # thread lets the cursor go (`unuse_region`) at the same moment. In
    # whatever order they come, the release holds: afterwards the cursor
    # holds nothing and `collect` leaves nothing mapped. (A reopen that
    # finished after the release used to put the view back, in use for good.)
    # The two threads meet before each cursor by spinning, so that they run
    # at once where the interpreter lets them (free-threaded).
    path, _ = data
    out = run_script(CHILD + r"""
m = SlidingWindowMapManager(window_size=G)

def race():
    sys.setswitchinterval(1e-5)
    at = [0, 0]

    def meet(me, i):
        at[me] = i
        while at[1 - me] < i:
            pass

    def reopen():
        for i, c in enumerate(cursors, 1):
            meet(0, i)
            c.is_valid()

    def release():
        for i, c in enumerate(cursors, 1):
            meet(1, i)
            c.unuse_region()

    threads = [threading.Thread(target=f) for f in (reopen, release)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not any(c.is_valid() for c in cursors)
    m.collect()
    assert m.mapped_memory_size() == 0, m.mapped_memory_size()
    m._verify_invariants()

statuses = []
for i in range(10):
    cursors = [m.make_cursor(path).use_region((k % 64) * G, 10) for k in range(100)]
    statuses.append(fork_and_watch(race, seconds=60))
    for c in cursors:
        c.unuse_region()
print(json.dumps(statuses))
""", path, G, timeout=600)
    assert_exited(out, 0)
    statuses = json.loads(out.stdout.splitlines()[-1])
    assert set(statuses) == {WORKED}, (statuses, out.stderr)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")
def test_a_multiprocessing_pool_reads_a_pack_the_parent_opened(tmp_path):
    # gitdb keeps one module-level manager, made at import, and its pack
    # objects keep cursors: children forked by multiprocessing use both.
    pytest.importorskip("gitdb")
    from gitrepo import make_repo

    pack = make_repo(tmp_path / "repo", commits=40)
    out = run_script(r"""
import hashlib, multiprocessing, sys, warnings
from gitdb.pack import PackEntity

warnings.simplefilter("ignore", DeprecationWarning)
pack = sys.argv[1]
entity = PackEntity(pack)            # made here: its cursors too
index = entity.index()
n = index.size()

def digest(i):
    return hashlib.sha1(entity.stream_at_index(i).read()).hexdigest()

def fresh(i):
    # A pack opened in the child, through gitdb's manager from the parent.
    return hashlib.sha1(PackEntity(pack).stream_at_index(i).read()).hexdigest()

expected = [digest(i) for i in range(n)]
with multiprocessing.get_context("fork").Pool(2) as pool:
    assert pool.map(digest, range(n)) == expected
    assert pool.map(fresh, range(0, n, 7)) == expected[::7]
print("read", n)
""", pack, timeout=300)
    assert_exited(out, 0)
    assert out.stdout.startswith("read "), out.stdout
