"""smmap.util: MapWindow, MapRegion, MapRegionList."""
import array
import ctypes
import os
import random
import struct

import pytest

from smmap.util import ALLOCATIONGRANULARITY as G
from smmap.util import MapRegion, MapRegionList, MapWindow, align_to_mmap


class RefWindow:
    """The reference's MapWindow arithmetic (smmap 6.0.0, BSD licence), as
    the oracle."""

    def __init__(self, ofs, size):
        self.ofs, self.size = ofs, size

    def ofs_end(self):
        return self.ofs + self.size

    def align(self):
        nofs = align_to_mmap(self.ofs, 0)
        self.size += self.ofs - nofs
        self.ofs = nofs
        self.size = align_to_mmap(self.size, 1)

    def extend_left_to(self, window, max_size):
        rofs = self.ofs - window.ofs_end()
        nsize = rofs + self.size
        rofs -= nsize - min(nsize, max_size)
        self.ofs -= rofs
        self.size += rofs

    def extend_right_to(self, window, max_size):
        self.size = min(self.size + (window.ofs - self.ofs_end()), max_size)


# ---------------------------------------------------------------- MapWindow

def test_window_attributes_are_writable():
    w = MapWindow(10, 20)
    assert (w.ofs, w.size, w.ofs_end()) == (10, 20, 30)
    w.ofs = 5
    w.size = 7
    assert (w.ofs, w.size, w.ofs_end()) == (5, 7, 12)
    assert repr(w) == "MapWindow(5, 7)"
    with pytest.raises(TypeError):
        w.ofs = "x"


def test_window_align():
    w = MapWindow(G + 1, 10)
    w.align()
    assert (w.ofs, w.size) == (G, G)
    w = MapWindow(G - 1, 2)
    w.align()
    assert (w.ofs, w.size) == (0, 2 * G)


def test_window_extend_examples():
    w = MapWindow(100, 10)
    w.extend_left_to(MapWindow(0, 50), 1000)
    assert (w.ofs, w.size) == (50, 60)
    w = MapWindow(100, 10)
    w.extend_left_to(MapWindow(0, 0), 30)
    assert (w.ofs, w.size) == (80, 30)
    w = MapWindow(100, 10)
    w.extend_right_to(MapWindow(150, 5), 1000)
    assert w.size == 50
    w.extend_right_to(MapWindow(150, 5), 20)
    assert w.size == 20


def test_window_extends_with_huge_limits_or_raises_past_64_bits():
    # A limit of any size is taken as given; a result that does not fit
    # the window's 64-bit offsets is an OverflowError, not another window.
    for huge in (2**63, 2**100):
        w = MapWindow(100, 10)
        w.extend_left_to(MapWindow(0, 50), huge)
        assert (w.ofs, w.size) == (50, 60)
        w.extend_right_to(MapWindow(1000, 5), huge)
        assert (w.ofs, w.size) == (50, 950)
    # The reference's window would be (about 2**100, about -2**100).
    w = MapWindow(100, 10)
    with pytest.raises(OverflowError):
        w.extend_left_to(MapWindow(0, 50), -2**100)
    w = MapWindow(2**62, 10)
    with pytest.raises(OverflowError):
        w.extend_left_to(MapWindow(-2**63, 0), 2**100)
    assert (w.ofs, w.size) == (2**62, 10), "unchanged"
    with pytest.raises(OverflowError):
        w.extend_right_to(MapWindow(2**63 - 1, 0), -2**100)


def test_window_arithmetic_matches_the_reference_on_random_input():
    rnd = random.Random(5)
    for _ in range(2000):
        ofs, size = rnd.randrange(0, 10 * G), rnd.randrange(0, 4 * G)
        lofs, lsize = rnd.randrange(0, 10 * G), rnd.randrange(0, 4 * G)
        rofs = rnd.randrange(0, 20 * G)
        max_size = rnd.randrange(1, 8 * G)
        ours, ref = MapWindow(ofs, size), RefWindow(ofs, size)
        ours.extend_left_to(MapWindow(lofs, lsize), max_size)
        ref.extend_left_to(RefWindow(lofs, lsize), max_size)
        assert (ours.ofs, ours.size) == (ref.ofs, ref.size)
        ours.extend_right_to(MapWindow(rofs, 0), max_size)
        ref.extend_right_to(RefWindow(rofs, 0), max_size)
        assert (ours.ofs, ours.size) == (ref.ofs, ref.size)
        ours.align()
        ref.align()
        assert (ours.ofs, ours.size) == (ref.ofs, ref.size)


def test_window_from_region(big):
    path, _ = big
    r = MapRegion(path, G, 3 * G)
    w = MapWindow.from_region(r)
    assert isinstance(w, MapWindow)
    assert (w.ofs, w.size) == (G, 3 * G)


def test_window_from_region_like_object():
    class Fake:
        _b = 8

        def size(self):
            return 3

    w = MapWindow.from_region(Fake())
    assert (w.ofs, w.size) == (8, 3)


def test_window_bad_input():
    with pytest.raises(TypeError):
        MapWindow("a", 1)
    with pytest.raises(TypeError):
        MapWindow(1)
    with pytest.raises(OverflowError):
        MapWindow(2 ** 70, 1)
    w = MapWindow(1, 1)
    with pytest.raises(AttributeError):
        w.extend_left_to(object(), 10)


# ---------------------------------------------------------------- MapRegion

def test_region_maps_a_clipped_range(big):
    path, content = big
    r = MapRegion(path, G, 10 ** 12)
    assert r.ofs_begin() == G == r._b
    assert r.size() == len(content) - G
    assert r.ofs_end() == len(content)
    assert r.client_count() == 1
    assert repr(r) == "MapRegion<%i, %i>" % (G, len(content) - G)
    assert bytes(r.buffer()) == content[G:]
    assert r.map()[:] == content[G:]


