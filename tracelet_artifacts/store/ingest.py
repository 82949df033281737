"""Step 2 of the write path: content into the blob store, nothing visible yet.

``ingest`` streams a frozen artifact's files into the blob store, each read once (a kernel copy and the BLAKE3
of what was stored for a large file; one read, hash and write for a small one: ``store/blobs.py``), several
at once (``INGEST_WORKERS`` threads; small files handed over ``SMALL_BATCH`` at a time, never more than a
few batches ahead of what freezing has consumed). A file unchanged since it was last stored is skipped by its
stat signature (the stat cache is asked once for every file). Blobs are then settled so every reader of the
store can read them, and ``Staged`` is returned: the hashed Manifest plus what the commit (step 3) records
with it. No catalog row is written here.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tracelet_artifacts import detect, digest
from tracelet_artifacts.store.blobs import SMALL_FILE_BYTES, BlobStore, StoredFile
from tracelet_artifacts.store.stat_cache import MARGIN_NS, StatCache, StatRow
from tracelet_artifacts.values import Manifest

#: Threads storing one artifact's files at once (copying and hashing release the GIL; small files spend
#: their time in system calls, which release it too).
INGEST_WORKERS = max(2, min(4, os.cpu_count() or 1))
#: Small files are stored this many per task (one task per large file).
SMALL_BATCH = 64
#: Tasks handed to the threads ahead of what freezing has consumed (bounds what is held in memory).
AHEAD_TASKS = 4 * INGEST_WORKERS
#: How safe the staged blobs are from a crash: "synced" (fsynced one by one, or held by the team's bucket),
#: "pending" (written, to be synced in a group after the commit) or "unsynced" (a store that never syncs).
Durability = Literal["synced", "pending", "unsynced"]


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


def staged_durability(blobs: BlobStore) -> Durability:
    """How safe a blob store's freshly stored blobs are (what ``Staged.durability`` says)."""
    if blobs.durable_when_settled or blobs.durability == "per-blob":
        return "synced"
    return "pending" if blobs.durability == "group" else "unsynced"


_Task = Future[list[StoredFile | BaseException]]


