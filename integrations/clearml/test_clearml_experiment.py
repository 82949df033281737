"""End to end through the public API: ``Experiment(..., backend=["clearml"])`` logs, lists, gets and fetches
artifacts through offline ClearML, passes params and metrics on, and ``stop()`` leaves a closed session zip."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression

from tracelet_artifacts import digest
from tracelet_artifacts.artifact import ArtifactType
from tracelet_artifacts.backends.base import RemoteArtifact
from tracelet_artifacts.experiment import Experiment
from tracelet_artifacts.settings import TraceletSettings


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
        files = {p.relative_to(out).as_posix(): digest.sha256_file(p) for p in out.rglob("*") if p.is_file()}
        assert files == {e.path: e.sha256 for e in stored["tiny-data"].manifest.entries}
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
    model_entry = [m for m in task["offline_output_models"] if m["init"]["name"] == "clf:v1"]
    assert model_entry and model_entry[0]["init"]["framework"] == "ScikitLearn"
    assert "baseline" in model_entry[0]["init"]["tags"]
    assert f"models/{Path(model_entry[0]['weights']['weights_filename']).name}" in names
    assert task["hyperparams"]["Tracelet"]["epochs"]["value"] == "2"
    assert '"metric": "val", "variant": "acc"' in metrics and '"value": 0.75' in metrics
