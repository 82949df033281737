"""Corrupt or missing blobs: fetch never serves bad bytes, and a version a backend holds is repaired from it.

The backend here is the ``local`` adapter over a second store (a mirror that holds the same version),
delivered through the real delivery queue so the catalog's receipts are the ones a run would write.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from tracelet_artifacts import digest
from tracelet_artifacts.artifact import TraceletArtifact
from tracelet_artifacts.backends.local import LocalAdapter
from tracelet_artifacts.cli import main
from tracelet_artifacts.delivery import DeliveryQueue
from tracelet_artifacts.errors import IntegrityError
from tracelet_artifacts.routing import RoutingPolicy
from tracelet_artifacts.store.embedded import EmbeddedStore
from tracelet_artifacts.store.repair import check_version, fetch_verified, repair_version

WEIGHTS = b"\x01\x02weights" * 5000
NOTES = b"some notes\n"


def _artifact(src: Path) -> TraceletArtifact:
    src.mkdir(parents=True, exist_ok=True)
    (src / "w.bin").write_bytes(WEIGHTS)
    (src / "notes.txt").write_bytes(NOTES)
    artifact = TraceletArtifact("model-a", "model").add_file(src / "w.bin", "w.bin")
    return artifact.add_file(src / "notes.txt", "notes.txt")


def _flip_byte(path: Path, offset: int = 3) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.chmod(0o644)
    path.write_bytes(bytes(data))


def _delivered_to_mirror(root: Path, mirror: Path, src: Path) -> EmbeddedStore:
    """Log into ``root`` and deliver the version to the ``local`` backend at ``mirror`` (which holds it too)."""
    EmbeddedStore(mirror).log(_artifact(src))
    store = EmbeddedStore(root)
    run_id = uuid.uuid4().hex
    store.catalog.add_run(run_id, "exp", "nohost:1")
    policy = RoutingPolicy({"local": LocalAdapter.capabilities})
    store.log(_artifact(src), run_id=run_id, plan=lambda m: {"local": policy.plan(m).for_backend("local").to_dict()})
    queue = DeliveryQueue(store, {"local": LocalAdapter({"path": str(mirror)})}, run_id=run_id)
    queue.start()
    assert queue.close(30).complete
    store.catalog.end_run(run_id)
    return store


def _blob(store: EmbeddedStore, content: bytes) -> Path:
    return store.blob_path(digest.bytes_key(content))


def test_fetch_of_a_corrupt_blob_raises_integrity_error_and_writes_no_bad_bytes(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "store")
    store.log(_artifact(tmp_path / "src"))
    _flip_byte(_blob(store, WEIGHTS))
    with pytest.raises(IntegrityError, match=r"model-a:v1 cannot be served.*'w.bin' \(corrupt\).*Log the artifact"):
        fetch_verified(store, "model-a", "latest", tmp_path / "out")
    assert not (tmp_path / "out" / "w.bin").exists()
    assert all(p.read_bytes() in (NOTES,) for p in (tmp_path / "out").rglob("*") if p.is_file())


def test_an_unrepairable_corrupt_blob_is_quarantined_and_logging_the_source_again_restores_it(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "store")
    store.log(_artifact(tmp_path / "src"))
    assert store.wait_durable(60)  # the stat cache now remembers w.bin's digest (recorded with it durable)
    bad = _blob(store, WEIGHTS)
    _flip_byte(bad)
    report = repair_version(store, "model-a", "v1")
    assert not report.ok and report.quarantined == ("w.bin",)
    assert (store.blobs.root / "corrupt" / digest.bytes_key(WEIGHTS).replace(":", "-")).is_file()
    assert not bad.exists()
    store.log(_artifact(tmp_path / "src"))  # same file, unchanged: stored anew, not skipped as "already there"
    assert check_version(store, store.get("model-a", "v1")) == ()
    fetch_verified(store, "model-a", "v1", tmp_path / "out")
    assert (tmp_path / "out" / "w.bin").read_bytes() == WEIGHTS


@pytest.mark.parametrize("damage", ["flip", "delete"])
def test_fetch_repairs_a_bad_blob_from_the_backend_that_holds_the_version(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = _delivered_to_mirror(tmp_path / "store", tmp_path / "mirror", tmp_path / "src")
    bad = _blob(store, WEIGHTS)
    _flip_byte(bad) if damage == "flip" else bad.unlink()
    with caplog.at_level(logging.WARNING, logger="tracelet_artifacts"):
        paths = fetch_verified(store, "model-a", "latest", tmp_path / "out",
                               options={"local": {"path": str(tmp_path / "mirror")}})
    assert sorted(p.name for p in paths) == ["notes.txt", "w.bin"]
    assert (tmp_path / "out" / "w.bin").read_bytes() == WEIGHTS
    assert store.blobs.verify(digest.bytes_key(WEIGHTS))
    state = "corrupt" if damage == "flip" else "missing"
    assert f"model-a:v1: the blob of 'w.bin' was {state}; re-fetched it from local" in caplog.text


def test_a_backend_copy_that_does_not_match_the_digest_is_not_used(tmp_path: Path) -> None:
    store = _delivered_to_mirror(tmp_path / "store", tmp_path / "mirror", tmp_path / "src")
    _flip_byte(_blob(store, WEIGHTS))
    _flip_byte(_blob(EmbeddedStore(tmp_path / "mirror"), WEIGHTS), offset=7)  # the mirror rotted too
    report = repair_version(store, "model-a", "v1", options={"local": {"path": str(tmp_path / "mirror")}})
    assert [p.path for p in report.unrepaired] == ["w.bin"] and report.repaired == {}


def test_cli_verify_reports_then_repairs_from_the_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _delivered_to_mirror(tmp_path / "store", tmp_path / "mirror", tmp_path / "src")
    _flip_byte(_blob(store, WEIGHTS))
    monkeypatch.setenv("TRACELET_BACKEND_OPTIONS", f'{{"local": {{"path": "{tmp_path / "mirror"}"}}}}')
    runner = CliRunner()
    found = runner.invoke(main, ["verify", "--store", str(store.root)])
    assert found.exit_code == 1
    assert "w.bin" in found.output and "corrupt" in found.output and "verify --repair" in found.output
    fixed = runner.invoke(main, ["verify", "--store", str(store.root), "--repair", "model-a"])
    assert fixed.exit_code == 0, fixed.output
    assert "repaired from local" in fixed.output and "1 bad entr(ies), 1 repaired" in fixed.output
    clean = runner.invoke(main, ["verify", "--store", str(store.root), "model-a:v1"])
    assert clean.exit_code == 0 and "0 bad entr(ies)" in clean.output


def test_cli_get_repairs_on_the_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _delivered_to_mirror(tmp_path / "store", tmp_path / "mirror", tmp_path / "src")
    _blob(store, NOTES).unlink()
    monkeypatch.setenv("TRACELET_BACKEND_OPTIONS", f'{{"local": {{"path": "{tmp_path / "mirror"}"}}}}')
    result = CliRunner().invoke(main, ["get", "--store", str(store.root), "model-a", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "notes.txt").read_bytes() == NOTES


def test_cli_verify_of_an_unknown_name_is_a_one_line_error(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "store")
    store.log(_artifact(tmp_path / "src"))
    result = CliRunner().invoke(main, ["verify", "--store", str(store.root), "nope"])
    assert result.exit_code == 1 and result.output.startswith("error: No artifact named 'nope'")
