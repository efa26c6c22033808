"""Module containing a memory memory manager which provides a sliding window on a number of memory mapped files"""
# The reference's module has these names; the `X as X` form exports them to
# type checkers (mypy --strict), as they were importable from it.
import sys as sys
from functools import reduce as reduce

from .util import (
    MapWindow as MapWindow,
    MapRegion as MapRegion,
    MapRegionList as MapRegionList,
    is_64_bit as is_64_bit,
)
from ._smmap import (
    SlidingWindowMapManager,
    StaticWindowMapManager,
    WindowCursor,
)

__all__ = ["StaticWindowMapManager", "SlidingWindowMapManager", "WindowCursor"]

# The reference's configuration attribute; the other three are set natively.
StaticWindowMapManager.MapRegionListCls = MapRegionList
