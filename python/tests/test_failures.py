"""Failures the engine now survives, each seen from Python: a window move
that fails keeps the cursor's window; the kernel's map count is never used
up; a file renamed over, a descriptor number reused, a path turned into a
FIFO or a relative path after chdir never serve another file's bytes (nor
hang); a copy too large to allocate is a MemoryError, not an abort; errors
say what happened and name the file.

Whatever could hang, kill the process, or touch process-wide state (the
working directory, resource limits, the map count) runs in a subprocess of
its own, with a timeout."""
import errno
import gc
import os
import subprocess
import sys
import textwrap

import pytest

import smmap
import smmap.util
from conftest import make_bytes
from smmap import SlidingWindowMapBuffer, SlidingWindowMapManager
from smmap.util import ALLOCATIONGRANULARITY as G
from smmap.util import FileReplacedError

MiB = 1 << 20


def run_python(code, *args, timeout=120):
    """Runs `code` in a fresh interpreter (this one, with this smmap) with
    `args` as sys.argv[1:]; returns the CompletedProcess. A hang fails the
    test instead of stalling the suite."""
    try:
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
            capture_output=True, text=True, timeout=timeout,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the subprocess did not finish within {timeout} s (hung?)\n"
                    f"stdout: {e.stdout!r}\nstderr: {e.stderr!r}")


def assert_exited_cleanly(out):
    """The subprocess exited 0: not killed by a signal (a negative return
    code: SIGABRT from an aborting allocator, SIGSEGV, SIGBUS)."""
    assert out.returncode >= 0, f"killed by signal {-out.returncode}\n{out.stdout}\n{out.stderr}"
    assert out.returncode == 0, f"exit status {out.returncode}\n{out.stdout}\n{out.stderr}"


def write(path, content):
    with open(path, "wb") as f:
        f.write(content)
    return str(path)


# ---------------------------------------------------------------- a. failed moves

def test_a_failed_buffer_move_keeps_the_window(tmp_path):
    content = make_bytes(3 * G, seed=11)
    path = write(tmp_path / "three", content)
    m = SlidingWindowMapManager(window_size=G, max_memory_size=0, max_open_handles=1)
    buf = SlidingWindowMapBuffer(m.make_cursor(path))
    assert buf[0] == content[0]
    os.remove(path)
    # While the manager keeps its descriptor, the removed file is read.
    assert buf[G] == content[G] and buf[0] == content[0]
    m.collect()   # closes it
    with pytest.raises(FileNotFoundError) as e:
        buf[2 * G]
    assert isinstance(e.value, OSError)
    assert e.value.errno == errno.ENOENT and e.value.filename == path
    assert path in str(e.value) and "None" not in str(e.value)
    # The window the cursor held is still there (the file is unlinked, its
    # mapping is not): the right bytes, not an error.
    assert buf[0] == content[0]
    assert buf[G - 1] == content[G - 1]
    assert buf[:16] == content[:16]
    assert m.num_file_handles() == 1
    m._verify_invariants()


def test_a_failed_cursor_move_keeps_the_window(tmp_path):
    content = make_bytes(3 * G, seed=12)
    path = write(tmp_path / "three", content)
    m = SlidingWindowMapManager(window_size=G, max_memory_size=0, max_open_handles=1)
    c = m.make_cursor(path)
    c.use_region(0)
    os.remove(path)
    m.collect()   # closes the descriptor the manager kept
    with pytest.raises(FileNotFoundError) as e:
        c.use_region(2 * G)
    assert e.value.filename == path
    assert c.is_valid() and (c.ofs_begin(), c.ofs_end()) == (0, G)
    assert c.use_region(0).buffer()[0] == content[0]
    assert bytes(c.buffer()) == content[:G]
    m._verify_invariants()


# ---------------------------------------------------------------- b. map count

