"""The stat cache: the digest each stored file had, keyed by its path and stat signature, so logging an
unchanged file again skips reading it (the re-log shortcut, as DVC's ``State`` does for ``dvc add``).

It shares the catalog's database: ``record`` writes inside the transaction that commits the version the
files belong to (or, under group durability, the one that records it durable), so a remembered digest always
names a blob some version holds.

    cache = StatCache(database)
    cache.lookup(cache.key(path), digest.file_signature(path))   # the blob key, or None: read the file
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import Any

from tracelet_artifacts.procs import HOST
from tracelet_artifacts.store.sql import Connection, Database

#: (key, size, change time ns, inode, device, blob key) of one file, as ``record`` takes it. (The column is
#: still named ``sha256``: it holds the blob key, ``blake3:<hex>`` for files stored since BLAKE3.)
StatRow = tuple[str, int, int, int, int, str]
#: A file whose mtime is this close to when its digest was recorded is hashed again (same clock tick).
MARGIN_NS = 50_000_000
_IN_LIST = 500  # keys per IN (...) list


class StatCache:
    """File path + (size, change time, inode, device) → the digest stored for it; safe to share between threads."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @property
    def shared(self) -> bool:
        """True on a catalog several machines share (PostgreSQL), where a path names a file on one host only."""
        return self.db.dialect != "sqlite"

    def key(self, path: str | os.PathLike[str]) -> str:
        """The key of a file: its absolute path, and on a catalog machines share, the host too."""
        absolute = os.fspath(path)
        if not os.path.isabs(absolute):
            absolute = os.path.join(os.getcwd(), absolute)  # as Path.absolute() has it: not normalised
        return f"{HOST}:{absolute}" if self.shared else absolute

    def lookup(self, key: str, signature: tuple[int, int, int, int], margin_ns: int = MARGIN_NS) -> str | None:
        """The blob key recorded for a file whose (size, change time, inode, device) still match.

        A file modified within ``margin_ns`` before the record was written is not trusted (its
        change time may not move on a later write in the same clock tick).
        """
        row = self.rows([key]).get(key)
        return self.matches(row, signature, margin_ns) if row is not None else None

    def rows(self, keys: Iterable[str]) -> dict[str, Any]:
        """The recorded rows of many files at once (key → row; files never recorded are absent)."""
        wanted = list(keys)
        found: dict[str, Any] = {}
        for start in range(0, len(wanted), _IN_LIST):
            part = wanted[start:start + _IN_LIST]
            sql = f"SELECT * FROM stat_cache WHERE path IN ({','.join('?' * len(part))})"
            found.update((row["path"], row) for row in self.db.read(sql, part))
        return found

    @staticmethod
    def matches(row: Any, signature: tuple[int, int, int, int], margin_ns: int = MARGIN_NS) -> str | None:
        """The blob key of a recorded row when ``signature`` still matches it (see ``lookup``)."""
        size, mtime_ns, inode, device = signature
        same = (row["size"], row["mtime_ns"], row["inode"], row["device"]) == (size, mtime_ns, inode, device)
        return row["sha256"] if same and mtime_ns + margin_ns < row["recorded_ns"] else None

    @staticmethod
    def record(conn: Connection, rows: Iterable[StatRow]) -> None:
        """Remember each file's signature and digest, inside the caller's transaction."""
        conn.executemany("INSERT INTO stat_cache VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET "
                         "size=excluded.size, mtime_ns=excluded.mtime_ns, inode=excluded.inode, "
                         "device=excluded.device, sha256=excluded.sha256, recorded_ns=excluded.recorded_ns",
                         [(*row, time.time_ns()) for row in sorted(rows)])  # one order: no deadlock
