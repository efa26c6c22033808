"""Builds a git repository with the ``git`` command-line tool: a few hundred
commits of evolving text and binary files, then ``git gc`` so that every
object lives in one pack with deltas. Used by the gitdb test and the
benchmark."""
import glob
import os
import random
import subprocess

GIT_ENV = {
    "GIT_AUTHOR_NAME": "smmap test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "smmap test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": os.devnull,
}


def git(repo, *args, input=None):
    env = dict(os.environ, **GIT_ENV)
    return subprocess.run(["git", "-C", str(repo), *args], input=input, env=env,
                          check=True, stdout=subprocess.PIPE).stdout


def _fast_import_stream(commits, seed):
    rnd = random.Random(seed)
    words = [("w%d" % i).encode() for i in range(500)]
    texts = {"src/m%d.txt" % i: [b" ".join(rnd.choices(words, k=12)) for _ in range(40)] for i in range(8)}
    binary = bytearray(rnd.getrandbits(8) for _ in range(30000))
    out = []
    for n in range(1, commits + 1):
        changes = []
        for path in rnd.sample(sorted(texts), rnd.randint(1, 3)):
            lines = texts[path]
            for _ in range(rnd.randint(1, 4)):
                op = rnd.random()
                line = b" ".join(rnd.choices(words, k=rnd.randint(3, 15)))
                if op < 0.6 or len(lines) < 5:
                    lines.insert(rnd.randrange(len(lines) + 1), line)
                elif op < 0.8:
                    lines[rnd.randrange(len(lines))] = line
                else:
                    del lines[rnd.randrange(len(lines))]
            changes.append((path, b"\n".join(lines) + b"\n"))
        if n % 10 == 1:
            for _ in range(20):
                binary[rnd.randrange(len(binary))] = rnd.getrandbits(8)
            binary += bytes(rnd.getrandbits(8) for _ in range(500))
            changes.append(("data/blob.bin", bytes(binary)))
        msg = b"commit %d\n\n%s\n" % (n, b" ".join(rnd.choices(words, k=20)))
        out.append(b"commit refs/heads/main\nmark :%d\n" % n)
        out.append(b"committer smmap test <test@example.invalid> %d +0000\n" % (1700000000 + n * 60))
        out.append(b"data %d\n%s\n" % (len(msg), msg))
        if n > 1:
            out.append(b"from :%d\n" % (n - 1))
        for path, content in changes:
            out.append(b"M 100644 inline %s\ndata %d\n%s\n" % (path.encode(), len(content), content))
        out.append(b"\n")
    return b"".join(out)


def make_repo(path, commits=300, seed=0):
    """Creates the repository at ``path``; returns the path of its pack."""
    os.makedirs(path, exist_ok=True)
    git(path, "init", "-q")
    git(path, "fast-import", "--quiet", input=_fast_import_stream(commits, seed))
    git(path, "gc", "-q", "--prune=now")
    packs = glob.glob(os.path.join(str(path), ".git", "objects", "pack", "*.pack"))
    assert len(packs) == 1, packs
    return packs[0]


def all_objects(repo):
    """Every object of the repository as {binary sha: (type, content)}, read
    with ``git cat-file --batch``."""
    listing = git(repo, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)")
    shas = listing.split()
    raw = git(repo, "cat-file", "--batch", input=b"\n".join(shas) + b"\n")
    objects = {}
    pos = 0
    while pos < len(raw):
        end = raw.index(b"\n", pos)
        sha, kind, size = raw[pos:end].split()
        size = int(size)
        content = raw[end + 1:end + 1 + size]
        objects[bytes.fromhex(sha.decode())] = (kind, content)
        pos = end + 1 + size + 1
    assert len(objects) == len(shas)
    return objects