MAP_COUNT_SCRIPT = """
    import mmap, os, sys
    from smmap import SlidingWindowMapManager

    G = mmap.ALLOCATIONGRANULARITY
    path, limit = sys.argv[1], int(sys.argv[2])
    n = limit + 20000
    marker = lambda i: 1 + i % 250

    os.truncate(path, n * G)
    fd = os.open(path, os.O_WRONLY)
    try:
        for i in range(n):
            os.pwrite(fd, bytes((marker(i),)), i * G)
    finally:
        os.close(fd)

    m = SlidingWindowMapManager(window_size=G, max_memory_size=1 << 45)
    # A cursor maps every window it moves to (what it hands out is mapped
    # memory); the one it leaves becomes unused, so only the handle limit
    # bounds how many stay mapped.
    c = m.make_cursor(path)
    keep, bad = [], []
    for i in range(n):
        if c.use_region(i * G, 1).buffer()[0] != marker(i):
            bad.append(i)
        # The rest of the process allocates and maps, too: Python objects,
        # and a mapping of its own, which needs a free slot in the map count.
        keep.append([i, str(i)])
        anon = mmap.mmap(-1, G)
        anon[0] = 1
        anon.close()
    s = m.stats()
    print("windows read:", n, "bad:", len(bad), "limit:", m.max_file_handles(),
          "peak windows:", s["peak_windows"], "maps:", s["maps"], "evictions:", s["evictions"])
    assert not bad, bad[:10]
    assert m.max_file_handles() == limit // 2
    assert s["peak_windows"] <= limit // 2
    assert m.num_file_handles() <= limit // 2
    m._verify_invariants()
    print("ok")
"""


def test_b_map_count_is_never_used_up(tmp_path):
    try:
        with open("/proc/sys/vm/max_map_count") as f:
            limit = int(f.read())
    except (OSError, ValueError):
        pytest.skip("/proc/sys/vm/max_map_count is not readable")
    if limit > 1 << 18:
        # Some distributions set 2^20 or 2^31 - 5: using it up would take a
        # million maps or billions, a page of disk (or of memory, on tmpfs)
        # each. Debian's default is 65,530.
        pytest.skip(f"vm.max_map_count {limit} is too large to use up in a test (at most 2^18)")
    path = tmp_path / "sparse"
    path.touch()
    try:
        out = run_python(MAP_COUNT_SCRIPT, path, limit, timeout=300)
    finally:
        # Every window's first page was written: do not leave them behind.
        path.unlink()
    assert_exited_cleanly(out)
    assert out.stdout.rstrip().endswith("ok"), out.stdout + out.stderr


# ---------------------------------------------------------------- c. renamed over

def test_c_a_file_renamed_over_is_never_read_through_the_old_entry(tmp_path):
    old = make_bytes(4 * MiB, seed=21)
    new = make_bytes(4 * MiB, seed=22)
    pack = write(tmp_path / "pack", old)
    other = write(tmp_path / "other", new)
    m = SlidingWindowMapManager(window_size=MiB)
    c = m.make_cursor(pack)
    assert bytes(c.use_region(0, 64).buffer()) == old[:64]
    buf = SlidingWindowMapBuffer(m.make_cursor(pack))
    assert buf[:16] == old[:16]
    # A cursor of another manager, made (the file pinned) but not used yet.
    unused = SlidingWindowMapManager(window_size=MiB).make_cursor(pack)

    os.rename(other, pack)

    # While the manager keeps the descriptor it opened, it reads the file
    # it opened, as git does with a pack.
    assert bytes(c.use_region(MiB, 64).buffer()) == old[MiB:MiB + 64]
    c.use_region(0)
    m.collect()   # closes it: from now on the path is opened anew
    with pytest.raises(FileReplacedError) as e:
        unused.use_region(0)
    assert e.value.errno == errno.ESTALE and e.value.filename == pack
    assert not unused.is_valid()
    for k in (1, 2, 3):
        with pytest.raises(FileReplacedError) as e:
            c.use_region(k * MiB)
        assert isinstance(e.value, OSError)
        assert e.value.errno == errno.ESTALE and e.value.filename == pack
        assert "no longer the file" in str(e.value) and pack in str(e.value)
        # The failed move left the cursor at its window of the old file.
        assert c.is_valid() and c.ofs_begin() == 0
    with pytest.raises(FileReplacedError):
        buf[2 * MiB]
    with pytest.raises(FileReplacedError):
        buf[MiB - 8:MiB + 8]          # stitching reaches the next window
    # The window at 0 still reads the old bytes, through every cursor made
    # before.
    assert bytes(c.use_region(0).buffer()) == old[:MiB]
    assert buf[:MiB] == old[:MiB]
    # Found replaced, the old file is no longer met by its path: a cursor
    # made now opens the new file, while the old cursors keep the old one.
    late = m.make_cursor(pack)
    assert bytes(late.use_region(100, 50).buffer()) == new[100:150]
    assert bytes(late.use_region(3 * MiB).buffer()) == new[3 * MiB:]
    assert bytes(c.use_region(0).buffer()) == old[:MiB]
    with pytest.raises(FileReplacedError):
        c.use_region(3 * MiB)
    m._verify_invariants()

    del c, buf, late, e, unused
    gc.collect()
    m.collect()
    assert m.num_file_handles() == 0
    # Every cursor and region of the old file gone: a new cursor meets the
    # new file.
    fresh = m.make_cursor(pack)
    assert bytes(fresh.use_region(0).buffer()) == new[:MiB]
    assert bytes(fresh.use_region(3 * MiB).buffer()) == new[3 * MiB:]
    assert SlidingWindowMapBuffer(m.make_cursor(pack))[:] == new


