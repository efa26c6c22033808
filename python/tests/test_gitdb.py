"""A real client: gitdb (installed with ``pip install --no-deps gitdb``, as its
metadata pins smmap<6) reads every object of a pack made by ``git gc``
through our smmap, and gets the bytes ``git cat-file --batch`` gives."""
import shutil

import pytest

from gitrepo import all_objects, make_repo
from smmap import SlidingWindowMapManager, StaticWindowMapManager

gitdb_pack = pytest.importorskip("gitdb.pack")
pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    path = tmp_path_factory.mktemp("repo")
    pack = make_repo(path, commits=300)
    return pack, all_objects(path)


def read_everything(pack, expected):
    entity = gitdb_pack.PackEntity(pack)
    index = entity.index()
    assert index.size() == len(expected)
    seen = 0
    for i in range(index.size()):
        sha = index.sha(i)
        kind, content = expected[sha]
        info = entity.info_at_index(i)
        assert info.type == kind and info.size == len(content)
        stream = entity.stream_at_index(i)
        assert stream.read() == content, sha.hex()
        seen += 1
    assert seen == len(expected)
    # Sequential iteration over the pack, and the checksums.
    assert sum(1 for _ in entity.info_iter()) == len(expected)
    assert entity.pack().checksum() == index.packfile_checksum()
    assert len(index.indexfile_checksum()) == 20
    assert len(index.offsets()) == len(expected)
    for sha in list(expected)[:50]:
        assert entity.is_valid_stream(sha, use_crc=True)
    entity.close()


def test_gitdb_reads_every_object_with_the_default_manager(repo):
    pack, expected = repo
    assert any(kind == b"blob" for kind, _ in expected.values())
    read_everything(pack, expected)


@pytest.mark.parametrize("make", [
    lambda: StaticWindowMapManager(max_open_handles=2),
    # Every region released is over the memory limit, so it is unmapped at
    # once: the pack and index are mapped again and again.
    lambda: SlidingWindowMapManager(max_memory_size=1, max_open_handles=2),
], ids=["static-2-handles", "sliding-1-byte-limit"])
def test_gitdb_reads_every_object_under_tight_limits(repo, monkeypatch, make):
    # gitdb reads an object from the window at its offset without moving
    # on, so its windows must be large (as with the reference); the limits
    # on memory and handles are what can be tight.
    pack, expected = repo
    mman = make()
    monkeypatch.setattr(gitdb_pack, "mman", mman)
    read_everything(pack, expected)
    read_everything(pack, expected)
    stats = mman.stats()
    assert stats["peak_windows"] <= 2
    mman._verify_invariants()
    assert mman.collect() >= 0
    assert mman.num_file_handles() == 0
