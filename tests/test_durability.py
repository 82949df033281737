"""Group-committed durability: a version is committed at once and durable when its group sync finishes; after a
crash, opening the store checks what was not yet durable, keeps what survived and marks lost what did not.

A crash is a child process that logs with its group sync held back and then ends with ``os._exit`` (no sync,
no clean-up): its versions stay ``committed``, its marker stays in ``blobs/unsynced/``. Power lost before the
page cache reached the disk is simulated by truncating blobs written after the marker's safe point.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tracelet_artifacts import digest
from tracelet_artifacts.artifact import TraceletArtifact
from tracelet_artifacts.cli import main
from tracelet_artifacts.errors import IntegrityError, InvalidSettingError
from tracelet_artifacts.experiment import Experiment
from tracelet_artifacts.settings import TraceletSettings
from tracelet_artifacts.store import durability
from tracelet_artifacts.store.embedded import EmbeddedStore
from tracelet_artifacts.store.write_journal import read_markers

pytestmark = pytest.mark.usefixtures("isolated")
REPO = Path(__file__).resolve().parents[1]

CRASHING_CHILD = """
import json, os, sys, time
from pathlib import Path
from tracelet_artifacts.store import durability
durability.sync_files = lambda *args, **kwargs: time.sleep(3600)   # the group sync never gets to the disk
from tracelet_artifacts.artifact import TraceletArtifact
from tracelet_artifacts.store.embedded import EmbeddedStore

store = EmbeddedStore(sys.argv[1])
record = store.log(TraceletArtifact(sys.argv[3], "dataset").add_dir(sys.argv[2]))
stray = store.blobs.put_bytes(b"written, never named by a version")[0]
print(json.dumps({"ref": record.ref, "state": record.durability, "stray": stray,
                  "keys": {e.path: e.digest for e in record.manifest.entries}}), flush=True)