# ---------------------------------------------------------------- d. descriptor reuse

def test_d_a_reused_descriptor_number_is_refused(tmp_path, fd_of):
    a = make_bytes(4 * G, seed=31)
    b = make_bytes(4 * G, seed=32)
    fd = fd_of(write(tmp_path / "a", a))
    fd_b = fd_of(write(tmp_path / "b", b))
    m = SlidingWindowMapManager(window_size=G)
    c = m.make_cursor(fd)
    assert bytes(c.use_region(0).buffer()) == a[:G]
    buf = SlidingWindowMapBuffer(m.make_cursor(fd))
    assert buf[G - 4:G] == a[G - 4:G]
    # A cursor of another manager, made (the file pinned) but not used yet.
    unused = SlidingWindowMapManager(window_size=G).make_cursor(fd)

    # The number `fd` now names file B (deterministic, unlike waiting for
    # the operating system to recycle a closed number).
    os.dup2(fd_b, fd)

    # The manager's own duplicate of the descriptor still reads A.
    assert bytes(c.use_region(G).buffer()) == a[G:2 * G]
    c.use_region(0)
    m.collect()   # closes it: from now on the number is duplicated anew
    with pytest.raises(FileReplacedError) as e:
        unused.use_region(G)
    assert f"file descriptor {fd}" in str(e.value) and e.value.filename is None

    with pytest.raises(FileReplacedError) as e:
        c.use_region(2 * G)
    assert e.value.errno == errno.ESTALE and e.value.filename is None
    assert f"file descriptor {fd}" in str(e.value)
    assert "None" not in str(e.value)
    with pytest.raises(FileReplacedError):
        buf[3 * G]
    # Never B's bytes through A's entry; A's window still reads A.
    assert c.is_valid() and bytes(c.use_region(0).buffer()) == a[:G]
    assert buf[0] == a[0]
    # A cursor made now is a cursor on what the number names now: B.
    fresh = m.make_cursor(fd)
    assert bytes(fresh.use_region(2 * G).buffer()) == b[2 * G:3 * G]
    m._verify_invariants()


# ---------------------------------------------------------------- e. FIFO

FIFO_SCRIPT = """
    import mmap, os, sys
    from smmap import SlidingWindowMapManager

    G = mmap.ALLOCATIONGRANULARITY
    victim = sys.argv[1]
    with open(victim, "wb") as f:
        f.write(b"v" * (2 * G))
    m = SlidingWindowMapManager(window_size=G)
    c = m.make_cursor(victim)
    assert bytes(c.use_region(0).buffer()[:1]) == b"v"
    c.unuse_region()
    assert m.collect() == 1
    os.unlink(victim)
    os.mkfifo(victim)
    try:
        c.use_region(0)
    except OSError as e:
        print("raised", type(e).__name__, e.errno, e.filename == victim, str(e))
        sys.exit(0)
    print("no error: the cursor mapped", c.is_valid())
    sys.exit(3)
"""


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_e_a_path_replaced_by_a_fifo_raises_at_once(tmp_path):
    out = run_python(FIFO_SCRIPT, tmp_path / "victim", timeout=20)
    assert_exited_cleanly(out)
    words = out.stdout.split()
    assert words[0] == "raised", out.stdout
    assert int(words[2]) in (errno.ENODEV, errno.ESTALE), out.stdout
    assert words[3] == "True", out.stdout
    assert "FIFO" in out.stdout or "no longer the file" in out.stdout, out.stdout


