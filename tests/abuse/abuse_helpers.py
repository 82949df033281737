"""What the abuse tests share: the hypothesis budget, the pieces hostile names are built from, and a
snapshot of a store's whole on-disk state to compare before and after a refused call."""

from __future__ import annotations

import sqlite3

from hypothesis import HealthCheck, settings

from tracelet_artifacts.store.embedded import EmbeddedStore

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
