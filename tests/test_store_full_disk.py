"""A full disk, simulated (the real one, on a small tmpfs, is in integrations/faults/test_storage_full_disk.py).

Blob writes fail with ENOSPC part-way; the catalog cannot grow (SQLite ``max_page_count``, which makes
SQLite answer exactly as on a full disk: SQLITE_FULL). Either way: a clear ArtifactStoreError, the catalog
and outbox as they were, no temp files, and the store works once there is room again.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from tracelet_artifacts.artifact import TraceletArtifact
from tracelet_artifacts.errors import ArtifactStoreError
from tracelet_artifacts.store import blobs as blobs_module
from tracelet_artifacts.store.embedded import EmbeddedStore

CATALOG_FULL = r"catalog at .* failed: database or disk is full.*disk has space.*nothing was half-written"


def _plan(_manifest: Any) -> dict[str, dict[str, Any]]:
    return {"mlflow": {"backend": "mlflow"}}


def _snapshot(store: EmbeddedStore) -> tuple[list[str], list[tuple[int, str, str]], list[tuple[str, ...]]]:
    versions = [v.ref for v in store.catalog.search()]
    outbox = [(o.version_id, o.backend, o.status) for o in store.catalog.outbox()]
    stat_rows = [tuple(map(str, r)) for r in store.catalog.db.read("SELECT path, sha256 FROM stat_cache")]
    return versions, outbox, stat_rows


def _big(tmp_path: Path) -> TraceletArtifact:
    files = []
    for i in range(3):
        path = tmp_path / f"shard{i}.bin"
        path.write_bytes(os.urandom(1 << 20))
        files.append(path)
    artifact = TraceletArtifact("big", "dataset")
    for path in files:
        artifact.add_file(path, path.name)
    return artifact


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedStore:
    store = EmbeddedStore(tmp_path / "store")
    store.log(TraceletArtifact("cfg", "config").add_object({"lr": 0.1}, "hparams"), run_id="r1", plan=_plan)
    return store


def _kernel_copy_fills_the_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.copy_file_range

    def copy(src: int, dst: int, count: int, *args: Any) -> int:
        if os.fstat(dst).st_size >= 256 * 1024:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(src, dst, min(count, 256 * 1024), *args)

    monkeypatch.setattr(os, "copy_file_range", copy)


def _sendfile_fills_the_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(blobs_module, "_COPY_FILE_RANGE", False)  # the fall-back copy: sendfile
    real = os.sendfile

    def copy(out: int, source: int, offset: Any, count: int) -> int:
        if os.fstat(out).st_size >= 256 * 1024:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(out, source, offset, min(count, 256 * 1024))

    monkeypatch.setattr(os, "sendfile", copy)


def _small_files_fill_the_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    real = blobs_module._write_all

    def no_room(fd: int, data: Any) -> None:  # files up to SMALL_FILE_BYTES are written from memory, in place
        real(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(blobs_module, "SMALL_FILE_BYTES", 2 << 20)
    monkeypatch.setattr(blobs_module, "_write_all", no_room)


@pytest.mark.skipif(not hasattr(os, "copy_file_range"), reason="no copy_file_range on this OS")
@pytest.mark.parametrize("fill", [_kernel_copy_fills_the_disk, _sendfile_fills_the_disk, _small_files_fill_the_disk])
def test_a_full_disk_while_storing_blobs_is_a_clear_error_and_changes_nothing(
    store: EmbeddedStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fill: Any
) -> None:
    before = _snapshot(store)
    artifact = _big(tmp_path)
    with monkeypatch.context() as patch:
        fill(patch)
        with pytest.raises(ArtifactStoreError, match=r"disk holding the blob store .* is full.*free space there"):
            store.log(artifact, run_id="r2", plan=_plan)
    assert _snapshot(store) == before
    assert list(store.blobs.tmp.iterdir()) == []
    assert all(store.blobs.verify(sha) for sha in store.blobs.digests())  # nothing half-written under a digest
    record = store.log(artifact, run_id="r2", plan=_plan)  # room again: the same artifact logs fine
    assert record.ref == "big:v1" and store.verify("big", "v1") == []


def test_a_catalog_that_cannot_grow_is_a_clear_error_and_nothing_is_half_written(
    store: EmbeddedStore, tmp_path: Path
) -> None:
    before = _snapshot(store)
    db = store.catalog.db.connection()  # this thread's connection: the one log() writes with
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count={pages}")
    described = TraceletArtifact("cfg2", "config", description="x" * 200_000).add_object({"lr": 0.2}, "hparams")
    with pytest.raises(ArtifactStoreError, match=CATALOG_FULL):
        store.log(described, run_id="r2", plan=_plan)
    assert _snapshot(store) == before
    assert not db.in_transaction
    db.execute("PRAGMA max_page_count=1073741823")  # room again
    assert store.log(described, run_id="r2", plan=_plan).ref == "cfg2:v1"
    assert [o.backend for o in store.catalog.outbox()] == ["mlflow", "mlflow"]
