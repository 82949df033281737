"""Group-committed durability: a version is *committed* at once and *durable* when the group sync that covers
its blobs finishes, off the caller's thread; and after a crash, what was not yet durable is checked.

Under ``group`` durability (the default) ``log_artifact`` writes its blobs without fsync and commits the
version as ``committed``. ``GroupSync`` — one background thread per store handle — then syncs every blob
written since its last pass and every blob of the versions handed to it (an fsync of each file and of their
folders, or one ``syncfs`` of the filesystem for a large group), and records those versions ``durable`` in
one catalog transaction that is itself synced (with the stat-cache rows of their files: the re-log shortcut
never vouches for a file whose blob is not yet durable). ``wait`` is what ``Experiment.flush()`` and closing the store
block on.

``recover`` runs when a store is opened. It takes over what processes that are gone left unsynced (their
``WriteJournal`` markers, and the ``committed`` versions they owned): every blob modified since a dead
marker's safe point is hashed, and a torn one (named, but not holding the content its key names: the
machine went down before it reached the disk) is set aside; each orphaned version whose blobs are all
sound is synced and recorded durable, and one with a torn or missing blob is recorded ``lost``, with a
warning naming it. So no version is ever durable over a torn blob, and only versions that were not yet
durable can be lost.

    sync = GroupSync(blobs, catalog)
    sync.submit(record.row_id, [blobs.where(e.digest) for e in manifest.entries])
    sync.wait(timeout=60)                        # True: everything submitted so far is durable
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracelet_artifacts.procs import HOST, pid_alive
from tracelet_artifacts.store import packs, write_journal
from tracelet_artifacts.store.blobs import BlobStore
from tracelet_artifacts.store.catalog import Catalog
from tracelet_artifacts.store.stat_cache import StatCache, StatRow
from tracelet_artifacts.store.write_journal import (
    BOOT_ID,
    CLOCK_SLACK_NS,
    Marker,
    WriteJournal,
    fsync_path,
    read_markers,
)
from tracelet_artifacts.values import ArtifactVersion

log = logging.getLogger(__name__)
#: From this many blobs in one pass, one ``syncfs`` of the filesystem replaces an fsync per file.
SYNCFS_FROM = 256
#: How long a process exiting without closing its store waits for the versions it committed to be durable.
EXIT_WAIT_S = 60.0


def owner_tag() -> str:
    """Who syncs a committed version: ``host:pid:boot``."""
    return f"{HOST}:{os.getpid()}:{BOOT_ID}"


def owner_gone(owner: str | None) -> bool:
    """True when the process named by ``owner_tag`` is gone (a dead pid on this host, or an earlier boot)."""
    if not owner:
        return True
    host, _, rest = owner.partition(":")
    pid, _, boot = rest.partition(":")
    return host == HOST and (boot != BOOT_ID or not pid.isdigit() or not pid_alive(int(pid)))


def _load_syncfs() -> Any:
    try:
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (AttributeError, OSError):
        return None
    function.argtypes = [ctypes.c_int]
    return function


_SYNCFS = _load_syncfs()


def sync_files(paths: Iterable[str | Path], root: Path) -> None:
    """Make files (and their names) durable: an fsync of each file and of each folder holding one, or one
    ``syncfs`` of ``root``'s filesystem for ``SYNCFS_FROM`` files or more. A file gone meanwhile is skipped."""
    unique = list(dict.fromkeys(paths))
    if not unique:
        return
    if len(unique) >= SYNCFS_FROM and _SYNCFS is not None:
        fd = os.open(root, os.O_RDONLY)
        try:
            if _SYNCFS(fd) == 0:
                return
        finally:
            os.close(fd)
    folders: set[str] = set()
    for path in map(str, unique):
        with suppress(FileNotFoundError):
            fsync_path(path)
            parent = os.path.dirname(path)
            folders.update((parent, os.path.dirname(parent)))
    for folder in sorted(folders, key=len, reverse=True):
        fsync_path(folder, folder=True)


def _synced_connection(catalog: Catalog) -> None:
    """This thread's catalog connection commits with a sync (SQLite: ``synchronous=FULL``), so a version
    recorded durable stays recorded, with everything committed before it, whatever happens next."""
    if catalog.db.dialect == "sqlite":
        catalog.db.connection().execute("PRAGMA synchronous=FULL")


