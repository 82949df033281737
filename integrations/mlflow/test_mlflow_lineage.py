"""Lineage to MLflow: a version a run consumed is one of the MLflow run's dataset inputs (with how it was used
and where MLflow's own copy is) and a ``tracelet.input/…`` tag, read back with MLflow's client."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tracelet_artifacts.artifact import ArtifactType
from tracelet_artifacts.experiment import Experiment
from tracelet_artifacts.settings import TraceletSettings

pytestmark = pytest.mark.integration


def test_a_used_version_is_an_input_of_the_mlflow_run(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    (tmp_path / "train.csv").write_text("x,y\n1,2\n")
    settings = TraceletSettings(store_path=tmp_path / "store", flush_timeout_s=120, backend_options={"mlflow": {}})
    with Experiment("prep", backend=["mlflow"], settings=settings) as prep:
        prep.log_artifact(prep.create_artifact("data/train", ArtifactType.DATASET).add_file(tmp_path / "train.csv"))
    with Experiment("train", backend=["mlflow"], settings=settings) as train:
        dataset = train.use_artifact("data/train", "latest")
        train.log_metric("loss", 0.5)

    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    runs = {r.info.run_name: r for r in client.search_runs([e.experiment_id for e in client.search_experiments()])}
    prep_run, train_run = client.get_run(runs["prep"].info.run_id), client.get_run(runs["train"].info.run_id)
    assert prep_run.inputs.dataset_inputs == []
    [used] = train_run.inputs.dataset_inputs
    assert used.dataset.name == "data/train" and used.dataset.source_type == "tracelet"
    assert used.dataset.digest == dataset.digest[:36]
    source = json.loads(used.dataset.source)
    assert source["uri"] == f"runs:/{prep_run.info.run_id}/data/train/v1"  # MLflow's copy, from the receipt
    assert {t.key: t.value for t in used.tags} == {"mlflow.data.context": "use_artifact", "tracelet.version": "v1",
                                                  "tracelet.type": "dataset"}
    assert train_run.data.tags["tracelet.input/data/train/v1"] == "use_artifact"
