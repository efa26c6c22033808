"""Views keep their pages mapped: collect(), eviction, release, dropping the
manager or unlinking the file never invalidate bytes Python can still read,
and never raise BufferError. (Deliberate difference: the reference closes the
mmap under live views and raises BufferError when views are exported.)"""
import gc
import os
import shutil
import struct
import sys

import pytest

from conftest import mappings_of
from smmap import SlidingWindowMapBuffer, SlidingWindowMapManager, StaticWindowMapManager
from smmap.util import ALLOCATIONGRANULARITY as G
from smmap.util import MapRegion


def test_memoryview_survives_collect(big):
    path, content = big
    m = SlidingWindowMapManager(window_size=2 * G)
    c = m.make_cursor(path).use_region(G, 100)
    mv = c.buffer()
    whole = c.map()
    c.unuse_region()
    assert m.collect() == 1
    assert m.num_file_handles() == 0 and m.mapped_memory_size() == 0
    assert bytes(mv) == content[G:G + 100]
    assert whole[:] == content[:2 * G]
    sub = mv[10:20]
    del mv
    gc.collect()
    assert bytes(sub) == content[G + 10:G + 20]


def test_memoryview_survives_eviction(big):
    path, content = big
    m = SlidingWindowMapManager(window_size=G, max_memory_size=2 * G, max_open_handles=2)
    c = m.make_cursor(path)
    views = []
    for i in range(15):
        views.append((i * G, c.use_region(i * G, G).buffer()))
    # Every view but the last two belongs to a region the manager evicted.
    assert m.num_file_handles() <= 2
    for ofs, mv in views:
        assert bytes(mv) == content[ofs:ofs + G]
    assert m.stats()["evictions"] >= 13


def test_views_survive_the_manager_and_cursor(big):
    path, content = big
    m = StaticWindowMapManager()
    c = m.make_cursor(path).use_region()
    mv = c.buffer()
    mp = c.map()
    del c, m
    gc.collect()
    assert bytes(mv) == content
    assert mp[-5:] == content[-5:]
    assert struct.unpack_from(">Q", mp, 8) == struct.unpack_from(">Q", content, 8)


def test_region_views_survive_release(big):
    path, content = big
    r = MapRegion(path, 0, 0)
    mv = memoryview(r.buffer())
    assert r.increment_client_count(-1) is True
    assert bytes(mv[-4:]) == content[-4:]


def test_no_buffer_error_while_views_are_exported(big):
    path, content = big
    m = SlidingWindowMapManager(window_size=G)
    c = m.make_cursor(path)
    mv = c.use_region(0).buffer()
    # The reference raises BufferError here ("cannot close exported pointers exist").
    c.unuse_region()
    m.collect()
    c.use_region(5 * G)
    c._destroy()
    m.collect()
    assert bytes(mv[:4]) == content[:4]


def test_views_survive_unlinking_the_file(tmp_path, big):
    _, content = big
    p = tmp_path / "gone.bin"
    p.write_bytes(content)
    m = SlidingWindowMapManager(window_size=2 * G)
    c = m.make_cursor(str(p)).use_region(0)
    mv = c.buffer()
    os.unlink(p)
    assert bytes(mv) == content[:2 * G]
    # The mapped region still serves reads, and so does the descriptor the
    # manager keeps; once collect() closed it, a new window cannot be mapped.
    assert bytes(c.use_region(G, 10).buffer()) == content[G:G + 10]
    assert bytes(c.use_region(8 * G, 10).buffer()) == content[8 * G:8 * G + 10]
    m.collect()
    with pytest.raises(FileNotFoundError):
        c.use_region(10 * G)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_everything_is_unmapped_once_dropped(tmp_path, big):
    _, content = big
    p = tmp_path / "tracked.bin"
    p.write_bytes(content)
    m = SlidingWindowMapManager(window_size=G)
    c = m.make_cursor(str(p))
    buf = SlidingWindowMapBuffer(m.make_cursor(str(p)))
    views = [c.use_region(i * G).buffer() for i in range(4)]
    buf[10 * G]
    mp = c.map()
    assert len(mappings_of(p)) >= 2
    del buf, c, mp
    m.collect()
    assert mappings_of(p)  # the views still hold theirs
    views.clear()
    gc.collect()
    assert mappings_of(p) == []
    assert m.num_file_handles() == 0
    fd_dir = "/proc/self/fd"
    targets = []
    for fd in os.listdir(fd_dir):
        try:
            targets.append(os.readlink(os.path.join(fd_dir, fd)))
        except FileNotFoundError:
            pass  # closed since the listing (the listing's own, for one)
    assert str(p) not in targets  # no descriptor of ours stays open


def test_views_can_be_copied_out(tmp_path, big):
    _, content = big
    p = tmp_path / "copy.bin"
    p.write_bytes(content)
    m = SlidingWindowMapManager(window_size=G)
    mv = m.make_cursor(str(p)).use_region(3 * G, 9).buffer()
    shutil.copy(p, tmp_path / "other.bin")
    assert mv.tobytes() == content[3 * G:3 * G + 9]
