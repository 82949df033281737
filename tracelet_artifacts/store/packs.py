"""Pack files: the small blobs of one large ingest appended to one file, not written as one file each.

On a local disk, creating a file costs more than writing 4 KiB into it, so a folder of 10,000 small files cost
the store 10,000 new files (and their inodes) where ``cp -r`` pays the same. An ingest with ``PACK_FROM``
small files or more (``store/ingest.py``) appends them to ``blobs/packs/<host>-<pid>-<token>.pack`` instead.
Where each blob lies (key → pack, offset, size) is kept in ``blobs/packs/index.db`` (SQLite, WAL), written when
the pack is *sealed*, after its last byte: a reader finds a packed blob only once it is whole. A blob already
in the index keeps its place (the new copy's bytes are dead space; a pack left with no entry is removed).

Reading (``BlobStore``): a caller that needs a file (a backend's upload, the web view) gets the packed blob
written out as an ordinary blob file the first time (``BlobStore.path``); ``copy_to`` and ``verify`` read it
from the pack. Durability is that of blob files: under group durability the pack and the index's log are synced
with their version's group (the write journal records them); under per-blob durability both are fsynced when
the pack is sealed. After a crash, a pack whose writer died before sealing it has no entry and is removed at
the next start (``clean``); a machine crash may leave sealed entries whose bytes did not reach the disk, so
recovery hashes the entries of packs written since the safe point and forgets the torn ones
(``store/durability.py``). gc forgets collected entries (``forget``) and then rewrites every pack less than
half of whose bytes are still used (``compact``; removed when none is).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Protocol

from tracelet_artifacts import digest
from tracelet_artifacts.errors import ArtifactStoreError
from tracelet_artifacts.procs import HOST, writer_is_dead
from tracelet_artifacts.store.failures import blob_write_error
from tracelet_artifacts.store.file_calls import read_into
from tracelet_artifacts.store.write_journal import WriteJournal, current_pid, fsync_path

log = logging.getLogger(__name__)
FOLDER = "packs"
INDEX = "index.db"
#: Small files one ingest stores before they go into a pack (fewer are written as blob files, one each).
PACK_FROM = 64
#: Bytes gathered in memory before they are appended to the pack file.
FLUSH_BYTES = 1 << 20
_BATCH = 500  # keys per SQL statement
_PREFIX = digest.BLAKE3 + ":"


class BlobStore(Protocol):
    """What packs need of the blob store they belong to (``store/blobs.py``)."""

    @property
    def journal(self) -> WriteJournal | None: ...

    @property
    def durability(self) -> str: ...

    def put_bytes(self, data: bytes) -> tuple[str, int]: ...


def _raw(key: str) -> bytes | None:
    """A packable key as the 32 bytes the index keeps (None: not a BLAKE3 key, so never packed)."""
    if not key.startswith(_PREFIX) or len(key) != len(_PREFIX) + 64:
        return None
    try:
        return bytes.fromhex(key[len(_PREFIX):])
    except ValueError:
        return None


def _key(raw: bytes) -> str:
    return _PREFIX + raw.hex()


class _Declined(Exception):
    """A pack's entries are not recorded: too few of them are new."""


