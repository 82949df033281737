"""The CI examples run from a fresh, empty working folder, as a user copies them, and print what they say."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_example(name: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACELET_", "GITHUB_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env["MPLBACKEND"] = "Agg"
    return subprocess.run([sys.executable, str(REPO / "examples" / name)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=180)  # fmt: skip


def test_ci_fetch_lists_retrieves_caches_and_trends_from_an_empty_folder(tmp_path: Path) -> None:
    result = run_example("ci_fetch.py", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "12 successful runs on main (two pages)" in result.stdout
    assert "warm cache: 12 artifacts" in result.stdout and "(12 from the cache)" in result.stdout
    assert "throughput in run 1000: 120.0" in result.stdout
    assert "throughput over 12 cached runs: 120.0 -> 136.5 (increasing)" in result.stdout
    assert list(tmp_path.iterdir()) == []  # everything went to a temporary folder


def test_ci_trends_writes_its_report_into_the_folder_it_runs_in(tmp_path: Path) -> None:
    result = run_example("ci_trends.py", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "regression at nightly-40" in result.stdout
    assert sorted(p.name for p in (tmp_path / "ci_trends_output").iterdir()) == ["ci_trend.html", "ci_trend.png"]
