"""Records the traces kept beside this script: what gitdb and GitPython,
unmodified, read through smmap, traced with the SMMAP_TRACE environment
variable. `smmap bench --replay TRACE --sweep` replays them (against the
pack they read, or files of its size with --make-files).

    python traces/record.py gitdb-pack GIT_DIR OUT.trace
        gitdb's PackEntity reads every object of the repository's one pack,
        in the order of their hashes (the order of the pack's index).
    python traces/record.py gitpython-walk GIT_DIR OUT.trace
        GitPython (odbt=GitDB) walks every commit reachable from HEAD, newest
        first, and reads each commit, tree and blob it meets once.

GIT_DIR must hold a single pack (`git repack -a -d -f`, `git gc`). The
workload runs in a child interpreter with SMMAP_TRACE=OUT, as any program
would be traced; the trace is written when the interpreter exits. An OUT
ending in .gz is compressed (gzip -9) afterwards, as the kept traces are."""
import gzip
import os
import subprocess
import sys
import textwrap

WORKLOADS = {
    "gitdb-pack": """
        import glob, os, sys
        from gitdb.pack import PackEntity
        git_dir = sys.argv[1]
        (pack,) = glob.glob(os.path.join(git_dir, "objects", "pack", "pack-*.pack"))
        entity = PackEntity(pack)
        index = entity.index()
        shas = sorted(index.sha(i) for i in range(index.size()))
        total = 0
        for sha in shas:
            total += len(entity.stream(sha).read())
        print(f"{len(shas)} objects, {total} bytes")
    """,
    "gitpython-walk": """
        import sys
        import git
        from git import GitDB
        repo = git.Repo(sys.argv[1], odbt=GitDB)
        seen = set()
        total = 0
        def tree(t):
            global total
            if t.binsha in seen:
                return
            seen.add(t.binsha)
            for item in t:
                if item.type == "tree":
                    tree(item)
                elif item.type == "blob" and item.binsha not in seen:
                    seen.add(item.binsha)
                    total += len(item.data_stream.read())
        for commit in repo.iter_commits("HEAD"):
            seen.add(commit.binsha)
            total += len(commit.message)
            tree(commit.tree)
        print(f"{len(seen)} objects, {total} bytes")
    """,
}


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in WORKLOADS:
        sys.exit(__doc__)
    what, git_dir, out = sys.argv[1:]
    plain = out[:-3] if out.endswith(".gz") else out
    env = dict(os.environ, SMMAP_TRACE=os.path.abspath(plain))
    code = textwrap.dedent(WORKLOADS[what])
    done = subprocess.run([sys.executable, "-c", code, git_dir], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{what} failed (exit status {done.returncode}):\n{done.stderr}")
    size = os.path.getsize(plain)
    if plain != out:
        with open(plain, "rb") as f, open(out, "wb") as z:
            # mtime=0: the same trace compresses to the same bytes.
            with gzip.GzipFile(fileobj=z, mode="wb", compresslevel=9, mtime=0) as g:
                g.write(f.read())
        os.remove(plain)
    print(f"{what}: {done.stdout.strip()}; trace {out}: {size} bytes, {os.path.getsize(out)} as stored")


if __name__ == "__main__":
    main()
