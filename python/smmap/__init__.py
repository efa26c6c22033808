"""Initialize the smmap package"""

# The reference's values, kept for API compatibility (code may read them);
# this package's authors are in its metadata (pyproject.toml).
__author__ = "Sebastian Thiel"
__contact__ = "byronimo@gmail.com"
__homepage__ = "https://github.com/gitpython-developers/smmap"
version_info = (6, 0, 0)
__version__ = '.'.join(str(i) for i in version_info)

# make everything available in root package for convenience
from .mman import *
from .buf import *
# An extension, not in the reference: see smmap.util.FileReplacedError.
from .util import FileReplacedError as FileReplacedError
# An extension, not in the reference: record what managers read
# (SMMAP_TRACE=path does this for an unmodified program); the trace is
# finished at exit.
from ._smmap import trace_to as trace_to
from ._smmap import _finish_trace

import atexit as _atexit

_atexit.register(_finish_trace)
del _atexit
