"""Deleting versions (rm and its refusals) and collecting blobs (gc), including gc racing writers: a blob stored
after gc started is never collected, and no committed version ever names a missing blob."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from tracelet_artifacts import TraceletArtifact
from tracelet_artifacts.cli import main
from tracelet_artifacts.errors import ArtifactStoreNotFoundError, BlobsCollectedError, VersionInUseError
from tracelet_artifacts.store.embedded import EmbeddedStore

REPO = Path(__file__).resolve().parents[1]


def artifact(folder: Path, name: str, text: str, kind: str = "model") -> TraceletArtifact:
    path = folder / f"{name.replace('/', '_')}-{abs(hash(text))}.bin"
    path.write_text(text)
    return TraceletArtifact(name, kind).add_file(path, "file.bin")


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    store = EmbeddedStore(tmp_path / "store", fsync=False)
    yield store
    store.close()


def test_rm_deletes_a_version_and_latest_moves_to_the_newest_left(store: EmbeddedStore, tmp_path: Path) -> None:
    for text in ("one", "two", "three"):
        store.log(artifact(tmp_path, "model", text))
    removed = store.remove_version("model", "latest")
    assert removed.version == 3
    assert [v.version for v in store.catalog.versions("model")] == [1, 2]
    assert store.get("model").version == 2


def test_rm_refuses_while_an_alias_points_at_it_naming_the_alias(store: EmbeddedStore, tmp_path: Path) -> None:
    store.log(artifact(tmp_path, "model", "one"), aliases=["prod"])
    store.log(artifact(tmp_path, "model", "two"))
    with pytest.raises(VersionInUseError, match=r"alias 'prod' points at it.*--force"):
        store.remove_version("model", 1)
    assert [v.version for v in store.catalog.versions("model")] == [1, 2]


def test_rm_refuses_while_a_later_run_consumed_it(store: EmbeddedStore, tmp_path: Path) -> None:
    data = store.log(artifact(tmp_path, "data", "rows", "dataset"), run_id="prep-run")
    store.lineage.record_use("train-run-123", data)
    with pytest.raises(VersionInUseError, match=r"a later run consumed it \(train-ru\)"):
        store.remove_version("data", 1)


def test_rm_force_deletes_it_anyway_and_the_name_goes_with_its_last_version(store: EmbeddedStore,
                                                                            tmp_path: Path) -> None:
    store.log(artifact(tmp_path, "model", "one"), aliases=["prod"])
    store.remove_version("model", 1, force=True)
    assert store.catalog.names() == []
    with pytest.raises(ArtifactStoreNotFoundError):
        store.get("model")


def test_rm_leaves_blobs_until_gc_collects_them(store: EmbeddedStore, tmp_path: Path) -> None:
    record = store.log(artifact(tmp_path, "model", "one"))
    shared = store.log(artifact(tmp_path, "other", "one"))  # same content under another name
    store.log(artifact(tmp_path, "model", "two"))
    sha = record.manifest.entries[0].digest
    store.remove_version("model", 1)
    assert store.blobs.exists(sha)
    assert store.gc() == (0, 0)  # "other" still holds that content
    store.remove_version("other", shared.version, force=True)
    assert store.gc() == (1, 3)
    assert not store.blobs.exists(sha)


def test_rm_command_refuses_in_one_line_then_deletes_with_force(store: EmbeddedStore, tmp_path: Path) -> None:
    store.log(artifact(tmp_path, "model", "one"), aliases=["prod"])
    store.log(artifact(tmp_path, "model", "two"))
    result = CliRunner().invoke(main, ["rm", "--store", str(store.root), "model:v1"])
    assert result.exit_code == 1 and result.output.count("\n") == 1 and "alias 'prod'" in result.output
    result = CliRunner().invoke(main, ["rm", "--store", str(store.root), "model:v1", "--force"])
    assert result.exit_code == 0 and "Deleted model:v1" in result.output
    result = CliRunner().invoke(main, ["rm", "--store", str(store.root), "model"])
    assert result.exit_code == 1 and "name the version to delete" in result.output


# -- gc against writers -------------------------------------------------------------------------------
def test_a_commit_whose_blob_gc_collected_after_ingest_fails_and_logging_stores_it_again(
        store: EmbeddedStore, tmp_path: Path) -> None:
    old = store.log(artifact(tmp_path, "model", "same bytes"))
    store.log(artifact(tmp_path, "model", "newer"))
    store.remove_version("model", old.version)
    sha = old.manifest.entries[0].digest
    staged = store.ingest(artifact(tmp_path, "again", "same bytes"))  # finds the blob stored: skips writing it
    assert store.gc() == (1, len("same bytes"))                      # gc runs between ingest and commit
    with pytest.raises(BlobsCollectedError):
        store.commit(staged)
    record = store.log(artifact(tmp_path, "again", "same bytes"))    # log = ingest + commit: stores it again
    assert store.blobs.exists(sha) and store.verify(record.name, record.version) == []


def test_a_commit_between_gc_listing_and_deleting_keeps_its_blob(store: EmbeddedStore, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    old = store.log(artifact(tmp_path, "model", "same bytes"))
    store.log(artifact(tmp_path, "model", "newer"))
    store.remove_version("model", old.version)
    staged = store.ingest(artifact(tmp_path, "again", "same bytes"))
    original = store.db.transaction
    fired: list[bool] = []

    @contextmanager
    def commit_right_after_gc_records_its_intent(*keys: str) -> Iterator[object]:
        with original(*keys) as conn:
            yield conn
        if keys == ("gc",) and not fired:
            fired.append(True)
            store.commit(staged)  # a writer commits after gc decided, before it deletes

    monkeypatch.setattr(store.db, "transaction", commit_right_after_gc_records_its_intent)
    report = store.collect_garbage()
    assert fired and report.removed == 0 and report.rescued == 1
    assert store.verify("again") == []


def test_gc_dry_run_reports_without_deleting(store: EmbeddedStore, tmp_path: Path) -> None:
    record = store.log(artifact(tmp_path, "model", "one"))
    store.log(artifact(tmp_path, "model", "two"))
    store.remove_version("model", record.version)
    assert store.gc(dry_run=True) == (1, 3)
    assert store.blobs.exists(record.manifest.entries[0].digest)


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from tracelet_artifacts import TraceletArtifact
    from tracelet_artifacts.store.embedded import EmbeddedStore

    root, work, me = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    store = EmbeddedStore(root, fsync=False)
    for i in range(60):
        # half the content is new, half repeats content an earlier (deleted) version held: the dedup path
        text = f"{me}-{i}" if i % 2 else f"shared-{i % 6}"
        path = work / f"{me}-{i}.bin"
        path.write_text(text)
        store.log(TraceletArtifact(f"{me}/a", "model").add_file(path, "f.bin"))
        if i % 3 == 0:
            store.remove_version(f"{me}/a", "latest", force=True)
    print("done")
""")

