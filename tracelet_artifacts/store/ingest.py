"""Step 2 of the write path: content into the blob store, nothing visible yet.

``ingest`` streams a frozen artifact's files into the blob store, each read once (a kernel copy and the BLAKE3
of what was stored for a large file; one read, hash and write for a small one: ``store/blobs.py``). Large
files are stored ahead, several at once (``INGEST_WORKERS`` threads, never more than a few files ahead of
what freezing has consumed); small files are stored on the calling thread as freezing asks for them (for
them the cost is system calls, and a second thread only made both wait for each other's turn at the
interpreter: measured, a folder of 10,000 small files logged about 1.2x faster this way). When there are
``PACK_FROM`` files or more to store, the small ones are appended to one pack file, sealed once the last is in
and kept when it holds ``PACK_FROM`` blobs or more (``store/packs.py``): a file each would cost more than their
bytes. A file unchanged since it was last stored
is skipped by its stat signature (the stat cache is asked once for every file). Blobs are then settled so
every reader of the store can read them, and ``Staged`` is returned: the hashed Manifest plus what the commit
(step 3) records with it. No catalog row is written here.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

from tracelet_artifacts import digest
from tracelet_artifacts.detect import SNIFF_BYTES
from tracelet_artifacts.store.blobs import SMALL_FILE_BYTES, BlobStore, StoredFile
from tracelet_artifacts.store.packs import PACK_FROM, PackWriter
from tracelet_artifacts.store.stat_cache import MARGIN_NS, StatCache, StatRow
from tracelet_artifacts.values import Manifest

#: Threads storing one artifact's large files at once (copying and hashing release the GIL).
INGEST_WORKERS = max(2, min(4, os.cpu_count() or 1))
#: Large files handed to the threads ahead of what freezing has consumed (bounds what is in flight).
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


class BlobIntake:
    """The ContentSink that freezing streams into: files go into the blob store, skipped when their stat
    signature says they are unchanged since they were stored.

    Given the artifact's files (absolute paths) up front, it stores the large ones ahead on ``INGEST_WORKERS``
    threads and the small ones when ``put_file`` asks for them; ``put_file`` hands out each file's result in the
    order the manifest asks for it, and ``head`` the first bytes of the small file it just read (so freezing need
    not open it again). The stat cache is only read on the calling thread.

    Which files are large is known from a ``stat`` of each, taken up front for fewer than ``PACK_FROM`` files.
    For more, none is taken until a large file turns up (a folder of 10,000 small files is read without one:
    the size of each comes from its open descriptor); then the files left are stat'ed and planned at once.
    """

    def __init__(self, blobs: BlobStore, stat_cache: StatCache, files: Sequence[str] = ()) -> None:
        self.blobs = blobs
        self.stat_cache = stat_cache
        self.stat_rows: list[StatRow] = []
        self._done: dict[str, tuple[str, int]] = {}
        self._keys: dict[str, str] = {}  # file -> its stat-cache key
        self._head: tuple[str, bytes | None] = ("", None)  # the file put_file read last, and its first bytes
        self._ahead: dict[str, Future[StoredFile]] = {}
        self._queued: deque[str] = deque()  # large files not handed to the threads yet
        self._pool: ThreadPoolExecutor | None = None
        self._pack: PackWriter | None = None  # where small files go, when there are many (opened on the first)
        self._small: dict[str, os.stat_result] = {}  # small files stat'ed already
        self._threads = 1
        todo = self._skip_unchanged(list(dict.fromkeys(files)))
        self._todo = dict.fromkeys(todo)  # in manifest order
        self._may_pack = len(todo) >= PACK_FROM and blobs.packs is not None
        self._planned = False  # whether the large files are known (and queued)
        if not self._may_pack:
            self._plan(todo)

    # -- the stat-cache shortcut ------------------------------------------------------------------
    def _skip_unchanged(self, files: list[str]) -> list[str]:
        """Answer the files the stat cache vouches for (and whose blob is still there); return the rest."""
        keys = self._keys
        for path in files:
            if path not in keys:
                keys[path] = self.stat_cache.key(path)
        rows = self.stat_cache.rows(keys[path] for path in files)
        vouched: dict[str, tuple[str, int]] = {}
        for path in files:
            row = rows.get(keys[path])
            found = self._vouched(path, row) if row is not None else None
            if found is not None:
                vouched[path] = found
        there = self.blobs.keep_many(key for key, _ in vouched.values()) if vouched else set()
        todo = []
        for path in files:
            found = vouched.get(path)
            if found is not None and found[0] in there:
                self._done[path] = found
            else:
                todo.append(path)
        return todo

    def _vouched(self, path: str, row: StatRow) -> tuple[str, int] | None:
        try:
            signature = digest.stat_signature(os.stat(path))
        except OSError:
            return None  # put_file reports it
        key = self.stat_cache.matches(row, signature, MARGIN_NS)
        return (key, signature[0]) if key else None

    # -- storing large files ahead ----------------------------------------------------------------
    def _plan(self, todo: list[str]) -> None:
        """Stat ``todo``; queue the large files in manifest order for up to ``INGEST_WORKERS`` threads (one large
        file alone is stored when asked for, hashed on every core; several share the cores)."""
        self._planned = True
        for path in todo:
            try:
                info = os.stat(path)
            except OSError:
                continue  # put_file reports it
            if info.st_size > SMALL_FILE_BYTES:
                self._queued.append(path)
            else:
                self._small[path] = info  # its stat, taken before it is opened: no second one then
        workers = min(INGEST_WORKERS, len(self._queued))
        self._threads = max(1, (os.cpu_count() or 1) // max(1, workers))
        if workers < 2:
            self._queued.clear()
            return
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="tracelet-ingest-blob")
        self._fill()

    def _fill(self) -> None:
        """Hand the threads more files while fewer than ``AHEAD_TASKS`` are in flight."""
        while self._queued and self._pool is not None and len(self._ahead) < AHEAD_TASKS:
            path = self._queued.popleft()
            if path not in self._done:
                self._ahead[path] = self._pool.submit(self.blobs.store_file, path, self._threads, head=False)

    # -- the ContentSink --------------------------------------------------------------------------
    def put_file(self, path: str) -> tuple[str, int]:
        done = self._done.get(path)
        if done is not None:
            return done
        if not self._planned and path in self._todo:
            probed = self._probe(path)
            if probed is not None:
                return probed
        ahead = self._ahead.pop(path, None)
        if ahead is not None:
            self._fill()
            stored = ahead.result()
        elif path in self._small and self._packing():
            fd = os.open(path, os.O_RDONLY)
            try:
                return self._put_packed(path, fd, self._small.pop(path))
            finally:
                os.close(fd)
        elif path in self._todo or self._skip_unchanged([path]):
            stored = self.blobs.store_file(path, self._threads, known=self._small.pop(path, None))
        else:
            return self._done[path]
        if stored.unchanged:
            self.stat_rows.append((self._keys[path], *stored.before, stored.key))
        self._head = (path, stored.head)
        self._done[path] = (stored.key, stored.size)
        return stored.key, stored.size

    def _probe(self, path: str) -> tuple[str, int] | None:
        """Before any large file turned up: a small file goes into the pack now, read through the descriptor its
        size came from; at a large one, it and the files left are planned (None: store it as planned)."""
        fd = os.open(path, os.O_RDONLY)
        try:
            info = os.fstat(fd)
            if info.st_size <= SMALL_FILE_BYTES and self._packing():
                return self._put_packed(path, fd, info)
        finally:
            os.close(fd)
        self._plan([p for p in self._todo if p not in self._done])
        return None

    def _packing(self) -> bool:
        """Whether small files go into a pack: when there are many, and the store packs (opened on the first)."""
        if self._pack is None and self._may_pack:
            self._pack = self.blobs.pack_writer()
        return self._pack is not None

    def _put_packed(self, path: str, fd: int, info: os.stat_result) -> tuple[str, int]:
        """A small file, open as ``fd``, into the pack (``info``, its stat, is its signature: no second one)."""
        assert self._pack is not None
        signature = digest.stat_signature(info)
        key, data = self._pack.add_from(fd, signature[0])
        if len(data) == signature[0]:  # else it changed while it was stored: not remembered
            self.stat_rows.append((self._keys[path], *signature, key))
        self._head = (path, bytes(data[:SNIFF_BYTES]))
        self._done[path] = (key, len(data))
        return key, len(data)

    def head(self, path: str) -> bytes | None:
        """The first bytes of the file ``put_file`` was just given, when it read it whole (None: read them
        yourself)."""
        last, head = self._head
        return head if last == path else None

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        return self.blobs.put_bytes(data)

    def seal(self) -> None:
        """Every file is in: record the pack's blobs, so every reader of the store finds them."""
        if self._pack is not None:
            self._pack.seal()
            self._pack = None

    def close(self) -> None:
        """Wait for (or cancel) files still being stored, and drop an unsealed pack, e.g. when freezing failed
        half-way."""
        self._queued.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        if self._pack is not None:
            self._pack.abandon()
            self._pack = None
