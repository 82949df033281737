"""Fixtures for the abuse suite: a store whose whole on-disk state can be compared before and after a
refused call, the hypothesis budget every property test here shares, and the CI loopback servers."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tracelet_artifacts.store.embedded import EmbeddedStore

# The loopback HTTP servers of the CI tests (pytest-httpserver on 127.0.0.1) are reused, not copied.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "ci"))
from ci_fakes import _api_server, _cdn_server, api, cdn, sleeps  # noqa: E402, F401

# Fast enough for the whole suite to stay well under 30 s on two cores.
ABUSE = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Pieces a hostile name or path is built from.
HOSTILE_PIECES = [
    "..", ".", "", "/", "\\", "C:", "c:\\", "\\\\server\\share", "\x00", "\n", "\r", "\t", "\x1b[31m", "\x7f",
    "\u202e", "\ud800", "~", "$HOME", "%2e%2e", ":", "@", "*", "?", "CON", " ", "é", "a", "b.txt", "x" * 300,
]


def store_state(store: EmbeddedStore) -> tuple[list[str], dict[str, list[tuple[object, ...]]]]:
    """Every file under the store's blob folder (temp files included) and every catalog row."""
    files = sorted(p.relative_to(store.root).as_posix() for p in (store.root / "blobs").rglob("*") if p.is_file())
    db = sqlite3.connect(store.root / "catalog.db")
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        rows = {t: sorted(map(tuple, db.execute(f"SELECT * FROM {t}").fetchall()), key=repr) for t in tables}
    finally:
        db.close()
    return files, rows


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    """An embedded store without fsync (speed), closed after the test."""
    opened = EmbeddedStore(tmp_path / "store", fsync=False)
    yield opened
    opened.close()
