"""The binding under hostile use: no panics, no hangs, the right exceptions.

Objects whose __index__ or __fspath__ call back into the object being used,
raise, or answer differently each time; paths that cannot be encoded;
threads that use one object at once or run while another is inside a long
engine call; subclasses that configure the classes the reference lets them.
"""
import copy
import errno
import gc
import os
import pickle
import signal
import threading
import time
import weakref

import pytest

from conftest import G, make_bytes
from smmap import SlidingWindowMapBuffer, SlidingWindowMapManager, StaticWindowMapManager, WindowCursor
from smmap.util import MapRegion, MapRegionList, MapWindow


def write(path, content):
    path.write_bytes(content)
    return str(path)


# ----------------------------------------------- engine calls run detached


def sparse(tmp_path, size):
    path = tmp_path / "sparse.bin"
    with open(path, "wb") as f:
        f.truncate(size)
    return str(path)


# Long enough (100 ms or more: a gigabyte copied out of a sparse file) that
# a signal sent 15 ms in, or a thread watched at 10 ms margins, always lands
# inside it, however fast the machine.
READ = 1 << 30


def long_read(path, size):
    """A buffer whose buf[0:size] reads across 1 MiB windows under a 4 MiB
    budget: one engine call long enough to watch."""
    m = SlidingWindowMapManager(window_size=1 << 20, max_memory_size=4 << 20)
    return m, SlidingWindowMapBuffer(m.make_cursor(path))


# The timing checks below hold on a quiet machine every time; on a loaded
# one a thread may get no processor for a while, so each is tried a few
# times and passes if it holds once (what it shows cannot happen by luck).
ATTEMPTS = 5


def test_other_threads_run_during_a_long_engine_call(tmp_path):
    m, buf = long_read(sparse(tmp_path, READ), READ)
    for attempt in range(ATTEMPTS):
        ticks = []
        stop = threading.Event()

        def spin():
            # A tick a millisecond, each taking the interpreter: a few
            # hundred of them, not a list of millions.
            while not stop.is_set():
                ticks.append(time.perf_counter())
                time.sleep(0.001)

        t = threading.Thread(target=spin)
        t.start()
        try:
            time.sleep(0.02)
            start = time.perf_counter()
            data = buf[0:READ]
            end = time.perf_counter()
        finally:
            stop.set()
            t.join()
        assert len(data) == READ and data[:8] == data[-8:] == bytes(8)
        del data
        # Away from the edges (where the other thread may hold the
        # interpreter for a switch interval), the other thread kept
        # running: the read was done with the interpreter released.
        margin = 0.01
        assert end - start > 3 * margin, "the read was too quick to tell"
        inside = sum(1 for x in ticks if start + margin < x < end - margin)
        if inside > 0:
            return
    pytest.fail(f"no other thread ran during a {end - start:.3f} s read, {ATTEMPTS} times")


def interrupt_during_a_long_read(tmp_path, main_loop):
    """A worker thread reads READ bytes in one engine call; 15 ms in, SIGALRM
    raises KeyboardInterrupt (as Ctrl-C does) in the main thread, which runs
    `main_loop(buf)` meanwhile. Asserts the handler ran before the read
    ended (in one of a few attempts); returns the buffer."""
    m, buf = long_read(sparse(tmp_path, READ), READ)
    for attempt in range(ATTEMPTS):
        started = threading.Event()
        finished = []

        def worker():
            started.set()
            buf[0:READ]
            finished.append(time.perf_counter())

        # Raises only inside `pytest.raises` below: a signal that came
        # before it (a stalled main thread) or after it would otherwise
        # reach pytest as a Ctrl-C and end the whole run.
        armed = [False]

        def interrupt(signum, frame):
            if armed[0]:
                armed[0] = False
                raise KeyboardInterrupt

        old = signal.signal(signal.SIGALRM, interrupt)
        t = threading.Thread(target=worker)
        try:
            t.start()
            started.wait()
            time.sleep(0.005)  # the worker is inside the read now
            with pytest.raises(KeyboardInterrupt):
                armed[0] = True
                signal.setitimer(signal.ITIMER_REAL, 0.01)
                main_loop(buf)
            interrupted = time.perf_counter()
        finally:
            armed[0] = False
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
            t.join()
        assert finished, "the worker's read ended"
        if interrupted < finished[0]:
            return buf
    pytest.fail(f"the handler waited for the engine call, {ATTEMPTS} times")


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs setitimer")
def test_ctrl_c_is_handled_while_another_thread_is_in_an_engine_call(tmp_path):
    # The main thread handles signals; a worker is inside a long read. The
    # handler runs at once, not after it.
    def spin(buf):
        while True:
            pass

    interrupt_during_a_long_read(tmp_path, spin)


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs setitimer")
def test_ctrl_c_interrupts_a_wait_for_an_object_another_thread_uses(tmp_path):
    # The worker's read holds the buffer; the main thread's buf[0] waits for
    # it, without holding the interpreter, and Ctrl-C ends the wait.
    def wait_for_the_buffer(buf):
        while True:
            buf[0]

    buf = interrupt_during_a_long_read(tmp_path, wait_for_the_buffer)
    assert buf[0] == 0


