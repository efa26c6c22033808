"""smmap.buf: SlidingWindowMapBuffer."""
import random
import sys

import pytest

from smmap import SlidingWindowMapBuffer, SlidingWindowMapManager, StaticWindowMapManager, WindowCursor
from smmap.util import ALLOCATIONGRANULARITY as G


@pytest.fixture(params=["sliding-small", "sliding-default", "static"])
def manager(request):
    if request.param == "sliding-small":
        return SlidingWindowMapManager(window_size=2 * G, max_memory_size=6 * G, max_open_handles=3)
    if request.param == "sliding-default":
        return SlidingWindowMapManager()
    return StaticWindowMapManager()


def test_whole_file(manager, big):
    path, content = big
    buf = SlidingWindowMapBuffer(manager.make_cursor(path))
    assert len(buf) == len(content)
    assert buf[0] == content[0]
    assert buf[len(content) - 1] == content[-1]
    assert buf[-1] == content[-1]
    assert buf[-len(content)] == content[0]
    assert buf[:] == content
    assert buf[:] is not content and isinstance(buf[:], bytes)


def test_random_bytes_and_slices(manager, big):
    path, content = big
    buf = SlidingWindowMapBuffer(manager.make_cursor(path))
    rnd = random.Random(11)
    n = len(content)
    for _ in range(3000):
        i = rnd.randrange(-n, n)
        assert buf[i] == content[i]
    for _ in range(1000):
        a = rnd.randrange(0, n)
        b = a + rnd.randrange(0, 5 * G)
        assert buf[a:b] == content[a:b]
    for _ in range(200):
        a, b = rnd.randrange(-n, n), rnd.randrange(-n, n)
        step = rnd.choice([1, 2, 7, -1, -3, G + 1])
        assert buf[a:b:step] == content[a:b:step]
    # Deliberate difference: Python's slice rules; the reference reads a
    # stop of 0 as "to the end" and ignores the step.
    assert buf[0:0] == b"" and buf[5:0] == b""
    assert buf[0:10:2] == content[0:10:2] and buf[::-1] == content[::-1]


def test_indexing_is_relative_to_the_offset(manager, big):
    # Deliberate difference: the reference documents relative indexing but
    # its __getitem__ indexes absolutely; index 0 here is the byte at offset.
    path, content = big
    ofs = 3 * G + 17
    buf = SlidingWindowMapBuffer(manager.make_cursor(path), ofs)
    assert len(buf) == len(content) - ofs
    assert buf[0] == content[ofs]
    assert buf[-1] == content[-1]
    assert buf[10:20] == content[ofs + 10:ofs + 20]
    assert buf[:] == content[ofs:]


def test_size_limits_the_view(manager, big):
    path, content = big
    buf = SlidingWindowMapBuffer(manager.make_cursor(path), 100, 5 * G)
    assert len(buf) == 5 * G
    assert buf[-1] == content[100 + 5 * G - 1]
    assert buf[:] == content[100:100 + 5 * G]
    buf = SlidingWindowMapBuffer(manager.make_cursor(path), len(content) - 10, 2 ** 80)
    assert len(buf) == 10
    # Deliberate difference: a size past the end of the file stops there
    # (the reference reports the size asked for, when it is less than the
    # file's, and then cannot read past the end).
    buf = SlidingWindowMapBuffer(manager.make_cursor(path), len(content) - 10, 500)
    assert len(buf) == 10 and buf[:] == content[-10:]


def test_index_past_the_end_raises_index_error(manager, big):
    # Deliberate difference: the reference does not check bounds.
    path, content = big
    buf = SlidingWindowMapBuffer(manager.make_cursor(path), 10, 100)
    with pytest.raises(IndexError):
        buf[100]
    with pytest.raises(IndexError):
        buf[-101]
    with pytest.raises(IndexError):
        buf[2 ** 80]
    with pytest.raises(TypeError):
        buf["x"]
    with pytest.raises(TypeError):
        buf[1.0]
    assert buf[200:300] == b""


def test_index_error_names_the_index_the_buffer_and_the_file(big, fd_of):
    path, content = big
    buf = SlidingWindowMapBuffer(SlidingWindowMapManager().make_cursor(path), 10, 100)
    for i, shown in [(100, "100"), (-101, "-101"), (2 ** 80, "a huge number")]:
        with pytest.raises(IndexError) as e:
            buf[i]
        assert str(e.value) == f"buffer index out of range: index {shown} of a buffer of 100 bytes at offset 10 of {path}"
    fd = fd_of(path)
    buf = SlidingWindowMapBuffer(SlidingWindowMapManager().make_cursor(fd))
    with pytest.raises(IndexError) as e:
        buf[len(content)]
    assert str(e.value) == (
        f"buffer index out of range: index {len(content)} of a buffer of {len(content)} bytes"
        f" at offset 0 of file descriptor {fd}"
    )
    with pytest.raises(IndexError) as e:
        SlidingWindowMapBuffer()[0]
    assert str(e.value) == "buffer index out of range: index 0 of a buffer of 0 bytes at offset 0 of no file"


