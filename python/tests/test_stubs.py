"""The type stubs agree with the native module (mypy's stubtest), and a
client type-checks with `mypy --strict` (scripts/test-python installs mypy)."""
import subprocess
import sys

import pytest

pytest.importorskip("mypy.stubtest")


def test_stubs_match_the_native_module():
    args = [sys.executable, "-m", "mypy.stubtest", "smmap._smmap"]
    if "--ignore-disjoint-bases" in subprocess.run(args[:3] + ["--help"], capture_output=True, text=True).stdout:
        args.append("--ignore-disjoint-bases")
    out = subprocess.run(args, capture_output=True, text=True)
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
        "z: bytes = c.map()[1:2]\n"
        "n: int = MapRegionList(__file__).file_size()\n"
        "from smmap.util import FileReplacedError\n"
        "err: OSError = smmap.FileReplacedError(116, 'replaced', __file__)\n"
        "try:\n"
        "    c.use_region(1)\n"
        "except FileReplacedError as e:\n"
        "    print(e.errno, e.filename)\n"
    )
    out = subprocess.run([sys.executable, "-m", "mypy", "--strict", str(client)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
