"""Tracing from Python: smmap.trace_to and SMMAP_TRACE record what managers
read, in the engine's trace format (decoded here, as `smmap bench --replay`
reads it), for an unmodified program and across a fork. Each test runs in a
fresh interpreter: the trace is process-wide."""
import os
import sys

import pytest

from isolated import assert_exited, run_script

MAGIC = b"SMMAPTR\x01"
FIELDS = {1: 3, 2: 2, 3: 2, 4: 1, 5: 1, 6: 4, 7: 0, 8: 0}
NAMES = {1: "file", 2: "cursor", 3: "clone", 4: "drop", 5: "release", 6: "read", 7: "collect", 8: "end"}


def decode(data):
    """The records of a trace, as (name, fields) pairs; a file record's last
    field is its name, a read's offset is the file offset (the format stores
    its zigzag-coded distance from the end of the cursor's previous read).
    Fails on anything malformed."""
    assert data[:8] == MAGIC, data[:8]
    pos, out, ends = 8, [], {}

    def varint():
        nonlocal pos
        v, shift = 0, 0
        while True:
            b = data[pos]
            pos += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return v

    while pos < len(data):
        tag = data[pos]
        pos += 1
        assert tag in FIELDS, f"bad tag {tag} at {pos - 1}"
        fields = [varint() for _ in range(FIELDS[tag])]
        if tag == 1:
            n = fields.pop()
            fields.append(data[pos:pos + n].decode())
            pos += n
        elif tag == 3:
            ends[fields[0]] = ends.get(fields[1], 0)
        elif tag == 6:
            cursor, _, delta, length = fields
            fields[2] = ends.get(cursor, 0) + ((delta >> 1) ^ -(delta & 1))
            ends[cursor] = fields[2] + length
        out.append((NAMES[tag], fields))
    return out


@pytest.fixture
def data_file(tmp_path):
    p = tmp_path / "data"
    p.write_bytes(bytes(range(256)) * 64)
    return p


READS = """
import smmap, sys
m = smmap.SlidingWindowMapManager(window_size=4096, max_memory_size=8192)
c = m.make_cursor(sys.argv[1])
b = smmap.SlidingWindowMapBuffer(c)
assert b[5000] == 5000 % 256
assert b[100:104] == bytes([100, 101, 102, 103])
c.use_region(8192, 100)
assert c.is_valid()
b.end_access()
"""


def test_smmap_trace_records_an_unmodified_program(tmp_path, data_file):
    trace = tmp_path / "t.trace"
    env = dict(os.environ, SMMAP_TRACE=str(trace))
    out = run_script(READS, data_file, env=env)
    assert_exited(out, 0)
    records = decode(trace.read_bytes())
    assert records[0] == ("file", [0, 16384, str(data_file)])
    kinds = [r[0] for r in records]
    assert kinds[-1] == "end" and kinds.count("end") == 1
    # The buffer's first window, its byte and its slice, the cursor's map.
    assert [f[2:] for k, f in records if k == "read"] == [[0, sys.maxsize], [5000, 1], [100, 4], [8192, 100]]
    assert "release" in kinds


def test_trace_to_starts_and_stops(tmp_path, data_file):
    first, second = tmp_path / "a.trace", tmp_path / "b.trace"
    out = run_script("""
        import smmap, sys
        smmap.trace_to(sys.argv[2])
        m = smmap.SlidingWindowMapManager()
        m.make_cursor(sys.argv[1]).use_region(0, 10)
        smmap.trace_to(sys.argv[3])      # finishes the first
        m.make_cursor(sys.argv[1]).use_region(0, 10)  # m records into the first: ignored now
        m2 = smmap.StaticWindowMapManager()
        m2.make_cursor(sys.argv[1]).use_region(20, 10)
        smmap.trace_to(None)
        m3 = smmap.SlidingWindowMapManager()
        m3.make_cursor(sys.argv[1]).use_region(0, 10)
    """, data_file, first, second)
    assert_exited(out, 0)
    a, b = decode(first.read_bytes()), decode(second.read_bytes())
    assert [k for k, _ in a] == ["file", "cursor", "read", "drop", "end"]
    assert [k for k, _ in b] == ["file", "cursor", "read", "drop", "end"]
    assert b[2][1][2] == 20


def test_trace_to_the_path_being_recorded_records_it_anew(tmp_path, data_file):
    # The old trace is finished before the file is made anew: its buffered
    # records and end record do not land in the new one (more reads than
    # fit one write of the buffer, and a SMMAP_TRACE naming the same file).
    trace = tmp_path / "same.trace"
    out = run_script("""
        import smmap, sys
        m = smmap.SlidingWindowMapManager(window_size=4096)
        b = smmap.SlidingWindowMapBuffer(m.make_cursor(sys.argv[1]))
        for i in range(20000):
            b[i % 16384]
        smmap.trace_to(sys.argv[2])
        m2 = smmap.SlidingWindowMapManager()
        m2.make_cursor(sys.argv[1]).use_region(20, 10)
        smmap.trace_to(None)
    """, data_file, trace, env=dict(os.environ, SMMAP_TRACE=str(trace)))
    assert_exited(out, 0)
    records = decode(trace.read_bytes())
    assert [k for k, _ in records] == ["file", "cursor", "read", "drop", "end"]
    assert records[2][1][2] == 20


