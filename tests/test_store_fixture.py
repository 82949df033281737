"""A store written by the release before BLAKE3 keys and group durability opens and reads back unchanged.

``fixtures/store-before-blake3.tar.gz`` was built by that release's own code (commit a66979e, checked out by
``fixtures/make_store_before_blake3.py``): a model in two versions (an alias, labels, metadata, an object,
a delivery waiting in the outbox) and a dataset of nested files with an external reference. Its
``expected.json`` holds every version's digest and the SHA-256 of every file, as that release computed them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tracelet_artifacts.artifact import TraceletArtifact
from tracelet_artifacts.cli import main
from tracelet_artifacts.store.embedded import EmbeddedStore
from tracelet_artifacts.store.rekey import rekey

pytestmark = pytest.mark.usefixtures("isolated")
FIXTURE = Path(__file__).parent / "fixtures" / "store-before-blake3.tar.gz"


@pytest.fixture
def old_store(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    with tarfile.open(FIXTURE) as tar:
        try:
            tar.extractall(tmp_path, filter="data")
        except TypeError:  # Python without extraction filters
            tar.extractall(tmp_path)  # our own fixture
    root = tmp_path / "store"
    return root, json.loads((root / "expected.json").read_text())


def _blob_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in (root / "blobs").rglob("*") if p.is_file()}


def _fetched(store: EmbeddedStore, ref: str, dest: Path) -> dict[str, str]:
    name, version = ref.rsplit(":", 1)
    store.fetch(name, version, dest)
    return {p.relative_to(dest).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in dest.rglob("*") if p.is_file()}


def test_every_version_reads_back_with_its_digests_and_nothing_is_rewritten(
        old_store: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    root, expected = old_store
    before = _blob_files(root)
    store = EmbeddedStore(root)
    assert not store.recovery
    assert sorted(v.ref for v in store.catalog.search()) == sorted(expected)
    for ref, want in expected.items():
        name, version = ref.rsplit(":", 1)
        record = store.get(name, version)
        assert record.digest == want["digest"] and record.durability == "durable"
        assert record.manifest.digest_algorithm == "sha256"
        assert set(want["aliases"]) <= set(record.aliases)
        assert _fetched(store, ref, tmp_path / "out" / ref.replace("/", "_")) == want["files"]
        assert store.verify(name, version) == []
    v1 = store.get("classifier", "best")
    assert (v1.version, v1.description, store.catalog.labels("classifier", 1)) == (
        1, "a model logged before BLAKE3", ["baseline"])
    assert v1.manifest.metadata["accuracy"] == 0.91
    assert [r.uri for r in store.get("datasets/images").manifest.references] == ["s3://bucket/raw/images.tar"]
    assert [(d.backend, d.status) for d in store.outbox.deliveries("classifier", 1)] == [("mlflow", "pending")]
    store.close()
    assert _blob_files(root) == before  # no blob renamed or rewritten by opening and reading


def test_logging_the_same_content_again_finds_the_old_version_and_new_content_is_named_by_blake3(
        old_store: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    root, expected = old_store
    store = EmbeddedStore(root)
    again_dir = tmp_path / "again"
    _fetched(store, "classifier:v2", again_dir)
    hparams = json.loads((again_dir / "hparams.json").read_text())
    (again_dir / "hparams.json").unlink()
    same = store.log(TraceletArtifact("classifier", "model").add_dir(again_dir).add_object(hparams, "hparams"))
    assert (same.version, same.created, same.digest) == (2, False, expected["classifier:v2"]["digest"])
    (again_dir / "config.yaml").write_text("lr: 0.0005\nbatch: 32\n")
    new = store.log(TraceletArtifact("classifier", "model").add_dir(again_dir).add_object(hparams, "hparams"))
    assert new.version == 3 and new.manifest.digest_algorithm == "blake3"
    assert store.wait_durable(60) and store.get("classifier", 3).durability == "durable"
    # Unchanged files keep being shared: v3's weights are the v2 blob's content, now under a BLAKE3 name too.
    assert store.verify("classifier", 3) == [] and store.verify("classifier", 2) == []
    # gc drops only what no version names (the BLAKE3 copy of the old config.yaml that v2's re-log stored);
    # every version, old and new, still reads back.
    store.gc(grace_s=0)
    assert all(store.verify(v.name, v.version) == [] for v in store.catalog.search())
    shown = CliRunner().invoke(main, ["show", "classifier:v1", "--store", str(root)])
    assert shown.exit_code == 0 and "durability: durable" in shown.output and "best" in shown.output
    store.close()


def test_the_old_store_can_be_migrated_to_blake3_and_still_reads_back(
        old_store: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    root, expected = old_store
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    store = EmbeddedStore(copy)
    report = rekey(store)
    assert report.blobs == len({h for want in expected.values() for h in want["files"].values()})
    assert report.missing == [] and report.versions == len(expected)
    for ref, want in expected.items():
        name, version = ref.rsplit(":", 1)
        record = store.get(name, version)
        assert record.digest == want["digest"] and record.manifest.digest_algorithm == "blake3"
        assert _fetched(store, ref, tmp_path / "out" / ref.replace("/", "_")) == want["files"]
    assert not any(p.parent.name != "tmp" and len(p.parent.name) == 2 and p.parent.parent.name == "blobs"
                   for p in (copy / "blobs").rglob("*") if p.is_file())  # no SHA-256 name left
    store.close()


def test_which_version_holds_a_file_is_found_in_a_mixed_store_by_its_blake3_or_its_sha256_key(
        old_store: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    root, _ = old_store
    store = EmbeddedStore(root)
    old_files = tmp_path / "old"
    _fetched(store, "classifier:v2", old_files)  # files the store holds under SHA-256 keys (not in its stat cache)
    weights = next(p for p in old_files.rglob("*") if p.is_file() and p.name != "hparams.json")
    assert store.lineage.digest_of_file(weights).startswith("blake3:")  # a file is keyed the way new blobs are
    assert store.lineage.version_of_file(weights).ref == "classifier:v2"  # found by its SHA-256 key
    fresh = tmp_path / "fresh.bin"
    fresh.write_bytes(b"logged after BLAKE3")
    store.log(TraceletArtifact("new-data", "dataset").add_file(fresh))
    copy = tmp_path / "copy.bin"
    copy.write_bytes(fresh.read_bytes())  # another file, same content: found by its BLAKE3 key
    assert store.lineage.version_of_file(copy).ref == "new-data:v1"
    unknown = tmp_path / "unknown.bin"
    unknown.write_bytes(b"held nowhere")
    assert store.lineage.version_of_file(unknown) is None
    store.close()


def test_a_store_holding_only_blake3_keys_never_hashes_a_file_with_sha256(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    store = EmbeddedStore(tmp_path / "store")
    (tmp_path / "a.bin").write_bytes(b"content")
    store.log(TraceletArtifact("data", "dataset").add_file(tmp_path / "a.bin"))
    assert not store.lineage.holds_sha256_keys()
    from tracelet_artifacts import digest

    real = digest.file_key
    monkeypatch.setattr(digest, "file_key", lambda path, algorithm=digest.BLAKE3, threads=1: (
        real(path, algorithm, threads) if algorithm == digest.BLAKE3 else pytest.fail("hashed with SHA-256")))
    (tmp_path / "other.bin").write_bytes(b"other")
    assert store.lineage.version_of_file(tmp_path / "other.bin") is None
    store.close()
