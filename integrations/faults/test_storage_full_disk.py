"""A real full disk: the store on an 8 MB tmpfs (mounted for the test; skipped where mounting is not
allowed -- tests/test_store_full_disk.py simulates ENOSPC and SQLITE_FULL everywhere).

An artifact bigger than the free space, and a catalog that cannot grow: a clear ArtifactStoreError,
the catalog and outbox exactly as before, no temp files, and the store works once space is freed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from storage_support import fill, tmpfs, unsound_blobs

from tracelet_artifacts.artifact import TraceletArtifact
from tracelet_artifacts.errors import ArtifactStoreError
from tracelet_artifacts.experiment import Experiment
from tracelet_artifacts.settings import TraceletSettings
from tracelet_artifacts.store.embedded import EmbeddedStore

pytestmark = pytest.mark.integration

Snapshot = tuple[list[tuple[str, str]], list[tuple[int, str, str, int]]]


CATALOG_FULL = r"catalog at .* failed: database or disk is full.*disk has space.*nothing was half-written"


def _plan(_manifest: Any) -> dict[str, dict[str, Any]]:
    return {"mlflow": {"backend": "mlflow"}}


def _snapshot(store: EmbeddedStore) -> Snapshot:
    versions = [(v.ref, v.digest) for v in store.catalog.search()]
    outbox = [(o.version_id, o.backend, o.status, o.attempts) for o in store.catalog.outbox()]
    return versions, outbox


def _big(src: Path, count: int = 3, size: int = 4 << 20) -> TraceletArtifact:
    src.mkdir(exist_ok=True)
    artifact = TraceletArtifact("big", "dataset", "larger than the disk")
    for i in range(count):
        (src / f"part-{i}.bin").write_bytes(os.urandom(size))
        artifact.add_file(src / f"part-{i}.bin", f"part-{i}.bin")
    return artifact


@pytest.fixture
def small_disk(tmp_path: Path) -> Any:
    with tmpfs(tmp_path / "disk", "8m") as folder:
        yield folder


def test_an_artifact_bigger_than_the_free_space_fails_cleanly(small_disk: Path, tmp_path: Path) -> None:
    store = EmbeddedStore(small_disk / "store")
    store.log(TraceletArtifact("cfg", "config").add_object({"lr": 0.1}, "hparams"), run_id="r1", plan=_plan)
    before = _snapshot(store)
    with pytest.raises(ArtifactStoreError, match=r"disk holding the blob store .* is full .*No space left.*gc"):
        store.log(_big(tmp_path / "src"), run_id="r2", plan=_plan)
    assert _snapshot(store) == before
    assert list(store.blobs.tmp.iterdir()) == []
    assert unsound_blobs(store.blobs.root) == []
    store.gc(grace_s=0)  # free the space the failed artifact's finished blobs took
    small = store.log(TraceletArtifact("notes", "config").add_object({"ok": True}, "notes"), plan=_plan)
    assert small.ref == "notes:v1" and store.verify("notes", "v1") == []
    store.close()


def test_experiment_log_artifact_on_a_full_disk_raises_and_the_run_goes_on(small_disk: Path, tmp_path: Path) -> None:
    settings = TraceletSettings(store_path=small_disk / "store")
    with Experiment("full", settings=settings) as exp:
        with pytest.raises(ArtifactStoreError, match="is full"):
            exp.log_artifact(_big(tmp_path / "src"))
        assert exp.store.catalog.search() == []
        exp.store.gc(grace_s=0)
        assert exp.log_artifact(TraceletArtifact("cfg", "config").add_object({"a": 1}, "cfg"))["local"].ok
    assert list((small_disk / "store" / "blobs" / "tmp").iterdir()) == []


def test_a_catalog_that_cannot_grow_on_a_full_disk_fails_cleanly(small_disk: Path) -> None:
    store = EmbeddedStore(small_disk / "store")
    hparams = {"lr": 0.1}
    store.log(TraceletArtifact("cfg", "config").add_object(hparams, "hparams"), run_id="r1", plan=_plan)
    before = _snapshot(store)
    filler = fill(small_disk)
    assert os.statvfs(small_disk).f_bavail == 0
    # Same content (no blob to write), a new name and a large description: only the catalog must grow.
    renamed = TraceletArtifact("cfg-copy", "config", "d" * 2_000_000).add_object(hparams, "hparams")
    with pytest.raises(ArtifactStoreError, match=CATALOG_FULL):
        store.log(renamed, run_id="r2", plan=_plan)
    assert _snapshot(store) == before
    assert store.catalog.names() == ["cfg"]
    filler.unlink()
    assert store.log(renamed, run_id="r2", plan=_plan).ref == "cfg-copy:v1"
    assert [o.backend for o in store.catalog.outbox()] == ["mlflow", "mlflow"]
    store.close()