# ---------------------------------------------------------------- f. relative path

RELATIVE_SCRIPT = """
    import mmap, os, sys
    from smmap import SlidingWindowMapBuffer, SlidingWindowMapManager

    G = mmap.ALLOCATIONGRANULARITY
    dir_a, dir_b = sys.argv[1], sys.argv[2]
    with open(os.path.join(dir_a, "data"), "rb") as f:
        a = f.read()
    with open(os.path.join(dir_b, "data"), "rb") as f:
        b = f.read()
    assert a != b

    m = SlidingWindowMapManager(window_size=G)
    os.chdir(dir_a)
    c = m.make_cursor("data")
    buf = SlidingWindowMapBuffer(m.make_cursor("data"))
    assert bytes(c.use_region(0).buffer()) == a[:G]
    assert buf[0] == a[0]
    os.chdir(dir_b)
    try:
        got = bytes(c.use_region(2 * G).buffer())
        assert got == a[2 * G:3 * G], "not dir A's bytes"
        assert buf[3 * G:3 * G + 100] == a[3 * G:3 * G + 100]
        print("read dir A's file")
    except OSError as e:
        print("error", e)
    # A cursor made now names dir B's file.
    assert bytes(m.make_cursor("data").use_region(G).buffer()) == b[G:2 * G]
    print("ok")
"""


def test_f_a_relative_path_is_resolved_once(tmp_path):
    dir_a, dir_b = tmp_path / "a", tmp_path / "b"
    dir_a.mkdir()
    dir_b.mkdir()
    write(dir_a / "data", make_bytes(4 * G, seed=41))
    write(dir_b / "data", make_bytes(4 * G, seed=42))
    out = run_python(RELATIVE_SCRIPT, dir_a, dir_b, timeout=60)
    assert_exited_cleanly(out)
    lines = out.stdout.splitlines()
    assert lines == ["read dir A's file", "ok"], out.stdout + out.stderr


# ---------------------------------------------------------------- g. huge copies

HUGE_SCRIPT = """
    import os, resource, sys
    from smmap import SlidingWindowMapBuffer, SlidingWindowMapManager

    path = sys.argv[1]
    for size in (1 << 45, 1 << 43, 1 << 40, 1 << 36):
        try:
            os.truncate(path, size)
            break
        except OSError:
            continue
    else:
        print("SKIP: the filesystem refuses sparse files of 64 GiB")
        sys.exit(0)
    # Whatever this machine's memory, a copy of 64 GiB or more must not
    # succeed (it would be zeroed, page by page): cap the address space.
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = 32 << 30
    if hard == resource.RLIM_INFINITY or hard > cap:
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))

    m = SlidingWindowMapManager()
    buf = SlidingWindowMapBuffer(m.make_cursor(path))
    assert len(buf) == size
    assert buf[size - 1] == 0 and buf[-4096:] == bytes(4096)
    raised = []
    for name, read in [
        ("buf[:]", lambda: buf[:]),
        ("buf[1:]", lambda: buf[1:]),
        ("buf[::2]", lambda: buf[::2]),
        ("buf[::-1]", lambda: buf[::-1]),
        ("__getslice__", lambda: buf.__getslice__(0, sys.maxsize)),
    ]:
        try:
            read()
        except (MemoryError, OverflowError, ValueError) as e:
            raised.append(name)
            print(name, type(e).__name__, e)
        else:
            print(name, "returned")
    # Still usable after every refusal.
    assert buf[12345] == 0 and buf[7:9] == b"\\0\\0"
    print("size", size, "raised", len(raised))
"""