# ------------------------------------------------------------------- paths


def test_an_unencodable_path_raises_unicode_encode_error(tmp_path):
    m = SlidingWindowMapManager()
    bad = "data/\ud800x"
    with pytest.raises(UnicodeEncodeError):
        m.make_cursor(bad)
    with pytest.raises(UnicodeEncodeError):
        MapRegion(bad, 0, 0)

    class PathLike(os.PathLike):
        def __fspath__(self):
            return bad

    with pytest.raises(UnicodeEncodeError):
        m.make_cursor(PathLike())
    with pytest.raises(UnicodeEncodeError):
        WindowCursor(m, MapRegionList(bad))


def test_paths_are_encoded_as_os_fsencode_does(tmp_path):
    # A file name that is not UTF-8 reaches Python as a str with escaped
    # bytes (os.fsdecode); it names the same file again.
    raw = os.fsencode(str(tmp_path)) + b"/\xffname"
    with open(raw, "wb") as f:
        f.write(b"abcdef")
    m = SlidingWindowMapManager()
    for name in (os.fsdecode(raw), raw):
        assert bytes(m.make_cursor(name).use_region(1, 3).buffer()) == b"bcd"


# ---------------------------------------------- re-entrant use, no panics


def test_a_window_extended_to_itself():
    # The reference's arithmetic, with the window as its own neighbour.
    w = MapWindow(100, 8192)
    w.extend_left_to(w, 10**6)
    assert (w.ofs, w.size) == (8292, 0)
    w = MapWindow(100, 8192)
    w.extend_right_to(w, 10**6)
    assert (w.ofs, w.size) == (100, 0)


def test_windows_extend_to_any_window_like_object():
    class Left:
        def ofs_end(self):
            return 4096

    class Right:
        ofs = 20000

    w = MapWindow(10000, 100)
    w.extend_left_to(Left(), 1 << 20)
    assert (w.ofs, w.size) == (4096, 6004)
    w.extend_right_to(Right(), 1 << 20)
    assert (w.ofs, w.size) == (4096, 20000 - 4096)


def test_callbacks_that_use_the_object_being_called(tmp_path):
    path = write(tmp_path / "f", make_bytes(3 * G, seed=61))
    r = MapRegion(path, 0, 0)
    seen = []

    class Index:
        def __index__(self):
            seen.append(repr(MapWindow.from_region(r)))
            return 1

    assert r.increment_client_count(Index()) is False
    assert r.client_count() == 2
    assert r.includes_ofs(Index())

    class Path(os.PathLike):
        def __fspath__(self):
            seen.append(repr(MapWindow.from_region(r)))
            return path

    r.__init__(Path(), 0, G)
    assert r.size() == G
    assert seen == [f"MapWindow(0, {3 * G})"] * 3

    m = SlidingWindowMapManager()
    c = m.make_cursor(path)
    buf = SlidingWindowMapBuffer(c)

    class Cunning:
        def __index__(self):
            # Everything the buffer and its cursor offer, from inside a call.
            seen.extend([len(buf), buf[0], c.is_valid(), c.ofs_begin()])
            buf.end_access()
            buf.begin_access(c, 0)
            c.use_region(0, 1)
            return 5

    assert buf[Cunning()] == buf[5]
    assert c.use_region(Cunning(), Cunning()).ofs_begin() == 5
    assert buf[Cunning():Cunning()] == b""


# -------------------------------------------------------- integer arguments


def test_index_objects_are_called_once_and_their_values_used(tmp_path):
    content = make_bytes(3 * G, seed=62)
    path = write(tmp_path / "f", content)
    m = SlidingWindowMapManager(window_size=G)
    c = m.make_cursor(path)

    class Big:
        def __index__(self):
            return 2**70

    class Negative:
        def __index__(self):
            return -5

    # Past any end: an invalid cursor, as any offset past the file.
    assert not c.use_region(Big()).is_valid()
    with pytest.raises(ValueError):
        c.use_region(Negative())
    with pytest.raises(ValueError):
        c.use_region(0, Negative())
    assert c.use_region(0, Big()).size() == G

    class Flaky:
        calls = 0

        def __index__(self):
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise ZeroDivisionError("first call")
            return 1

    with pytest.raises(ZeroDivisionError):
        c.use_region(Flaky())
    assert Flaky.calls == 1

    class Shifty:
        calls = 0

        def __index__(self):
            Shifty.calls += 1
            return [G + 1, 2 * G + 1][Shifty.calls - 1]

    assert c.use_region(Shifty()).ofs_begin() == G + 1
    assert Shifty.calls == 1

    buf = SlidingWindowMapBuffer(m.make_cursor(path))
    Shifty.calls = 0
    assert buf[Shifty()] == content[G + 1] and Shifty.calls == 1
    Flaky.calls = 0
    with pytest.raises(ZeroDivisionError):
        buf[Flaky()]
    with pytest.raises(IndexError):
        buf[Big()]
    with pytest.raises(TypeError):
        buf[1.5]


