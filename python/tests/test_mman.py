"""smmap.mman: the managers and WindowCursor, method by method."""
import copy
import errno
import re
import os
import shutil
import sys
import tempfile
import traceback

import pytest

from smmap import SlidingWindowMapBuffer, SlidingWindowMapManager, StaticWindowMapManager, WindowCursor
from smmap.util import ALLOCATIONGRANULARITY as G
from smmap.util import MapRegion, MapRegionList

MB = 1024 * 1024


def default_handles():
    """The default (and highest) max_open_handles: half the kernel's map
    count, or sys.maxsize where it states none."""
    try:
        with open("/proc/sys/vm/max_map_count") as f:
            return max(int(f.read()) // 2, 1)
    except OSError:
        return sys.maxsize


# ---------------------------------------------------------------- managers

def test_sliding_defaults():
    m = SlidingWindowMapManager()
    assert m.window_size() == (1024 if sys.maxsize > 2 ** 32 else 64) * MB
    assert m.max_mapped_memory_size() == (8192 if sys.maxsize > 2 ** 32 else 1024) * MB
    # Deliberate difference: the reference's default is sys.maxsize.
    assert m.max_file_handles() == default_handles()
    assert m.num_file_handles() == 0
    assert m.num_open_files() == 0
    assert m.mapped_memory_size() == 0
    assert m.collect() == 0


def test_static_defaults():
    m = StaticWindowMapManager()
    assert m.window_size() == 0
    assert m.max_mapped_memory_size() == (8192 if sys.maxsize > 2 ** 32 else 1024) * MB
    assert m.max_file_handles() == default_handles()
    assert isinstance(m, StaticWindowMapManager)
    assert not isinstance(m, SlidingWindowMapManager)


def test_mb_in_bytes_class_attribute():
    # The reference's class attribute, which its subclasses read.
    assert StaticWindowMapManager._MB_in_bytes == MB
    assert SlidingWindowMapManager._MB_in_bytes == MB
    assert SlidingWindowMapManager()._MB_in_bytes == MB

    class M(SlidingWindowMapManager):
        def __init__(self):
            super().__init__(window_size=2 * self._MB_in_bytes)

    assert M().window_size() == 2 * MB
    # Deliberate difference: the reference's _obtain_region is not kept (the
    # engine maps windows itself).
    assert not hasattr(StaticWindowMapManager, "_obtain_region")


def test_explicit_limits():
    m = SlidingWindowMapManager(window_size=3 * G, max_memory_size=10 * G, max_open_handles=4)
    assert (m.window_size(), m.max_mapped_memory_size(), m.max_file_handles()) == (3 * G, 10 * G, 4)
    m = SlidingWindowMapManager(0, 0, 7)
    assert m.window_size() == 0
    assert m.max_file_handles() == 7
    m = StaticWindowMapManager(-1)
    assert m.window_size() == 1024 * MB
    m = SlidingWindowMapManager(window_size=-5)
    assert m.window_size() == 1024 * MB
    m = SlidingWindowMapManager(max_open_handles=2 ** 80)
    assert m.max_file_handles() == default_handles()
    # An explicit value is capped at the default, too.
    m = SlidingWindowMapManager(max_open_handles=default_handles() + 1)
    assert m.max_file_handles() == default_handles()
    assert repr(m).endswith("max_open_handles=%d)" % default_handles())


def test_manager_bad_arguments():
    with pytest.raises(ValueError):
        SlidingWindowMapManager(max_memory_size=-1)
    with pytest.raises(ValueError):
        SlidingWindowMapManager(max_open_handles=-1)
    with pytest.raises(ValueError):
        StaticWindowMapManager(max_open_handles=0)
    with pytest.raises(TypeError):
        SlidingWindowMapManager("big")
    with pytest.raises(TypeError):
        SlidingWindowMapManager(window_size=1.5)
    with pytest.raises(TypeError):
        SlidingWindowMapManager(1, 2, 3, 4)


def test_make_cursor_errors(data_dir, big, fd_of):
    m = SlidingWindowMapManager()
    missing = str(data_dir / "missing")
    with pytest.raises(FileNotFoundError) as e:
        m.make_cursor(missing)
    assert e.value.filename == missing and e.value.errno == errno.ENOENT
    assert "missing" in str(e.value)
    with pytest.raises(IsADirectoryError) as e:
        m.make_cursor(str(data_dir))
    assert e.value.filename == str(data_dir)
    with pytest.raises(TypeError):
        m.make_cursor(1.5)
    with pytest.raises(TypeError):
        m.make_cursor(None)
    with pytest.raises(ValueError):
        m.make_cursor("a\0b")
    fd = fd_of(big[0])
    fd_of.close(fd)
    with pytest.raises(OSError) as e:
        m.make_cursor(fd)
    assert e.value.errno == errno.EBADF
    with pytest.raises(OSError):
        m.make_cursor(-1)
    with pytest.raises(OSError):
        m.make_cursor("/dev/null")  # not a regular file


@pytest.mark.parametrize("empty_path", ["", b""], ids=["str", "bytes"])
def test_an_empty_path_is_file_not_found(empty_path):
    # As the reference (os.stat("") raises it): not OSError(EIO), which the
    # engine's "cannot make an empty path absolute" had no number for.
    with pytest.raises(FileNotFoundError) as e:
        SlidingWindowMapManager().make_cursor(empty_path).use_region()
    assert e.value.errno == errno.ENOENT and e.value.filename == empty_path
    with pytest.raises(FileNotFoundError) as e:
        MapRegion(empty_path, 0, 0)
    assert e.value.errno == errno.ENOENT


def _check_permission_denied(p):
    with pytest.raises(PermissionError) as e:
        SlidingWindowMapManager().make_cursor(p).use_region()
    assert e.value.filename == p
    assert e.value.errno == errno.EACCES


def test_make_cursor_permission_denied():
    # Root reads every file, so as root the check runs in a forked child
    # that has dropped to the unprivileged user `nobody`. The file is made
    # before: the child only asks for it, so it needs to reach neither the
    # temporary directory (any refusal on the way is EACCES too) nor this
    # checkout (the extension is already loaded).
    directory = tempfile.mkdtemp()
    os.chmod(directory, 0o755)
    p = os.path.join(directory, "secret.bin")
    try:
        with open(p, "wb") as f:
            f.write(b"x" * 10)
        os.chmod(p, 0)
        if os.geteuid() != 0:
            _check_permission_denied(p)
            return
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                try:
                    os.setgid(65534)
                    os.setuid(65534)
                except OSError:
                    traceback.print_exc()
                    code = 77
                else:
                    _check_permission_denied(p)
                    code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 77:
            pytest.skip("cannot become the user 65534 (no CAP_SETUID, or not mapped here)")
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_accounting_and_collect(big):
    path, content = big
    m = SlidingWindowMapManager(window_size=2 * G)
    c = m.make_cursor(path)
    assert m.num_file_handles() == 0 and m.num_open_files() == 0
    c.use_region(0, 10)
    assert m.num_file_handles() == 1 and m.num_open_files() == 1
    assert m.mapped_memory_size() == 2 * G
    c.use_region(10 * G)
    assert m.num_file_handles() == 2
    assert m.mapped_memory_size() == 4 * G
    assert m.collect() == 1  # the first region is unused now
    assert m.num_file_handles() == 1
    c.unuse_region()
    assert m.collect() == 1
    assert (m.num_file_handles(), m.num_open_files(), m.mapped_memory_size()) == (0, 0, 0)


def test_collect_lru_region(big):
    path, _ = big
    m = SlidingWindowMapManager(window_size=G, max_memory_size=100 * G)
    c = m.make_cursor(path)
    for i in range(5):
        c.use_region(i * G, 1)
    c.unuse_region()
    assert m.num_file_handles() == 5
    # Room for 97 more granules needs two regions gone (least recently used first).
    assert m._collect_lru_region(97 * G) == 2
    assert m.num_file_handles() == 3
    assert m._collect_lru_region(0) == 3
    assert m.num_file_handles() == 0
    with pytest.raises(ValueError):
        m._collect_lru_region(-1)


def test_lru_evicts_the_least_recently_used(big):
    path, _ = big
    m = SlidingWindowMapManager(window_size=G, max_memory_size=3 * G)
    c = m.make_cursor(path)
    for i in (0, 1, 2):
        c.use_region(i * G, 1)
    c.use_region(0, 1)  # 0 is now the most recently used
    c.use_region(5 * G)  # evicts 1, the least recently used unused region
    c2 = m.make_cursor(path)
    assert c2.use_region(0, 1).region().client_count() == 2  # still mapped, now used by c2
    assert m.num_file_handles() == 3
    assert m.mapped_memory_size() == 3 * G


def test_handle_limit_holds(big):
    path, content = big
    m = SlidingWindowMapManager(window_size=G, max_open_handles=2)
    cursors = [m.make_cursor(path) for _ in range(3)]
    cursors[0].use_region(0, 1)
    cursors[1].use_region(4 * G, 1)
    with pytest.raises(OSError) as e:
        cursors[2].use_region(8 * G, 1)  # both regions are in use
    assert e.value.errno == errno.EMFILE
    assert m.num_file_handles() == 2
    cursors[0].unuse_region()
    assert bytes(cursors[2].use_region(8 * G, 4).buffer()) == content[8 * G:8 * G + 4]
    assert m.num_file_handles() == 2


def test_force_map_handle_removal_win(big):
    # None except on Windows, as the reference; there, what collect() does:
    # the window a cursor holds stays, the one let go goes.
    m = SlidingWindowMapManager(window_size=G)
    held = m.make_cursor(big[0]).use_region()
    m.make_cursor(big[0]).use_region(3 * G).unuse_region()
    if sys.platform == "win32":
        assert m.force_map_handle_removal_win(big[0]) == 1
        assert m.num_open_files() == 1 and held.is_valid()
    else:
        assert m.force_map_handle_removal_win(big[0]) is None
        assert m.force_map_handle_removal_win("") is None
        assert m.mapped_memory_size() == 2 * G


def test_stats_extension(big):
    m = SlidingWindowMapManager(window_size=G)
    c = m.make_cursor(big[0])
    c.use_region(0, 1)
    c.use_region(1, 1)
    s = m.stats()
    assert s["maps"] == 1 and s["windows"] == 1 and s["mapped_bytes"] == G
    m._verify_invariants()


def test_repr():
    assert repr(SlidingWindowMapManager(window_size=G, max_memory_size=G, max_open_handles=3)) == (
        "SlidingWindowMapManager(window_size=%d, max_memory_size=%d, max_open_handles=3)" % (G, G)
    )


# ---------------------------------------------------------------- WindowCursor

@pytest.fixture(params=["sliding", "static"])
def manager(request):
    if request.param == "sliding":
        return SlidingWindowMapManager(window_size=4 * G, max_memory_size=16 * G)
    return StaticWindowMapManager()


def test_cursor_from_make_cursor(manager, big):
    path, content = big
    c = manager.make_cursor(path)
    assert isinstance(c, WindowCursor)
    assert c.is_associated() and not c.is_valid()
    assert c.region() is None
    assert c.file_size() == len(content)
    assert c.path_or_fd() == path
    assert c.path() == path
    with pytest.raises(ValueError):
        c.fd()


def test_use_region_returns_the_cursor(manager, big):
    path, content = big
    c = manager.make_cursor(path)
    assert c.use_region(G + 5, 100) is c
    assert c.is_valid()
    assert (c.ofs_begin(), c.size(), c.ofs_end()) == (G + 5, 100, G + 105)
    assert bytes(c.buffer()) == content[G + 5:G + 105]
    assert c.includes_ofs(G + 5) and c.includes_ofs(G + 104)
    assert not c.includes_ofs(G + 105) and not c.includes_ofs(G + 4)
    assert not c.includes_ofs(-1)


def test_use_region_defaults_map_as_much_as_possible(big):
    path, content = big
    c = SlidingWindowMapManager(window_size=4 * G).make_cursor(path)
    c.use_region()
    assert (c.ofs_begin(), c.size()) == (0, 4 * G)
    s = StaticWindowMapManager().make_cursor(path).use_region()
    assert s.size() == len(content)
    assert len(s.map()) == len(content)


def test_use_region_size_none_means_as_much_as_possible(big):
    # The reference's `size or fsize` takes None as 0: "as much as possible".
    path, content = big
    m = SlidingWindowMapManager(window_size=4 * G)
    c, zero = m.make_cursor(path), m.make_cursor(path)
    for ofs in (5, 3 * G + 1, 9 * G):
        assert c.use_region(ofs, None) is c
        zero.use_region(ofs, 0)
        assert (c.ofs_begin(), c.size()) == (zero.ofs_begin(), zero.size())
        assert c.size() > 1
    c.use_region(offset=G, size=None)
    assert (c.ofs_begin(), c.size()) == (G, zero.use_region(G).size())
    s = StaticWindowMapManager().make_cursor(path).use_region(0, None)
    assert s.size() == len(content)
    with pytest.raises(TypeError):
        c.use_region(None)  # the reference compares it with the file size


def test_use_region_size_is_clamped(manager, big):
    path, content = big
    c = manager.make_cursor(path)
    c.use_region(len(content) - 10, 10 ** 9)
    assert c.size() == 10
    assert bytes(c.buffer()) == content[-10:]
    c.use_region(0, 2 ** 100)  # huge sizes clamp too
    assert c.is_valid() and c.ofs_begin() == 0


def test_use_region_past_the_end_leaves_the_cursor_invalid(manager, big):
    path, content = big
    c = manager.make_cursor(path)
    c.use_region(0, 1)
    assert c.use_region(len(content)).is_valid() is False
    assert c.use_region(2 ** 80).is_valid() is False
    assert c.region() is None
    # The error names the cursor's file.
    with pytest.raises(ValueError, match=re.escape(str(path))):
        c.buffer()
    with pytest.raises(ValueError, match=re.escape(str(path))):
        c.map()


def test_use_region_reuses_the_current_region(big):
    path, _ = big
    m = SlidingWindowMapManager(window_size=4 * G)
    c = m.make_cursor(path)
    c.use_region(0, 10)
    c.use_region(3 * G, 10)
    assert m.num_file_handles() == 1
    assert c.size() == 10
    # Reusing may give fewer bytes than asked.
    c.use_region(4 * G - 5, 100)
    assert c.size() == 5


def test_use_region_bad_arguments(manager, big):
    c = manager.make_cursor(big[0])
    with pytest.raises(ValueError):
        c.use_region(-1)
    with pytest.raises(ValueError):
        c.use_region(0, -1)
    with pytest.raises(ValueError):
        c.use_region(-(2 ** 80))
    with pytest.raises(TypeError):
        c.use_region("0")
    with pytest.raises(TypeError):
        c.use_region(0, 1.0)
    with pytest.raises(TypeError):
        c.use_region(0, 0, "r")
    assert c.use_region(0, 1, os.O_RDONLY).is_valid()


def test_empty_file(manager, empty):
    c = manager.make_cursor(empty)
    assert c.file_size() == 0
    assert not c.use_region().is_valid()


def test_buffer_is_a_readonly_memoryview(manager, big):
    path, content = big
    c = manager.make_cursor(path).use_region(7, 50)
    mv = c.buffer()
    assert isinstance(mv, memoryview)
    assert mv.readonly
    assert mv[0] == content[7]
    assert mv[:] == content[7:57]
    assert mv.tobytes() == content[7:57]
    with pytest.raises(TypeError):
        mv[0] = 0


def test_map_is_the_whole_region(big):
    path, content = big
    c = SlidingWindowMapManager(window_size=4 * G).make_cursor(path).use_region(G + 3, 10)
    r = c.region()
    m = c.map()
    assert len(m) == r.size()
    assert m[:] == content[r.ofs_begin():r.ofs_end()]


def test_map_finds_as_mmap_does(big, tmp_path):
    # Deliberate difference: map() is a read-only view, not an mmap.mmap; its
    # find and rfind are mmap's, from 0 (it has no file position).
    import mmap

    path, content = big
    c = SlidingWindowMapManager(window_size=4 * G).make_cursor(path).use_region(G, 0)
    m = c.map()
    data = content[c.ofs_begin():c.ofs_begin() + len(m)]
    # The same searches against the standard library's mmap of the same bytes.
    sample = tmp_path / "sample"
    sample.write_bytes(data)
    with open(sample, "rb") as f:
        ref = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    subs = [data[100:103], data[-3:], data[:1], b"", b"\xff" * 64, bytearray(data[7:9]), memoryview(data[50:52])]
    bounds = [(), (5,), (-10,), (-(10**6),), (10**6,), (3, 2), (10, 20), (0, -1), (-50, -10)]
    for sub in subs:
        for b in bounds:
            assert m.find(sub, *b) == ref.find(sub, *b), (bytes(sub), b)
            assert m.rfind(sub, *b) == ref.rfind(sub, *b), (bytes(sub), b)
    assert m.find(data[200:210]) == data.find(data[200:210])
    with pytest.raises(TypeError):
        m.find(5)
    with pytest.raises(TypeError):
        m.rfind("text")
    ref.close()


def test_map_iterates_like_bytes_and_is_a_new_view_each_call(big):
    # Deliberate difference: the reference's map() is its one mmap.mmap,
    # whose items are 1-byte bytes (so `in` takes one); ours is a new view
    # on each call, whose items are ints, as bytes' are.
    path, content = big
    c = SlidingWindowMapManager(window_size=4 * G).make_cursor(path).use_region(0, 10)
    m = c.map()
    assert list(m)[:3] == list(content[:3]) and isinstance(next(iter(m)), int)
    assert content[0] in m
    assert content[:1] not in m  # bytes are never found: use m.find()
    assert m.find(content[:1]) == 0
    assert c.map() is not m and c.map()[:] == m[:]


def test_map_slices_with_any_step_as_bytes_does(big):
    # A step as large as an index can be selects one byte: its next index
    # lies past any int (the copy used to add the step once more, which
    # overflowed).
    path, content = big
    c = SlidingWindowMapManager(window_size=4 * G).make_cursor(path).use_region(0, 10)
    m = c.map()
    ref = content[:len(m)]
    huge = sys.maxsize
    for key in [
        slice(1, None, huge), slice(0, None, huge), slice(None, None, -huge),
        slice(-1, None, -huge), slice(len(m) - 1, None, huge), slice(None, None, 3),
        slice(None, None, -7), slice(-(10 ** 30), 10 ** 30, 5), slice(10 ** 30, None, -huge),
    ]:
        assert m[key] == ref[key], key


def test_region_reports_client_counts(big):
    path, _ = big
    m = SlidingWindowMapManager(window_size=4 * G)
    c = m.make_cursor(path).use_region(0, 1)
    r = c.region()
    assert isinstance(r, MapRegion)
    assert r.client_count() == 2  # the manager and c
    c2 = copy.copy(c)
    assert r.client_count() == 3
    del c2
    assert r.client_count() == 2
    c.unuse_region()
    assert r.client_count() == 1  # unused: collectable
    assert m.collect() == 1
    assert r.client_count() == 0  # the manager let go
    with pytest.raises(ValueError):
        r.increment_client_count()  # the manager counts its regions' clients


def test_region_objects_compare_by_mapping(big):
    path, _ = big
    m = SlidingWindowMapManager(window_size=4 * G)
    c = m.make_cursor(path).use_region(0, 1)
    d = m.make_cursor(path).use_region(5, 1)
    e = m.make_cursor(path).use_region(8 * G, 1)
    assert c.region() == c.region() == d.region()
    assert hash(c.region()) == hash(d.region())
    assert c.region() != e.region()
    assert c.region() != "region"
    assert len({c.region(), d.region(), e.region()}) == 2


def test_fd_cursor(manager, big, fd_of):
    path, content = big
    fd = fd_of(path)
    c = manager.make_cursor(fd)
    assert c.path_or_fd() == fd
    assert c.fd() == fd
    with pytest.raises(ValueError):
        c.path()
    assert bytes(c.use_region(100, 10).buffer()) == content[100:110]
    del c
    manager.collect()
    os.fstat(fd)  # the caller's descriptor is never closed


@pytest.mark.parametrize("fd", [2**31, 2**40, -2**31 - 1, 2**100])
def test_fd_out_of_range_names_the_argument(manager, fd):
    with pytest.raises(OverflowError) as e:
        manager.make_cursor(fd)
    shown = "a huge number" if fd > 2**64 else str(fd)
    assert str(e.value) == f"path_or_fd: file descriptor {shown} is out of range"


def test_fd_closed_after_make_cursor(big, fd_of):
    path, content = big
    m = SlidingWindowMapManager(window_size=G)
    fd = fd_of(path)
    c = m.make_cursor(fd)
    assert bytes(c.use_region(0, 4).buffer()) == content[:4]
    fd_of.close(fd)
    # The mapped region still reads, and so does the manager's own
    # duplicate of the descriptor; once collect() closed it, a new window
    # needs the caller's descriptor.
    assert bytes(c.use_region(1, 4).buffer()) == content[1:5]
    assert bytes(c.use_region(3 * G, 4).buffer()) == content[3 * G:3 * G + 4]
    m.collect()
    with pytest.raises(OSError) as e:
        c.use_region(5 * G)
    assert e.value.errno == errno.EBADF


def test_index_like_arguments(big):
    class Index:
        def __index__(self):
            return 7

    path, content = big
    c = SlidingWindowMapManager().make_cursor(path).use_region(Index(), Index())
    assert (c.ofs_begin(), c.size()) == (7, 7)
    assert c.includes_ofs(Index())


def test_huge_window_size_means_whole_files(big):
    path, content = big
    m = SlidingWindowMapManager(window_size=2 ** 70)
    assert m.window_size() >= 2 ** 63
    assert m.make_cursor(path).use_region().size() == len(content)


def test_pathlike_and_bytes_cursor(manager, big, data_dir):
    # Deliberate difference: the reference's use_region raises TypeError for
    # any path that is not a str (it takes it for a file descriptor).
    path, content = big
    p = data_dir / "big.bin"
    c = manager.make_cursor(p)
    assert c.path_or_fd() is p and c.path() is p
    assert bytes(c.use_region(0, 4).buffer()) == content[:4]
    c = manager.make_cursor(os.fsencode(path))
    assert bytes(c.use_region(1, 4).buffer()) == content[1:5]


def test_unassociated_cursor(manager, big):
    for c in (WindowCursor(), WindowCursor(manager)):
        assert not c.is_associated() and not c.is_valid()
        assert c.region() is None
        with pytest.raises(ValueError):
            c.use_region(0)
        with pytest.raises(ValueError):
            c.file_size()
        with pytest.raises(ValueError):
            c.path_or_fd()
        with pytest.raises(ValueError):
            c.buffer()
        c.unuse_region()
        c._destroy()
    with pytest.raises(TypeError):
        WindowCursor(object())


def test_cursor_with_region_list(manager, big):
    path, content = big
    c = WindowCursor(manager, MapRegionList(path))
    assert c.is_associated()
    assert c.path_or_fd() == path
    assert bytes(c.use_region(3, 3).buffer()) == content[3:6]
    with pytest.raises(ValueError):
        WindowCursor(None, MapRegionList(path))


def test_assign_and_copy(manager, big):
    path, content = big
    c = manager.make_cursor(path).use_region(G, 8)
    d = WindowCursor(manager)
    d.assign(c)
    assert d.is_valid() and d.is_associated()
    assert (d.ofs_begin(), d.size()) == (G, 8)
    assert bytes(d.buffer()) == content[G:G + 8]
    assert d.path() == path
    # The reference's _copy_from wraps the region list in another, so a copy
    # fails at its next use_region (TypeError); ours move.
    assert bytes(d.use_region(2 * G, 4).buffer()) == content[2 * G:2 * G + 4]
    d.assign(c)
    e = copy.copy(c)
    assert isinstance(e, WindowCursor) and e is not c
    assert bytes(e.buffer()) == content[G:G + 8]
    # Independent: moving one leaves the others.
    e.use_region(0, 2)
    assert c.ofs_begin() == G and d.ofs_begin() == G
    c.assign(c)  # assigning to itself changes nothing (the reference's drops the region)
    assert c.is_valid() and bytes(c.buffer()) == content[G:G + 8]
    assert bytes(c.use_region(3, 2).buffer()) == content[3:5]
    with pytest.raises(TypeError):
        c.assign("x")
    # Assigning an unassociated cursor makes an unassociated one.
    c.assign(WindowCursor())
    assert not c.is_associated()


def test_cursor_context_manager(big):
    path, _ = big
    m = SlidingWindowMapManager()
    with m.make_cursor(path) as c:
        c.use_region(0, 10)
        assert m.num_file_handles() == 1
    assert not c.is_valid()
    assert m.collect() == 1


def test_destroy_and_unuse(big):
    path, _ = big
    m = SlidingWindowMapManager()
    c = m.make_cursor(path).use_region()
    r = c.region()
    c._destroy()
    assert not c.is_valid()
    assert r.client_count() == 1
    c.use_region()  # still associated: usable again
    assert r.client_count() == 2
    c.unuse_region()
    c.unuse_region()
    assert r.client_count() == 1


def test_dropping_a_cursor_releases_at_once(big):
    path, _ = big
    m = SlidingWindowMapManager()
    c = m.make_cursor(path).use_region()
    r = c.region()
    assert r.client_count() == 2
    del c
    assert r.client_count() == 1
    assert m.collect() == 1


def test_file_size_is_read_once_per_file(data_dir):
    p = data_dir / "growing.bin"
    p.write_bytes(b"a" * 100)
    m = SlidingWindowMapManager()
    c = m.make_cursor(str(p))
    with open(p, "ab") as f:
        f.write(b"b" * 100)
    assert m.make_cursor(str(p)).file_size() == 100  # known file: size kept
    del c
    assert m.make_cursor(str(p)).file_size() == 200  # forgotten, read anew


def test_sliding_regions_are_placed_between_neighbours(big):
    path, content = big
    m = SlidingWindowMapManager(window_size=4 * G)
    a = m.make_cursor(path).use_region(0, 1)
    b = m.make_cursor(path).use_region(6 * G)
    c = m.make_cursor(path).use_region(5 * G, 1)
    # c's region lies between a's [0, 4G) and b's [6G, 10G).
    r = c.region()
    assert (r.ofs_begin(), r.ofs_end()) == (4 * G, 6 * G)
    for cur in (a, b, c):
        assert bytes(cur.buffer()) == content[cur.ofs_begin():cur.ofs_end()]
    m._verify_invariants()


def _ended_buffer(path):
    buf = SlidingWindowMapBuffer(SlidingWindowMapManager().make_cursor(path))
    buf.end_access()
    return buf


# Deliberate difference: misuse the reference fails on with an incidental
# error (in the comment) raises a clear one, or returns what an empty or
# invalid object has.
@pytest.mark.parametrize("misuse, expected", [
    # AttributeError
    (lambda p: WindowCursor(SlidingWindowMapManager()).use_region(0), ValueError),
    (lambda p: WindowCursor(SlidingWindowMapManager()).path(), ValueError),
    (lambda p: WindowCursor(SlidingWindowMapManager()).fd(), ValueError),
    (lambda p: WindowCursor().path(), ValueError),
    (lambda p: SlidingWindowMapManager().make_cursor(p).ofs_begin(), 0),
    (lambda p: SlidingWindowMapManager().make_cursor(p).ofs_end(), 0),
    (lambda p: SlidingWindowMapManager().make_cursor(p).includes_ofs(0), False),
    (lambda p: len(SlidingWindowMapBuffer()), 0),
    (lambda p: SlidingWindowMapBuffer()[0], IndexError),
    (lambda p: SlidingWindowMapBuffer()[0:4], b""),
    # AssertionError
    (lambda p: _ended_buffer(p)[0], IndexError),
    (lambda p: _ended_buffer(p)[0:4], b""),
    # accepted, a limit below anything mapped
    (lambda p: SlidingWindowMapManager(max_memory_size=-1), ValueError),
    (lambda p: StaticWindowMapManager(max_memory_size=-1), ValueError),
    # OverflowError (mmap: "memory mapped length must be positive")
    (lambda p: MapRegion(p, 100 * G, 10), ValueError),
], ids=[
    "use_region-unassociated", "path-unassociated", "fd-unassociated", "path-no-manager",
    "ofs_begin-invalid", "ofs_end-invalid", "includes_ofs-invalid",
    "len-no-cursor", "index-no-cursor", "slice-no-cursor",
    "index-after-end_access", "slice-after-end_access",
    "sliding-negative-memory", "static-negative-memory", "region-past-eof",
])
def test_misuse(big, misuse, expected):
    path, _ = big
    if isinstance(expected, type) and issubclass(expected, Exception):
        with pytest.raises(expected):
            misuse(path)
    else:
        assert misuse(path) == expected


def test_a_cursor_holding_no_region_keeps_the_offset_of_its_last_view(big):
    # Deliberate difference: the reference's ofs_begin(), ofs_end() and
    # includes_ofs() raise AttributeError without a region, and its size()
    # keeps the last view's size (20 here); ours keep the last view's
    # offset, with size 0.
    path, _ = big
    c = SlidingWindowMapManager().make_cursor(path)
    assert (c.size(), c.ofs_begin(), c.ofs_end(), c.includes_ofs(0)) == (0, 0, 0, False)
    c.use_region(10, 20)
    c.unuse_region()
    assert not c.is_valid()
    assert (c.size(), c.ofs_begin(), c.ofs_end(), c.includes_ofs(10)) == (0, 10, 10, False)
    c.use_region(10, 20).use_region(c.file_size())  # past the end: no region
    assert not c.is_valid()
    assert (c.size(), c.ofs_begin(), c.ofs_end(), c.includes_ofs(10)) == (0, 10, 10, False)


# ---------------------------------------------------------------- subclasses

def test_subclass_with_its_own_constructor(big):
    path, content = big

    class Tight(SlidingWindowMapManager):
        def __init__(self, name):
            super().__init__(window_size=2 * G, max_open_handles=3)
            self.name = name

    m = Tight("pack")
    assert m.name == "pack"
    assert (m.window_size(), m.max_file_handles()) == (2 * G, 3)
    assert bytes(m.make_cursor(path).use_region(G, 5).buffer()) == content[G:G + 5]
    assert isinstance(m, SlidingWindowMapManager)


def test_subclass_forwarding_its_arguments():
    class Forward(StaticWindowMapManager):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)

    class Plain(SlidingWindowMapManager):
        pass

    m = Forward(0, 10 * G, max_open_handles=4)
    assert (m.window_size(), m.max_mapped_memory_size(), m.max_file_handles()) == (0, 10 * G, 4)
    p = Plain(window_size=G)
    assert p.window_size() == G
    with pytest.raises(TypeError):
        Plain(1, 2, 3, 4)
    with pytest.raises(TypeError):
        Plain(bogus=1)
    with pytest.raises(TypeError):
        SlidingWindowMapManager(1, window_size=2)
    with pytest.raises(ValueError):
        Forward(max_memory_size=-1)


