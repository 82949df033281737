"""Garbage collection of blobs no version references, safe while other processes write, by construction.

The race it closes: a writer puts a blob (or finds it already stored, and skips writing it), then commits a
version naming it; gc, in between, sees the blob unreferenced and deletes it. Time cannot settle it (clocks
differ, a writer may stall), so gc and commits meet in the catalog instead:

1. gc lists the blobs, then the referenced digests. A blob written after the listing is not in the list
   and is never considered.
2. For each batch of unreferenced digests, gc first records them in ``blob_deletions`` as ``deleting``
   (committed: a crash from here on leaves the record).
3. Then, in one transaction that every writer waits for (no lock keys), it reads again which of them a
   version now references (those commits finished before it: their blobs are kept and their records
   dropped), deletes the others' blobs and marks them ``deleted``, and forgets their stat-cache rows.
4. Every commit (``EmbeddedStore.commit``) reads, inside its own transaction, the ``blob_deletions`` rows of
   its digests. None: no gc deleted them since they were stored, so they are there. A row: the commit
   checks that blob in the blob store itself (the bucket, not a cache); present, the row is dropped (the
   version now references it, so no later gc can take it); absent, the commit fails with
   ``BlobsCollectedError`` and the writer stores the version's blobs again under a *pin*.
5. A pin (``blob_pins``, committed before the blobs are stored again) makes gc leave those digests alone:
   step 1 skips them and step 3 reads the pins again under its lock. So the second attempt cannot lose
   a race again, however often gc runs (``Experiment.log_artifact`` and ``EmbeddedStore.log`` do this).
   The pin is dropped after the commit; one left by a writer that died expires after ``PIN_TTL_S``.

Commits and step 3 are serialised by the catalog's writer lock (SQLite: one writer; PostgreSQL: a commit
holds the shared writer lock, step 3 the exclusive one), so each commit sees either the blob kept or the
deletion recorded: a version never names a missing blob, and no blob a writer wrote after gc listed the
store is collected.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tracelet_artifacts.errors import BlobsCollectedError
from tracelet_artifacts.store.blobs import BlobStore
from tracelet_artifacts.store.durability import sync_files
from tracelet_artifacts.store.sql import Connection, Database

log = logging.getLogger(__name__)

#: Digests deleted per exclusive transaction: writers wait for one batch at most.
BATCH = 100
#: A pin older than this belongs to a writer that died: gc drops it.
PIN_TTL_S = 86400.0
DELETING, DELETED = "deleting", "deleted"


@dataclass(frozen=True)
class GcReport:
    """What one gc did (or, with ``dry_run``, would do)."""

    listed: int
    removed: int
    removed_bytes: int
    kept_referenced: int
    rescued: int = 0  # unreferenced when listed, referenced by a commit before their deletion: kept
    digests: tuple[str, ...] = field(default=(), repr=False)


def _placeholders(items: Sequence[Any]) -> str:
    return ", ".join("?" for _ in items)


def _batches(items: Sequence[Any], size: int = BATCH) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def check_commit(conn: Connection, blobs: BlobStore, digests: Iterable[str]) -> None:
    """Inside a commit's transaction: raise BlobsCollectedError when gc deleted one of ``digests`` after it
    was stored; drop the deletion records of those that are there again (the version now holds them)."""
    if conn.execute("SELECT 1 FROM blob_deletions LIMIT 1").fetchone() is None:
        return  # no deletion on record (the usual case): nothing to look up
    wanted = sorted(set(digests))
    recorded: list[str] = []
    for batch in _batches(wanted, 500):
        rows = conn.execute(f"SELECT sha256 FROM blob_deletions WHERE sha256 IN ({_placeholders(batch)})",
                            tuple(batch)).fetchall()
        recorded += [r["sha256"] for r in rows]
    if not recorded:
        return
    missing = []
    for sha in recorded:
        blobs.forget(sha)  # ask the store itself, not what this process remembers of it
        if not blobs.exists(sha):
            missing.append(sha)
    present = [sha for sha in recorded if sha not in set(missing)]
    for batch in _batches(present, 500):
        conn.execute(f"DELETE FROM blob_deletions WHERE sha256 IN ({_placeholders(batch)})", tuple(batch))
    if missing:
        raise BlobsCollectedError(missing)


def pin(db: Database, digests: Iterable[str]) -> str:
    """Pin ``digests`` against gc until ``unpin``; return the pin's id. Commit it before storing them again."""
    pin_id, now = uuid.uuid4().hex, time.time()
    with db.transaction("gc-pins") as conn:
        conn.executemany("INSERT INTO blob_pins (sha256, pin_id, pinned_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                         [(sha, pin_id, now) for sha in sorted(set(digests))])
    return pin_id


def unpin(db: Database, pin_id: str) -> None:
    with db.transaction("gc-pins") as conn:
        conn.execute("DELETE FROM blob_pins WHERE pin_id=?", (pin_id,))


def collect(db: Database, blobs: BlobStore, *, dry_run: bool = False, grace_s: float = 0.0) -> GcReport:
    """Delete the blobs no version references (see the module docstring for why it is safe while others
    write). ``grace_s`` additionally keeps blobs modified in the last ``grace_s`` seconds (not needed for
    safety; kept for callers that want recent blobs around)."""
    with db.transaction("gc-pins") as conn:  # pins of writers that died long ago
        conn.execute("DELETE FROM blob_pins WHERE pinned_at < ?", (time.time() - PIN_TTL_S,))
    listed = list(blobs.inventory())  # 1. anything stored after this line is not a candidate
    referenced = {r["sha256"] for r in db.read("SELECT DISTINCT sha256 FROM entries")}
    referenced |= {r["sha256"] for r in db.read("SELECT DISTINCT sha256 FROM blob_pins")}
    cutoff = time.time() - grace_s
    candidates = [(sha, size) for sha, size, modified in listed
                  if sha not in referenced and not (grace_s > 0 and modified > cutoff)]
    if dry_run:
        return GcReport(len(listed), len(candidates), sum(s for _, s in candidates),
                        len(listed) - len(candidates), digests=tuple(sha for sha, _ in candidates))
    gc_id = uuid.uuid4().hex
    removed: list[tuple[str, int]] = []
    rescued = 0
    for batch in _batches(candidates):
        digests = [sha for sha, _ in batch]
        now = time.time()
        with db.transaction("gc") as conn:  # 2. the intent, committed before any blob goes
            conn.executemany("INSERT INTO blob_deletions (sha256, state, gc_id, recorded_at) VALUES (?, ?, ?, ?) "
                             "ON CONFLICT (sha256) DO UPDATE SET state=excluded.state, gc_id=excluded.gc_id, "
                             "recorded_at=excluded.recorded_at", [(sha, DELETING, gc_id, now) for sha in digests])
        with db.transaction() as conn:  # 3. every writer waits: re-check, delete, record
            marks = _placeholders(digests)
            again = {r["sha256"] for r in conn.execute(
                f"SELECT sha256 FROM entries WHERE sha256 IN ({marks}) UNION SELECT sha256 FROM blob_pins "
                f"WHERE sha256 IN ({marks})", (*digests, *digests)).fetchall()}
            doomed = [(sha, size) for sha, size in batch if sha not in again]
            if again:
                kept = sorted(again)
                conn.execute(f"DELETE FROM blob_deletions WHERE sha256 IN ({_placeholders(kept)})", tuple(kept))
                rescued += len(kept)
            blobs.delete_many(sha for sha, _ in doomed)
            gone = [sha for sha, _ in doomed]
            if gone:
                conn.execute(f"UPDATE blob_deletions SET state='{DELETED}' WHERE sha256 IN ({_placeholders(gone)})",
                             tuple(gone))
                conn.execute(f"DELETE FROM stat_cache WHERE sha256 IN ({_placeholders(gone)})", tuple(gone))
            removed += doomed
    copies = blobs.written_out()  # packed blobs written out as files are kept as files only, once on disk
    if blobs.fsync:
        sync_files([blobs.where(key) for key in copies], blobs.root)
    blobs.compact(copies)  # then packs no longer used, or less than half used, are removed or rewritten
    log.info("gc: removed %d unreferenced blob(s), %d bytes (%d rescued by concurrent commits)",
             len(removed), sum(s for _, s in removed), rescued)
    return GcReport(len(listed), len(removed), sum(s for _, s in removed), len(listed) - len(candidates),
                    rescued, tuple(sha for sha, _ in removed))
