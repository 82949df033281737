"""The ```python snippets of docs/backends/mlflow.md run, in order, in a fresh interpreter and an empty folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
PAGE = Path(__file__).resolve().parents[2] / "docs" / "backends" / "mlflow.md"


def test_docs_page_snippets_run(tmp_path: Path) -> None:
    blocks = re.findall(r"^```python\n(.*?)^```", PAGE.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL)
    assert len(blocks) >= 3
    script = tmp_path / "snippets.py"
    script.write_text("\n\n".join(blocks), encoding="utf-8")
    work, home = tmp_path / "work", tmp_path / "snippet-home"
    work.mkdir()
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACELET_", "MLFLOW_"))}
    env.update(HOME=str(home), TMPDIR=str(home), MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true",
               MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
               PYTHONPATH=os.pathsep.join(p for p in (str(PAGE.parents[2]), env.get("PYTHONPATH", "")) if p))
    result = subprocess.run([sys.executable, str(script)], cwd=work, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    assert (work / "out" / "model" / "model.pkl").is_file() and (work / ".tracelet" / "mlflow.db").is_file()
    assert not any(home.iterdir())  # MLflow wrote nothing in the home folder (or the temp folder)