class BlobIntake:
    """The ContentSink that freezing streams into: files go into the blob store, skipped when their stat
    signature says they are unchanged since they were stored.

    Given the artifact's files up front, it stores them on ``INGEST_WORKERS`` threads; ``put_file`` then
    hands out each file's result in the order the manifest asks for it, and ``head`` the first bytes of a
    small file it read (so freezing need not open it again). The stat cache is only read on the calling thread.
    """

    def __init__(self, blobs: BlobStore, stat_cache: StatCache, files: Sequence[Path] = ()) -> None:
        self.blobs = blobs
        self.stat_cache = stat_cache
        self.stat_rows: list[StatRow] = []
        self._done: dict[Path, tuple[str, int]] = {}
        self._keys: dict[Path, str] = {}  # file -> its stat-cache key
        self._heads: dict[Path, bytes] = {}
        self._ahead: dict[Path, tuple[_Task, int]] = {}
        self._queued: deque[list[Path]] = deque()
        self._left: dict[int, int] = {}  # task -> its files not handed out yet
        self._unconsumed = 0  # tasks with files not handed out yet
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._large: set[Path] = set()
        self._threads = 1
        todo = self._skip_unchanged(list(dict.fromkeys(files)))
        if len(todo) > 1:
            self._plan(todo)

    # -- the stat-cache shortcut ------------------------------------------------------------------
    def _skip_unchanged(self, files: list[Path]) -> list[Path]:
        """Answer the files the stat cache vouches for (and whose blob is still there); return the rest."""
        keys = self._keys
        for path in files:
            if path not in keys:
                keys[path] = self.stat_cache.key(path)
        rows = self.stat_cache.rows(keys[path] for path in files)
        todo = []
        for path in files:
            row = rows.get(keys[path])
            found = self._vouched(path, row) if row is not None else None
            if found is None:
                todo.append(path)
            else:
                self._done[path] = found
        return todo

    def _vouched(self, path: Path, row: StatRow) -> tuple[str, int] | None:
        try:
            signature = digest.stat_signature(os.stat(path))
        except OSError:
            return None  # put_file reports it
        key = self.stat_cache.matches(row, signature, MARGIN_NS)
        return (key, signature[0]) if key and self.blobs.keep(key) else None

    # -- storing ahead ----------------------------------------------------------------------------
    def _plan(self, todo: list[Path]) -> None:
        """Queue the files in manifest order: each large one a task of its own, small ones ``SMALL_BATCH``
        to a task. Large files go to up to ``INGEST_WORKERS`` threads; small ones to a single thread (many
        threads each making short system calls only wait for each other's turn at the interpreter)."""
        small: list[Path] = []
        large = 0
        for path in todo:
            try:
                size = path.stat().st_size
            except OSError:
                size = 0  # put_file reports it
            if size <= SMALL_FILE_BYTES:
                small.append(path)
                if len(small) == SMALL_BATCH:
                    self._queued.append(small)
                    small = []
            else:
                self._queued.append([path])
                self._large.add(path)
                large += 1
        if small:
            self._queued.append(small)
        workers = min(INGEST_WORKERS, large)
        # One large file alone may be hashed on several cores; several share them.
        self._threads = max(1, (os.cpu_count() or 1) // max(1, workers))
        if workers:
            self._pools["large"] = ThreadPoolExecutor(workers, thread_name_prefix="tracelet-ingest-blob")
        if len(todo) > large:
            self._pools["small"] = ThreadPoolExecutor(1, thread_name_prefix="tracelet-ingest-small")
        self._fill()

    def _fill(self) -> None:
        """Hand the threads more tasks while fewer than ``AHEAD_TASKS`` are unconsumed."""
        while self._queued and self._unconsumed < AHEAD_TASKS:
            batch = self._queued.popleft()
            pool = self._pools["large" if batch[0] in self._large else "small"]
            task = pool.submit(self._store_batch, batch)
            for index, path in enumerate(batch):
                self._ahead[path] = (task, index)
            self._left[id(task)] = len(batch)
            self._unconsumed += 1

    def _consumed(self, task: _Task) -> None:
        self._left[id(task)] -= 1
        if not self._left[id(task)]:
            del self._left[id(task)]
            self._unconsumed -= 1
            self._fill()

    def _store_batch(self, paths: list[Path]) -> list[StoredFile | BaseException]:
        results: list[StoredFile | BaseException] = []
        for path in paths:
            try:
                results.append(self.blobs.store_file(path, self._threads, head=_sniffed(path)))
            except Exception as exc:  # handed to the caller with this file's result
                results.append(exc)
        return results

    # -- the ContentSink --------------------------------------------------------------------------
    def put_file(self, path: Path) -> tuple[str, int]:
        done = self._done.get(path)
        if done is not None:
            return done
        ahead = self._ahead.pop(path, None)
        if ahead is not None:
            result = ahead[0].result()[ahead[1]]
            self._consumed(ahead[0])
            if isinstance(result, BaseException):
                raise result
            stored = result
        else:
            vouched = self._skip_unchanged([path])
            if not vouched:
                return self._done[path]
            stored = self.blobs.store_file(path, head=_sniffed(path))
        if stored.unchanged:
            self.stat_rows.append((self._keys[path], *stored.before, stored.key))
        if stored.head is not None:
            self._heads[path] = stored.head
        self._done[path] = (stored.key, stored.size)
        return stored.key, stored.size

    def head(self, path: Path) -> bytes | None:
        """The first bytes of a small file ``put_file`` read whole (None: read them yourself)."""
        return self._heads.pop(path, None)

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        return self.blobs.put_bytes(data)

    def close(self) -> None:
        """Wait for (or cancel) files still being stored, e.g. when freezing failed half-way."""
        self._queued.clear()
        for pool in self._pools.values():
            pool.shutdown(wait=True, cancel_futures=True)


def _sniffed(path: Path) -> bool:
    """Whether freezing will look at a file's first bytes (its name does not say whether it is text)."""
    return detect.by_name(path)[1] is None
