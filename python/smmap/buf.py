"""Module with a simple buffer implementation using the memory manager"""
import sys as sys  # the reference's module has it (exported to type checkers)

from ._smmap import SlidingWindowMapBuffer

__all__ = ["SlidingWindowMapBuffer"]