def test_iteration(big):
    # Iteration goes through __getitem__ until IndexError (the reference's
    # fails with AttributeError).
    path, content = big
    buf = SlidingWindowMapBuffer(SlidingWindowMapManager(window_size=G).make_cursor(path), offset=G - 3)
    assert list(buf) == list(content[G - 3:])
    assert bytes(buf) == content[G - 3:]


def test_index_like_keys(big):
    class Index:
        def __index__(self):
            return 3

    path, content = big
    buf = SlidingWindowMapBuffer(SlidingWindowMapManager().make_cursor(path))
    assert buf[Index()] == content[3]
    assert buf[True] == content[1]


def test_getslice_compat(big):
    path, content = big
    buf = SlidingWindowMapBuffer(SlidingWindowMapManager(window_size=G).make_cursor(path))
    assert buf.__getslice__(5, 10) == content[5:10]
    assert buf.__getslice__(-10, sys.maxsize) == content[-10:]
    assert buf.__getslice__(G - 5, G + 5) == content[G - 5:G + 5]


def test_construction_errors(manager, big, empty):
    path, content = big
    with pytest.raises(ValueError):
        SlidingWindowMapBuffer(manager.make_cursor(path), len(content))
    with pytest.raises(ValueError):
        SlidingWindowMapBuffer(manager.make_cursor(path), -1)
    with pytest.raises(ValueError):
        SlidingWindowMapBuffer(manager.make_cursor(path), 0, -1)
    with pytest.raises(ValueError):
        SlidingWindowMapBuffer(manager.make_cursor(empty))
    with pytest.raises(ValueError):
        SlidingWindowMapBuffer(WindowCursor(manager))
    with pytest.raises(TypeError):
        SlidingWindowMapBuffer("not a cursor")


def test_construction_error_names_the_offset_and_the_file(manager, big, empty):
    path, content = big
    prefix = "Failed to allocate the buffer - probably the given offset is out of bounds: "
    with pytest.raises(ValueError) as e:
        SlidingWindowMapBuffer(manager.make_cursor(path), len(content) + 5)
    assert str(e.value) == prefix + f"offset {len(content) + 5} of {path}, a file of {len(content)} bytes"
    with pytest.raises(ValueError) as e:
        SlidingWindowMapBuffer(manager.make_cursor(empty))
    assert str(e.value) == prefix + f"offset 0 of {empty}, a file of 0 bytes"
    with pytest.raises(ValueError) as e:
        SlidingWindowMapBuffer(WindowCursor(manager), size=10)
    assert str(e.value) == prefix + "offset 0 of a cursor with no file"

    class Unprintable(int):
        def __str__(self):
            raise RuntimeError("no")

    # Still the ValueError, the offset left unnamed.
    with pytest.raises(ValueError) as e:
        SlidingWindowMapBuffer(manager.make_cursor(path), Unprintable(len(content) + 5))
    assert str(e.value) == prefix + f"offset (not printable) of {path}, a file of {len(content)} bytes"


def test_none_offset_size_or_flags_is_refused_as_by_the_reference(big):
    # The reference passes them on to begin_access, whose arithmetic (and
    # os.open, for flags) fails on None; without a cursor, none is used.
    path, content = big
    c = SlidingWindowMapManager().make_cursor(path)
    for args, kwargs in [
        ((c, None), {}), ((c, 0, None), {}), ((c, 0, 10, None), {}),
        ((c,), {"offset": None}), ((c,), {"size": None}), ((c,), {"flags": None}),
    ]:
        with pytest.raises(TypeError):
            SlidingWindowMapBuffer(*args, **kwargs)
    buf = SlidingWindowMapBuffer()
    with pytest.raises(TypeError):
        buf.begin_access(c, None)
    with pytest.raises(TypeError):
        buf.begin_access(c, 0, None)
    assert len(SlidingWindowMapBuffer(None, None, None, None)) == 0
    # Left out, they are the defaults.
    assert SlidingWindowMapBuffer(c, size=10)[:] == content[:10]


