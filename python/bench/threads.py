#!/usr/bin/env python3
"""Thread throughput: one shared manager, 1 thread against 2 (or more).

Run it with the interpreter to measure, with our smmap importable (a release
build for real figures):

    .venv/bin/python python/bench/threads.py          # GIL on (CPython 3.11)
    .venv-ft/bin/python python/bench/threads.py       # GIL off (3.13t, see scripts/test-python-ft)
    .venv-ft/bin/python python/bench/threads.py --threads 1,2,4,8,16

Each thread reads through its own buffer or cursor of one shared manager;
each workload runs with 1 thread, then with each count of --threads (a
comma-separated list, default 2; one thread always runs), each thread doing
the same number of rounds (best of --repeat). It prints rounds per second
and the speed-up over one thread at each count; a round is the workload's
loop body below (two reads for hits and mmap, one for budget, a move and
two reads for cursor), so compare rows by their speed-ups, and hits with
mmap, which run the same round. With the GIL, the threads share
one core's worth of Python; without it, they run in parallel as far as the
engine lets them.

- hits: `buf[i]` then `buf[a:b]` (<= 4 KiB) at random offsets of a 16 MiB
  file, default manager: after the first touch every read is a hit (no lock
  is shared between the threads but the interpreter's).
- budget: `buf[a:b]` (<= 4 KiB) at random offsets of a 100 MB file, 1 MB
  windows, 15 handles: nearly every read misses and is served by `pread`
  (or maps), through the manager's shared state, detached from the
  interpreter.
- cursor: the hits workload through a bare cursor per thread:
  `use_region(a, n).buffer()`, then its first byte and `bytes()` of it.
- mmap: the hits workload on a whole-file `mmap.mmap` per thread (the
  standard library, no smmap): the control, which shows what the
  interpreter and the machine allow the same threads.
"""
import argparse
import json
import mmap
import os
import random
import sys
import tempfile
import threading
import time

from smmap import SlidingWindowMapBuffer, SlidingWindowMapManager

MIB = 1 << 20


def make_file(directory, name, size):
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        chunk = os.urandom(MIB)
        for _ in range(size // MIB):
            f.write(chunk)
        f.write(chunk[: size % MIB])
    return path


def hits(buf, rnd, n):
    size = len(buf)
    for _ in range(n):
        a = rnd.randrange(size - 4096)
        buf[a]
        buf[a:a + rnd.randrange(1, 4097)]


def budget(buf, rnd, n):
    size = len(buf)
    for _ in range(n):
        a = rnd.randrange(size - 4096)
        buf[a:a + rnd.randrange(1, 4097)]


def cursor_hits(cursor, rnd, n):
    size = cursor.file_size()
    for _ in range(n):
        a = rnd.randrange(size - 4096)
        view = cursor.use_region(a, rnd.randrange(1, 4097)).buffer()
        view[0]
        bytes(view)


def whole_file(path):
    with open(path, "rb") as f:
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


def reader(manager, path, kind):
    """One thread's reader of `path`: a buffer or a bare cursor of `manager`,
    or a whole-file mmap.mmap."""
    if kind == "mmap":
        return whole_file(path)
    cursor = manager.make_cursor(path)
    return cursor if kind == "cursor" else SlidingWindowMapBuffer(cursor)


def run(manager, path, kind, workload, threads, n):
    """Seconds for `threads` threads doing `n` reads each, started together,
    each through its own reader of `kind` (see `reader`): from the first
    thread's start to the last one's end, as each thread reads the clock."""
    bufs = [reader(manager, path, kind) for _ in range(threads)]
    barrier = threading.Barrier(threads)
    starts, done = [], []

    def work(k):
        rnd = random.Random(k)
        barrier.wait()
        starts.append(time.perf_counter())
        workload(bufs[k], rnd, n)
        done.append(time.perf_counter())

    workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return max(done) - min(starts)


def thread_counts(text):
    """The counts of a list such as `1,2,4,8`, with 1 (the base) first:
    sorted, without duplicates, each at least 1, one at least 2."""
    counts = set()
    for piece in text.split(","):
        try:
            n = int(piece)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{piece.strip()!r} is not a thread count: expected a list such as 1,2,4,8") from None
        if n < 1:
            raise argparse.ArgumentTypeError(f"{n} threads: every count must be at least 1")
        counts.add(n)
    if max(counts) < 2:
        raise argparse.ArgumentTypeError(
            f"no count of 2 or more in {text!r}: the threads need one (one thread always runs)")
    return sorted(counts | {1})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reads", type=int, default=200_000, help="rounds per thread (hits; budget does a quarter)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure; the best counts")
    ap.add_argument("--threads", type=thread_counts, default="2", metavar="N,...",
                    help="thread counts, a list such as 1,2,4,8 (default 2); one thread always runs")
    ap.add_argument("--json", help="also write the results to this file")
    opts = ap.parse_args()
    counts = opts.threads
    largest = counts[-1]
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    results = []
    with tempfile.TemporaryDirectory(prefix="smmap-threads-") as tmp:
        small = make_file(tmp, "16mib.bin", 16 * MIB)
        large = make_file(tmp, "100mb.bin", 100_000_000)
        cases = [
            ("hits", "buffer", hits, small, lambda: SlidingWindowMapManager(), opts.reads),
            ("budget", "buffer", budget, large,
             lambda: SlidingWindowMapManager(window_size=MIB, max_memory_size=15 * MIB, max_open_handles=15),
             opts.reads // 4),
            ("cursor", "cursor", cursor_hits, small, lambda: SlidingWindowMapManager(), opts.reads),
            ("mmap", "mmap", hits, small, lambda: None, opts.reads),
        ]
        for name, kind, workload, path, make, n in cases:
            row = {"workload": name, "reads_per_thread": n}
            for threads in counts:
                m = make()
                run(m, path, kind, workload, threads, n // 10)  # warm the page cache and windows
                best = min(run(m, path, kind, workload, threads, n) for _ in range(opts.repeat))
                row[f"{threads}_thread_reads_per_s"] = threads * n / best
            one = row["1_thread_reads_per_s"]
            row["speedups"] = {str(t): row[f"{t}_thread_reads_per_s"] / one for t in counts[1:]}
            row["speedup"] = row["speedups"][str(largest)]
            results.append(row)
    label = "GIL on" if gil else "GIL off"
    print(f"{sys.version.split()[0]} ({label}), rounds per second"
          " (a round: 2 reads for hits and mmap, 1 for budget, a move and 2 reads for cursor):")
    # One speed-up column per count above 1, headed "speed-up" when there
    # is only one.
    gains = ["speed-up"] if len(counts) == 2 else [f"{t} vs 1" for t in counts[1:]]
    heads = [f"{t} thread" + ("s" if t > 1 else "") for t in counts]
    print("  ".join([f"{'workload':<8}"] + [f"{h:>12}" for h in heads] + [f"{g:>8}" for g in gains]))
    for r in results:
        print("  ".join([f"{r['workload']:<8}"]
                        + [f"{r[f'{t}_thread_reads_per_s']:>12,.0f}" for t in counts]
                        + [f"{r['speedups'][str(t)]:>7.2f}x" for t in counts[1:]]))
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump(dict(python=sys.version, gil=gil, threads=counts, results=results), f, indent=2)


if __name__ == "__main__":
    main()
