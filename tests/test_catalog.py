"""The embedded store and its catalog: immutable versions, de-dup, conflicts, aliases, queries and fetch."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tracelet_artifacts import ArtifactType, EmbeddedStore, TraceletArtifact
from tracelet_artifacts.errors import (
    ArtifactStoreError,
    ArtifactStoreNotFoundError,
    IntegrityError,
    VersionConflictError,
)

pytestmark = pytest.mark.usefixtures("isolated")


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedStore:
    return EmbeddedStore(tmp_path / "store", fsync=False)


def _config(name: str = "cfg", **values: object) -> TraceletArtifact:
    return TraceletArtifact(name, ArtifactType.CONFIG).add_object(values or {"lr": 0.1}, "hparams")


def test_first_log_creates_v1_and_points_latest_at_it(store: EmbeddedStore) -> None:
    record = store.log(_config())
    assert (record.version, record.label, record.ref, record.created) == (1, "v1", "cfg:v1", True)
    assert record.aliases == ("latest",)
    assert store.get("cfg").version == 1


def test_new_content_creates_consecutive_versions(store: EmbeddedStore) -> None:
    labels = [store.log(_config(lr=lr)).label for lr in (0.1, 0.2, 0.3)]
    assert labels == ["v1", "v2", "v3"]
    assert [v.label for v in store.catalog.versions("cfg")] == ["v1", "v2", "v3"]


def test_relogging_same_content_creates_no_new_version(store: EmbeddedStore) -> None:
    first = store.log(_config(lr=0.1))
    again = store.log(_config(lr=0.1))
    assert (again.version, again.created, again.digest) == (1, False, first.digest)
    assert len(store.catalog.versions("cfg")) == 1


def test_relogging_an_older_content_returns_that_version_and_moves_latest(store: EmbeddedStore) -> None:
    store.log(_config(lr=0.1))
    store.log(_config(lr=0.2))
    back = store.log(_config(lr=0.1))
    assert (back.version, back.created) == (1, False)
    assert store.get("cfg", "latest").version == 1
    assert len(store.catalog.versions("cfg")) == 2


def test_identical_files_in_different_artifacts_share_one_blob(store: EmbeddedStore, tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(b"weights" * 1000)
    store.log(TraceletArtifact("a", "weights").add_file(tmp_path / "w.bin"))
    store.log(TraceletArtifact("b", "weights").add_file(tmp_path / "w.bin", "other/name.bin"))
    assert len(list(store.blobs.digests())) == 1


def test_versions_are_immutable_once_written(store: EmbeddedStore) -> None:
    v1 = store.log(_config(lr=0.1))
    store.log(_config(lr=0.2))
    again = store.get("cfg", 1)
    assert again.digest == v1.digest
    assert again.manifest.to_dict() == v1.manifest.to_dict()


def test_explicit_version_with_different_content_is_a_conflict(store: EmbeddedStore) -> None:
    store.log(_config(lr=0.1), version=1)
    with pytest.raises(VersionConflictError, match=r"cfg:v1 already exists with different content"):
        store.log(_config(lr=0.2), version=1)
    assert store.get("cfg", 1).manifest.to_dict() == store.log(_config(lr=0.1), version=1).manifest.to_dict()
    assert len(store.catalog.versions("cfg")) == 1


def test_explicit_version_with_same_content_returns_it(store: EmbeddedStore) -> None:
    store.log(_config(lr=0.1), version=3)
    again = store.log(_config(lr=0.1), version=3)
    assert (again.version, again.created) == (3, False)


def test_conflict_leaves_aliases_and_outbox_untouched(store: EmbeddedStore) -> None:
    store.log(_config(lr=0.1), version=1, aliases=["best"])
    with pytest.raises(VersionConflictError):
        store.log(_config(lr=0.2), version=1, aliases=["prod"],
                  plan=lambda m: {"mlflow": {"backend": "mlflow"}})
    assert store.get("cfg", "best").version == 1
    with pytest.raises(ArtifactStoreNotFoundError):
        store.get("cfg", "prod")
    assert store.catalog.outbox() == []


def test_next_automatic_version_follows_the_highest(store: EmbeddedStore) -> None:
    store.log(_config(lr=0.1), version=5)
    assert store.log(_config(lr=0.2)).version == 6


# -- aliases ---------------------------------------------------------------------------------------

def test_latest_moves_to_each_new_version(store: EmbeddedStore) -> None:
    store.log(_config(lr=0.1))
    store.log(_config(lr=0.2))
    assert store.get("cfg", "latest").version == 2
    assert store.get("cfg", 1).aliases == ()


def test_best_is_set_on_request_and_stays_put(store: EmbeddedStore) -> None:
    store.log(_config(lr=0.1), aliases=["best"])
    store.log(_config(lr=0.2))
    assert store.get("cfg", "best").version == 1
    assert store.get("cfg", 1).aliases == ("best",)
    assert store.get("cfg", 2).aliases == ("latest",)


def test_user_alias_moves_atomically(store: EmbeddedStore) -> None:
    store.log(_config(lr=0.1))
    store.log(_config(lr=0.2))
    store.catalog.set_alias("cfg", "prod", "v1")
    assert store.get("cfg", "prod").version == 1
    moved = store.catalog.set_alias("cfg", "prod", 2)
    assert moved.aliases == ("latest", "prod")
    assert store.get("cfg", 1).aliases == ()


def test_removed_alias_no_longer_resolves(store: EmbeddedStore) -> None:
    store.log(_config(), aliases=["candidate"])
    store.catalog.remove_alias("cfg", "candidate")
    with pytest.raises(ArtifactStoreNotFoundError, match="alias 'candidate'"):
        store.get("cfg", "candidate")


def test_latest_cannot_be_removed(store: EmbeddedStore) -> None:
    store.log(_config())
    with pytest.raises(ArtifactStoreError, match="latest"):
        store.catalog.remove_alias("cfg", "latest")


@pytest.mark.parametrize("alias", ["v3", "3", "", "a,b", "x" * 101])
def test_alias_that_looks_like_a_version_or_is_malformed_is_refused(store: EmbeddedStore, alias: str) -> None:
    with pytest.raises(ArtifactStoreError, match="Invalid alias"):
        store.log(_config(), aliases=[alias])
    assert store.catalog.names() == []


def test_alias_on_a_missing_version_is_not_found(store: EmbeddedStore) -> None:
    store.log(_config())
    with pytest.raises(ArtifactStoreNotFoundError):
        store.catalog.set_alias("cfg", "best", 9)


# -- lookups ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", [2, "2", "v2", "V2"])
def test_get_accepts_version_numbers_and_labels(store: EmbeddedStore, version: object) -> None:
    store.log(_config(lr=0.1))
    store.log(_config(lr=0.2))
    assert store.get("cfg", version).version == 2  # type: ignore[arg-type]


def test_missing_version_lists_the_existing_ones(store: EmbeddedStore) -> None:
    store.log(_config(lr=0.1))
    store.log(_config(lr=0.2))
    with pytest.raises(ArtifactStoreNotFoundError, match="v1, v2"):
        store.get("cfg", "v7")


@pytest.mark.parametrize("version", [0, "v0", "0", -1])
def test_a_version_that_cannot_exist_is_not_found(store: EmbeddedStore, version: object) -> None:
    store.log(_config())
    with pytest.raises(ArtifactStoreNotFoundError, match="its versions are: v1"):
        store.get("cfg", version)  # type: ignore[arg-type]


def test_missing_name_is_not_found(store: EmbeddedStore) -> None:
    with pytest.raises(ArtifactStoreNotFoundError, match="No artifact named 'nope'"):
        store.get("nope")


def _populate(store: EmbeddedStore, tmp_path: Path) -> None:
    (tmp_path / "m.pt").write_bytes(b"model")
    store.log(TraceletArtifact("vision/resnet", "model", labels=["baseline", "prod"],
                               metadata={"accuracy": 0.91, "team": "vision", "epochs": 10}).add_file(tmp_path / "m.pt"))
    store.log(TraceletArtifact("vision/vit", "model", labels=["baseline"],
                               metadata={"accuracy": 0.95, "team": "vision", "tuned": True}).add_object({"a": 1}, "x"))
    store.log(TraceletArtifact("nlp/bert", "checkpoint", labels=["prod"],
                               metadata={"team": "nlp", "epochs": 10}).add_object({"b": 1}, "x"))
    store.log(TraceletArtifact("nlp/bert-data", "dataset", metadata={"team": "nlp"}).add_object({"c": 1}, "x"))


def test_names_by_prefix_and_contains(store: EmbeddedStore, tmp_path: Path) -> None:
    _populate(store, tmp_path)
    assert store.catalog.names() == ["nlp/bert", "nlp/bert-data", "vision/resnet", "vision/vit"]
    assert store.catalog.names(prefix="vision/") == ["vision/resnet", "vision/vit"]
    assert store.catalog.names(contains="bert") == ["nlp/bert", "nlp/bert-data"]
    assert store.catalog.names(prefix="nlp/", contains="data") == ["nlp/bert-data"]


def test_name_prefix_is_literal_not_a_pattern(store: EmbeddedStore) -> None:
    store.log(_config("a_b"))
    store.log(_config("axb"))
    assert store.catalog.names(prefix="a_") == ["a_b"]
    assert store.catalog.names(contains="%") == []


def test_search_by_type(store: EmbeddedStore, tmp_path: Path) -> None:
    _populate(store, tmp_path)
    assert [v.name for v in store.catalog.search(artifact_type=ArtifactType.MODEL)] == ["vision/resnet", "vision/vit"]
    assert [v.name for v in store.catalog.search(artifact_type="checkpoint")] == ["nlp/bert"]


def test_search_by_labels_requires_all(store: EmbeddedStore, tmp_path: Path) -> None:
    _populate(store, tmp_path)
    assert [v.name for v in store.catalog.search(labels=["prod"])] == ["nlp/bert", "vision/resnet"]
    assert [v.name for v in store.catalog.search(labels=["prod", "baseline"])] == ["vision/resnet"]


def test_search_by_metadata_key_value(store: EmbeddedStore, tmp_path: Path) -> None:
    _populate(store, tmp_path)
    assert [v.name for v in store.catalog.search(metadata={"team": "nlp"})] == ["nlp/bert", "nlp/bert-data"]
    assert [v.name for v in store.catalog.search(metadata={"epochs": 10})] == ["nlp/bert", "vision/resnet"]
    assert [v.name for v in store.catalog.search(metadata={"tuned": True})] == ["vision/vit"]
    assert [v.name for v in store.catalog.search(metadata={"accuracy": 0.95, "team": "vision"})] == ["vision/vit"]
    assert store.catalog.search(metadata={"team": "audio"}) == []


def test_search_by_metadata_treats_equal_numbers_alike(store: EmbeddedStore) -> None:
    store.log(TraceletArtifact("a", "report", metadata={"loss": 2.0}).add_object({"a": 1}, "r"))
    store.log(TraceletArtifact("b", "report", metadata={"loss": 2}).add_object({"b": 1}, "r"))
    store.log(TraceletArtifact("c", "report", metadata={"loss": 2.5}).add_object({"c": 1}, "r"))
    assert [v.name for v in store.catalog.search(metadata={"loss": 2})] == ["a", "b"]
    assert [v.name for v in store.catalog.search(metadata={"loss": 2.0})] == ["a", "b"]
    assert [v.name for v in store.catalog.search(metadata={"loss": "2"})] == ["a", "b"]  # as the CLI passes it
    assert [v.name for v in store.catalog.search(metadata={"loss": 2.5})] == ["c"]


def test_search_combines_filters(store: EmbeddedStore, tmp_path: Path) -> None:
    _populate(store, tmp_path)
    found = store.catalog.search(artifact_type="model", labels=["prod"], metadata={"team": "vision"}, prefix="vision/")
    assert [v.ref for v in found] == ["vision/resnet:v1"]


def test_search_latest_only_returns_one_version_per_name(store: EmbeddedStore) -> None:
    store.log(_config(lr=0.1))
    store.log(_config(lr=0.2))
    assert [v.ref for v in store.catalog.search()] == ["cfg:v1", "cfg:v2"]
    assert [v.ref for v in store.catalog.search(latest_only=True)] == ["cfg:v2"]


def test_search_metadata_matches_the_version_that_has_it(store: EmbeddedStore) -> None:
    store.log(TraceletArtifact("run", "report", metadata={"stage": "dev"}).add_object({"a": 1}, "r"))
    store.log(TraceletArtifact("run", "report", metadata={"stage": "prod"}).add_object({"a": 2}, "r"))
    assert [v.ref for v in store.catalog.search(metadata={"stage": "prod"})] == ["run:v2"]


# -- fetch and integrity ---------------------------------------------------------------------------

def test_fetch_writes_files_back_with_their_paths(store: EmbeddedStore, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("alpha")
    (tmp_path / "src" / "deep").mkdir()
    (tmp_path / "src" / "deep" / "b.bin").write_bytes(b"\x00beta")
    store.log(TraceletArtifact("bundle", "custom").add_dir(tmp_path / "src", "files").add_object({"k": 1}, "meta"))
    progress: list[tuple[int, int]] = []
    written = store.fetch("bundle", "latest", tmp_path / "out", progress=lambda d, t: progress.append((d, t)))
    out = tmp_path / "out"
    assert sorted(p.relative_to(out).as_posix() for p in written) == ["files/a.txt", "files/deep/b.bin", "meta.json"]
    assert (out / "files" / "a.txt").read_text() == "alpha"
    assert (out / "files" / "deep" / "b.bin").read_bytes() == b"\x00beta"
    assert progress[-1][0] == progress[-1][1] == store.get("bundle").size_bytes


def test_fetch_of_an_old_version_returns_its_content(store: EmbeddedStore, tmp_path: Path) -> None:
    store.log(_config(lr=0.1))
    store.log(_config(lr=0.2))
    store.fetch("cfg", "v1", tmp_path / "out")
    assert '"lr": 0.1' in (tmp_path / "out" / "hparams.json").read_text()


def test_corrupted_blob_is_detected_on_fetch_and_verify(store: EmbeddedStore, tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(b"good weights")
    record = store.log(TraceletArtifact("w", "weights").add_file(tmp_path / "w.bin"))
    assert store.verify("w") == []
    store.blob_path(record.manifest.entry("w.bin").digest).write_bytes(b"bad weights!")
    assert store.verify("w") == ["w.bin"]
    with pytest.raises(IntegrityError, match="corrupt"):
        store.check("w")
    with pytest.raises(IntegrityError, match="corrupt"):
        store.fetch("w", "latest", tmp_path / "out")
    assert not (tmp_path / "out" / "w.bin").exists()


def test_missing_blob_is_reported_on_fetch(store: EmbeddedStore, tmp_path: Path) -> None:
    record = store.log(_config())
    store.blobs.delete(record.manifest.entries[0].digest)
    assert store.verify("cfg") == ["hparams.json"]
    with pytest.raises(ArtifactStoreNotFoundError, match="missing"):
        store.fetch("cfg", "latest", tmp_path / "out")


def test_changed_file_is_stored_as_new_content(store: EmbeddedStore, tmp_path: Path) -> None:
    path = tmp_path / "m.bin"
    path.write_bytes(b"one")
    first = store.log(TraceletArtifact("m", "weights").add_file(path))
    path.write_bytes(b"two")
    second = store.log(TraceletArtifact("m", "weights").add_file(path))
    assert (first.version, second.version) == (1, 2)
    store.fetch("m", "v2", tmp_path / "out")
    assert (tmp_path / "out" / "m.bin").read_bytes() == b"two"


def _age(path: Path) -> None:
    """Make a file look written long ago, so the stat cache trusts what it records for it."""
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))


def test_unchanged_file_is_not_read_again_when_relogged(store: EmbeddedStore, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.bin"
    path.write_bytes(b"weights")
    _age(path)
    time.sleep(0.06)  # past the stat cache's same-clock-tick margin
    store.log(TraceletArtifact("m", "weights").add_file(path))
    monkeypatch.setattr(store.blobs, "put_file", lambda p: pytest.fail(f"{p} was read again"))
    assert store.log(TraceletArtifact("m", "weights").add_file(path)).created is False


def test_same_size_rewrite_with_restored_mtime_is_stored_as_new_content(store: EmbeddedStore,
                                                                       tmp_path: Path) -> None:
    path = tmp_path / "m.bin"
    path.write_bytes(b"AAAA")
    _age(path)
    time.sleep(0.06)
    store.log(TraceletArtifact("m", "weights").add_file(path))
    with open(path, "r+b") as handle:
        handle.write(b"BBBB")
    _age(path)  # as cp -p, rsync -t or touch -r would leave it
    record = store.log(TraceletArtifact("m", "weights").add_file(path))
    assert (record.version, record.created) == (2, True)
    store.fetch("m", "latest", tmp_path / "out")
    assert (tmp_path / "out" / "m.bin").read_bytes() == b"BBBB"


def test_store_reopens_with_its_versions(tmp_path: Path) -> None:
    EmbeddedStore(tmp_path / "s", fsync=False).log(_config())
    reopened = EmbeddedStore(tmp_path / "s", fsync=False)
    assert reopened.get("cfg").ref == "cfg:v1"


def test_delete_and_clear_remove_artifacts(store: EmbeddedStore) -> None:
    store.log(_config("a"))
    store.log(_config("b"))
    store.catalog.delete("a")
    assert store.catalog.names() == ["b"]
    store.catalog.clear()
    assert store.catalog.names() == []


def test_gc_removes_only_unreferenced_blobs(store: EmbeddedStore) -> None:
    keep = store.log(_config("keep", v=1)).manifest.entries[0].digest
    drop = store.log(_config("drop", v=2)).manifest.entries[0].digest
    store.catalog.delete("drop")
    count, _ = store.gc(grace_s=0)
    assert count == 1
    assert store.blobs.exists(keep) and not store.blobs.exists(drop)


def test_manifest_is_rejected_when_the_store_lacks_its_content(store: EmbeddedStore) -> None:
    manifest = _config().freeze()
    with pytest.raises(ArtifactStoreError, match="log the TraceletArtifact builder"):
        store.log(manifest)


WRITER = """
import sys
from tracelet_artifacts import EmbeddedStore, TraceletArtifact
store = EmbeddedStore(sys.argv[1], fsync=False)
for i in range(4):
    store.log(TraceletArtifact("shared", "config").add_object({"writer": sys.argv[2], "i": i}, "cfg"))
    store.log(TraceletArtifact("same", "config").add_object({"identical": True}, "cfg"))
"""


def test_concurrent_processes_get_consecutive_versions_without_gaps(tmp_path: Path) -> None:
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "shared-store"), str(n)], env=env,
                                stderr=subprocess.PIPE, text=True) for n in range(3)]
    for writer in writers:
        _, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
    store = EmbeddedStore(tmp_path / "shared-store", fsync=False)
    assert [v.version for v in store.catalog.versions("shared")] == list(range(1, 13))
    assert len({v.digest for v in store.catalog.versions("shared")}) == 12
    assert [v.version for v in store.catalog.versions("same")] == [1]


def test_relogging_identical_content_adds_its_new_labels_to_the_existing_version(tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(b"same")
    store = EmbeddedStore(tmp_path / "s")
    first = store.log(TraceletArtifact("m", "model").add_file(tmp_path / "w.bin"))
    again = store.log(TraceletArtifact("m", "model", labels=["promoted"]).add_file(tmp_path / "w.bin"))
    assert (again.version, again.created) == (first.version, False)
    assert store.catalog.labels("m", first.version) == ["promoted"]
    assert [v.label for v in store.catalog.search(labels=["promoted"])] == ["v1"]
