"""Module containing a memory memory manager which provides a sliding window on a number of memory mapped files"""
import sys
from functools import reduce

from .util import (
    MapWindow,
    MapRegion,
    MapRegionList,
    is_64_bit,
)
from ._smmap import (
    SlidingWindowMapManager,
    StaticWindowMapManager,
    WindowCursor,
)

__all__ = ["StaticWindowMapManager", "SlidingWindowMapManager", "WindowCursor"]

# The reference's configuration attribute; the other three are set natively.
StaticWindowMapManager.MapRegionListCls = MapRegionList
