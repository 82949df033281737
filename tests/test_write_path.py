"""The write path, one step at a time: freeze → ingest → plan → commit → submit, with plain data between them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tracelet_artifacts import Capabilities, EmbeddedStore, RoutingPolicy, TraceletArtifact
from tracelet_artifacts.artifact import freeze
from tracelet_artifacts.delivery import DeliveryQueue
from tracelet_artifacts.errors import ArtifactError, ArtifactStoreError
from tracelet_artifacts.frozen import FrozenArtifact
from tracelet_artifacts.store.ingest import Staged

pytestmark = pytest.mark.usefixtures("isolated")
REFS = Capabilities(references=True)


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedStore:
    return EmbeddedStore(tmp_path / "store", fsync=False)


def _builder(tmp_path: Path) -> TraceletArtifact:
    (tmp_path / "w.bin").write_bytes(b"weights" * 100)
    return TraceletArtifact("net", "model").add_file(tmp_path / "w.bin", "model/w.bin").add_object({"lr": 0.1}, "cfg")


def _blob_count(store: EmbeddedStore) -> int:
    return sum(1 for _ in store.blobs.digests())


# -- 1. freeze ----------------------------------------------------------------------------------------
def test_freeze_keeps_what_the_builder_held_and_ignores_later_changes(tmp_path: Path) -> None:
    art = _builder(tmp_path)
    art.metadata["epoch"] = 3
    frozen = freeze(art)
    art.add_label("late").metadata["epoch"] = 4
    (tmp_path / "x.txt").write_text("x")
    art.add_file(tmp_path / "x.txt")
    assert isinstance(frozen, FrozenArtifact)
    assert [f.artifact_path for f in frozen.files] == ["model/w.bin"]
    assert (frozen.labels, dict(frozen.metadata)) == ((), {"epoch": 3})


def test_freeze_refuses_bad_metadata_before_any_file_is_read(tmp_path: Path) -> None:
    art = _builder(tmp_path)
    art.metadata["when"] = object()
    (tmp_path / "w.bin").unlink()  # were a file read, the error would be about it
    with pytest.raises(ArtifactError, match="metadata"):
        freeze(art)


def test_a_frozen_artifact_hashes_to_the_same_manifest_as_the_builder(tmp_path: Path) -> None:
    art = _builder(tmp_path)
    assert freeze(art).to_manifest() == art.freeze()


# -- 2. ingest ----------------------------------------------------------------------------------------
def test_ingest_puts_the_blobs_in_place_and_nothing_in_the_catalog(store: EmbeddedStore, tmp_path: Path) -> None:
    staged = store.ingest(freeze(_builder(tmp_path)))
    assert isinstance(staged, Staged)
    assert all(store.blobs.verify(e.digest) for e in staged.manifest.entries)
    assert store.catalog.names() == [] and store.outbox.items() == []


def test_ingest_refuses_a_bad_alias_or_version_before_writing_a_blob(store: EmbeddedStore, tmp_path: Path) -> None:
    with pytest.raises(ArtifactStoreError, match="alias"):
        store.ingest(freeze(_builder(tmp_path)), aliases=["v2"])
    with pytest.raises(ArtifactStoreError, match="not a version"):
        store.ingest(freeze(_builder(tmp_path)), version=0)
    assert _blob_count(store) == 0


def test_ingest_says_how_durable_its_blobs_are(tmp_path: Path) -> None:
    unsynced = EmbeddedStore(tmp_path / "a", fsync=False).ingest(freeze(_builder(tmp_path)))
    synced = EmbeddedStore(tmp_path / "b", durability="per-blob").ingest(freeze(_builder(tmp_path)))
    pending = EmbeddedStore(tmp_path / "c").ingest(freeze(_builder(tmp_path)))  # group durability, the default
    assert (unsynced.durability, synced.durability, pending.durability) == ("unsynced", "synced", "pending")


def test_ingest_of_a_manifest_needs_its_content_in_the_store(store: EmbeddedStore, tmp_path: Path) -> None:
    with pytest.raises(ArtifactStoreError, match="does not hold"):
        store.ingest(_builder(tmp_path).freeze())


# -- 3. plan ------------------------------------------------------------------------------------------
def test_the_plan_names_an_outbox_delivery_for_each_remote_backend_only(store: EmbeddedStore,
                                                                      tmp_path: Path) -> None:
    staged = store.ingest(freeze(_builder(tmp_path)))
    plan = RoutingPolicy({"mlflow": REFS, "wandb": REFS, "local": REFS}).plan(staged.manifest)
    assert plan.targets == ("mlflow", "local")
    assert list(plan.deliveries()) == ["mlflow"]
    assert plan.deliveries()["mlflow"]["uploads"] == ["cfg.json", "model/w.bin"]


# -- 4. commit ----------------------------------------------------------------------------------------
def test_commit_shows_the_version_its_aliases_and_its_deliveries_together(store: EmbeddedStore,
                                                                          tmp_path: Path) -> None:
    staged = store.ingest(freeze(_builder(tmp_path)), aliases=["best"])
    record = store.commit(staged, run_id="r1", deliveries={"mlflow": {"backend": "mlflow"}})
    assert (record.ref, record.aliases) == ("net:v1", ("best", "latest"))
    assert [(i.version_id, i.backend, i.run_id, i.status) for i in store.outbox.items()] == [
        (record.row_id, "mlflow", "r1", "pending")]


def test_a_commit_that_fails_leaves_neither_version_nor_deliveries(store: EmbeddedStore, tmp_path: Path) -> None:
    staged = store.ingest(freeze(_builder(tmp_path)))
    with pytest.raises(TypeError):  # a plan that is not JSON data fails inside the transaction
        store.commit(staged, run_id="r1", deliveries={"mlflow": {"oops": object()}})
    assert store.catalog.names() == [] and store.outbox.items() == []


def test_commit_remembers_the_files_it_stored_so_a_relog_reads_none(store: EmbeddedStore, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    art = _builder(tmp_path)
    time.sleep(0.06)  # past the stat cache's same-clock-tick margin
    store.commit(store.ingest(freeze(art)))
    monkeypatch.setattr(store.blobs, "put_file", lambda p: pytest.fail(f"{p} was read again"))
    again = store.commit(store.ingest(freeze(art)))
    assert (again.version, again.created) == (1, False)


# -- 5. submit ----------------------------------------------------------------------------------------
def test_submit_gives_the_local_receipt_done_and_the_others_pending(store: EmbeddedStore, tmp_path: Path) -> None:
    staged = store.ingest(freeze(_builder(tmp_path)))
    plan = RoutingPolicy({"mlflow": REFS, "local": REFS}).plan(staged.manifest)
    record = store.commit(staged, run_id="r1", deliveries=plan.deliveries())
    receipts = DeliveryQueue(store, {}, run_id="r1").submit(record, plan)
    assert {name: r.status for name, r in receipts.items()} == {"mlflow": "pending", "local": "done"}
    assert receipts["local"].uri == "tracelet://net:v1"


def test_submit_returns_the_receipt_a_backend_already_gave_this_run(store: EmbeddedStore, tmp_path: Path) -> None:
    staged = store.ingest(freeze(_builder(tmp_path)))
    plan = RoutingPolicy({"mlflow": REFS, "local": REFS}).plan(staged.manifest)
    record = store.commit(staged, run_id="r1", deliveries=plan.deliveries())
    [item] = store.outbox.claim("me", lease_s=60)
    store.outbox.complete(item.id, {"backend": "mlflow", "status": "done", "artifact": "net", "version": 1,
                                    "remote_id": "run-7"})
    receipts = DeliveryQueue(store, {}, run_id="r1").submit(record, plan)
    assert (receipts["mlflow"].status, receipts["mlflow"].remote_id) == ("done", "run-7")
