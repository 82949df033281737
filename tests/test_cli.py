"""The tracelet-artifacts command, run through click's runner against a real embedded store."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tracelet_artifacts.artifact import TraceletArtifact
from tracelet_artifacts.cli import main
from tracelet_artifacts.store.embedded import EmbeddedStore


@pytest.fixture()
def store(tmp_path: Path) -> EmbeddedStore:
    (tmp_path / "model.pt").write_bytes(b"weights-1")
    (tmp_path / "cfg.yaml").write_text("lr: 0.1\n")
    store = EmbeddedStore(tmp_path / "store")
    store.log(TraceletArtifact("classifier", "model", labels=["baseline"], metadata={"acc": 0.9})
              .add_file(tmp_path / "model.pt", "model/classifier.pt"))
    (tmp_path / "model.pt").write_bytes(b"weights-2")
    store.log(TraceletArtifact("classifier", "model").add_file(tmp_path / "model.pt", "model/classifier.pt"))
    store.log(TraceletArtifact("train-config", "config").add_file(tmp_path / "cfg.yaml"))
    return store


def run(store: EmbeddedStore, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, [args[0], "--store", str(store.root), *args[1:]])
    return result.exit_code, result.output


def test_ls_lists_latest_version_of_each_name(store: EmbeddedStore) -> None:
    code, out = run(store, "ls")
    assert code == 0
    assert "classifier" in out and "v2 of 2" in out and "train-config" in out
    assert "2 artifact version(s)" in out


def test_ls_shows_labels_including_those_added_later(store: EmbeddedStore) -> None:
    store.catalog.add_labels("classifier", 1, ["evicted"])
    code, out = run(store, "ls", "--all-versions", "--label", "evicted")
    assert code == 0 and "baseline, evicted" in out and "1 artifact version(s)" in out


def test_ls_filters_by_type_label_and_metadata(store: EmbeddedStore) -> None:
    assert "train-config" not in run(store, "ls", "--type", "model")[1]
    code, out = run(store, "ls", "--all-versions", "--label", "baseline", "--meta", "acc=0.9")
    assert code == 0 and "1 artifact version(s)" in out and "v1" in out


def test_show_prints_entries_aliases_and_versions(store: EmbeddedStore) -> None:
    code, out = run(store, "show", "classifier:v1")
    assert code == 0
    assert "model/classifier.pt" in out and "versions: v1, v2" in out and "baseline" in out


def test_show_lists_labels_added_after_logging(store: EmbeddedStore) -> None:
    store.catalog.add_labels("classifier", 1, ["evicted"])
    code, out = run(store, "show", "classifier:v1")
    assert code == 0 and "labels: baseline, evicted" in out


def test_get_writes_files_and_verifies_digests(store: EmbeddedStore, tmp_path: Path) -> None:
    code, out = run(store, "get", "classifier:v1", str(tmp_path / "out"))
    assert code == 0, out
    assert (tmp_path / "out" / "model" / "classifier.pt").read_bytes() == b"weights-1"


def test_get_of_corrupted_blob_fails_with_one_line_error(store: EmbeddedStore, tmp_path: Path) -> None:
    entry = store.get("classifier", "v2").manifest.entries[0]
    store.blob_path(entry.digest).write_bytes(b"tampered")
    code, out = run(store, "get", "classifier", str(tmp_path / "out"))
    assert code == 1 and out.strip().startswith("error:") and "corrupt" in out
    assert not (tmp_path / "out" / "model" / "classifier.pt").exists()


def test_alias_then_show_by_alias(store: EmbeddedStore) -> None:
    assert run(store, "alias", "classifier:v1", "best")[0] == 0
    code, out = run(store, "show", "classifier@best")
    assert code == 0 and "classifier:v1" in out and "best" in out


@pytest.mark.parametrize("args", [("show", "missing"), ("show", "classifier:v9"), ("ls", "--meta", "noequals"),
                                  ("alias", "classifier:v1", "v3")])
def test_bad_input_exits_non_zero_with_one_line_error(store: EmbeddedStore, args: tuple[str, ...]) -> None:
    code, out = run(store, *args)
    assert code == 1
    assert out.startswith("error:") and out.count("\n") == 1


def test_missing_store_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["ls", "--store", str(tmp_path / "nowhere")])
    assert result.exit_code == 1 and "No store at" in result.output


def test_gc_removes_only_unreferenced_blobs(store: EmbeddedStore) -> None:
    orphan, _ = store.blobs.put_bytes(b"nobody uses me")
    code, out = run(store, "gc", "--grace", "0")
    assert code == 0 and "Removed 1 blob(s)" in out
    assert not store.blobs.exists(orphan)
    assert store.verify("classifier", "v1") == []


def test_sync_with_empty_outbox_says_nothing_to_deliver(store: EmbeddedStore) -> None:
    code, out = run(store, "sync")
    assert code == 0 and "Nothing to deliver" in out
