"""examples/diff_and_ui.py runs from an empty folder: logs versions, prints their diff with the regression,
and serves the web view on a free loopback port for a moment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_example_logs_diffs_and_serves_from_an_empty_folder(tmp_path: Path) -> None:
    pytest.importorskip("uvicorn")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACELET_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    result = subprocess.run([sys.executable, str(REPO / "examples" / "diff_and_ui.py"), "--serve", "0.2"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["diff-demo-output"]
    out = result.stdout
    assert "logged   diff-demo/classifier:v3" in out
    assert "metrics.json val_loss: 0.42 -> 0.47 (+11.9%)  [regression]" in out
    assert "config.yaml optimizer.lr: 0.01 -> 0.003" in out and "regressions: val_loss" in out
    assert "(diff page answered 200)" in out
