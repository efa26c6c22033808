"""The type stubs agree with the native module (mypy's stubtest), and a
client type-checks with `mypy --strict` (scripts/test-python installs mypy)."""
import os
import subprocess
import sys

import pytest

pytest.importorskip("mypy.stubtest")

# mypy is slow to start on a loaded machine, but not this slow.
TIMEOUT = 600


def mypy(args, tmp_path):
    """Runs mypy's `args` in `tmp_path`, its cache there too: nothing is
    written into the checkout, or shared with another run."""
    env = dict(os.environ, MYPY_CACHE_DIR=str(tmp_path / "mypy-cache"))
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=TIMEOUT
    )


def test_stubs_match_the_native_module(tmp_path):
    args = ["mypy.stubtest", "smmap._smmap"]
    if "--ignore-disjoint-bases" in mypy(["mypy.stubtest", "--help"], tmp_path).stdout:
        args.append("--ignore-disjoint-bases")
    out = mypy(args, tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr


def test_package_type_checks_strictly(tmp_path):
    client = tmp_path / "client.py"
    client.write_text(
        "import smmap\n"
        "from smmap.util import MapRegionList\n"
        "m = smmap.SlidingWindowMapManager(window_size=4096)\n"
        "c = m.make_cursor(__file__).use_region(0, 10)\n"
        "mv: memoryview = c.buffer()\n"
        "b = smmap.SlidingWindowMapBuffer(c)\n"
        "x: int = b[0]\n"
        "y: bytes = b[0:3]\n"
        # Any index the runtime takes (numpy's integers, for one).
        "class Index:\n"
        "    def __index__(self) -> int:\n"
        "        return 1\n"
        "x1: int = b[Index()] + c.map()[Index()]\n"
        "z: bytes = c.map()[1:2]\n"
        "n: int = MapRegionList(__file__).file_size()\n"
        "from smmap.util import FileReplacedError\n"
        "err: OSError = smmap.FileReplacedError(116, 'replaced', __file__)\n"
        "try:\n"
        "    c.use_region(1)\n"
        "except FileReplacedError as e:\n"
        "    print(e.errno, e.filename)\n"
        # The names smmap 6.0.0's modules had, imported from them: explicitly
        # exported, or --strict (no implicit re-export) rejects them.
        "from smmap.mman import MapRegion, MapRegionList, MapWindow, is_64_bit, reduce, sys\n"
        "from smmap.util import ACCESS_READ, ALLOCATIONGRANULARITY, align_to_mmap, mmap, os\n"
        "from smmap.buf import sys as buf_sys\n"
        "from smmap import util\n"
        "w: MapWindow = MapWindow(0, 10)\n"
        "regions: MapRegionList = MapRegionList(__file__)\n"
        "region: MapRegion = MapRegion(__file__, 0, 10)\n"
        "wide: bool = is_64_bit()\n"
        "total: int = reduce(lambda a, b: a + b, [1, 2], 0)\n"
        "limit: int = sys.maxsize + buf_sys.maxsize + util.sys.maxsize\n"
        "aligned: int = align_to_mmap(ALLOCATIONGRANULARITY + 1, True) + ACCESS_READ\n"
        "sep: str = os.sep + util.os.sep\n"
        "mm: type = mmap\n"
    )
    out = mypy(["mypy", "--strict", str(client)], tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