def test_trace_to_a_bad_path_names_it(tmp_path):
    out = run_script("""
        import smmap, sys
        try:
            smmap.trace_to(sys.argv[1])
        except OSError as e:
            print(e)
            sys.exit(3)
    """, tmp_path / "missing" / "t.trace")
    assert_exited(out, 3)
    assert "missing" in out.stdout and "trace" in out.stdout


def test_trace_to_takes_bytes_and_path_like_and_names_the_file(tmp_path, data_file):
    out = run_script("""
        import os, pathlib, smmap, sys
        smmap.trace_to(os.fsencode(sys.argv[2]))
        smmap.SlidingWindowMapManager().make_cursor(sys.argv[1]).use_region(0, 10)
        smmap.trace_to(pathlib.Path(sys.argv[3]))
        smmap.SlidingWindowMapManager().make_cursor(sys.argv[1]).use_region(0, 10)
        smmap.trace_to(None)
        bad = pathlib.Path(sys.argv[4])
        try:
            smmap.trace_to(bad)
        except FileNotFoundError as e:
            assert e.filename is bad, e.filename
            assert "(os error" not in str(e), e
            print(e)
        try:
            smmap.trace_to(3.5)
        except TypeError as e:
            print("TypeError", e)
    """, data_file, tmp_path / "a.trace", tmp_path / "b.trace", tmp_path / "missing" / "c.trace")
    assert_exited(out, 0)
    for name in ("a.trace", "b.trace"):
        assert [k for k, _ in decode((tmp_path / name).read_bytes())] == \
            ["file", "cursor", "read", "drop", "end"]
    assert "cannot record a trace into" in out.stdout and "c.trace" in out.stdout, out.stdout
    assert "TypeError" in out.stdout, out.stdout


CHILD = """
import subprocess, sys
import smmap
print("SMMAP_TRACE" in __import__("os").environ)
m = smmap.SlidingWindowMapManager()
m.make_cursor(sys.argv[1]).use_region(0, 10)
subprocess.run([sys.executable, "-c",
                "import smmap, sys; smmap.SlidingWindowMapManager().make_cursor(sys.argv[1]).use_region(40, 10)",
                sys.argv[1]], check=True)
m.make_cursor(sys.argv[1]).use_region(20, 10)
"""


def test_smmap_trace_is_not_made_anew_by_a_child_process(tmp_path, data_file):
    # The variable is taken out of the environment once read: a child that
    # imports smmap does not truncate the parent's trace, nor record.
    trace = tmp_path / "t.trace"
    out = run_script(CHILD, data_file, env=dict(os.environ, SMMAP_TRACE=str(trace)))
    assert_exited(out, 0)
    assert out.stdout.split() == ["False"], out.stdout
    records = decode(trace.read_bytes())
    assert [f[2] for k, f in records if k == "read"] == [0, 20]
    assert [k for k, _ in records][-1] == "end"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "t.trace"]


def test_smmap_trace_with_pid_traces_each_process_to_its_own_file(tmp_path, data_file):
    out = run_script(CHILD, data_file, env=dict(os.environ, SMMAP_TRACE=str(tmp_path / "t-%p.trace")))
    assert_exited(out, 0)
    assert out.stdout.split() == ["True"], out.stdout
    traces = sorted(tmp_path.glob("t-*.trace"))
    assert len(traces) == 2, traces
    reads = sorted([f[2] for k, f in decode(t.read_bytes()) if k == "read"] for t in traces)
    assert reads == [[0, 20], [40]], reads
    assert all(t.name[2:-6].isdigit() for t in traces), traces


def test_smmap_trace_that_cannot_be_made_warns_and_runs_on(tmp_path, data_file):
    env = dict(os.environ, SMMAP_TRACE=str(tmp_path / "missing" / "t.trace"))
    out = run_script(READS, data_file, env=env)
    assert_exited(out, 0)
    assert "RuntimeWarning" in out.stderr and "SMMAP_TRACE" in out.stderr and "missing" in out.stderr


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_a_forked_child_records_nothing(tmp_path, data_file):
    trace = tmp_path / "t.trace"
    out = run_script("""
        import os, smmap, sys
        smmap.trace_to(sys.argv[2])
        m = smmap.SlidingWindowMapManager()
        c = m.make_cursor(sys.argv[1]).use_region(0, 10)
        pid = os.fork()
        if pid == 0:
            # The child's own manager: its reads are not the parent's.
            m2 = smmap.SlidingWindowMapManager()
            for i in range(2000):
                m2.make_cursor(sys.argv[1]).use_region(i, 10)
            smmap.trace_to(None)
            sys.exit(0)   # runs the exit hooks, which finish nothing here
        _, status = os.waitpid(pid, 0)
        assert status == 0, status
        c.use_region(30, 10)
    """, data_file, trace)
    assert_exited(out, 0)
    records = decode(trace.read_bytes())
    # The parent's two reads; its cursor is still alive when the exit hook
    # finishes the trace.
    assert [k for k, _ in records] == ["file", "cursor", "read", "read", "end"]
    assert [f[2] for k, f in records if k == "read"] == [0, 30]

