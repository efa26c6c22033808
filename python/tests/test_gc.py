"""Python's cycle collector sees the references the native objects hold
(buffer -> cursor -> manager, and a cursor's path object): cycles through
them, user subclasses included, are collected, and their regions released."""
import gc
import os
import sys
import weakref

import pytest

from smmap import SlidingWindowMapBuffer, SlidingWindowMapManager, WindowCursor
from smmap.util import ALLOCATIONGRANULARITY as G
from smmap.util import MapRegionList


class Path(os.PathLike):
    def __init__(self, path):
        self.path = path

    def __fspath__(self):
        return self.path


def collected(ref):
    gc.collect()
    return ref() is None


def test_cursor_and_its_path_object(big):
    path, content = big
    m = SlidingWindowMapManager()
    p = Path(path)
    c = m.make_cursor(p).use_region(0, 10)
    assert bytes(c.buffer()) == content[:10]
    p.cursor = c  # cursor -> path object -> cursor
    ref = weakref.ref(p)
    del p, c
    assert collected(ref)
    assert m.collect() == 1 and m.num_file_handles() == 0


def test_buffer_and_cursor_subclass(big):
    path, content = big

    class Cur(WindowCursor):
        pass

    m = SlidingWindowMapManager()
    c = Cur(m, MapRegionList(path))
    b = SlidingWindowMapBuffer(c, 5)
    assert b[0] == content[5]
    c.buffer_of_mine = b  # cursor -> buffer -> cursor
    ref = weakref.ref(c)
    del b, c
    assert collected(ref)
    assert m.collect() == 1 and m.num_file_handles() == 0


def test_manager_subclass_and_its_cursors(big):
    path, content = big

    class Manager(SlidingWindowMapManager):
        pass

    m = Manager()
    m.cursors = [m.make_cursor(path).use_region(0, 1)]  # manager -> cursor -> manager
    ref = weakref.ref(m)
    del m
    assert collected(ref)


def test_buffer_subclass_holding_itself(big):
    path, content = big
    m = SlidingWindowMapManager()

    class Buf(SlidingWindowMapBuffer):
        pass

    b = Buf(m.make_cursor(path))
    b.me = b
    assert b[3] == content[3]
    ref = weakref.ref(b)
    del b
    assert collected(ref)
    assert m.collect() == 1 and m.num_file_handles() == 0


def test_a_slice_the_fast_path_hands_on_gives_its_references_back_at_once(big):
    """`buf[a:b]` that the fast path does not answer itself (a stride, a
    slice outside the cursor's window) gives back the references it took
    before it returns: none is left queued for a later call to give back,
    maybe the cursor's last, on another thread."""
    path, content = big

    class Cur(WindowCursor):
        pass

    m = SlidingWindowMapManager(window_size=G)
    c = Cur(m, MapRegionList(path))
    b = SlidingWindowMapBuffer(c)
    assert b[0] == content[0]
    before = sys.getrefcount(c)
    assert b[0:20:2] == content[0:20:2]  # a stride
    assert sys.getrefcount(c) == before
    far = len(content) - 100
    assert b[far : far + 10] == content[far : far + 10]  # another window
    assert sys.getrefcount(c) == before
    ref = weakref.ref(c)
    del b, c
    assert ref() is None, "the cursor outlived its last reference"
    m.collect()
    assert m.num_file_handles() == 0, "a region is still in use"


def test_an_error_the_slot_raises_leaves_no_reference_queued(tmp_path):
    """An error raised by `buf[a:b]` outside PyO3's own calls (a copy read
    of a file cut short) holds no reference to its type afterwards. Only
    where built-in types are counted (3.11; from 3.12 they are immortal,
    and the check cannot fail) does a reference queued for later show, as
    one more."""
    content = os.urandom(16 * G)
    path = tmp_path / "shrinks.bin"
    path.write_bytes(content)
    m = SlidingWindowMapManager(window_size=G)
    b = SlidingWindowMapBuffer(m.make_cursor(str(path)))
    assert b[0] == content[0]
    os.truncate(path, G)
    before = sys.getrefcount(OSError)
    for _ in range(3):
        with pytest.raises(OSError):
            b[15 * G : 15 * G + 10]
    assert sys.getrefcount(OSError) == before
