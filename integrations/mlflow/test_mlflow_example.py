"""examples/mlflow_pyfunc.py runs from an empty folder with only ``MLFLOW_TRACKING_URI`` set (a real server
started elsewhere): the run it opened holds the versions, and pyfunc loads ``best`` back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "mlflow_pyfunc.py"


def test_mlflow_pyfunc_example_joins_the_users_run_and_loads_best_with_pyfunc(mlflow_server: Any,
                                                                                tmp_path: Path) -> None:
    work, home = tmp_path / "empty", tmp_path / "example-home"
    work.mkdir()
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACELET_", "MLFLOW_"))}
    env.update(HOME=str(home), TMPDIR=str(home), MLFLOW_TRACKING_URI=mlflow_server.url, DO_NOT_TRACK="true",
               MLFLOW_DISABLE_TELEMETRY="true",
               PYTHONPATH=os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p))
    result = subprocess.run([sys.executable, str(EXAMPLE)], cwd=work, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if not line.startswith(("🏃", "🧪"))]  # MLflow's own
    assert lines[-4].startswith("delivered: 3 version(s) into MLflow run ")
    assert lines[-4].endswith("(the run you opened)")
    assert lines[-3].endswith("pyfunc predicts like the best epoch: True")
    assert lines[-2] == "logged models of the run: 3"
    assert sorted(p.name for p in work.iterdir()) == ["mlflow-pyfunc-output"]