os._exit(0)                                                        # a crash: no sync, no close, no atexit
"""


def _files(folder: Path, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "small.txt").write_text(f"small file {seed}\n")
    (folder / "large.bin").write_bytes(os.urandom(1 << 20))
    return folder


def _crash_while_logging(root: Path, source: Path, name: str = "data") -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", CRASHING_CHILD, str(root), str(source), name], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def _tear(store_root: Path, key: str) -> None:
    """What a power cut can leave of a blob whose pages never reached the disk: its name, no content."""
    path = store_root / "blobs" / digest.key_path(key)
    path.chmod(0o644)
    path.write_bytes(b"")


# -- committed, then durable --------------------------------------------------------------------------
def test_a_version_is_committed_at_once_and_durable_when_its_group_sync_finishes(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "store")
    record = store.log(TraceletArtifact("data", "dataset").add_dir(_files(tmp_path / "src")))
    assert record.durability in ("committed", "durable") and record.created
    assert store.wait_durable(60)
    assert store.get("data").durability == "durable" and store.get("data").durable
    assert [m.pid for m in read_markers(store.blobs.root)] == [os.getpid()]  # left before the first write
    store.close()
    assert read_markers(store.blobs.root) == []  # a clean close: nothing to recover


def test_the_re_log_shortcut_vouches_for_files_only_once_their_version_is_durable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    release = threading.Event()
    real = durability.sync_files

    def held(paths: object, root: Path) -> None:
        assert release.wait(60)
        real(paths, root)  # type: ignore[arg-type]

    monkeypatch.setattr(durability, "sync_files", held)
    src = _files(tmp_path / "src")
    store = EmbeddedStore(tmp_path / "store")
    store.log(TraceletArtifact("data", "dataset").add_dir(src))
    cached = "SELECT COUNT(*) FROM stat_cache"
    assert store.get("data").durability == "committed" and store.db.read(cached)[0][0] == 0
    release.set()
    assert store.wait_durable(60) and store.get("data").durability == "durable"
    assert store.db.read(cached)[0][0] == len(list(src.rglob("*.*")))  # one row per file, with it durable
    store.close()


def test_per_blob_durability_is_durable_on_return_and_none_never_syncs(tmp_path: Path) -> None:
    per_blob = EmbeddedStore(tmp_path / "a", durability="per-blob")
    assert per_blob.log(TraceletArtifact("data", "dataset").add_dir(_files(tmp_path / "src"))).durability == "durable"
    assert not (per_blob.blobs.root / "unsynced").exists()
    never = EmbeddedStore(tmp_path / "b", fsync=False)
    assert never.log(TraceletArtifact("data", "dataset").add_dir(tmp_path / "src")).durability == "unsynced"
    per_blob.close()
    never.close()


def test_the_durability_setting_is_read_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_DURABILITY", "per-blob")
    assert EmbeddedStore(tmp_path / "s").blobs.durability == "per-blob"
    monkeypatch.setenv("TRACELET_DURABILITY", "sometimes")
    expected = "TRACELET_DURABILITY='sometimes' is not valid: expected one of 'group', 'per-blob' or 'none'."
    with pytest.raises(InvalidSettingError) as raised:
        EmbeddedStore(tmp_path / "t")
    assert str(raised.value) == expected
    result = CliRunner().invoke(main, ["ls", "--store", str(tmp_path / "u")])
    assert result.exit_code == 1 and result.output.strip().splitlines() == [f"error: {expected}"]


def test_many_blobs_are_synced_with_one_syncfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = durability.sync_files

    def counted(paths: object, root: Path) -> None:
        calls.append("sync")
        real(paths, root)  # type: ignore[arg-type]

    monkeypatch.setattr(durability, "SYNCFS_FROM", 5)
    monkeypatch.setattr(durability, "sync_files", counted)
    folder = tmp_path / "many"
    folder.mkdir()
    for index in range(20):
        (folder / f"{index}.txt").write_text(f"file {index}")
    store = EmbeddedStore(tmp_path / "store")
    store.log(TraceletArtifact("many", "dataset").add_dir(folder))
    assert store.wait_durable(60) and store.get("many").durability == "durable"
    assert calls  # the group pass ran (one call for the whole group, whatever it holds)
    store.close()


def test_flush_and_leaving_the_with_block_wait_for_durability(tmp_path: Path) -> None:
    settings = TraceletSettings(store_path=tmp_path / "store")
    with Experiment("durable", settings=settings) as exp:
        exp.log_artifact(exp.create_artifact("data", "dataset").add_dir(_files(tmp_path / "src")))
        exp.flush()
        assert exp.store.get("data").durability == "durable"
        exp.log_artifact(exp.create_artifact("more", "dataset").add_dir(_files(tmp_path / "src2", 1)))
    store = EmbeddedStore(tmp_path / "store")
    assert [v.durability for v in store.catalog.search()] == ["durable", "durable"]
    store.close()


def test_show_tells_committed_and_durable_apart(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "store")
    store.log(TraceletArtifact("data", "dataset").add_dir(_files(tmp_path / "src")))
    store.close()
    shown = CliRunner().invoke(main, ["show", "data", "--store", str(tmp_path / "store")])
    assert shown.exit_code == 0, shown.output
    assert "durability: durable (synced to disk)" in shown.output


EXITING_CHILD = """
import sys
from tracelet_artifacts.artifact import TraceletArtifact
from tracelet_artifacts.store.embedded import EmbeddedStore