# ------------------------------------------------------------------ errors


def test_a_read_of_a_truncated_file_names_it_and_says_what_happened(tmp_path):
    content = make_bytes(4 * G, seed=63)
    path = write(tmp_path / "shrinks", content)
    for m in (SlidingWindowMapManager(window_size=G),
              SlidingWindowMapManager(window_size=G, max_memory_size=G, max_open_handles=1)):
        buf = SlidingWindowMapBuffer(m.make_cursor(path))
        assert buf[0] == content[0]
        os.truncate(path, G)
        try:
            with pytest.raises(OSError) as e:
                buf[3 * G:3 * G + 10]
            s = str(e.value)
            assert e.value.errno is not None and e.value.filename == path, s
            assert path in s and ("shrank" in s or "end of file" in s), s
        finally:
            with open(path, "wb") as f:
                f.write(content)


# ----------------------------------------------------------- compatibility


def test_window_cursor_class_of_a_manager_subclass(tmp_path):
    content = make_bytes(2 * G, seed=64)
    path = write(tmp_path / "f", content)
    lists = []

    class MyCursor(WindowCursor):
        pass

    class MyList(MapRegionList):
        def __init__(self, path_or_fd):
            super().__init__(path_or_fd)
            lists.append(path_or_fd)

    class Manager(SlidingWindowMapManager):
        WindowCursorCls = MyCursor

    c = Manager().make_cursor(path)
    assert type(c) is MyCursor
    assert bytes(c.use_region(5, 5).buffer()) == content[5:10]

    class Listing(StaticWindowMapManager):
        MapRegionListCls = MyList

    c = Listing().make_cursor(path)
    assert type(c) is WindowCursor and lists == [path]
    assert bytes(c.use_region(7, 3).buffer()) == content[7:10]


def test_copies_of_a_cursor_subclass_are_of_the_subclass(tmp_path):
    content = make_bytes(2 * G, seed=65)
    path = write(tmp_path / "f", content)

    class MyCursor(WindowCursor):
        pass

    c = MyCursor(SlidingWindowMapManager(), MapRegionList(path)).use_region(G, 4)
    d = copy.copy(c)
    assert type(d) is MyCursor and d is not c
    assert bytes(d.buffer()) == content[G:G + 4]
    c.use_region(0, 4)
    assert (c.ofs_begin(), d.ofs_begin()) == (0, G)


def test_windows_copy_and_pickle():
    w = MapWindow(4096, 100)
    for other in (copy.copy(w), copy.deepcopy(w), pickle.loads(pickle.dumps(w))):
        assert type(other) is MapWindow and (other.ofs, other.size) == (4096, 100)
        assert other is not w

    class Named(MapWindow):
        def __init__(self, ofs):
            super().__init__(ofs, 7)
            self.name = "n"

    n = Named(3)
    m = copy.copy(n)
    assert type(m) is Named and (m.ofs, m.size, m.name) == (3, 7, "n")


def test_regions_are_weakly_referenceable(tmp_path):
    path = write(tmp_path / "f", make_bytes(G, seed=66))
    r = MapRegion(path, 0, 0)
    ref = weakref.ref(r)
    assert ref() is r
    del r
    gc.collect()
    assert ref() is None
    c = SlidingWindowMapManager().make_cursor(path).use_region(0, 1)
    region = c.region()
    assert weakref.ref(region)() is region


# ------------------------------------------------------- threads at once


def test_another_thread_is_never_told_the_object_is_in_use_by_it(tmp_path):
    content = make_bytes(3 * G, seed=67)
    path = write(tmp_path / "f", content)
    buf = SlidingWindowMapBuffer(SlidingWindowMapManager().make_cursor(path))
    inside = threading.Event()
    errors = []

    class Slow:
        def __index__(self):
            inside.set()
            time.sleep(0.2)
            return 0

    def other():
        inside.wait()
        try:
            buf.end_access()
            len(buf)
            buf.begin_access()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    t = threading.Thread(target=other)
    t.start()
    got = buf[Slow():20]
    t.join()
    assert not errors, errors
    assert got in (content[:20], b"")