class GroupSync:
    """The background syncs of one store handle (a thread started on first use); safe to share between threads."""

    def __init__(self, blobs: BlobStore, catalog: Catalog) -> None:
        self.blobs = blobs
        self.catalog = catalog
        self._cond = threading.Condition()
        self._queue: list[tuple[int | None, Iterable[str | Path], Sequence[StatRow]]] = []
        self._submitted = self._finished = 0
        self._thread: threading.Thread | None = None
        self._closing = False
        self.failures = 0
        _LIVE.add(self)

    def submit(self, version_id: int | None, paths: Iterable[str | Path], stat_rows: Sequence[StatRow] = ()
               ) -> None:
        """Sync ``paths`` (and whatever this handle wrote so far), then record ``version_id`` durable, and the
        ``stat_rows`` of its files in the same transaction (a cache: until then, logging the files again reads
        them). ``paths`` is read on the sync thread: a generator keeps working out 10,000 paths off the caller's."""
        with self._cond:
            self._queue.append((version_id, paths, stat_rows))
            self._submitted += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="tracelet-group-sync", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until everything submitted so far is synced (True), or ``timeout`` passes (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            target = self._submitted
            while self._finished < target:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    @property
    def pending(self) -> int:
        """Groups submitted and not yet synced."""
        with self._cond:
            return self._submitted - self._finished

    def close(self, timeout: float | None = None) -> bool:
        """Sync what is left (what this handle wrote, even without a version), stop the thread, and remove the
        crash marker when nothing is left unsynced; True when everything is durable."""
        journal = self.blobs.journal
        if journal is not None and not journal.idle:
            self.submit(None, ())
        done = self.wait(timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if done and journal is not None:
            journal.close()
        return done

    def _run(self) -> None:
        ready = False
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return
                batch, self._queue = self._queue, []
            try:
                if not ready:
                    _synced_connection(self.catalog)
                    ready = True
                self._sync(batch)
            except Exception:  # the versions stay committed: the next open of the store checks them
                self.failures += 1
                log.exception("Syncing %d version(s) to disk failed; they stay 'committed' and are checked "
                              "when the store is next opened.", sum(1 for v, _, _ in batch if v is not None))
            with self._cond:
                self._finished += len(batch)
                self._cond.notify_all()

    def _sync(self, batch: list[tuple[int | None, Iterable[str | Path], Sequence[StatRow]]]) -> None:
        journal = self.blobs.journal
        written, safe_ns = journal.take() if journal is not None else ([], 0)
        sync_files([*written, *(p for _, paths, _ in batch for p in paths)], self.blobs.root)
        versions = [v for v, _, _ in batch if v is not None]
        if versions:
            with self.catalog.transaction("durability") as conn:
                self.catalog.mark_durable(conn, versions)
                StatCache.record(conn, [row for _, _, rows in batch for row in rows])
        if journal is not None:
            journal.synced(safe_ns)


_LIVE: weakref.WeakSet[GroupSync] = weakref.WeakSet()


@atexit.register
def _finish_at_exit() -> None:
    """A process leaving without closing its stores still waits (a while) for its versions to be durable, and
    syncs what else it wrote (a blob a repair put back), so a clean exit leaves nothing for the next opener to
    check: a marker left behind would make it take a blob changed later for one torn by a crash."""
    deadline = time.monotonic() + EXIT_WAIT_S
    for sync in list(_LIVE):
        if sync.pending and not sync.wait(max(0.0, deadline - time.monotonic())):
            log.warning("Exiting before %d group sync(s) finished; the versions stay 'committed' and are checked "
                        "when the store is next opened.", sync.pending)
    for journal in list(write_journal.MARKED):
        if journal.owned_here:
            finish_journal(journal)


def finish_journal(journal: WriteJournal) -> None:
    """Sync, on this thread, what ``journal`` recorded as written and not yet synced, and remove its crash marker
    (at exit: no thread may be started then). On failure the marker stays and the next open checks the blobs."""
    try:
        if not journal.idle:
            paths, safe_ns = journal.take()
            sync_files(paths, journal.folder.parent)
            journal.synced(safe_ns)
        journal.close()
    except Exception:
        log.exception("Syncing this process's last blob writes at exit failed; the store checks them when next opened.")


# -- after a crash ---------------------------------------------------------------------------------------
@dataclass
class Recovery:
    """What opening the store found of what dead processes left unsynced."""

    checked: int = 0  # blobs hashed
    torn: list[str] = field(default_factory=list)  # keys of blobs set aside (or dropped from a cache)
    durable: list[str] = field(default_factory=list)  # versions synced and recorded durable
    lost: list[str] = field(default_factory=list)  # versions recorded lost (name:vN)

    def __bool__(self) -> bool:
        return bool(self.checked or self.durable or self.lost)


def _claim(markers: list[Marker]) -> list[Marker]:
    """Take over dead markers (renamed to this process, so two openers do not both check them); the claimed."""
    claimed = []
    for marker in markers:
        target = marker.path.with_name(f"{HOST}-{os.getpid()}-{uuid.uuid4().hex[:12]}")
        try:
            os.rename(marker.path, target)
        except FileNotFoundError:
            continue  # another process took it
        with suppress(OSError):
            target.write_text(f'{{"boot": "{BOOT_ID}", "safe_ns": {marker.safe_ns}}}')
        claimed.append(Marker(target, HOST, os.getpid(), BOOT_ID, marker.safe_ns))
    return claimed


def recover(blobs: BlobStore, catalog: Catalog) -> Recovery:
    """Check what dead processes left unsynced in this store (see the module doc); return what was found."""
    report = Recovery()
    markers = _claim([m for m in read_markers(blobs.root) if m.dead])
    orphans = [v for v in catalog.not_durable() if owner_gone(v.durability_detail)]
    if not markers and not orphans:
        return report
    sound: dict[str, bool] = {}
    touched: set[str] = set()  # packs written since the safe point, and the pack index
    if markers:
        since = min(m.safe_ns for m in markers) - CLOCK_SLACK_NS
        for key, entry in blobs.files():
            with suppress(FileNotFoundError):
                if entry.stat().st_mtime_ns >= since:
                    sound[key] = _check(blobs, key, report)
        for key, pack, _, _ in packs.recent(blobs.packs, since) if blobs.packs is not None else ():
            touched.add(str(blobs.root / packs.FOLDER / pack))
            if key not in sound:
                sound[key] = _check(blobs, key, report)
    durable: list[tuple[ArtifactVersion, list[str]]] = []
    lost: list[tuple[ArtifactVersion, list[str]]] = []
    for record in orphans:
        bad = []
        for item in record.manifest.entries:
            if item.digest not in sound:
                sound[item.digest] = _check(blobs, item.digest, report)
            if not sound[item.digest]:
                bad.append(item.path)
        (lost if bad else durable).append((record, bad))
    if blobs.packs is not None:
        touched |= {str(blobs.packs.db_path), str(blobs.packs.log_path)}
    sync_files([*(blobs.where(k) for k, ok in sound.items() if ok), *touched], blobs.root)
    now = time.time()
    with catalog.transaction("durability") as conn:
        catalog.mark_durable(conn, [r.row_id for r, _ in durable])
        for record, bad in lost:
            detail = (f"the machine went down before it was synced and the content of {', '.join(map(repr, bad[:3]))}"
                      f"{' and more' if len(bad) > 3 else ''} did not survive; log it again from its source files")
            catalog.mark_lost(conn, record, detail, now)
    report.durable = [r.ref for r, _ in durable]
    report.lost = [r.ref for r, _ in lost]
    for ref in report.lost:
        log.warning("%s was lost: it was committed but not yet durable when the machine went down, and its "
                    "content did not survive. Log it again from its source files.", ref)
    for marker in markers:
        marker.path.unlink(missing_ok=True)
    if report:
        log.info("Recovered the store at %s: %d blob(s) checked, %d torn (set aside), %d version(s) made durable, "
                 "%d lost.", blobs.root, report.checked, len(report.torn), len(report.durable), len(report.lost))
    return report


def _check(blobs: BlobStore, key: str, report: Recovery) -> bool:
    """Hash one local blob (a file, or an entry of a pack); a torn one is set aside (so nothing serves it and
    storing it again rewrites it)."""
    report.checked += 1
    if not blobs.exists(key):
        return False
    if blobs.verify(key):
        return True
    outcome = blobs.drop_torn(key)
    report.torn.append(key)
    log.warning("Blob %s… was torn by a crash before it was synced (%s).", key[:19], outcome)
    return False
