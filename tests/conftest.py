"""Fixtures for the core tests: an isolated working folder and environment, and the test adapters."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers_adapters import AdapterFiles

from tracelet_artifacts.backends import registry


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty folder with no TRACELET_* variables, so nothing lands in the repository."""
    for key in list(os.environ):
        if key.startswith("TRACELET_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def adapters(tmp_path: Path) -> Iterator[AdapterFiles]:
    """Register the ``flaky`` (holds references) and ``plain`` (does not) test adapters."""
    registry.register("flaky", "helpers_adapters:FlakyAdapter", clobber=True)
    registry.register("plain", "helpers_adapters:PlainAdapter", clobber=True)
    yield AdapterFiles(tmp_path / "deliveries.jsonl", tmp_path / "backend-down")
