"""Fixtures of the hook suites (real Lightning, torch.save and watcher runs)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in ``tmp_path`` with no TRACELET_* or rank variables set, so nothing lands in the repository."""
    for key in list(os.environ):
        if key.startswith("TRACELET_") or key in ("RANK", "LOCAL_RANK", "SLURM_PROCID"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return tmp_path