def test_internal_calls_do_not_go_through_overrides(big):
    # Deliberate difference: the reference's methods call one another through
    # self, so a subclass's override is called from them; here they do their
    # work natively (no look-up on the hot paths). Only copy.copy calls
    # _copy_from, and a buffer's __init__ calls begin_access.
    path, _ = big
    calls = []

    class C(WindowCursor):
        def unuse_region(self):
            calls.append("unuse_region")
            return super().unuse_region()

        def _destroy(self):
            calls.append("_destroy")
            return super()._destroy()

        def _copy_from(self, rhs):
            calls.append("_copy_from")
            return super()._copy_from(rhs)

    class M(SlidingWindowMapManager):
        WindowCursorCls = C

        def _collect_lru_region(self, size):
            calls.append("_collect_lru_region")
            return super()._collect_lru_region(size)

    class B(SlidingWindowMapBuffer):
        def end_access(self):
            calls.append("end_access")
            return super().end_access()

    m = M(window_size=G)
    c = m.make_cursor(path).use_region(0, 10)
    c.use_region(5 * G, 10)  # the reference: self.unuse_region()
    with c:  # the reference: self._destroy(), then self.unuse_region()
        pass
    d = m.make_cursor(path)
    d.assign(c.use_region(0, 10))  # the reference: self._destroy(), self._copy_from(c)
    del d  # the reference's __del__: self._destroy()
    with B(m.make_cursor(path)):  # the reference: self.end_access(), cursor.unuse_region()
        pass
    assert m.collect() >= 1  # the reference: self._collect_lru_region(0)
    assert calls == []
    copy.copy(c)
    assert calls == ["_copy_from"]
