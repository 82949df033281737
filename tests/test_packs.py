"""Pack files: the small files of a large ingest go into one pack (store/packs.py), and every reader of the
store finds, reads, verifies, repairs and collects them as it does blob files."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tracelet_artifacts import EmbeddedStore, TraceletArtifact, digest
from tracelet_artifacts.errors import ArtifactFileError
from tracelet_artifacts.procs import HOST
from tracelet_artifacts.store.packs import PACK_FROM

pytestmark = pytest.mark.usefixtures("isolated")


def _folder(root: Path, count: int, tag: str = "", size: int = 700) -> Path:
    for index in range(count):
        path = root / f"part-{index // 50}" / f"{index:04d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes((f"{tag}{index}-".encode() * size)[:size])
    return root


def _packs(store: EmbeddedStore) -> list[Path]:
    return sorted((store.blobs.root / "packs").glob("*.pack"))


def _loose(store: EmbeddedStore) -> set[str]:
    return {key for key, _ in store.blobs.files()}


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedStore:
    opened = EmbeddedStore(tmp_path / "store")
    yield opened
    opened.close()


def test_a_folder_of_many_small_files_is_one_pack_and_reads_back_in_another_process_s_store(
        store: EmbeddedStore, tmp_path: Path) -> None:
    src = _folder(tmp_path / "src", PACK_FROM + 36)
    version = store.log(TraceletArtifact("data", "dataset").add_dir(src))
    assert len(_packs(store)) == 1 and _loose(store) == set()  # no file per blob
    assert store.wait_durable(30) and store.get("data").durability == "durable"

    second = EmbeddedStore(store.root)  # another handle: only the catalog and the pack index to go by
    try:
        shutil.rmtree(src)  # the source is gone: only the store holds the bytes
        files = second.fetch("data", version.version, tmp_path / "out")
        assert len(files) == PACK_FROM + 36 and second.verify("data") == []
        assert _folder(tmp_path / "again", PACK_FROM + 36).joinpath("part-1", "0070.bin").read_bytes() == \
            (tmp_path / "out" / "part-1" / "0070.bin").read_bytes()
        entry = version.manifest.entries[5]
        path = second.blob_path(entry.digest)  # a caller that needs a file gets one, written out once
        assert path.is_file() and digest.file_key(path) == entry.digest and entry.digest in _loose(second)
    finally:
        second.close()


def test_fewer_small_files_than_a_pack_needs_are_files_of_their_own(store: EmbeddedStore, tmp_path: Path) -> None:
    version = store.log(TraceletArtifact("few", "dataset").add_dir(_folder(tmp_path / "src", PACK_FROM - 1)))
    assert _packs(store) == [] and _loose(store) == {e.digest for e in version.manifest.entries}


def test_many_files_of_which_few_are_small_leave_no_pack(store: EmbeddedStore, tmp_path: Path) -> None:
    src = _folder(tmp_path / "src", PACK_FROM, size=300 << 10)  # large files: a blob file each
    _folder(tmp_path / "src" / "small", 3)
    version = store.log(TraceletArtifact("data", "dataset").add_dir(src))
    assert _packs(store) == [] and _loose(store) == {e.digest for e in version.manifest.entries}
    assert len(version.manifest.entries) == PACK_FROM + 3 and store.verify("data") == []


def test_a_folder_of_small_files_is_stored_without_a_stat_beforehand_and_large_ones_among_them_are_planned(
        store: EmbeddedStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tracelet_artifacts.store import ingest

    src = _folder(tmp_path / "src", PACK_FROM + 36)
    stats: list[str] = []
    real_stat = os.stat

    def counted(path: str, *args: object, **kwargs: object) -> os.stat_result:
        stats.append(str(path))
        return real_stat(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest.os, "stat", counted)
    store.log(TraceletArtifact("small", "dataset").add_dir(src))
    assert [p for p in stats if p.endswith(".bin")] == []  # each file's size came from its open descriptor

    mixed = _folder(tmp_path / "mixed", PACK_FROM + 36, tag="m")  # new content: nothing known of it
    for index in (40, 41, 90):  # large files in the middle: the files from the first on are planned, then
        (mixed / f"part-{index // 50}" / f"{index:04d}.bin").write_bytes(os.urandom(300 << 10))
    planned: list[int] = []
    real_plan = ingest.BlobIntake._plan

    def plan(self: ingest.BlobIntake, todo: list[str]) -> None:
        planned.append(len(todo))
        real_plan(self, todo)

    monkeypatch.setattr(ingest.BlobIntake, "_plan", plan)
    version = store.log(TraceletArtifact("mixed", "dataset").add_dir(mixed))
    assert planned == [PACK_FROM + 36 - 40]  # once, at the first large file: it and every file after it
    large = {e.digest for e in version.manifest.entries if e.size > 700}
    assert len(large) == 3 and large <= _loose(store) and len(_packs(store)) == 2
    store.fetch("mixed", version.version, tmp_path / "out")
    assert [p.read_bytes() for p in sorted((tmp_path / "out").rglob("*.bin"))] == \
        [p.read_bytes() for p in sorted(mixed.rglob("*.bin"))]


def test_logging_the_same_content_again_writes_no_second_copy(store: EmbeddedStore, tmp_path: Path) -> None:
    src = _folder(tmp_path / "src", PACK_FROM)
    first = store.log(TraceletArtifact("data", "dataset").add_dir(src))
    shutil.copytree(src, tmp_path / "copy")  # same content, new files: the stat cache cannot vouch for them
    second = store.log(TraceletArtifact("data", "dataset").add_dir(tmp_path / "copy"))
    assert second.version == first.version and len(_packs(store)) == 1  # the copy's pack had nothing new: gone
    (tmp_path / "copy" / "part-0" / "0001.bin").write_bytes(b"changed")
    third = store.log(TraceletArtifact("data", "dataset").add_dir(tmp_path / "copy"))
    assert third.version == first.version + 1 and len(_packs(store)) == 1  # one new blob: a file of its own
    assert store.verify("data", third.version) == [] and store.verify("data", first.version) == []


def test_gc_removes_a_pack_no_version_uses_and_rewrites_one_mostly_unused(store: EmbeddedStore, tmp_path: Path) -> None:
    old = _folder(tmp_path / "old", 100, "old")
    store.log(TraceletArtifact("old", "dataset").add_dir(old))
    mixed = tmp_path / "mixed"  # 30 of old's files and 70 new ones
    _folder(mixed, 100, "new")
    for index in range(30):
        name = Path(f"part-{index // 50}") / f"{index:04d}.bin"
        shutil.copyfile(old / name, mixed / name)
    kept = store.log(TraceletArtifact("mixed", "dataset").add_dir(mixed))
    (first_pack, second_pack) = sorted(_packs(store), key=lambda p: p.stat().st_mtime_ns)
    assert first_pack.stat().st_size == 100 * 700 and second_pack.stat().st_size == 100 * 700  # 30 dead

    store.remove_version("old", 1, force=True)
    count, size = store.gc()
    assert (count, size) == (70, 70 * 700)
    packs = _packs(store)
    assert first_pack not in packs and second_pack in packs and len(packs) == 2  # 30 live of 100: rewritten
    assert sum(p.stat().st_size for p in packs) == 100 * 700 + 30 * 700
    assert store.verify("mixed", kept.version) == []
    store.fetch("mixed", kept.version, tmp_path / "out")
    assert (tmp_path / "out" / "part-0" / "0003.bin").read_bytes() == (old / "part-0" / "0003.bin").read_bytes()

    store.remove_version("mixed", kept.version, force=True)
    assert store.gc() == (100, 100 * 700)
    assert _packs(store) == [] and list(store.blobs.inventory()) == []


def test_a_failed_ingest_leaves_no_pack_and_a_dead_writer_s_unsealed_pack_is_removed(
        store: EmbeddedStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = _folder(tmp_path / "src", PACK_FROM + 1)
    builder = TraceletArtifact("data", "dataset").add_dir(src)
    (src / "part-1" / f"{PACK_FROM:04d}.bin").unlink()  # the last file, removed after add_dir
    with pytest.raises(ArtifactFileError, match="was removed"):
        store.log(builder)
    assert _packs(store) == [] and list(store.blobs.inventory()) == []

    dead = store.blobs.root / "packs" / f"{HOST}-999999999-abc.pack"  # a writer killed before it sealed
    dead.write_bytes(b"x" * 4096)
    alive = store.blobs.root / "packs" / f"{HOST}-{os.getpid()}-abc.pack"
    alive.write_bytes(b"y")
    assert store.blobs.clean_temp() == 1 and not dead.exists() and alive.exists()


def test_a_corrupt_packed_blob_is_never_served_and_is_found_by_verify(store: EmbeddedStore, tmp_path: Path) -> None:
    version = store.log(TraceletArtifact("data", "dataset").add_dir(_folder(tmp_path / "src", PACK_FROM)))
    entry = version.manifest.entries[3]
    assert store.blobs.packs is not None
    found = store.blobs.packs.find(entry.digest)
    assert found is not None
    pack, offset, _ = found
    with open(pack, "r+b") as handle:
        handle.seek(offset)
        handle.write(b"\0" * 16)
    assert store.verify("data") == [entry.path]
    with pytest.raises(Exception, match="corrupt"):
        store.fetch("data", version.version, tmp_path / "out")
    assert not store.blobs.path(entry.digest).exists()  # never written out as a file under its key
    target = store.blobs.set_aside(entry.digest)  # what repair does: set aside, then fetch from a backend
    assert target is not None and target.is_file() and not store.blobs.exists(entry.digest)


def test_blobs_written_out_for_a_backend_are_kept_once_after_gc(store: EmbeddedStore, tmp_path: Path) -> None:
    version = store.log(TraceletArtifact("data", "dataset").add_dir(_folder(tmp_path / "src", PACK_FROM)))
    store.ensure_local(version.manifest)  # what a delivery does first: every blob as a file
    assert _loose(store) == {e.digest for e in version.manifest.entries} and len(_packs(store)) == 1
    assert store.gc() == (0, 0)  # nothing collected: the version uses every blob
    assert _packs(store) == [] and store.blobs.packs is not None and store.blobs.packs.entries() == []
    assert store.verify("data") == []
    store.fetch("data", version.version, tmp_path / "out")
    name = Path("part-0") / "0007.bin"
    assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "src" / name).read_bytes()


def test_under_per_blob_durability_the_pack_is_on_disk_before_its_blobs_are_recorded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tracelet_artifacts.store import packs

    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    real_add = packs.PackIndex.add

    def add(self: packs.PackIndex, pack: str, rows: object, **options: int) -> bool:
        assert any(path.endswith(pack) for path in synced), "recorded before the pack was synced"
        return real_add(self, pack, rows, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(packs.os, "fsync", fsync)
    monkeypatch.setattr(packs.PackIndex, "add", add)
    store = EmbeddedStore(tmp_path / "store", durability="per-blob")
    try:
        version = store.log(TraceletArtifact("data", "dataset").add_dir(_folder(tmp_path / "src", PACK_FROM)))
        assert version.durability == "durable" and len(_packs(store)) == 1
    finally:
        store.close()


def test_a_small_file_that_grew_after_its_size_was_taken_is_packed_whole(
        store: EmbeddedStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tracelet_artifacts.store.packs import PackWriter

    src = _folder(tmp_path / "src", PACK_FROM)
    grown = src / "part-0" / "0003.bin"
    real = PackWriter.add_from

    def grow_then_read(self: PackWriter, fd: int, size: int) -> object:
        if os.readlink(f"/proc/self/fd/{fd}") == str(grown):  # its size is taken: it grows before it is read
            with grown.open("ab") as handle:
                handle.write(b"more" * 500)
        return real(self, fd, size)

    monkeypatch.setattr(PackWriter, "add_from", grow_then_read)
    version = store.log(TraceletArtifact("data", "dataset").add_dir(src))
    entry = next(e for e in version.manifest.entries if e.path == "part-0/0003.bin")
    assert entry.size == 2700 and entry.digest == digest.file_key(grown) and len(_packs(store)) == 1
    store.fetch("data", version.version, tmp_path / "out")
    assert (tmp_path / "out" / "part-0" / "0003.bin").read_bytes() == grown.read_bytes()
    assert store.verify("data") == []


def test_files_larger_than_the_pack_buffer_are_packed_too(
        store: EmbeddedStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tracelet_artifacts.store import packs

    monkeypatch.setattr(packs, "FLUSH_BYTES", 3000)  # a 700-byte file fits it; a 5,000-byte one does not
    src = _folder(tmp_path / "src", PACK_FROM)
    (src / "part-0" / "big.bin").write_bytes(os.urandom(5000))
    version = store.log(TraceletArtifact("data", "dataset").add_dir(src))
    assert len(_packs(store)) == 1 and _loose(store) == set() and len(version.manifest.entries) == PACK_FROM + 1
    store.fetch("data", version.version, tmp_path / "out")
    assert [p.read_bytes() for p in sorted((tmp_path / "out").rglob("*.bin"))] == \
        [p.read_bytes() for p in sorted(src.rglob("*.bin"))]
    assert store.verify("data") == []



def test_a_full_disk_or_a_broken_index_while_packing_is_the_store_s_clear_error_and_leaves_nothing(
        store: EmbeddedStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from tracelet_artifacts.errors import ArtifactStoreError
    from tracelet_artifacts.store import packs

    src = _folder(tmp_path / "src", PACK_FROM + 36, size=20_000)  # 2 MB: the pack's buffer is flushed
    real_write = os.write

    def full(fd: int, data: bytes) -> int:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".pack"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    with monkeypatch.context() as patch:
        patch.setattr(packs.os, "write", full)
        with pytest.raises(ArtifactStoreError, match=r"disk holding the blob store .* is full.*free space there"):
            store.log(TraceletArtifact("data", "dataset").add_dir(src))
    assert _packs(store) == [] and store.catalog.names() == [] and list(store.blobs.tmp.iterdir()) == []

    index = store.blobs.root / "packs" / "index.db"
    index.mkdir(parents=True)  # a database that cannot be opened
    with pytest.raises(ArtifactStoreError, match=r"pack index at .* failed"):
        store.log(TraceletArtifact("data", "dataset").add_dir(src))
    assert _packs(store) == [] and store.catalog.names() == []
    index.rmdir()
    store.blobs.packs.close()  # as a new handle would: the index is opened again
    version = store.log(TraceletArtifact("data", "dataset").add_dir(src))  # room again: it logs
    assert len(_packs(store)) == 1 and store.verify("data", version.version) == []
