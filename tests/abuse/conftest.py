"""Fixtures for the abuse suite: a throw-away embedded store and the CI tests' loopback HTTP servers."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tracelet_artifacts.store.embedded import EmbeddedStore

# The loopback HTTP servers of the CI tests (pytest-httpserver on 127.0.0.1) are reused, not copied.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "ci"))
from ci_fakes import _api_server, _cdn_server, api, cdn, sleeps  # noqa: F401


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    """An embedded store without fsync (speed), closed after the test."""
    opened = EmbeddedStore(tmp_path / "store", fsync=False)
    yield opened
    opened.close()
