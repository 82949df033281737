"""Step 2 of the write path: content into the blob store, nothing visible yet.

``ingest`` streams a frozen artifact's files into the blob store (a kernel copy, then the SHA-256 of what was
stored; up to ``INGEST_WORKERS`` files at once; a file unchanged since it was last stored is skipped by its
stat signature), settles the blobs so every reader of the store can read them, and returns ``Staged``: the
hashed Manifest plus what the commit (step 3) records with it. No catalog row is written here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tracelet_artifacts import digest
from tracelet_artifacts.store.blobs import BlobStore
from tracelet_artifacts.store.stat_cache import MARGIN_NS, StatCache, StatRow
from tracelet_artifacts.values import Manifest

#: Files copied and hashed at once while ingesting one artifact.
INGEST_WORKERS = min(4, os.cpu_count() or 1)
#: How safe the staged blobs are from a crash: "synced" (each blob fsynced before it was named) or
#: "unsynced" (a store opened with fsync=False). Room for a group-synced state to come.
Durability = Literal["synced", "unsynced"]


@dataclass(frozen=True)
class Staged:
    """An artifact whose content is in the blob store but not yet in the catalog: what ``commit`` records.

    ``version`` (None: the next number), ``version_name`` (``1.2.0``) and ``aliases`` were checked before
    any blob was written.
    """

    manifest: Manifest
    stat_rows: tuple[StatRow, ...] = ()
    version: int | None = None
    aliases: tuple[str, ...] = ()
    durability: Durability = "synced"
    version_name: str | None = None


class BlobIntake:
    """The ContentSink that freezing streams into: files go into the blob store, skipped when their stat
    signature says they are unchanged since they were stored.

    Given the artifact's files up front, it copies and hashes up to ``INGEST_WORKERS`` of them at once
    (hashing and ``copy_file_range`` release the GIL); ``put_file`` then hands out each file's result in
    the order the manifest asks for it. The stat cache is only read on the calling thread.
    """

    def __init__(self, blobs: BlobStore, stat_cache: StatCache, files: Sequence[Path] = ()) -> None:
        self.blobs = blobs
        self.stat_cache = stat_cache
        self.stat_rows: list[StatRow] = []
        self._ahead: dict[Path, Future[tuple[str, int, StatRow | None]]] = {}
        self._pool: ThreadPoolExecutor | None = None
        todo = [p for p in dict.fromkeys(files) if self._cached(p) is None]
        workers = min(INGEST_WORKERS, len(todo))
        if workers > 1:
            self._pool = ThreadPoolExecutor(workers, thread_name_prefix="tracelet-ingest-blob")
            self._ahead = {path: self._pool.submit(self._store_file, path) for path in todo}

    def _cached(self, path: Path) -> tuple[str, int] | None:
        """(sha256, size) from the stat cache when the file is unchanged and its blob is still there."""
        try:
            signature = digest.file_signature(path)
        except OSError:
            return None  # put_file reports it
        cached = self.stat_cache.lookup(self.stat_cache.key(path), signature, MARGIN_NS)
        return (cached, signature[0]) if cached and self.blobs.touch(cached) else None

    def _store_file(self, path: Path) -> tuple[str, int, StatRow | None]:
        signature = digest.file_signature(path)
        sha, size = self.blobs.put_file(path)
        after = digest.file_signature(path)
        unchanged = after == signature and size == signature[0]  # unchanged while we read it: safe to remember
        return sha, size, (self.stat_cache.key(path), *signature, sha) if unchanged else None

    def put_file(self, path: Path) -> tuple[str, int]:
        ahead = self._ahead.pop(path, None)
        if ahead is None:
            cached = self._cached(path)
            if cached:
                return cached
        sha, size, row = ahead.result() if ahead is not None else self._store_file(path)
        if row is not None:
            self.stat_rows.append(row)
        return sha, size

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        return self.blobs.put_bytes(data)

    def close(self) -> None:
        """Wait for (or cancel) files still being stored, e.g. when freezing failed half-way."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
