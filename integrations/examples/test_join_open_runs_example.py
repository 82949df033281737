"""examples/join_open_runs.py runs from an empty folder with no account and no server: the user's own W&B run,
ClearML task and Aim run receive the artifacts, stay open until the script closes them, and nothing else is
opened beside them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "join_open_runs.py"


@pytest.mark.integration
def test_join_open_runs_example_logs_into_the_users_own_runs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TRACELET_", "WANDB_", "CLEARML_", "TRAINS_", "MLFLOW_"))}
    env.update(HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "cache"), DO_NOT_TRACK="1",
               XDG_CONFIG_HOME=str(tmp_path / "config"), TMPDIR=str(tmp_path), PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, str(EXAMPLE), "out"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out, lines = tmp_path / "out", result.stdout.splitlines()
    assert any(line.startswith("wandb    done: open ") and "wandb sync" in line for line in lines)
    assert any(line.startswith("clearml  done: open offline-") for line in lines)
    assert any(line.startswith("aim      done: open ") and f"aim up --repo {out / 'aim'}" in line for line in lines)
    assert "still open: True" in result.stdout
    assert "clearml  task 'my-clearml-task' holds: classifier:v1, train-config:v1" in result.stdout
    assert "aim      run " in result.stdout and "holds: classifier, train-config" in result.stdout

    (wandb_run,) = sorted((out / "wandb").glob("offline-run-*"))  # the user's run only
    assert not (out / ".tracelet" / "wandb").exists()
    (session,) = sorted((out / "clearml" / "offline").glob("offline-*.zip"))
    with zipfile.ZipFile(session) as zf:
        task = json.loads(zf.read("task.json"))
    assert task["name"] == "my-clearml-task"
    (model,) = task["offline_output_models"]
    assert model["init"]["name"] == "classifier" and "best" in model["init"]["tags"]
    assert not (out / ".tracelet" / "aim").exists() and (out / "aim" / ".aim").is_dir()
    run_id = next(line for line in lines if line.startswith("wandb    run ")).split()[2]
    assert wandb_run.name.endswith(f"-{run_id}"), "the artifacts went into the user's W&B run"
