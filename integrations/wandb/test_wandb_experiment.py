"""End to end through the public API: ``Experiment(..., backend=["wandb"])`` delivers in the background to an
offline W&B run, lists/gets/fetches through it, passes params and metrics on, and ``stop()`` leaves a
finished run file that holds it all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sklearn.linear_model import LogisticRegression
from wandb_suite import FailingServer, artifact_records, run_records

from tracelet_artifacts import digest
from tracelet_artifacts.artifact import ArtifactType
from tracelet_artifacts.backends.base import RemoteArtifact
from tracelet_artifacts.experiment import Experiment
from tracelet_artifacts.settings import TraceletSettings
from tracelet_artifacts.store.embedded import EmbeddedStore

pytestmark = pytest.mark.integration


def _wait_listed(exp: Experiment, names: set[str], timeout: float = 60.0) -> list[RemoteArtifact]:
    deadline = time.monotonic() + timeout
    while True:
        listed = exp.list_artifacts(backend="wandb")
        if names <= {r.name for r in listed} or time.monotonic() > deadline:
            return listed  # type: ignore[return-value]
        time.sleep(0.1)


def test_experiment_delivers_to_wandb_and_reads_back(tmp_path: Path, data_dir: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    for key in [k for k in os.environ if k.startswith("TRACELET_")]:
        monkeypatch.delenv(key)
    Image.new("RGB", (4, 4), (200, 10, 10)).save(tmp_path / "red.png")
    settings = TraceletSettings(store_path=tmp_path / "store", backend_options={"wandb": {"project": "tracelet-e2e"}})
    exp = Experiment("e2e-run", backend=["wandb"], settings=settings).start()
    try:
        images = exp.create_artifact("samples/images", ArtifactType.IMAGE, description="one red square")
        images.add_file(tmp_path / "red.png", "img/red.png")
        model = exp.create_artifact("clf", ArtifactType.MODEL, description="logistic regression")
        model.add_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), input_example=[[0.5]])
        config = exp.create_artifact("cfg", ArtifactType.CONFIG).add_object({"lr": 0.1}, "hparams")
        receipts = {a.name: exp.log_artifact(a, aliases=["best"]) for a in (images, model, config)}
        assert all(r["wandb"].status in ("pending", "done") for r in receipts.values())
        exp.log_params({"lr": 0.1, "epochs": 2})
        exp.log_metric("val/acc", 0.75, step=1)

        listed = {r.name: r for r in _wait_listed(exp, {"samples/images", "clf", "cfg"})}
        stored = {name: exp.get_artifact(name) for name in ("samples/images", "clf", "cfg")}
        assert {n: r.digest for n, r in listed.items()} == {n: s.digest for n, s in stored.items()}
        got = exp.get_artifact("clf", "latest", backend="wandb")
        assert isinstance(got, RemoteArtifact)
        assert got.version == "v0" and got.artifact_type is ArtifactType.MODEL and "best" in got.aliases
        assert [r.name for r in exp.list_artifacts(ArtifactType.IMAGE, backend="wandb")] == ["samples/images"]
        out = exp.fetch_artifact("clf", "v0", tmp_path / "fetched", backend="wandb")
        files = {p.relative_to(out).as_posix(): digest.file_key(p) for p in out.rglob("*") if p.is_file()}
        assert files == {e.path: e.digest for e in stored["clf"].manifest.entries}

        again = exp.log_artifact(exp.create_artifact("cfg", ArtifactType.CONFIG).add_object({"lr": 0.1}, "hparams"))
        assert again["wandb"].status in ("pending", "done")
    finally:
        exp.stop(timeout=60)

    wandb_dir = tmp_path / "store" / "wandb"
    assert [r.name for r in artifact_records(wandb_dir)] == ["samples__images", "clf", "cfg"], "no second cfg"
    records = run_records(wandb_dir)
    config = {u.key: json.loads(u.value_json) for r in records if r.WhichOneof("record_type") == "config"
              for u in r.config.update}
    assert config["lr"] == 0.1 and config["epochs"] == 2
    history = [{tuple(i.nested_key) or (i.key,): i.value_json for i in r.history.item}
               for r in records if r.WhichOneof("record_type") == "history"]
    assert any(json.loads(h.get(("val/acc",), "null") or "null") == 0.75 for h in history)
    assert any(("samples/images/img/red.png", "_type") in h for h in history), "the image shows as media"


def test_a_delivery_that_failed_while_wandb_was_down_is_delivered_by_sync(
        tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch, failing_server: FailingServer) -> None:
    for key in [k for k in os.environ if k.startswith("TRACELET_")]:
        monkeypatch.delenv(key)
    down = {"project": "tracelet-sync", "mode": "online",
            "settings": {"base_url": failing_server.url, "api_key": "x" * 40, "init_timeout": 1}}
    settings = TraceletSettings(store_path=tmp_path / "store", backend_options={"wandb": down},
                                delivery_max_attempts=1)
    exp = Experiment("sync-run", backend=["wandb"], settings=settings).start()
    receipts = exp.log_artifact(exp.create_artifact("cfg", ArtifactType.CONFIG).add_object({"lr": 0.1}, "hparams"))
    assert receipts["wandb"].status == "pending"  # the call returned at once although W&B is down
    result = exp.stop(timeout=60)
    assert result is not None and result.failed == 1, "the failed delivery stays in the outbox"

    store = EmbeddedStore(tmp_path / "store", fsync=False)
    saved = store.catalog.run_state(exp.run_id)[1]["wandb"]
    store.close()
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"}  # a new process: its own wandb-core
    env["TRACELET_BACKEND_OPTIONS"] = json.dumps({"wandb": {"project": "tracelet-sync"}})
    synced = subprocess.run([sys.executable, "-m", "tracelet_artifacts.cli", "sync", "--store",
                             str(tmp_path / "store"), "--include-live", "--timeout", "60"],
                            capture_output=True, text=True, timeout=120, env=env, cwd=Path(__file__).parents[2])
    assert synced.returncode == 0 and "1 done, 0 pending, 0 failed" in synced.stdout, synced.stdout + synced.stderr
    store = EmbeddedStore(tmp_path / "store", fsync=False)
    record = store.get("cfg")
    store.close()
    wandb_dir = tmp_path / "store" / "wandb"
    (found,) = artifact_records(wandb_dir, "cfg")
    assert json.loads(found.metadata)["tracelet"]["digest"] == record.digest
    assert found.run_id == saved["run_id"], "sync resumed the run the experiment started"


def test_an_alias_moved_in_the_store_moves_in_wandb_and_uploads_nothing(
        tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("TRACELET_")]:
        monkeypatch.delenv(key)
    exp = Experiment("alias-move", backend=["wandb"], settings=TraceletSettings(store_path=tmp_path / "store")).start()
    try:
        for seed in (1, 2):
            (tmp_path / f"m{seed}.pth").write_bytes(bytes([seed]) * 4096)
            model = exp.create_artifact("clf", ArtifactType.MODEL).add_file(tmp_path / f"m{seed}.pth", "model.pth")
            exp.log_artifact(model, aliases=["best"])  # v2 takes "best" from v1
        assert exp.flush(timeout=120).failed == 0
        exp.store.catalog.set_alias("clf", "best", 1)  # and back to v1, in the store only
        assert exp.flush(timeout=120).failed == 0
        listed = {a.version: set(a.aliases) for a in exp.list_artifacts(backend="wandb") if a.name == "clf"}
        moved = exp.store.catalog.deliveries("clf", 1, backend="wandb")[0]
    finally:
        exp.stop(timeout=60)
    assert "best" in listed["v0"] and "best" not in listed["v1"] and "latest" in listed["v1"]
    assert moved.status == "done" and moved.receipt and moved.receipt["remote_version"] == "v0"
    store = EmbeddedStore(tmp_path / "store", fsync=False)
    first = store.get("clf", 1)
    store.close()
    records = artifact_records(tmp_path / "store" / "wandb", "clf")
    assert len(records) == 3 and records[2].digest == records[0].digest, "v1 sent again, as the same W&B version"
    assert "best" in records[2].aliases and "best" in records[1].aliases
    (entry,) = records[2].manifest.contents
    assert Path(entry.local_path) == tmp_path / "store" / "blobs" / digest.key_path(first.manifest.entries[0].digest), \
        "W&B reads the stored blob"
    assert not [p for p in data_dir.rglob("*") if p.is_file()], "nothing staged, nothing copied"


@pytest.mark.parametrize("failing_server", [401], indirect=True)
def test_show_prints_uploaded_referenced_and_failed_deliveries_differently(
        tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch, failing_server: FailingServer) -> None:
    for key in [k for k in os.environ if k.startswith("TRACELET_")]:
        monkeypatch.delenv(key)
    (tmp_path / "weights.bin").write_bytes(b"\x01" * 2048)

    def data(exp: Experiment) -> Any:
        art = exp.create_artifact("data", ArtifactType.DATASET).add_file(tmp_path / "weights.bin", "w/weights.bin")
        return art.add_reference("s3://bucket/raw/part-0.parquet", size_bytes=10)

    store_path = tmp_path / "store"
    offline = Experiment("show-offline", backend=["wandb"], settings=TraceletSettings(store_path=store_path)).start()
    offline.log_artifact(data(offline))
    offline.stop(timeout=60)
    refused = {"mode": "online", "settings": {"base_url": failing_server.url, "api_key": "x" * 40, "init_timeout": 2}}
    online = Experiment("show-online", backend=["wandb"], settings=TraceletSettings(
        store_path=store_path, backend_options={"wandb": refused}, delivery_max_attempts=1)).start()
    online.log_artifact(data(online))
    online.stop(timeout=60)

    shown = subprocess.run([sys.executable, "-m", "tracelet_artifacts.cli", "show", "--store", str(store_path),
                            "data:v1"], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "COLUMNS": "400"}, cwd=Path(__file__).parents[2])
    assert shown.returncode == 0, shown.stderr
    rows = [line for line in shown.stdout.splitlines() if line.count("│") >= 4]
    cells = [[c.strip() for c in row.split("│")[1:-1]] for row in rows]
    states = {(c[0].split(" (run ")[0], c[1], c[2]): c[3] for c in cells}
    assert states[("wandb", "uploaded", "w/weights.bin")] == ""
    assert states[("wandb", "referenced", "s3://bucket/raw/part-0.parquet")] == "s3://bucket/raw/part-0.parquet"
    failed = [detail for (backend, state, _), detail in states.items() if state == "failed"]
    assert len(failed) == 1 and "W&B failed" in failed[0] and "the server says no" in failed[0]
    headers = [line for line in shown.stdout.splitlines() if line.startswith("wandb (run ")]
    assert len(headers) == 2
    done = next(h for h in headers if ": done" in h or ": partial" in h)
    assert "open: " in done and "locally: wandb sync " in done and str(store_path / "wandb") in done
    assert any(": failed" in h and "open:" not in h for h in headers)
