#!/usr/bin/env python3
"""Benchmark: our smmap against the reference smmap 6.0.0 and the standard
library's mmap.mmap, side by side.

Run from anywhere, with any Python 3.8+:

    python3 python/bench/bench.py

It prepares two virtual environments at the repository root, each in its
own process so that the two packages named ``smmap`` never meet:

- ``.venv-bench``: our package, built with ``maturin develop --release``;
- ``.venv-ref``: ``pip install smmap==6.0.0 gitdb --no-deps`` from the package
  registry (the pure-Python reference);

then runs every workload in both (best of ``--repeat`` runs, same seeds, same
files) and prints both times and the ratio. Where the workload reads bytes,
the same reads from a whole-file ``mmap.mmap`` (in our venv's interpreter)
make a third column: the speed of mapped memory with no window management.
This is a benchmark, not a test: it asserts nothing about speed.

Last, the gitdb workload runs again with every read recorded
(``SMMAP_TRACE``), in turn with untraced runs: what tracing costs.

Options: ``--quick`` (smaller workloads), ``--repeat N``, ``--skip-build``
(reuse ``.venv-bench`` as it is), ``--json FILE`` (write the results).
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
import venv

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OURS = os.path.join(ROOT, ".venv-bench")
REF = os.path.join(ROOT, ".venv-ref")
sys.path.insert(0, os.path.join(ROOT, "python", "tests"))

# The workloads, run inside each venv. Each function gets its parameters and
# returns the seconds its timed loop took; set-up is not timed.
WORKER = r'''
import json, mmap, random, sys, time
import smmap
from smmap import SlidingWindowMapBuffer, SlidingWindowMapManager

def whole_file(path):
    with open(path, "rb") as f:
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)

def getitem(path, n, stdlib=False):
    if stdlib:
        buf = whole_file(path)
    else:
        m = SlidingWindowMapManager()
        buf = SlidingWindowMapBuffer(m.make_cursor(path))
    rnd = random.Random(1)
    idx = [rnd.randrange(len(buf)) for _ in range(n)]
    for i in range(0, len(buf), 4096):
        buf[i]  # fault every page in first: page faults are not smmap's
    t = time.perf_counter()
    for i in idx:
        buf[i]
    return time.perf_counter() - t

def slices(path, n, window=-1, memory=0, handles=sys.maxsize, stdlib=False):
    if stdlib:
        buf = whole_file(path)
    else:
        m = SlidingWindowMapManager(window_size=window, max_memory_size=memory, max_open_handles=handles)
        buf = SlidingWindowMapBuffer(m.make_cursor(path))
    rnd = random.Random(2)
    size = len(buf)
    spans = []
    for _ in range(n):
        a = rnd.randrange(size - 4096)
        spans.append((a, a + rnd.randrange(1, 4097)))
    t = time.perf_counter()
    for a, b in spans:
        buf[a:b]
    return time.perf_counter() - t

def cursor_moves(path, n, window, memory):
    m = SlidingWindowMapManager(window_size=window, max_memory_size=memory)
    c = m.make_cursor(path)
    rnd = random.Random(3)
    size = c.file_size()
    moves = [(rnd.randrange(size), rnd.randrange(1, 4097)) for _ in range(n)]
    t = time.perf_counter()
    for ofs, length in moves:
        c.use_region(ofs, length).buffer()
    return time.perf_counter() - t

def gitdb_pack(pack, rounds):
    from gitdb.pack import PackEntity
    t = time.perf_counter()
    for _ in range(rounds):
        entity = PackEntity(pack)
        for i in range(entity.index().size()):
            entity.info_at_index(i)
            entity.stream_at_index(i).read()
        entity.close()
    return time.perf_counter() - t

args = json.loads(sys.argv[1])
name = args.pop("workload")
repeat = args.pop("repeat")
best = min(globals()[name](**args) for _ in range(repeat))
print(json.dumps({"seconds": best, "native": "smmap._smmap" in sys.modules}))
'''


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def python_of(env):
    return os.path.join(env, "bin", "python")


def run(cmd, **kw):
    subprocess.run(cmd, check=True, **kw)


def installed(env, requirement):
    """True if `requirement` ("name" or "name==version") is installed in
    `env`, at that version if one is given."""
    name, _, version = requirement.partition("==")
    out = subprocess.run(
        [python_of(env), "-c", "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))", name],
        capture_output=True, text=True)
    return out.returncode == 0 and (not version or out.stdout.strip() == version)


def ensure_env(path, packages):
    if not os.path.exists(python_of(path)):
        log(f"creating {path}")
        venv.EnvBuilder(with_pip=True).create(path)
    # A package at another version than the one pinned (a reference
    # environment made by hand) is replaced, not measured under the pin.
    missing = [p for p in packages if not installed(path, p)]
    if missing:
        run([python_of(path), "-m", "pip", "install", "-q", "--no-deps", *missing])


def prepare(skip_build):
    ensure_env(REF, ["smmap==6.0.0", "gitdb"])
    ensure_env(OURS, ["maturin", "gitdb"])
    if not skip_build:
        log("building our smmap (release) into .venv-bench")
        # As scripts/test-python: no other build's extension may shadow this one.
        for old in glob.glob(os.path.join(ROOT, "python", "smmap", "_smmap.*.so")):
            os.remove(old)
        env = dict(os.environ, VIRTUAL_ENV=OURS, PATH=os.path.join(OURS, "bin") + os.pathsep + os.environ["PATH"])
        run([os.path.join(OURS, "bin", "maturin"), "develop", "--release", "-q"], cwd=ROOT, env=env)


def measure(env, workload, repeat, trace=None, **params):
    arg = json.dumps(dict(params, workload=workload, repeat=repeat))
    if params.get("stdlib"):
        env = OURS
    environ = dict(os.environ)
    environ.pop("SMMAP_TRACE", None)
    if trace:
        environ["SMMAP_TRACE"] = trace
    out = subprocess.run([python_of(env), "-c", WORKER, arg], check=True, stdout=subprocess.PIPE,
                         cwd=tempfile.gettempdir(), env=environ).stdout
    result = json.loads(out)
    # The right package ran: the reference is pure Python, ours is native.
    assert result["native"] == (env == OURS), (env, result)
    return result["seconds"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller workloads")
    ap.add_argument("--repeat", type=int, default=3, help="runs per workload; the best counts")
    ap.add_argument("--skip-build", action="store_true", help="reuse .venv-bench as built")
    ap.add_argument("--json", help="also write the results to this file")
    opts = ap.parse_args()
    prepare(opts.skip_build)
    scale = 10 if opts.quick else 1
    kib = 1024
    with tempfile.TemporaryDirectory(prefix="smmap-bench-") as tmp:
        tiny = os.path.join(tmp, "data1.bin")  # fits the CPU caches and TLB
        small = os.path.join(tmp, "data16.bin")
        large = os.path.join(tmp, "data64.bin")
        huge = os.path.join(tmp, "data100.bin")  # 100 MB
        for path, size in ((tiny, kib * kib), (small, 16 * kib * kib), (large, 64 * kib * kib), (huge, 100_000_000)):
            with open(path, "wb") as f:
                chunk = os.urandom(kib * kib)
                for _ in range(size // len(chunk)):
                    f.write(chunk)
                f.write(chunk[:size % len(chunk)])
        log("making a git repository (300 commits, git gc)")
        from gitrepo import make_repo
        pack = make_repo(os.path.join(tmp, "repo"), commits=300)
        mib = kib * kib
        n = 200_000 // scale
        # (title, workload, goal, parameters, also with a whole-file mmap.mmap)
        workloads = [
            ("buf[i], random bytes, default manager, 1 MiB file", "getitem", ">= 10x, <= 1.2x mmap",
             dict(path=tiny, n=1_000_000 // scale), True),
            ("  same, 100 MB file (bound by TLB and cache misses)", "getitem", "<= 1.2x mmap",
             dict(path=huge, n=1_000_000 // scale), True),
            ("buf[a:b] <= 4 KiB, default manager, 1 MiB file", "slices", "<= 1.2x mmap",
             dict(path=tiny, n=n), True),
            ("  same, 100 MB file", "slices", "<= 1.2x mmap",
             dict(path=huge, n=n), True),
            ("buf[a:b] <= 4 KiB, 64 KiB windows, 16 MiB limit, 16 MiB file", "slices", ">= 3x",
             dict(path=small, n=n, window=64 * kib, memory=16 * mib), False),
            ("random slices <= 4 KiB under a budget (1 MB windows, 15 handles, 100 MB file)", "slices", "-",
             dict(path=huge, n=n // 4, window=mib, memory=15 * mib, handles=15), True),
            ("use_region+buffer(), 64 KiB windows, 16 MiB limit, 16 MiB file", "cursor_moves", ">= 3x",
             dict(path=small, n=n, window=64 * kib, memory=16 * mib), False),
            ("  same, 1 MiB limit, 64 MiB file (kernel-bound)", "cursor_moves", "-",
             dict(path=large, n=n // 4, window=64 * kib, memory=mib), False),
            ("gitdb: read every object of a pack (300 commits)", "gitdb_pack", "faster",
             dict(pack=pack, rounds=max(1, 3 // scale)), False),
        ]
        results = []
        for title, name, goal, params, with_mmap in workloads:
            log(f"running {name}")
            ref = measure(REF, name, opts.repeat, **params)
            ours = measure(OURS, name, opts.repeat, **params)
            std = measure(OURS, name, opts.repeat, stdlib=True, **params) if with_mmap else None
            results.append(dict(workload=title, reference_s=ref, ours_s=ours, mmap_s=std,
                                ratio=ref / ours, vs_mmap=None if std is None else ours / std, goal=goal))
        # The same gitdb reads with every read recorded (SMMAP_TRACE), in
        # turn with untraced runs, best of each.
        log("running gitdb_pack, traced and not")
        params = dict(pack=pack, rounds=max(1, 3 // scale))
        trace = os.path.join(tmp, "gitdb.trace")
        off, on = [], []
        for _ in range(opts.repeat):
            off.append(measure(OURS, "gitdb_pack", 1, **params))
            on.append(measure(OURS, "gitdb_pack", 1, trace=trace, **params))
        traced = dict(off_s=min(off), on_s=min(on), trace_bytes=os.path.getsize(trace))
    width = max(len(r["workload"]) for r in results)
    print(f"{'workload':<{width}}  {'smmap 6.0.0':>12}  {'ours':>10}  {'speed-up':>9}  "
          f"{'mmap.mmap':>10}  {'ours/mmap':>9}  goal")
    for r in results:
        std = "-" if r["mmap_s"] is None else f"{r['mmap_s']:.3f}s"
        vs = "-" if r["vs_mmap"] is None else f"{r['vs_mmap']:.2f}x"
        print(f"{r['workload']:<{width}}  {r['reference_s']:>11.3f}s  {r['ours_s']:>9.3f}s  "
              f"{r['ratio']:>8.1f}x  {std:>10}  {vs:>9}  {r['goal']}")
    print(f"gitdb with tracing on (SMMAP_TRACE, {traced['trace_bytes']} bytes of trace): "
          f"{traced['on_s']:.3f}s against {traced['off_s']:.3f}s off: "
          f"{traced['on_s'] / traced['off_s']:.3f}x (goal <= 1.05x)")
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump(dict(results=results, tracing=traced, time=time.time()), f, indent=2)


if __name__ == "__main__":
    main()
