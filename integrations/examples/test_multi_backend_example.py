"""examples/multi_backend.py runs with no account and no server, and every backend holds what it was routed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "multi_backend.py"


@pytest.mark.integration
def test_multi_backend_example_delivers_each_artifact_where_the_router_sends_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACELET_", "WANDB_", "CLEARML_", "MLFLOW_"))}
    env.update(HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "cache"), DO_NOT_TRACK="1",
               XDG_CONFIG_HOME=str(tmp_path / "config"), TMPDIR=str(tmp_path))
    result = subprocess.run([sys.executable, str(EXAMPLE), str(tmp_path / "out")], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "delivered: 7, pending: 0, failed: 0" in out
    holds = {line.split()[0]: line.split("holds:")[1].strip() for line in out.splitlines() if " holds: " in line}
    assert holds == {"mlflow": "classifier, train-config", "wandb": "predictions, train-config",
                     "clearml": "train-config, train-set", "aim": "train-config"}
    assert (tmp_path / "out" / ".tracelet" / "catalog.db").exists()
    assert not (tmp_path / "home" / ".wandb").exists()
