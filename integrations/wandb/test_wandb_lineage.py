"""Lineage to W&B: a run that consumed a stored version says so in its W&B run. Offline (W&B's
``use_artifact`` raises there) the use is in the run file as the run's config ``tracelet_inputs``, read back
here with W&B's own protobuf records."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from wandb_suite import run_records

from tracelet_artifacts.artifact import ArtifactType
from tracelet_artifacts.backends.wandb_uses import INPUTS_KEY, inputs_in_run_file
from tracelet_artifacts.experiment import Experiment
from tracelet_artifacts.settings import TraceletSettings

pytestmark = pytest.mark.integration


def test_a_use_is_recorded_in_the_offline_run_file(tmp_path: Path, data_dir: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("TRACELET_")]:
        monkeypatch.delenv(key)
    (tmp_path / "train.csv").write_text("x,y\n1,2\n")
    settings = TraceletSettings(store_path=tmp_path / "store", backend_options={"wandb": {"project": "lineage"}})
    with Experiment("prep", backend=["wandb"], settings=settings) as prep:
        prep.log_artifact(prep.create_artifact("data/train", ArtifactType.DATASET).add_file(tmp_path / "train.csv"))
    with Experiment("train", backend=["wandb"], settings=settings) as train:
        dataset = train.use_artifact("data/train")
        train.log_artifact(train.create_artifact("cfg", ArtifactType.CONFIG).add_object({"lr": 0.1}, "hparams"))
        train_id = train.run_id
    assert train_id

    wandb_dir = tmp_path / "store" / "wandb"
    records = run_records(wandb_dir)  # W&B's own record types, both runs in order
    config_updates = [json.loads(u.value_json) for r in records if r.WhichOneof("record_type") == "config"
                      for u in r.config.update if u.key == INPUTS_KEY]
    assert len(config_updates) == 1
    [recorded] = config_updates
    assert recorded == {"data/train:v1": {"name": "data/train", "version": 1, "digest": dataset.digest,
                                          "type": "dataset", "how": "use_artifact"}}
    per_run = [dict(inputs_in_run_file(f)) for f in wandb_dir.glob("offline-run-*/run-*.wandb")]
    assert sorted(per_run, key=len) == [{}, recorded]  # prep's run consumed nothing, train's the dataset
