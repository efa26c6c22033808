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

