"""Running a script in a fresh interpreter, for what only a whole process
shows: shutdown, signal handlers, the collector, fork. A hang or an abort is
the very failure those tests look for, so a watchdog ends the script and the
test fails with what it printed, instead of the suite stalling or dying.

The script runs under this interpreter, with this smmap and this
environment (PYTHON_GIL=0 on the free-threaded run)."""
import signal
import subprocess
import sys
import textwrap

import pytest

# What an abort prints: CPython's fatal errors, glibc's on a swallowed
# forced unwind, Rust's on a panic that cannot unwind.
ABORT_MARKERS = ("Fatal Python error", "FATAL:", "panicked", "failed to initiate panic")


def run_script(code, *args, timeout=60):
    """Runs `code` with `args` as sys.argv[1:]; returns the CompletedProcess.
    A script still running after `timeout` seconds is killed, and the test
    fails as hung."""
    try:
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
            capture_output=True, text=True, timeout=timeout,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"hung: the script did not exit within {timeout} s\n"
                    f"stdout: {e.stdout!r}\nstderr: {e.stderr!r}")


def assert_exited(out, status):
    """The script exited by itself with `status`: not killed by a signal
    (SIGABRT from an abort), and nothing on stderr says it aborted."""
    report = f"\nstdout: {out.stdout}\nstderr: {out.stderr}"
    if out.returncode < 0:
        pytest.fail(f"killed by {signal.Signals(-out.returncode).name}{report}")
    assert out.returncode == status, f"exit status {out.returncode}, not {status}{report}"
    for marker in ABORT_MARKERS:
        assert marker not in out.stderr, report
