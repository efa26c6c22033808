"""The package's shape: modules, ``__all__``, metadata, utilities, as in
smmap 6.0.0."""
import inspect
import mmap
import sys

import pytest

import smmap
import smmap._smmap
import smmap.buf
import smmap.mman
import smmap.util
from smmap.util import ALLOCATIONGRANULARITY as G
from smmap.util import align_to_mmap, is_64_bit


def test_metadata():
    assert smmap.__version__ == "6.0.0"
    assert smmap.version_info == (6, 0, 0)
    assert smmap.__author__ == "Sebastian Thiel"
    assert smmap.__contact__ == "byronimo@gmail.com"
    assert smmap.__homepage__ == "https://github.com/gitpython-developers/smmap"


def test_all_lists_match_the_reference():
    assert smmap.mman.__all__ == ["StaticWindowMapManager", "SlidingWindowMapManager", "WindowCursor"]
    assert smmap.buf.__all__ == ["SlidingWindowMapBuffer"]
    assert smmap.util.__all__ == [
        "align_to_mmap", "is_64_bit", "MapWindow", "MapRegion", "MapRegionList", "ALLOCATIONGRANULARITY",
    ]
    for mod in (smmap.mman, smmap.buf, smmap.util):
        for name in mod.__all__:
            assert hasattr(mod, name), (mod.__name__, name)


def test_root_package_reexports_mman_and_buf():
    for name in smmap.mman.__all__ + smmap.buf.__all__:
        assert getattr(smmap, name) is getattr(smmap.mman if name in smmap.mman.__all__ else smmap.buf, name)
    # The reference's root package does not export util's names.
    assert not hasattr(smmap, "MapWindow")
    # An extension, outside every __all__: the exception for a replaced file.
    assert smmap.FileReplacedError is smmap.util.FileReplacedError
    assert "FileReplacedError" not in smmap.util.__all__ + smmap.mman.__all__ + smmap.buf.__all__


def test_mman_keeps_the_reference_helper_imports():
    # Code written against the reference imports these from smmap.mman.
    assert smmap.mman.MapWindow is smmap.util.MapWindow
    assert smmap.mman.MapRegion is smmap.util.MapRegion
    assert smmap.mman.MapRegionList is smmap.util.MapRegionList
    assert smmap.mman.is_64_bit is smmap.util.is_64_bit
    # And these from smmap.util, which has them from the standard library.
    assert smmap.util.mmap is mmap.mmap
    assert smmap.util.ACCESS_READ == mmap.ACCESS_READ


def test_class_modules_and_hierarchy():
    assert smmap.SlidingWindowMapManager.__module__ == "smmap.mman"
    assert smmap.WindowCursor.__module__ == "smmap.mman"
    assert smmap.SlidingWindowMapBuffer.__module__ == "smmap.buf"
    assert smmap.util.MapRegion.__module__ == "smmap.util"
    assert issubclass(smmap.SlidingWindowMapManager, smmap.StaticWindowMapManager)
    assert issubclass(smmap.util.MapRegionList, list)


def test_configuration_class_attributes():
    M = smmap.StaticWindowMapManager
    assert M.MapRegionListCls is smmap.util.MapRegionList
    assert M.MapWindowCls is smmap.util.MapWindow
    assert M.MapRegionCls is smmap.util.MapRegion
    assert M.WindowCursorCls is smmap.WindowCursor
    assert smmap.SlidingWindowMapManager.WindowCursorCls is smmap.WindowCursor


def test_signatures_match_the_reference():
    sig = lambda f: str(inspect.signature(f))  # noqa: E731
    maxsize = str(sys.maxsize)
    assert sig(smmap.StaticWindowMapManager) == f"(window_size=0, max_memory_size=0, max_open_handles={maxsize})"
    assert sig(smmap.SlidingWindowMapManager) == f"(window_size=-1, max_memory_size=0, max_open_handles={maxsize})"
    assert sig(smmap.WindowCursor.use_region) == "(self, /, offset=0, size=0, flags=0)"
    assert sig(smmap.SlidingWindowMapBuffer) == f"(cursor=None, offset=0, size={maxsize}, flags=0)"
    assert sig(smmap.SlidingWindowMapBuffer.begin_access) == f"(self, /, cursor=None, offset=0, size={maxsize}, flags=0)"
    assert sig(smmap.util.MapRegion) == "(path_or_fd, ofs, size, flags=0)"
    assert sig(smmap.WindowCursor) == "(manager=None, regions=None)"
    assert sig(smmap.util.MapWindow) == "(offset, size)"