def test_begin_and_end_access(manager, big, small):
    path, content = big
    spath, scontent = small
    buf = SlidingWindowMapBuffer()
    assert buf.cursor() is None
    assert len(buf) == 0
    assert buf.begin_access() is False
    with pytest.raises(IndexError):
        buf[0]
    c = manager.make_cursor(path)
    assert buf.begin_access(c, 10) is True
    assert buf.cursor() is c
    assert buf[0] == content[10]
    assert c.is_valid()
    buf.end_access()
    assert len(buf) == 0 and not c.is_valid()
    with pytest.raises(IndexError):
        buf[0]
    assert buf.begin_access(offset=20, size=5) is True  # reuses the cursor
    assert buf[:] == content[20:25]
    assert buf.begin_access(offset=len(content)) is False
    # Deliberate difference: a failed begin_access leaves the buffer empty
    # (the reference keeps the old length).
    assert len(buf) == 0
    assert buf.begin_access(manager.make_cursor(spath)) is True
    assert buf[:] == scontent
    assert buf.begin_access(WindowCursor()) is False
    with pytest.raises(ValueError):
        buf.begin_access(None, -5)


def test_buffer_drives_the_given_cursor(big):
    path, content = big
    m = SlidingWindowMapManager(window_size=G)
    c = m.make_cursor(path)
    buf = SlidingWindowMapBuffer(c)
    buf[5 * G + 1]
    assert c.is_valid() and c.region().includes_ofs(5 * G + 1)


def test_the_cursor_a_buffer_moves_has_a_view_of_its_region(big):
    # The buffer moves its cursor from one mapped window to another without
    # the miss path (a switch): the cursor's view moves with it, so that its
    # buffer() is the bytes of its region, as after use_region.
    path, content = big
    m = SlidingWindowMapManager(window_size=G)
    c = m.make_cursor(path)
    buf = SlidingWindowMapBuffer(c)
    for i in (0, 2 * G + 7, 1, 2 * G):
        assert buf[i] == content[i]
        assert c.is_valid() and c.includes_ofs(i)
        b, view = c.ofs_begin(), bytes(c.buffer())
        assert (b, len(view)) == (i, c.size()) and view == content[b:b + len(view)]
        assert c.region().includes_ofs(c.ofs_end() - 1)


def test_a_read_served_by_a_copy_leaves_the_cursor_as_it_was(big):
    # A window that mapping would evict another for is read with pread: the
    # cursor stays on its old window with its old view, or with no region.
    path, content = big
    m = SlidingWindowMapManager(window_size=G, max_memory_size=2 * G, max_open_handles=2)
    other = m.make_cursor(path).use_region(8 * G, 1)  # noqa: F841 -- holds a window
    c = m.make_cursor(path)
    buf = SlidingWindowMapBuffer(c)
    assert (c.ofs_begin(), c.ofs_end()) == (0, G)
    assert buf[5 * G + 3] == content[5 * G + 3]
    assert buf[5 * G + 3: 5 * G + 9] == content[5 * G + 3: 5 * G + 9]
    assert m.stats()["preads"] >= 1
    assert c.is_valid() and (c.ofs_begin(), c.ofs_end()) == (0, G)
    assert bytes(c.buffer()) == content[:G]
    c.unuse_region()
    preads = m.stats()["preads"]
    assert buf[6 * G + 1] == content[6 * G + 1]
    assert m.stats()["preads"] == preads + 1
    assert not c.is_valid()
    # A read of a window still mapped moves the cursor there.
    assert buf[7] == content[7]
    assert c.is_valid() and (c.ofs_begin(), c.ofs_end()) == (7, G)
    m._verify_invariants()


def test_buffer_context_manager_and_drop_release(big):
    path, _ = big
    m = SlidingWindowMapManager()
    c = m.make_cursor(path)
    with SlidingWindowMapBuffer(c) as buf:
        assert buf[0] is not None
        assert c.is_valid()
    assert not c.is_valid()
    assert len(buf) == 0
    del buf  # (as in the reference, dropping a buffer ends its access)
    buf = SlidingWindowMapBuffer(c)
    assert c.is_valid()
    del buf
    assert not c.is_valid()
    assert m.collect() == 1


def test_spanning_slices_with_tight_limits(big):
    path, content = big
    m = SlidingWindowMapManager(window_size=G, max_memory_size=2 * G, max_open_handles=2)
    buf = SlidingWindowMapBuffer(m.make_cursor(path))
    assert buf[:] == content
    assert buf[G // 2: 7 * G + 3] == content[G // 2: 7 * G + 3]
    assert m.num_file_handles() <= 2
    m._verify_invariants()
