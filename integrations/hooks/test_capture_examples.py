"""The capture examples run from a fresh, empty working folder, into an output folder that does not exist yet."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from test_ddp import clean_env

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("example", ["torch_save_capture.py", "watch_outputs.py"])
def test_a_capture_example_runs_from_an_empty_folder_into_a_new_one(example: str, workdir: Path) -> None:
    pytest.importorskip("torch" if example.startswith("torch") else "watchdog")
    done = subprocess.run([sys.executable, str(EXAMPLES / example), "out/run-1"], cwd=workdir, env=clean_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (workdir / "out" / "run-1" / ".tracelet" / "catalog.db").exists()
    assert "artifact version(s)" in done.stdout or "captured" in done.stdout.lower()
