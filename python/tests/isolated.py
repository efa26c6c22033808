"""Running a script in a fresh interpreter, for what only a whole process
shows: shutdown, signal handlers, the collector, fork. A hang or an abort is
the very failure those tests look for, so a watchdog ends the script and the
test fails with what it printed, instead of the suite stalling or dying.

The script runs under this interpreter, with this smmap and this
environment (PYTHON_GIL=0 on the free-threaded run)."""
import os
import signal
import subprocess
import sys
import textwrap

import pytest

# What an abort prints: CPython's fatal errors, glibc's on a swallowed
# forced unwind, Rust's on a panic that cannot unwind.
ABORT_MARKERS = ("Fatal Python error", "FATAL:", "panicked", "failed to initiate panic")


def run_script(code, *args, timeout=60, env=None):
    """Runs `code` with `args` as sys.argv[1:] (in `env`, if given, else this
    environment); returns the CompletedProcess.
    A script still running after `timeout` seconds is killed, with every
    process it forked (it runs in a session of its own), and the test fails
    as hung."""
    cmd = [sys.executable, "-c", textwrap.dedent(code), *map(str, args)]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True, env=env) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            if hasattr(os, "killpg"):
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
            stdout, stderr = proc.communicate()
            pytest.fail(f"hung: the script did not exit within {timeout} s\n"
                        f"stdout: {stdout!r}\nstderr: {stderr!r}")
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def assert_exited(out, status):
    """The script exited by itself with `status`: not killed by a signal
    (SIGABRT from an abort), and nothing on stderr says it aborted."""
    report = f"\nstdout: {out.stdout}\nstderr: {out.stderr}"
    if out.returncode < 0:
        pytest.fail(f"killed by {signal.Signals(-out.returncode).name}{report}")
    assert out.returncode == status, f"exit status {out.returncode}, not {status}{report}"
    for marker in ABORT_MARKERS:
        assert marker not in out.stderr, report
