"""examples/diff_and_ui.py runs from an empty folder: logs versions, prints their diff with the regression,
and serves the web view on a free loopback port for a moment."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers_examples import run_example


def test_example_logs_diffs_and_serves_from_an_empty_folder(tmp_path: Path) -> None:
    pytest.importorskip("uvicorn")
    result = run_example("diff_and_ui.py", tmp_path, "--serve", "0.2")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["diff-demo-output"]
    out = result.stdout
    assert "logged   diff-demo/classifier:v3" in out
    assert "metrics.json val_loss: 0.42 -> 0.47 (+11.9%)  [regression]" in out
    assert "config.yaml optimizer.lr: 0.01 -> 0.003" in out and "regressions: val_loss" in out
    assert "(diff page answered 200)" in out