GC = textwrap.dedent("""
    import sys
    from pathlib import Path
    from tracelet_artifacts.store.embedded import EmbeddedStore

    store = EmbeddedStore(Path(sys.argv[1]), fsync=False)
    removed = rescued = 0
    while not Path(sys.argv[2]).exists():
        report = store.collect_garbage()
        removed, rescued = removed + report.removed, rescued + report.rescued
    print(removed, rescued)
""")


def test_gc_running_beside_concurrent_writers_never_leaves_a_version_without_its_blobs(tmp_path: Path) -> None:
    root = tmp_path / "store"
    EmbeddedStore(root, fsync=False).close()
    (tmp_path / "writer.py").write_text(WRITER)
    (tmp_path / "gc.py").write_text(GC)
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    stop = tmp_path / "stop"
    collector = subprocess.Popen([sys.executable, str(tmp_path / "gc.py"), str(root), str(stop)], env=env,
                                 stdout=subprocess.PIPE, text=True)
    writers = [subprocess.Popen([sys.executable, str(tmp_path / "writer.py"), str(root), str(tmp_path), f"w{n}"],
                                env=env, stdout=subprocess.PIPE, text=True) for n in range(3)]
    outputs = [w.communicate(timeout=240)[0] for w in writers]
    stop.touch()
    removed, _rescued = map(int, collector.communicate(timeout=120)[0].split())
    assert all(o.strip() == "done" for o in outputs) and all(w.returncode == 0 for w in writers)
    store = EmbeddedStore(root, fsync=False)
    versions = [v for name in store.catalog.names() for v in store.catalog.versions(name)]
    assert len(versions) >= 30
    assert [v.ref for v in versions if store.verify(v.name, v.version)] == []  # every blob there and sound
    assert removed > 0  # gc did collect while they wrote
    store.gc()
    assert all(store.verify(v.name, v.version) == [] for v in versions)
