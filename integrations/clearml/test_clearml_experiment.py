"""End to end through the public API: ``Experiment(..., backend=["clearml"])`` logs, lists, gets and fetches
artifacts through offline ClearML, passes params and metrics on, and ``stop()`` leaves a closed session zip."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from clearml_suite import session_json
from sklearn.linear_model import LogisticRegression

from tracelet_artifacts import digest
from tracelet_artifacts.artifact import ArtifactType
from tracelet_artifacts.backends.base import RemoteArtifact
from tracelet_artifacts.errors import DeliveryPendingError
from tracelet_artifacts.experiment import Experiment
from tracelet_artifacts.settings import TraceletSettings
from tracelet_artifacts.store.embedded import EmbeddedStore


def _wait_listed(exp: Experiment, names: set[str], timeout: float = 60.0) -> list[RemoteArtifact]:
    deadline = time.monotonic() + timeout
    while True:
        listed = exp.list_artifacts(backend="clearml")
        if names <= {r.name for r in listed} or time.monotonic() > deadline:
            return listed  # type: ignore[return-value]
        time.sleep(0.1)


@pytest.mark.integration
def test_experiment_delivers_to_clearml_and_reads_back(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "split").mkdir(parents=True)
    (data / "split" / "train.csv").write_text("x,y\n1,0\n2,1\n")
    (data / "README.md").write_text("tiny dataset\n")
    settings = TraceletSettings(store_path=tmp_path / "store",
                                backend_options={"clearml": {"project": "tracelet-e2e", "close_wait_s": 30}})
    exp = Experiment("e2e-run", backend=["clearml"], settings=settings).start()
    try:
        dataset = exp.create_artifact("tiny-data", ArtifactType.DATASET, description="two files")
        dataset.add_dir(data, "data").add_reference("gs://bucket/tiny/full.csv", size_bytes=99)
        model = exp.create_artifact("clf", ArtifactType.MODEL, description="logistic regression")
        model.add_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), input_example=[[0.5]])
        model.add_label("baseline")
        config = exp.create_artifact("cfg", ArtifactType.CONFIG).add_object({"lr": 0.1}, "hparams")
        receipts = {a.name: exp.log_artifact(a) for a in (dataset, model, config)}
        assert all(r["clearml"].status in ("pending", "done") for r in receipts.values())
        exp.log_params({"lr": 0.1, "epochs": 2})
        exp.log_metric("val/acc", 0.75, step=1)

        listed = {r.name: r for r in _wait_listed(exp, {"tiny-data", "clf", "cfg"})}
        stored = {name: exp.get_artifact(name) for name in ("tiny-data", "clf", "cfg")}
        assert {n: r.digest for n, r in listed.items()} == {n: s.digest for n, s in stored.items()}
        got = exp.get_artifact("clf", "latest", backend="clearml")
        assert got.version == "v1" and got.artifact_type is ArtifactType.MODEL
        assert [r.name for r in exp.list_artifacts(ArtifactType.DATASET, backend="clearml")] == ["tiny-data"]
        out = exp.fetch_artifact("tiny-data", "v1", tmp_path / "fetched", backend="clearml")
        files = {p.relative_to(out).as_posix(): digest.file_key(p) for p in out.rglob("*") if p.is_file()}
        assert files == {e.path: e.digest for e in stored["tiny-data"].manifest.entries}
    finally:
        result = exp.stop(timeout=60)
    assert result is not None and result.complete

    sessions = sorted((tmp_path / "store" / "clearml" / "cache" / "offline").glob("offline-*.zip"))
    assert len(sessions) == 1, "one offline session, closed into its zip by stop()"
    with zipfile.ZipFile(sessions[0]) as zf:
        task = json.loads(zf.read("task.json"))
        metrics = zf.read("metrics.jsonl").decode()
        names = set(zf.namelist())
    keys = {a["key"] for a in task["execution"]["artifacts"]}
    assert {"tiny-data:v1", "clf:v1", "cfg:v1", "cfg:v1/hparams.json", "tiny-data:v1/data/split/train.csv",
            "tiny-data:v1/ref:gs://bucket/tiny/full.csv", "clf:v1/model/input_example.json"} <= keys
    model_entry = [m for m in task["offline_output_models"] if m["init"]["name"] == "clf"]  # the artifact's name
    assert model_entry and model_entry[0]["init"]["framework"] == "ScikitLearn"
    assert "baseline" in model_entry[0]["init"]["tags"]
    assert f"models/{Path(model_entry[0]['weights']['weights_filename']).name}" in names
    assert task["hyperparams"]["Tracelet"]["epochs"]["value"] == "2"
    rows = [json.loads(line) for line in metrics.splitlines() if line.strip()]
    events = [e for row in rows for e in (row if isinstance(row, list) else [row])]
    assert [(e["metric"], e["variant"], e["iter"], e["value"]) for e in events
            if e.get("type") == "training_stats_scalar"] == [("val", "acc", 1, 0.75)]


def _settings(tmp_path: Path) -> TraceletSettings:
    return TraceletSettings(store_path=tmp_path / "store", delivery_backoff_s=0.1, delivery_backoff_max_s=0.3,
                            delivery_max_attempts=50,
                            backend_options={"clearml": {"project": "tracelet-e2e", "close_wait_s": 30}})


@pytest.mark.integration
def test_failed_delivery_waits_in_the_outbox_and_is_retried(tmp_path: Path) -> None:
    """The session's storage refuses writes: the training call returns, the delivery retries, then succeeds."""
    (tmp_path / "pixel.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(32))
    exp = Experiment("outbox-run", backend=["clearml"], settings=_settings(tmp_path)).start()
    try:
        (session,) = (tmp_path / "store" / "clearml" / "cache" / "offline").glob("offline-*[!p]")
        blocker = session / "data"
        shutil.rmtree(blocker, ignore_errors=True)
        blocker.write_text("not a folder")  # every upload into the session fails with an OSError
        started = time.monotonic()
        receipt = exp.log_artifact(exp.create_artifact("pixel", ArtifactType.IMAGE).add_file(tmp_path / "pixel.png"))
        assert time.monotonic() - started < 5 and receipt["clearml"].status == "pending"
        time.sleep(1.5)  # several retryable failures happen meanwhile
        with pytest.raises(DeliveryPendingError, match=r"pixel:v1 is still being delivered to clearml"):
            exp.list_artifacts(backend="clearml", wait=0.2)  # pending, never an empty list that looks like a loss
        assert exp.store.catalog.outbox_counts(exp.run_id, ["clearml"]).get("failed", 0) == 0, "still retrying"
        blocker.unlink()
        assert "pixel" in {r.name for r in _wait_listed(exp, {"pixel"})}
    finally:
        result = exp.stop(timeout=60)
    assert result is not None and result.complete


SYNC = "import sys; from tracelet_artifacts.cli import main; sys.exit(main())"


@pytest.mark.integration
def test_what_a_stopped_run_left_undelivered_is_delivered_by_sync(tmp_path: Path) -> None:
    """Delivery impossible until the run stops; `tracelet-artifacts sync` (another process) delivers it into a new
    offline session of the same run, and the run's saved state lets a later reader find it."""
    settings = _settings(tmp_path)
    (tmp_path / "notes.md").write_text("# notes\n")
    exp = Experiment("sync-run", backend=["clearml"], settings=settings).start()
    try:
        (session,) = (tmp_path / "store" / "clearml" / "cache" / "offline").glob("offline-*[!p]")
        shutil.rmtree(session / "data", ignore_errors=True)
        (session / "data").write_text("not a folder")
        art = exp.create_artifact("notes", ArtifactType.REPORT).add_file(tmp_path / "notes.md")
        exp.log_artifact(art)
        run_id = exp.run_id
    finally:
        result = exp.stop(timeout=1)
    assert result is not None and result.pending == 1

    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLEARML_", "TRAINS_", "TRACELET_"))}
    env.update(HOME=str(tmp_path / "home"), PYTHONPATH=str(Path(__file__).resolve().parents[2]),
               TRACELET_BACKEND_OPTIONS=json.dumps(settings.backend_options))
    done = subprocess.run([sys.executable, "-c", SYNC, "sync", "--store", str(tmp_path / "store"), "--include-live",
                           "--timeout", "60"], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "1 done, 0 pending, 0 failed" in done.stdout

    store = EmbeddedStore(tmp_path / "store")
    try:
        _, state = store.catalog.run_state(run_id)
        record = store.get("notes")
        notes_sha256 = digest.sha256_file(store.blob_path(record.manifest.entries[0].digest))  # what ClearML records
    finally:
        store.close()
    sessions = [Path(p) for p in state["clearml"]["sessions"]]
    assert len(sessions) == 2 and sessions[0] == session
    with zipfile.ZipFile(sessions[1].with_name(sessions[1].name + ".zip")) as zf:
        held = {a["key"]: a for a in json.loads(zf.read("task.json"))["execution"]["artifacts"]}
    assert held["notes:v1"]["display_data"] and held["notes:v1/notes.md"]["hash"] == notes_sha256


@pytest.mark.integration
def test_an_alias_moved_in_the_store_uploads_nothing_and_the_receipt_says_clearml_keeps_its_tags(
        tmp_path: Path) -> None:
    settings = TraceletSettings(store_path=tmp_path / "store", backend_options={"clearml": {"close_wait_s": 30}})
    exp = Experiment("alias-move", backend=["clearml"], settings=settings).start()
    try:
        for seed, aliases in ((1, ()), (2, ("best",))):
            (tmp_path / f"m{seed}.pth").write_bytes(bytes([seed]) * 4096)
            model = exp.create_artifact("clf", ArtifactType.MODEL).add_file(tmp_path / f"m{seed}.pth", "model.pth")
            exp.log_artifact(model, aliases=aliases)
        assert exp.flush(timeout=120).failed == 0
        (session,) = (tmp_path / "store" / "clearml" / "cache" / "offline").glob("offline-*")
        before = {p: p.stat().st_mtime_ns for p in session.rglob("*") if p.is_file() and p.name != "task.json"}
        exp.store.catalog.set_alias("clf", "best", 1)  # moved back to v1 in the store
        assert exp.flush(timeout=120).failed == 0
        after = {p: p.stat().st_mtime_ns for p in session.rglob("*") if p.is_file() and p.name != "task.json"}
        first, second = (exp.store.catalog.deliveries("clf", v, backend="clearml")[0] for v in (1, 2))
    finally:
        exp.stop(timeout=60)
    assert after == before, "nothing uploaded again"
    assert first.status == "done" and first.receipt is not None
    assert "tags were set when it was registered" in first.receipt["not_held"]["alias:best"]
    assert second.receipt is not None and "alias:best" not in second.receipt["not_held"]
    models = {tuple(sorted(m["init"]["tags"])): m["init"]["name"]
              for m in session_json(session)["offline_output_models"]}
    assert set(models.values()) == {"clf"} and any("best" in tags and "tracelet-v2" in tags for tags in models)