def test_region_size_zero_maps_to_the_end(big):
    path, content = big
    r = MapRegion(path, 2 * G, 0)
    assert r.size() == len(content) - 2 * G


def test_region_from_fd_leaves_the_fd_open(big, fd_of):
    path, content = big
    fd = fd_of(path)
    r = MapRegion(fd, 0, 100)
    assert bytes(r.buffer()) == content[:100]
    os.fstat(fd)  # still open


def test_region_includes_ofs(big):
    path, _ = big
    r = MapRegion(path, G, G)
    assert not r.includes_ofs(G - 1)
    assert r.includes_ofs(G)
    assert r.includes_ofs(2 * G - 1)
    assert not r.includes_ofs(2 * G)
    assert not r.includes_ofs(-5)
    assert not r.includes_ofs(2 ** 80)


def test_region_client_count_and_release(big):
    path, content = big
    r = MapRegion(path, 0, G)
    view = r.buffer()
    assert r.increment_client_count() is False
    assert r.client_count() == 2
    assert r.increment_client_count(-1) is False
    assert r.increment_client_count(-1) is True  # reached 0: released
    assert r.client_count() == 0
    with pytest.raises(ValueError, match=f"the region of {G} bytes at offset 0 was released"):
        r.buffer()
    with pytest.raises(ValueError):
        r.increment_client_count(-1)
    # The view taken before the release still reads the file.
    assert bytes(view) == content[:G]


def test_region_release(big):
    path, content = big
    r = MapRegion(path, 0, 0)
    m = r.map()
    r.release()
    with pytest.raises(ValueError, match="at offset 0 was released"):
        r.map()
    assert m[-3:] == content[-3:]


def test_region_errors(big, data_dir, fd_of):
    path, content = big
    with pytest.raises(ValueError):
        # Deliberate difference: the reference's mmap raises OSError(EINVAL).
        MapRegion(path, 1, 10)  # unaligned
    with pytest.raises(ValueError):
        MapRegion(path, align_to_mmap(len(content), True) + G, 10)  # past the end
    with pytest.raises(ValueError):
        MapRegion(path, -G, 10)
    with pytest.raises(ValueError):
        MapRegion(path, 0, -1)
    with pytest.raises(FileNotFoundError) as e:
        MapRegion(str(data_dir / "missing"), 0, 10)
    assert e.value.filename == str(data_dir / "missing")
    with pytest.raises(IsADirectoryError):
        MapRegion(str(data_dir), 0, 10)
    with pytest.raises(TypeError):
        MapRegion(1.5, 0, 10)
    with pytest.raises(TypeError):
        MapRegion(path, "0", 10)
    fd = fd_of(path)
    fd_of.close(fd)
    with pytest.raises(OSError) as e:
        MapRegion(fd, 0, 10)
    assert e.value.errno == 9  # EBADF


def test_region_accepts_bytes_and_pathlike(big, data_dir):
    path, content = big
    assert MapRegion(os.fsencode(path), 0, 10).map()[:] == content[:10]
    assert MapRegion(data_dir / "big.bin", 0, 10).map()[:] == content[:10]


# ---------------------------------------------------------------- MappedView (map() / buffer())

def test_mapped_view_reads_like_mmap(big):
    path, content = big
    m = MapRegion(path, 0, 0).map()
    assert len(m) == len(content)
    assert m[0] == content[0]
    assert m[-1] == content[-1]
    assert m[-40:-20] == content[-40:-20]
    assert m[5:1] == b""
    assert m[::G] == content[::G]
    assert m[10:100:7] == content[10:100:7]
    assert isinstance(m[3:9], bytes)
    with pytest.raises(IndexError):
        m[len(content)]
    with pytest.raises(IndexError):
        m[-len(content) - 1]
    with pytest.raises(TypeError):
        m["a"]
    assert struct.unpack_from(">L", m, 4) == struct.unpack_from(">L", content, 4)
    assert struct.unpack_from(">LLL", m, 0) == struct.unpack_from(">LLL", content, 0)
    a = array.array("I")
    a.frombytes(m[16:48])
    assert a.tobytes() == content[16:48]
    assert bytes(m) == content
    assert list(MapRegion(path, 0, 5).map()) == list(content[:5])


def test_mapped_view_index_error_names_the_index_and_the_length(big):
    path, content = big
    m = MapRegion(path, 0, 100).map()
    for i, shown in [(100, "100"), (-101, "-101"), (2 ** 80, "a huge number")]:
        with pytest.raises(IndexError) as e:
            m[i]
        assert str(e.value) == f"index out of range: index {shown} of a view of 100 bytes"


def test_mapped_view_is_read_only(big):
    path, _ = big
    m = MapRegion(path, 0, 0).map()
    mv = memoryview(m)
    assert mv.readonly
    assert mv.format == "B" and mv.itemsize == 1
    with pytest.raises(TypeError):
        mv[0] = 1
    with pytest.raises(TypeError):
        m[0] = 1
    # A writable export is refused.
    with pytest.raises((BufferError, TypeError)):
        ctypes.c_char.from_buffer(m)


# ---------------------------------------------------------------- MapRegionList

def test_region_list(big, fd_of):
    path, content = big
    rl = MapRegionList(path)
    assert isinstance(rl, list) and len(rl) == 0
    assert rl.path_or_fd() == path
    assert rl.file_size() == len(content)
    fd = fd_of(path)
    rl = MapRegionList(fd)
    assert rl.path_or_fd() == fd
    assert rl.file_size() == len(content)


def test_region_list_missing_file(data_dir):
    rl = MapRegionList(str(data_dir / "nope"))
    with pytest.raises(FileNotFoundError):
        rl.file_size()
