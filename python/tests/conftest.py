"""Shared fixtures: data files of known content, and helpers."""
import os
import random

import pytest

from smmap.util import ALLOCATIONGRANULARITY

G = ALLOCATIONGRANULARITY


def make_bytes(n, seed=1):
    rnd = random.Random(seed)
    return rnd.randbytes(n) if hasattr(rnd, "randbytes") else bytes(rnd.getrandbits(8) for _ in range(n))


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def big(data_dir):
    """A file of 20 granules and a bit (about 80 KiB on 4 KiB pages) with
    random content: returns (path as str, content)."""
    content = make_bytes(20 * G + 123, seed=7)
    path = data_dir / "big.bin"
    path.write_bytes(content)
    return str(path), content


@pytest.fixture(scope="session")
def small(data_dir):
    """A 1000-byte file: (path, content)."""
    content = make_bytes(1000, seed=3)
    path = data_dir / "small.bin"
    path.write_bytes(content)
    return str(path), content


@pytest.fixture(scope="session")
def empty(data_dir):
    path = data_dir / "empty.bin"
    path.write_bytes(b"")
    return str(path)


class Descriptors:
    """Opens files read-only (`fd_of(path)`) and closes those still open
    after the test. A test closes one itself with `fd_of.close(fd)`: closed
    behind the fixture's back, its number could be handed to another
    descriptor (the manager's) that the fixture would then close."""

    def __init__(self):
        self.fds = []

    def __call__(self, path):
        fd = os.open(path, os.O_RDONLY)
        self.fds.append(fd)
        return fd

    def close(self, fd):
        self.fds.remove(fd)
        os.close(fd)

    def close_all(self):
        for fd in self.fds:
            os.close(fd)
        self.fds = []


@pytest.fixture
def fd_of():
    """Opens files read-only and closes them after the test (see
    `Descriptors`)."""
    fds = Descriptors()
    yield fds
    fds.close_all()


def mappings_of(path):
    """Lines of /proc/self/maps that map `path` (Linux only; None elsewhere)."""
    try:
        with open("/proc/self/maps") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    real = os.path.realpath(path)
    return [line for line in lines if line.endswith(real) or line.endswith(real + " (deleted)")]


def pytest_configure(config):
    # scripts/test-python-ft runs the suite on a free-threaded interpreter:
    # refuse to report results if the GIL came back on (an extension that
    # does not declare itself free-threading safe re-enables it on import).
    if os.environ.get("SMMAP_EXPECT_NOGIL") == "1":
        import sys

        import smmap  # noqa: F401 - importing it must not re-enable the GIL

        if getattr(sys, "_is_gil_enabled", lambda: True)():
            raise pytest.UsageError("SMMAP_EXPECT_NOGIL=1 but the GIL is enabled")
