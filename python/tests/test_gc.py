"""Python's cycle collector sees the references the native objects hold
(buffer -> cursor -> manager, and a cursor's path object): cycles through
them, user subclasses included, are collected, and their regions released."""
import gc
import os
import weakref

from smmap import SlidingWindowMapBuffer, SlidingWindowMapManager, WindowCursor
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