class PackIndex:
    """Which packed blob lies where, for one blob folder (``root/packs/index.db``); safe to share between threads.

    Rows are kept small (a BLAKE3 digest as 32 bytes, a pack as a number): recording 10,000 blobs is one
    statement and a few milliseconds. The database is opened on first use, and only once it exists (a store that
    never packed pays one ``stat`` per lookup of a blob that is not a file)."""

    def __init__(self, folder: Path, *, synced: bool) -> None:
        self.folder = folder
        self.db_path = folder / INDEX
        self._synced = synced  # commit with a sync (per-blob durability)
        self._db: sqlite3.Connection | None = None
        self._pid = current_pid()
        self._lock = threading.RLock()

    def _conn(self, create: bool = False) -> sqlite3.Connection | None:
        if self._db is not None and self._pid != current_pid():
            self._db = None  # a forked child: its own connection (the parent's is left alone, never closed here)
        if self._db is None:
            if not create and not self.db_path.exists():
                return None
            self.folder.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.db_path, timeout=60.0, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={'FULL' if self._synced else 'NORMAL'}")
            db.execute("CREATE TABLE IF NOT EXISTS packs (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")
            db.execute("CREATE TABLE IF NOT EXISTS packed (digest BLOB PRIMARY KEY, pack INTEGER NOT NULL, "
                       "offset INTEGER NOT NULL, size INTEGER NOT NULL) WITHOUT ROWID")
            self._db, self._pid = db, current_pid()
        return self._db

    @contextmanager
    def _transaction(self, create: bool = False) -> Iterator[sqlite3.Connection | None]:
        """A write transaction; a database error (a full disk) becomes ArtifactStoreError, nothing recorded."""
        with self._lock:
            try:
                db = self._conn(create)
                if db is None:
                    yield None
                    return
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    with suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self._failed(exc) from exc

    def _read(self, sql: str, args: Sequence[object] = ()) -> list[Any]:
        with self._lock:
            try:
                db = self._conn()
                return db.execute(sql, args).fetchall() if db is not None else []
            except sqlite3.Error as exc:
                raise self._failed(exc) from exc

    def _failed(self, exc: sqlite3.Error) -> ArtifactStoreError:
        return ArtifactStoreError(f"The pack index at {str(self.db_path)!r} failed: {exc}; check that its disk has "
                                  "space and it is readable, then retry (nothing was half-written).")

    @property
    def log_path(self) -> Path:
        """The index's write-ahead log: syncing it makes the entries committed so far durable."""
        return self.db_path.with_name(INDEX + "-wal")

    def close(self) -> None:
        with self._lock:
            if self._db is not None and self._pid == current_pid():
                self._db.close()
            self._db = None

    # -- lookups ----------------------------------------------------------------------------------
    def find(self, key: str) -> tuple[Path, int, int] | None:
        """(pack file, offset, size) of a packed blob; None when it is not packed."""
        raw = _raw(key)
        rows = self._read("SELECT p.name, e.offset, e.size FROM packed e JOIN packs p ON p.id=e.pack "
                          "WHERE e.digest=?", (raw,)) if raw else []
        return (self.folder / str(rows[0][0]), int(rows[0][1]), int(rows[0][2])) if rows else None

    def present(self, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` are packed."""
        raws = [r for r in map(_raw, keys) if r is not None]
        found: set[str] = set()
        for start in range(0, len(raws), _BATCH):
            batch = raws[start:start + _BATCH]
            marks = ", ".join("?" * len(batch))
            rows = self._read(f"SELECT digest FROM packed WHERE digest IN ({marks})", batch)
            found.update(_key(row[0]) for row in rows)
        return found

    def read(self, key: str) -> bytes | None:
        """A packed blob's bytes (None: not packed). A pack rewritten meanwhile by gc is looked up again."""
        for _ in range(3):
            found = self.find(key)
            if found is None:
                return None
            try:
                return _pread(*found)
            except FileNotFoundError:
                continue
        return None

    def entries(self, packs: Sequence[str] | None = None) -> list[tuple[str, str, int, int]]:
        """(key, pack, offset, size) of every packed blob (of the packs named)."""
        sql = "SELECT e.digest, p.name, e.offset, e.size FROM packed e JOIN packs p ON p.id=e.pack"
        if packs is not None:
            if not packs:
                return []
            sql += f" WHERE p.name IN ({', '.join('?' * len(packs))})"
        return [(_key(d), n, o, s) for d, n, o, s in self._read(sql, packs or ())]

    def used(self) -> dict[str, int]:
        """Bytes still used in each sealed pack (0: none of its blobs; a pack being written is not listed)."""
        rows = self._read("SELECT p.name, COALESCE(SUM(e.size), 0) FROM packs p LEFT JOIN packed e ON e.pack=p.id "
                          "GROUP BY p.name")
        return {str(pack): int(total) for pack, total in rows}

    # -- changes ----------------------------------------------------------------------------------
    def add(self, pack: str, rows: Iterable[tuple[str, int, int]], *, at_least: int = 0) -> bool:
        """Record the blobs of a sealed pack (a key already packed keeps its place) when at least ``at_least``
        of them are new; else record nothing and return False."""
        try:
            with self._transaction(create=True) as db:
                assert db is not None
                number = db.execute("INSERT INTO packs (name) VALUES (?)", (pack,)).lastrowid
                before = db.total_changes
                db.executemany("INSERT OR IGNORE INTO packed VALUES (?, ?, ?, ?)",
                               sorted((_raw(key), number, offset, size) for key, offset, size in rows))
                if db.total_changes - before < at_least:
                    raise _Declined
        except _Declined:
            return False
        return True

    def forget(self, keys: Iterable[str]) -> None:
        """Drop packed blobs from the index (their bytes become dead space in their pack)."""
        raws = [(r,) for r in map(_raw, keys) if r is not None]
        with self._transaction() as db:
            if db is not None and raws:
                db.executemany("DELETE FROM packed WHERE digest=?", raws)

    def move(self, rows: Iterable[tuple[str, int]], old: str, new: str) -> None:
        """Point blobs of pack ``old`` at their copy in pack ``new`` (key, offset); forget the rest of ``old``'s,
        and ``old``."""
        with self._transaction() as db:
            if db is None:
                return
            number = db.execute("INSERT INTO packs (name) VALUES (?)", (new,)).lastrowid
            (was,) = db.execute("SELECT id FROM packs WHERE name=?", (old,)).fetchone() or (None,)
            db.executemany("UPDATE packed SET pack=?, offset=? WHERE digest=? AND pack=?",
                           ((number, offset, _raw(key), was) for key, offset in rows))
            db.execute("DELETE FROM packed WHERE pack=?", (was,))
            db.execute("DELETE FROM packs WHERE id=?", (was,))

    def drop(self, pack: str) -> None:
        """Forget a pack no entry uses any more (its file is removed)."""
        with self._transaction() as db:
            if db is not None:
                db.execute("DELETE FROM packs WHERE name=? AND id NOT IN (SELECT pack FROM packed)", (pack,))


class PackWriter:
    """Appends the small blobs of one ingest to a new pack; ``seal`` records them, after which every reader of
    the store finds them. Used by one thread (the ingest's)."""

    def __init__(self, blobs: BlobStore, index: PackIndex) -> None:
        self.blobs, self.index = blobs, index
        self.name = f"{HOST}-{current_pid()}-{uuid.uuid4().hex[:12]}.pack"
        self.path = index.folder / self.name
        self.entries: dict[str, tuple[int, int]] = {}  # key -> (offset, size)
        # One buffer, allocated once, that files are read straight into: no copy, and no memory grown and
        # given back per flush (measured on 10,000 files of 4 KiB: ~30 ms less than a growing buffer and a copy).
        self._buffer = bytearray(FLUSH_BYTES)
        self._view = memoryview(self._buffer)
        self._used = 0  # bytes of the buffer not yet appended to the file
        self._written = 0
        self._token = blobs.journal.begin() if blobs.journal else None
        try:
            index.folder.mkdir(parents=True, exist_ok=True)
            self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as exc:
            self.journaled(None)
            raise blob_write_error(index.folder.parent, exc) from exc

    def add(self, key: str, data: bytes | memoryview) -> None:
        """Append a blob (once per key; a BLAKE3 key: every new blob's)."""
        if key in self.entries:
            return
        if not key.startswith(_PREFIX):
            raise ValueError(f"only BLAKE3 blobs are packed, not {key[:19]}…")
        size = len(data)
        if self._used + size > len(self._buffer):
            self._flush()
        self.entries[key] = (self._written + self._used, size)
        if size > len(self._buffer):  # larger than the buffer: appended as it is
            self._write(data)
            self._written += size
            return
        self._view[self._used:self._used + size] = data
        self._used += size

    def add_from(self, fd: int, size: int) -> tuple[str, memoryview | bytes]:
        """Read a small open file (``size`` from its stat) straight into the buffer and append it; return its key
        and its bytes (valid until the next call). Read in one call: a write meanwhile shows in its size, or later
        in its change time."""
        if self._used + size + 1 > len(self._buffer):
            self._flush()
        start = self._used
        data = read_into(fd, size, self._view[start:start + size + 1])
        key = digest.bytes_key(data)
        if not isinstance(data, memoryview):  # read outside the buffer (it grew, or does not fit): appended
            self.add(key, data)
        elif key not in self.entries:  # else the same content is in already: these bytes are overwritten
            self.entries[key] = (self._written + start, len(data))
            self._used = start + len(data)
        return key, data

    def _flush(self) -> None:
        self._write(self._view[:self._used])
        self._written += self._used
        self._used = 0

    def _write(self, data: bytes | memoryview) -> None:
        assert self._fd is not None
        done = 0
        try:
            while done < len(data):
                done += os.write(self._fd, data[done:])
        except OSError as exc:  # a full disk: the store's own error (the caller abandons the pack)
            raise blob_write_error(self.index.folder.parent, exc) from exc

    def close_file(self, *, sync: bool) -> None:
        """Append what is left and close the pack file (fsynced first with ``sync``)."""
        fd = self._fd
        if fd is None:
            return
        try:
            self._flush()
            if sync:
                os.fsync(fd)
        except OSError as exc:
            raise blob_write_error(self.index.folder.parent, exc) from exc
        finally:
            os.close(fd)
            self._fd = None
            self._view.release()

    def seal(self) -> None:
        """Write what is left, then record the entries (after every byte: a reader never finds part of a blob).

        Blobs packed before (the same content logged again from other files) are not recorded twice: when they
        are most of the pack, the new ones are written again on their own (a pack, or files when few) and this
        pack is removed, so a pack is never mostly dead space. A pack of fewer than ``PACK_FROM`` blobs (an
        ingest of many files, few of them small) is not kept either: they become files."""
        if self._fd is None:
            return
        per_blob = self.blobs.durability == "per-blob"
        self.close_file(sync=per_blob)
        rows = ((key, offset, size) for key, (offset, size) in self.entries.items())
        kept = len(self.entries) >= PACK_FROM and self.index.add(self.name, rows, at_least=(len(self.entries) + 1) // 2)
        if not kept:
            self._store_elsewhere(set(self.entries) - self.index.present(list(self.entries)))
            self.path.unlink(missing_ok=True)
            self.journaled(None)
            return
        if per_blob:
            fsync_path(self.index.folder, folder=True)
        self.journaled(str(self.path))

    def _store_elsewhere(self, keys: set[str]) -> None:
        """Store these blobs of this (closed) pack again: in a new pack when there are ``PACK_FROM`` or more,
        else as files."""
        other = PackWriter(self.blobs, self.index) if len(keys) >= PACK_FROM else None
        try:
            for key, (offset, size) in self.entries.items():
                if key not in keys:
                    continue
                data = _pread(self.path, offset, size)
                if other is not None:
                    other.add(key, data)
                else:
                    self.blobs.put_bytes(data)
            if other is not None:
                other.seal()
        except BaseException:
            if other is not None:
                other.abandon()
            raise

    def journaled(self, path: str | None) -> None:
        """Tell the store's write journal the pack is written (``path``: to be synced, with the index's log)."""
        journal = self.blobs.journal
        if journal is None or self._token is None:
            return
        journal.written(self._token, path)
        self._token = None
        if path is not None:  # the index and its log too, so the group sync makes the entries durable
            journal.written(journal.begin(), str(self.index.db_path))
            journal.written(journal.begin(), str(self.index.log_path))

    def abandon(self) -> None:
        """The ingest failed before ``seal``: remove the pack (nothing was recorded)."""
        if self._fd is not None:
            with suppress(OSError):
                os.close(self._fd)
            self._fd = None
            self._view.release()
        self.path.unlink(missing_ok=True)
        self.journaled(None)


def clean(index: PackIndex) -> int:
    """Remove the packs of writers that are gone and never sealed them (killed mid-ingest); how many."""
    if not index.folder.is_dir():
        return 0
    used = index.used()
    removed = 0
    for pack in index.folder.glob("*.pack"):
        if pack.name not in used and writer_is_dead(pack.stem):
            pack.unlink(missing_ok=True)
            removed += 1
    return removed


def recent(index: PackIndex, since_ns: int) -> list[tuple[str, str, int, int]]:
    """Entries (key, pack, offset, size) of packs modified at or after ``since_ns`` (what a crash may have torn)."""
    names = []
    for pack in index.folder.glob("*.pack") if index.folder.is_dir() else ():
        with suppress(FileNotFoundError):
            if pack.stat().st_mtime_ns >= since_ns:
                names.append(pack.name)
    return index.entries(names)


def compact(blobs: BlobStore, index: PackIndex) -> int:
    """Remove sealed packs no entry uses and rewrite those less than half used (their entries into a new pack,
    synced before the old one goes); return the bytes freed. Packs being written are not sealed: left alone."""
    freed = 0
    for name, live in sorted(index.used().items()):
        pack = index.folder / name
        with suppress(FileNotFoundError):
            size = pack.stat().st_size
            if live * 2 >= size:
                continue
            if live:
                _rewrite(blobs, index, pack)
            pack.unlink()
            freed += size - live
        index.drop(name)
    return freed


def _rewrite(blobs: BlobStore, index: PackIndex, pack: Path) -> None:
    """Copy a pack's sound entries into a new pack and point the index at it, both on disk (whatever the
    store's durability) before the caller removes the old pack."""
    writer = PackWriter(blobs, index)
    try:
        for key, _, offset, size in index.entries([pack.name]):
            data = _pread(pack, offset, size)
            if digest.bytes_key(data, digest.algorithm_of(key)) == key:
                writer.add(key, data)
            else:
                log.warning("Packed blob %s… in %s is corrupt; it is dropped (verify --repair fetches it again "
                            "from a backend that holds it).", key[:19], pack)
        writer.close_file(sync=True)
        fsync_path(index.folder, folder=True)
    except BaseException:
        writer.abandon()
        raise
    index.move(((k, offset) for k, (offset, _) in writer.entries.items()), pack.name, writer.name)
    fsync_path(index.log_path)
    writer.journaled(str(writer.path))
    if not writer.entries:
        writer.path.unlink(missing_ok=True)


def _pread(path: Path, offset: int, size: int) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, size, offset)
    finally:
        os.close(fd)
