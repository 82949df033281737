"""Fixtures of the fault suite: a real ``mlflow server`` on loopback per test module, W&B offline with
every folder under the test's tmp path, and a runner for the child training process (training_run.py).

The server and the offline W&B environment come from the MLflow and W&B suites' helper modules
(integrations/mlflow/mlflow_support.py, integrations/wandb/wandb_suite.py), so each file here also runs
alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faults_support import REPO, Training
from mlflow_support import OFFLINE_ENV, MlflowServer
from wandb_suite import offline_env

os.environ.update(OFFLINE_ENV)  # before this process imports mlflow (telemetry is decided at import)


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A real MLflow tracking server for this module (tests stop and restart it: it is not shared)."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server")).start()
    yield server
    server.stop()


@pytest.fixture
def training_env(tmp_path: Path) -> dict[str, str]:
    """The environment of child processes: this checkout first on PYTHONPATH, MLflow offline and
    telemetry-free, W&B offline with its folders under tmp_path, no TRACELET_* from the caller."""
    wandb_root = tmp_path / "wandb-home"
    values = offline_env(wandb_root)
    for key, value in values.items():
        if key.endswith(("_DIR", "HOME")):
            Path(value).mkdir(parents=True, exist_ok=True)
    (wandb_root / "tmp").mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TRACELET_", "WANDB_", "MLFLOW_TRACKING", "MLFLOW_REGISTRY"))}
    env.update(OFFLINE_ENV, **values, TMPDIR=str(wandb_root / "tmp"))
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


@pytest.fixture
def training(training_env: dict[str, str], tmp_path: Path) -> Iterator[Any]:
    """Starts child training processes (``training(config)``); kills what is left at the end."""
    started: list[Training] = []

    def start(config: dict[str, Any]) -> Training:
        child = Training(config, training_env, tmp_path)
        started.append(child)
        return child

    yield start
    for child in started:
        child.cleanup()
