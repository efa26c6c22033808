#!/usr/bin/env python3
"""Thread throughput: one shared manager, 1 thread against 2.

Run it with the interpreter to measure, with our smmap importable (a release
build for real figures):

    .venv/bin/python python/bench/threads.py          # GIL on (CPython 3.11)
    .venv-ft/bin/python python/bench/threads.py       # GIL off (3.13t, see scripts/test-python-ft)

Each thread reads through its own buffer (so its own cursor) of one shared
manager; each workload runs with 1 thread, then 2, each thread doing the
same number of reads (best of --repeat). It prints reads per second and the
2-thread speed-up. With the GIL, two threads share one core's worth of
Python; without it, they run in parallel as far as the engine lets them.

- hits: `buf[i]` then `buf[a:b]` (<= 4 KiB) at random offsets of a 16 MiB
  file, default manager: after the first touch every read is a hit (no lock
  is shared between the threads but the interpreter's).
- budget: `buf[a:b]` (<= 4 KiB) at random offsets of a 100 MB file, 1 MB
  windows, 15 handles: nearly every read misses and is served by `pread`
  (or maps), through the manager's shared state, detached from the
  interpreter.
- mmap: the hits workload on a whole-file `mmap.mmap` per thread (the
  standard library, no smmap): the control, which shows what the
  interpreter and the machine allow two threads.
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


def whole_file(path):
    with open(path, "rb") as f:
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


def run(manager, path, workload, threads, n):
    """Seconds for `threads` threads doing `n` reads each, started together
    (each with a whole-file mmap.mmap when `manager` is None)."""
    if manager is None:
        bufs = [whole_file(path) for _ in range(threads)]
    else:
        bufs = [SlidingWindowMapBuffer(manager.make_cursor(path)) for _ in range(threads)]
    barrier = threading.Barrier(threads + 1)
    done = []

    def work(k):
        rnd = random.Random(k)
        barrier.wait()
        workload(bufs[k], rnd, n)
        done.append(time.perf_counter())

    workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    start = time.perf_counter()
    for w in workers:
        w.join()
    return max(done) - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reads", type=int, default=200_000, help="reads per thread (hits)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure; the best counts")
    ap.add_argument("--json", help="also write the results to this file")
    opts = ap.parse_args()
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    results = []
    with tempfile.TemporaryDirectory(prefix="smmap-threads-") as tmp:
        small = make_file(tmp, "16mib.bin", 16 * MIB)
        large = make_file(tmp, "100mb.bin", 100_000_000)
        cases = [
            ("hits", hits, small, lambda: SlidingWindowMapManager(), opts.reads),
            ("budget", budget, large,
             lambda: SlidingWindowMapManager(window_size=MIB, max_memory_size=15 * MIB, max_open_handles=15),
             opts.reads // 4),
            ("mmap", hits, small, lambda: None, opts.reads),
        ]
        for name, workload, path, make, n in cases:
            row = {"workload": name, "reads_per_thread": n}
            for threads in (1, 2):
                m = make()
                run(m, path, workload, threads, n // 10)  # warm the page cache and windows
                best = min(run(m, path, workload, threads, n) for _ in range(opts.repeat))
                row[f"{threads}_thread_reads_per_s"] = threads * n / best
            row["speedup"] = row["2_thread_reads_per_s"] / row["1_thread_reads_per_s"]
            results.append(row)
    label = "GIL on" if gil else "GIL off"
    print(f"{sys.version.split()[0]} ({label}), reads per second:")
    print(f"{'workload':<8}  {'1 thread':>12}  {'2 threads':>12}  speed-up")
    for r in results:
        print(f"{r['workload']:<8}  {r['1_thread_reads_per_s']:>12,.0f}  {r['2_thread_reads_per_s']:>12,.0f}  "
              f"{r['speedup']:>7.2f}x")
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump(dict(python=sys.version, gil=gil, results=results), f, indent=2)


if __name__ == "__main__":
    main()