store = EmbeddedStore(sys.argv[1])
store.log(TraceletArtifact("data", "dataset").add_dir(sys.argv[2]))
store.blobs.put_bytes(b"written outside any version, as a repair puts a blob back")
"""                                                                 # ends normally, without closing the store


def test_a_process_that_exits_without_closing_its_store_leaves_nothing_to_recover(tmp_path: Path) -> None:
    root = tmp_path / "store"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", EXITING_CHILD, str(root), str(_files(tmp_path / "src"))], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert read_markers(root / "blobs") == []  # everything it wrote was synced at exit
    stray = digest.bytes_key(b"written outside any version, as a repair puts a blob back")
    changed = root / "blobs" / digest.key_path(stray)
    changed.chmod(0o644)
    changed.write_bytes(b"changed later, not by a crash")
    store = EmbeddedStore(root)
    assert not store.recovery and store.get("data").durability == "durable"
    assert changed.exists()  # not taken for a blob torn by a crash (verify reports it as corrupt)
    store.close()


# -- after a crash ------------------------------------------------------------------------------------------
def test_a_killed_writer_loses_nothing_its_committed_versions_are_checked_and_made_durable(tmp_path: Path) -> None:
    root = tmp_path / "store"
    crashed = _crash_while_logging(root, _files(tmp_path / "src"))
    assert crashed["state"] == "committed"
    assert [m.dead for m in read_markers(root / "blobs")] == [True]
    store = EmbeddedStore(root)
    assert store.recovery.durable == ["data:v1"] and store.recovery.lost == [] and store.recovery.torn == []
    assert store.get("data").durability == "durable"
    assert read_markers(root / "blobs") == []
    store.fetch("data", "latest", tmp_path / "out")
    assert (tmp_path / "out" / "large.bin").read_bytes() == (tmp_path / "src" / "large.bin").read_bytes()
    store.close()


def test_a_version_whose_blob_was_torn_is_marked_lost_named_and_never_served(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "store"
    source = _files(tmp_path / "src")
    store = EmbeddedStore(root)
    store.log(TraceletArtifact("data", "dataset").add_file(source / "small.txt"))  # v1: durable, untouched
    store.close()
    crashed = _crash_while_logging(root, source)  # v2, never synced
    keys = dict(crashed["keys"])  # type: ignore[call-overload]
    _tear(root, keys["large.bin"])
    with caplog.at_level(logging.WARNING, logger="tracelet_artifacts"):
        store = EmbeddedStore(root)
    assert store.recovery.lost == ["data:v2"] and keys["large.bin"] in store.recovery.torn
    assert "data:v2 was lost" in caplog.text and "Log it again from its source files" in caplog.text
    lost = store.get("data", 2)
    assert lost.durability == "lost" and "'large.bin'" in (lost.durability_detail or "")
    assert store.get("data").version == 1  # latest moved back to the newest version not lost
    with pytest.raises(IntegrityError, match="data:v2 was lost"):
        store.fetch("data", 2, tmp_path / "out")
    assert not store.blobs.exists(keys["large.bin"])  # set aside: nothing serves the torn bytes
    assert (root / "blobs" / "corrupt" / keys["large.bin"].replace(":", "-")).is_file()
    assert store.verify("data", 1) == []
    # Logging the same content again brings the version back, with its blobs written anew.
    again = store.log(TraceletArtifact("data", "dataset").add_dir(source))
    assert again.version == 2 and store.wait_durable(60) and store.get("data", 2).durability == "durable"
    assert store.verify("data", 2) == [] and store.get("data").version == 2
    store.close()


def test_a_torn_blob_no_version_names_is_set_aside_so_storing_it_again_rewrites_it(tmp_path: Path) -> None:
    root = tmp_path / "store"
    crashed = _crash_while_logging(root, _files(tmp_path / "src"))
    stray = str(crashed["stray"])
    _tear(root, stray)
    store = EmbeddedStore(root)
    assert stray in store.recovery.torn and not store.blobs.exists(stray)
    assert store.blobs.put_bytes(b"written, never named by a version")[0] == stray
    assert store.blobs.verify(stray)
    store.close()


def test_shown_lost_version_says_what_happened(tmp_path: Path) -> None:
    root = tmp_path / "store"
    crashed = _crash_while_logging(root, _files(tmp_path / "src"))
    _tear(root, dict(crashed["keys"])["small.txt"])  # type: ignore[call-overload]
    EmbeddedStore(root).close()
    shown = CliRunner().invoke(main, ["show", "data:v1", "--store", str(root)])
    assert shown.exit_code == 0, shown.output
    assert "durability: lost (the machine went down before it was synced" in shown.output


def test_a_live_writers_committed_versions_are_left_to_it(tmp_path: Path) -> None:
    writer = EmbeddedStore(tmp_path / "store")
    held = writer.group_sync
    held.submit = lambda *args, **kwargs: None  # type: ignore[method-assign]  # its sync never runs
    writer.log(TraceletArtifact("data", "dataset").add_dir(_files(tmp_path / "src")))
    reader = EmbeddedStore(tmp_path / "store")  # same host, its owner alive: nothing to recover
    assert not reader.recovery and reader.get("data").durability == "committed"
    reader.close()