def test_g_a_huge_slice_is_a_memory_error_not_an_abort(tmp_path):
    path = tmp_path / "huge"
    path.touch()
    try:
        out = run_python(HUGE_SCRIPT, path, timeout=120)
    finally:
        path.unlink()
    assert_exited_cleanly(out)
    if out.stdout.startswith("SKIP"):
        pytest.skip(out.stdout.strip())
    lines = out.stdout.splitlines()
    assert lines[-1].endswith("raised 5"), out.stdout + out.stderr
    for line in lines[:-1]:
        assert line.split()[1] in ("MemoryError", "OverflowError", "ValueError"), line
    # The MemoryError is the engine's: it names the file, offset and length.
    first = lines[0]
    assert first.startswith("buf[:] MemoryError"), first
    assert str(path) in first and "not enough memory" in first, first


MAPPED_COPY_SCRIPT = """
    import os, resource, sys
    from smmap import SlidingWindowMapBuffer, SlidingWindowMapManager

    path = sys.argv[1]
    # Larger than any arena the allocator may have reserved already (the
    # free-threaded build's mimalloc reserves address space ahead).
    size = 8 << 30
    os.truncate(path, size)
    m = SlidingWindowMapManager(window_size=size, max_memory_size=size)
    c = m.make_cursor(path).use_region(0, size)
    assert c.size() == size
    view = c.map()
    buf = SlidingWindowMapBuffer(c)
    # The window is mapped; leave the address space room for 256 MiB more,
    # so that a copy of the bytes the window holds cannot be allocated.
    with open("/proc/self/status") as f:
        vm = next(int(l.split()[1]) for l in f if l.startswith("VmSize:")) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (vm + (256 << 20), resource.getrlimit(resource.RLIMIT_AS)[1]))
    for name, read in [
        ("buf[:]", lambda: buf[:]),
        ("view[:]", lambda: view[:]),
        ("view[1:]", lambda: view[1:]),
        ("view[::2]", lambda: view[::2]),
        ("bytes(view)", lambda: bytes(view)),
        ("__getslice__", lambda: buf.__getslice__(0, size)),
    ]:
        try:
            read()
        except MemoryError as e:
            print(name, type(e).__name__, e)
        else:
            print(name, "returned")
    # Still usable after every refusal.
    assert view[5] == 0 and view[3:5] == b"\\0\\0" and buf[7:9] == b"\\0\\0"
    print("ok")
"""


def test_g_a_copy_of_a_mapped_window_too_large_to_allocate_is_a_memory_error(tmp_path):
    # The window holds every byte asked for, so the copy is made straight
    # from it; Python cannot allocate the bytes. That was a panic
    # (PanicException, which no `except Exception` catches), run with the
    # cursor's state held.
    path = tmp_path / "big"
    path.touch()
    out = run_python(MAPPED_COPY_SCRIPT, path, timeout=60)
    assert_exited_cleanly(out)
    lines = out.stdout.splitlines()
    assert lines[-1] == "ok" and len(lines) == 7, out.stdout + out.stderr
    for line in lines[:-1]:
        assert line.split()[1] == "MemoryError", line
    for line, at in zip(lines[1:5], ["offset 0", "offset 1", "offset 0", "offset 0"]):
        assert f"from {at}:" in line, line
    # The buffer's name the file, as every copy the engine refuses does.
    for line in (lines[0], lines[5]):
        assert str(path) in line and "not enough memory" in line, line


# ---------------------------------------------------------------- errors

def test_file_replaced_error_is_exported_but_not_in_all():
    assert smmap.FileReplacedError is smmap.util.FileReplacedError is FileReplacedError
    assert issubclass(FileReplacedError, OSError)
    assert FileReplacedError.__module__ == "smmap.util"
    assert FileReplacedError.__doc__ and "ESTALE" in FileReplacedError.__doc__
    assert "FileReplacedError" not in smmap.util.__all__
    e = FileReplacedError(errno.ESTALE, "replaced", "p")
    assert (e.errno, e.strerror, e.filename) == (errno.ESTALE, "replaced", "p")


