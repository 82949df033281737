"""examples/team_store.py runs against the real servers, twice (the store persists between runs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from team_support import REPO, Team

pytestmark = pytest.mark.integration


def _run(team: Team, workdir: Path) -> str:
    result = subprocess.run([sys.executable, str(REPO / "examples" / "team_store.py"), str(workdir)],
                            env=team.subprocess_env(workdir), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_team_example_shares_and_promotes_versions(team: Team, tmp_path: Path) -> None:
    first = _run(team, tmp_path / "one")
    assert "logged team-example/classifier:v1" in first and "promoted it to production" in first
    second = _run(team, tmp_path / "two")
    assert "logged team-example/classifier:v2" in second
    store = team.open(tmp_path / "check")
    assert store.get("team-example/classifier", "production").version == 2
    assert [v.version for v in store.catalog.versions("team-example/classifier")] == [1, 2]


def test_the_team_example_says_what_to_set_when_nothing_is_set(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(REPO / "examples" / "team_store.py"), str(tmp_path)],
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(tmp_path)},
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 1 and "TRACELET_CATALOG_URL" in result.stderr