@pytest.mark.parametrize("cls", [smmap.WindowCursor, smmap.SlidingWindowMapBuffer])
def test_exit_takes_the_names_of_the_reference_and_the_stub(cls):
    assert str(inspect.signature(cls.__exit__)) == "(self, /, exc_type=None, exc_value=None, traceback=None)"
    obj = cls()
    assert obj.__exit__(exc_type=None, exc_value=None, traceback=None) is None
    err = ValueError("x")
    assert obj.__exit__(exc_type=ValueError, exc_value=err, traceback=err.__traceback__) is None


def test_every_public_class_and_method_has_a_docstring():
    classes = [
        smmap.StaticWindowMapManager, smmap.SlidingWindowMapManager, smmap.WindowCursor,
        smmap.SlidingWindowMapBuffer, smmap.util.MapWindow, smmap.util.MapRegion, smmap.util.MapRegionList,
        smmap._smmap.MappedView,
    ]
    for cls in classes:
        assert cls.__doc__, cls
        for name, member in vars(cls).items():
            if name.startswith("__") or not callable(member) or isinstance(member, type):
                continue
            assert getattr(member, "__doc__", None), f"{cls.__name__}.{name}"
    for f in (align_to_mmap, is_64_bit):
        assert f.__doc__


def test_the_public_buffer_docstring_speaks_of_the_public_class():
    doc = smmap.SlidingWindowMapBuffer.__doc__
    assert doc.startswith("SlidingWindowMapBuffer(") or "bytes-like object" in doc, doc
    for internal in ("the implementation", "subclass", "`fast`", "PyO3"):
        assert internal not in doc, (internal, doc)


def test_allocation_granularity():
    assert G == mmap.ALLOCATIONGRANULARITY
    assert isinstance(G, int) and G & (G - 1) == 0


def test_is_64_bit():
    assert is_64_bit() == (sys.maxsize > (1 << 32) - 1)


@pytest.mark.parametrize("num,up,expected", [
    (0, False, 0), (0, True, 0), (1, False, 0), (1, True, G), (G, True, G), (G, False, G),
    (G + 1, True, 2 * G), (3 * G - 1, False, 2 * G), (-1, False, -G), (-1, True, 0),
])
def test_align_to_mmap(num, up, expected):
    assert align_to_mmap(num, up) == expected


def test_align_to_mmap_takes_integers_of_any_size():
    # The reference's arithmetic is Python's: no overflow past 64 bits.
    for num in (2**64 + 3, 2**63, 2**64, -(2**63) - 1, -(2**70) - 5, 10**40):
        down = num // G * G
        assert align_to_mmap(num, False) == down
        assert align_to_mmap(num, True) == (down if down == num else down + G)

    class Index:
        calls = 0

        def __index__(self):
            Index.calls += 1
            return 2**65 + 1

    assert align_to_mmap(Index(), True) == 2**65 + G and Index.calls == 1


def test_align_to_mmap_takes_any_truthy_round_up():
    assert align_to_mmap(1, 1) == G
    assert align_to_mmap(1, 0) == 0
    assert align_to_mmap(1, []) == 0


def test_align_to_mmap_bad_types():
    with pytest.raises(TypeError):
        align_to_mmap("1", True)
    with pytest.raises(TypeError):
        align_to_mmap(1.5, True)


def test_subclasses_with_constructors_of_their_own(big):
    # The reference's classes are plain Python classes; subclasses calling
    # super().__init__(...) from a constructor of their own keep working.
    from smmap import SlidingWindowMapBuffer, SlidingWindowMapManager, WindowCursor
    from smmap.util import MapRegion, MapWindow, MapRegionList

    path, content = big
    mman = SlidingWindowMapManager()

    class Buf(SlidingWindowMapBuffer):
        def __init__(self, name):
            super().__init__(mman.make_cursor(name), 10)
            self.name = name

    b = Buf(path)
    assert (b.name, len(b), b[0]) == (path, len(content) - 10, content[10])

    class Cur(WindowCursor):
        def __init__(self, name):
            super().__init__(mman, MapRegionList(name))

    c = Cur(path)
    assert c.is_associated() and bytes(c.use_region(1, 3).buffer()) == content[1:4]

    class Reg(MapRegion):
        def __init__(self, name):
            super().__init__(name, 0, 100)

    r = Reg(path)
    assert r.size() == 100 and r.map()[:] == content[:100]

    class Win(MapWindow):
        def __init__(self, ofs):
            super().__init__(ofs, 7)

    w = Win(3)
    assert (w.ofs, w.size) == (3, 7)

    class Plain(SlidingWindowMapBuffer):
        pass

    p = Plain(mman.make_cursor(path), offset=5)
    assert p[0] == content[5]
    with pytest.raises(ValueError):
        Plain(mman.make_cursor(path), offset=len(content))