def test_a_shrunk_file_is_eio_naming_the_file(tmp_path):
    content = make_bytes(4 * G, seed=51)
    path = write(tmp_path / "shrinks", content)
    m = SlidingWindowMapManager(window_size=G)
    c = m.make_cursor(path)
    assert bytes(c.use_region(0).buffer()) == content[:G]
    os.truncate(path, G)
    with pytest.raises(OSError) as e:
        c.use_region(3 * G)
    # Deliberately EIO, not ESTALE (which means "another file").
    assert type(e.value) is OSError and e.value.errno == errno.EIO
    assert e.value.filename == path
    s = str(e.value)
    assert s.startswith("[Errno %d] " % errno.EIO) and "shrank" in s and path in s, s
    assert "None" not in s
    # The window of the part that is left still reads.
    assert bytes(c.use_region(0).buffer()) == content[:G]


def test_os_errors_say_what_happened_and_name_the_file(tmp_path):
    missing = str(tmp_path / "missing")
    m = SlidingWindowMapManager(window_size=G)
    with pytest.raises(FileNotFoundError) as e:
        m.make_cursor(missing)
    assert (e.value.errno, e.value.filename) == (errno.ENOENT, missing)
    assert str(e.value).startswith("[Errno %d] " % errno.ENOENT) and missing in str(e.value)
    with pytest.raises(IsADirectoryError) as e:
        m.make_cursor(str(tmp_path))
    assert "directory" in str(e.value) and "None" not in str(e.value)
    # A path-like object is handed back as given.
    with pytest.raises(FileNotFoundError) as e:
        m.make_cursor(tmp_path / "missing")
    assert e.value.filename == tmp_path / "missing"
    # The handle limit: EMFILE, and the message says which limit.
    path = write(tmp_path / "two", make_bytes(2 * G, seed=52))
    one = SlidingWindowMapManager(window_size=G, max_open_handles=1)
    c1 = one.make_cursor(path).use_region(0)
    with pytest.raises(OSError) as e:
        one.make_cursor(path).use_region(G)
    assert e.value.errno == errno.EMFILE and "max_open_handles" in str(e.value)
    assert e.value.filename == path
    del c1


# ---------------------------------------------------------------- g. copy reads beside windows in use

@pytest.mark.parametrize("holders", [1, 4])
@pytest.mark.parametrize("limit", ["handles", "memory"])
def test_copy_reads_copy_when_every_window_is_in_use(tmp_path, holders, limit):
    """A buffer holds its first window; cursors then hold every other handle
    (or the rest of the memory budget) with windows they released and took
    back without the manager's lock. Slices of the buffer's other windows,
    three rounds of 15, are copied or take the place of the buffer's own
    window (the only one that can be evicted for them): none fails for lack
    of a handle, none maps past the memory limit, the cursors' windows stay,
    and a ghost hit is counted for each window mapped on admission."""
    page = G  # one window a page, whatever the page size
    if limit == "handles":
        mm = SlidingWindowMapManager(page, 0, holders + 1)
    else:
        mm = SlidingWindowMapManager(page, holders * G + page, sys.maxsize)
    content = make_bytes(16 * page, seed=50)
    buf = SlidingWindowMapBuffer(mm.make_cursor(write(tmp_path / "read", content)))
    assert buf[0:10] == content[0:10]
    held = []
    for i in range(holders):
        mine = make_bytes(G, seed=40 + i)
        c = mm.make_cursor(write(tmp_path / f"held{i}", mine)).use_region(0, 0)
        c.unuse_region()
        c.use_region(0, 0)
        assert bytes(c.buffer()) == mine
        held.append(c)
    for rnd in range(3):
        for p in range(1, 16):
            at = p * page + 17 * rnd
            assert buf[at:at + 100] == content[at:at + 100]
            assert buf[at] == content[at]
    s = mm.stats()
    assert s["maps"] == holders + 1 + s["ghost_hits"], s
    assert s["evictions"] == s["ghost_hits"], s
    assert s["preads"] >= 40, s
    assert (s["over_limit_bytes"], s["peak_over_limit_bytes"]) == (0, 0), s
    for c in held:
        assert c.is_valid() and c.region().client_count() == 2
    del held
