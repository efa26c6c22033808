"""Module with a simple buffer implementation using the memory manager"""
import sys

from ._smmap import SlidingWindowMapBuffer

__all__ = ["SlidingWindowMapBuffer"]
