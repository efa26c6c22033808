"""Module containing a memory memory manager which provides a sliding window on a number of memory mapped files"""
# The reference's module has these names; the `X as X` form exports them to
# type checkers (mypy --strict), as they were importable from it.
import os as os
import sys as sys
from mmap import ACCESS_READ as ACCESS_READ, mmap as mmap
from typing import TYPE_CHECKING, List, Optional, Union

from ._smmap import (
    ALLOCATIONGRANULARITY,
    FileReplacedError as FileReplacedError,
    MapRegion,
    MapWindow,
    align_to_mmap,
    is_64_bit,
)

if TYPE_CHECKING:
    _PathOrFd = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]", int]
    _RegionListBase = List[MapRegion]
else:
    _RegionListBase = list

__all__ = ["align_to_mmap", "is_64_bit",
           "MapWindow", "MapRegion", "MapRegionList", "ALLOCATIONGRANULARITY"]
# FileReplacedError (an extension: an OSError subclass, errno ESTALE, raised
# when a file's path was renamed over or replaced, or its descriptor number
# reused, since the manager first opened it) is importable from here and from
# `smmap`, but kept out of __all__, which stays the reference's.


class MapRegionList(_RegionListBase):
    """List of MapRegion instances associating a path with a list of regions.

    The managers keep their own per-file region lists inside the engine; this
    class exists for code that builds one itself, e.g.
    ``WindowCursor(manager, MapRegionList(path))``."""

    __slots__ = (
        '_path_or_fd',  # path or file descriptor which is mapped by all our regions
        '_file_size'    # total size of the file we map
    )

    def __new__(cls, path_or_fd: "_PathOrFd") -> "MapRegionList":
        return super().__new__(cls)

    def __init__(self, path_or_fd: "_PathOrFd") -> None:
        """Associate the list with the file at ``path_or_fd`` (a path, or an
        open file descriptor as ``int``). The file is not touched until
        ``file_size()`` is asked for."""
        super().__init__()
        self._path_or_fd = path_or_fd
        self._file_size: Optional[int] = None

    def path_or_fd(self) -> "_PathOrFd":
        """:return: path or file descriptor we are attached to"""
        return self._path_or_fd

    def file_size(self) -> int:
        """:return: size of file we manager"""
        if self._file_size is None:
            if isinstance(self._path_or_fd, int):
                self._file_size = os.fstat(self._path_or_fd).st_size
            else:
                self._file_size = os.stat(self._path_or_fd).st_size
            # END handle path type
        # END update file size
        return self._file_size
