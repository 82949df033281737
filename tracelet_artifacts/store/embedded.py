"""The embedded store: content-addressed blobs plus the catalog, the source of truth.

Writing is two steps with plain data between them: ``ingest`` puts an artifact's content into the blob
store and returns ``Staged`` (nothing visible yet, ``store/ingest.py``); ``commit`` records the version, its
aliases, its outbox rows and its stat-cache rows in one catalog transaction and returns the
``ArtifactVersion``. ``log`` is both in one call. The catalog, the outbox, the stat cache and the lineage
(which run used which version) are small objects over one database. ``gc`` collects the blobs no version
references, safely while others write (``store/gc.py`` says how).

Durability (``TRACELET_DURABILITY``): under ``group`` (the default) a version is *committed* at once and
*durable* when its group sync finishes (``store/durability.py``; ``wait_durable`` blocks on it, and so does
``close``); ``per-blob`` syncs each blob before naming it; ``none`` never syncs. Opening a store checks what
processes that are gone left unsynced (``durability.recover``).
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tracelet_artifacts.artifact import TraceletArtifact, freeze
from tracelet_artifacts.errors import ArtifactStoreError, BlobsCollectedError, IntegrityError
from tracelet_artifacts.frozen import FrozenArtifact
from tracelet_artifacts.names import validate_artifact_path
from tracelet_artifacts.settings import TraceletSettings
from tracelet_artifacts.store import gc as blob_gc
from tracelet_artifacts.store.blobs import BlobStore, Durability
from tracelet_artifacts.store.catalog import LATEST, Catalog, open_catalog_database, validate_alias
from tracelet_artifacts.store.digests import BlobDigests
from tracelet_artifacts.store.durability import GroupSync, Recovery, owner_tag, recover
from tracelet_artifacts.store.ingest import BlobIntake, Staged, staged_durability
from tracelet_artifacts.store.lineage import Lineage
from tracelet_artifacts.store.outbox import Deliveries, Outbox
from tracelet_artifacts.store.removal import remove_version
from tracelet_artifacts.store.stat_cache import StatCache, StatRow
from tracelet_artifacts.values import ArtifactVersion, Manifest
from tracelet_artifacts.version_names import split_version

log = logging.getLogger(__name__)

#: What a committed version records, by how safe its staged blobs were.
_VERSION_STATE = {"synced": "durable", "pending": "committed", "unsynced": "unsynced"}
#: How long closing a store waits for its group syncs.
CLOSE_WAIT_S = 600.0
#: The one-call form's way to name a version's deliveries: manifest → backend → plan (``log(plan=...)``).
PlanFn = Callable[[Manifest], Mapping[str, Mapping[str, Any]]]


class EmbeddedStore:
    """Blobs under ``root/blobs`` and the catalog at ``root/catalog.db``.

    Example::

        store = EmbeddedStore(Path(".tracelet"))
        staged = store.ingest(freeze(TraceletArtifact("cfg", "config").add_object({"lr": 0.1}, "hparams")))
        record = store.commit(staged)            # or both at once: store.log(builder)
        store.fetch("cfg", "latest", Path("out/"))
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        fsync: bool = True,
        catalog_url: str | None = None,
        blob_url: str | None = None,
        s3_endpoint_url: str | None = None,
        durability: Durability | None = None,
    ) -> None:
        self.root = Path(root).absolute()  # fixed now: a later chdir must not move the store
        # fsync=False (scratch stores, tests) never syncs; else the setting decides (default: group).
        durability = durability or (TraceletSettings().durability if fsync else "none")
        self._options = {"fsync": fsync, "catalog_url": catalog_url, "blob_url": blob_url,
                         "s3_endpoint_url": s3_endpoint_url, "durability": durability}
        if blob_url:
            from tracelet_artifacts.store.s3 import S3BlobStore

            self.blobs: BlobStore = S3BlobStore(blob_url, cache_root=self.root / "blobs",
                                                endpoint_url=s3_endpoint_url, durability=durability)
        else:
            self.blobs = BlobStore(self.root / "blobs", durability=durability)
        self.db = open_catalog_database(catalog_url or self.root / "catalog.db")
        self.catalog = Catalog(self.db)
        self.outbox = Outbox(self.db)
        self.stat_cache = StatCache(self.db)
        self.digests = BlobDigests(self.db, self.blobs)
        self.group_sync = GroupSync(self.blobs, self.catalog)
        self.lineage = Lineage(self.db)
        self.blobs.clean_temp()
        #: What opening the store found of what dead processes left unsynced (empty when nothing).
        self.recovery: Recovery = recover(self.blobs, self.catalog)

    @classmethod
    def from_settings(cls, settings: TraceletSettings | None = None, root: str | os.PathLike[str] | None = None
                      ) -> EmbeddedStore:
        """The store the settings name: ``store_path`` locally, or the team's ``catalog_url`` and ``blob_url``."""
        settings = settings or TraceletSettings()
        catalog_url = settings.catalog_url.get_secret_value() if settings.catalog_url else None
        return cls(settings.store_path if root is None else root, catalog_url=catalog_url,
                   blob_url=settings.blob_url, s3_endpoint_url=settings.s3_endpoint_url,
                   durability=settings.durability)

    def reopen(self) -> EmbeddedStore:
        """A second handle on the same store (own connections), e.g. for another thread's long work."""
        return type(self)(self.root, **self._options)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"EmbeddedStore({str(self.root)!r}, catalog={self.catalog.location!r}, blobs={self.blobs!r})"

    # -- writing ----------------------------------------------------------------------------------
    def ingest(
        self,
        artifact: FrozenArtifact | TraceletArtifact | Manifest,
        *,
        version: int | str | None = None,
        aliases: Iterable[str] = (),
    ) -> Staged:
        """Put an artifact's content into the blob store; nothing is visible until ``commit``.

        A frozen artifact (or a builder, frozen now) is hashed while its files are copied in; a Manifest
        must name content this store already holds. ``version`` is a number (``3``, ``"v3"``) or a version
        name (``"1.2.0"``; a builder's ``version`` when not given here). It and ``aliases`` are checked
        first, so a refused one leaves no blob written.
        """
        wanted = tuple(validate_alias(a) for a in aliases)
        if version is None and isinstance(artifact, TraceletArtifact):
            version = artifact.version
        number, name = split_version(version)
        stat_rows: tuple[StatRow, ...] = ()
        if isinstance(artifact, Manifest):
            manifest = artifact
            missing = [e.path for e in manifest.entries if not self.blobs.exists(e.digest)]
            if missing:
                raise ArtifactStoreError(
                    f"Manifest {manifest.name!r} names content this store does not hold ({missing[:3]}); "
                    "log the TraceletArtifact builder instead."
                )
        else:
            frozen = freeze(artifact) if isinstance(artifact, TraceletArtifact) else artifact
            intake = BlobIntake(self.blobs, self.stat_cache, frozen.sources)
            try:
                manifest = frozen.to_manifest(intake)
                intake.seal()
            finally:
                intake.close()
            stat_rows = tuple(intake.stat_rows)
            manifest = self.digests.earlier_same_content(manifest) or manifest  # logged before BLAKE3: same version
        self.blobs.settle(e.digest for e in manifest.entries)  # a version never names a blob others cannot read
        return Staged(manifest, stat_rows, number, wanted, staged_durability(self.blobs), name)

    def commit(self, staged: Staged, *, run_id: str | None = None, deliveries: Deliveries | None = None
               ) -> ArtifactVersion:
        """Make a staged artifact visible: its version (a new one, or the existing one with identical content),
        its aliases and its ``deliveries`` (backend → plan, for the outbox), in one transaction: a version never
        appears without its deliveries. The stat-cache rows of its files go in too, or, for a version synced in
        the background, in the transaction that records it durable."""
        now = time.time()
        state = _VERSION_STATE[staged.durability]
        with self.db.transaction(f"artifact:{staged.manifest.name}") as conn:
            blob_gc.check_commit(conn, self.blobs, (e.digest for e in staged.manifest.entries))  # gc raced us?
            record = self.catalog.record_version(conn, staged.manifest, version=staged.version,
                                                 aliases=staged.aliases, run_id=run_id, now=now,
                                                 version_name=staged.version_name, durability=state,
                                                 durability_detail=owner_tag() if state == "committed" else None)
            self.outbox.enqueue(conn, record.row_id, run_id, deliveries or {}, now)
            background = record.durability == "committed" and staged.durability == "pending"
            if not background:
                self.stat_cache.record(conn, staged.stat_rows)
        if background:  # its stat-cache rows are recorded with it durable, off the caller's thread
            self.group_sync.submit(record.row_id, (self.blobs.where(e.digest) for e in staged.manifest.entries),
                                   staged.stat_rows)
        elif self.blobs.journal is not None and not self.blobs.journal.idle:
            self.group_sync.submit(None, ())  # a bucket's local cache: synced in the background too
        return record.known_manifest(staged.manifest) if record.created else record

    def wait_durable(self, timeout: float | None = None) -> bool:
        """Block until every version this handle committed is durable (True), or ``timeout`` passes (False)."""
        return self.group_sync.wait(timeout)

    def log(
        self,
        artifact: TraceletArtifact | Manifest,
        *,
        version: int | str | None = None,
        aliases: Iterable[str] = (),
        run_id: str | None = None,
        plan: PlanFn | None = None,
    ) -> ArtifactVersion:
        """Store an artifact in one call (``ingest`` then ``commit``): a new version, or the existing one when
        the content is identical. ``version`` is a number or a version name (``"1.2.0"``); ``plan`` names
        the deliveries (backend → plan) for the outbox. Blobs a concurrent gc collected between the two steps
        are stored again (once)."""
        staged = self.ingest(artifact, version=version, aliases=aliases)
        deliveries = plan(staged.manifest) if plan else None
        try:
            return self.commit(staged, run_id=run_id, deliveries=deliveries)
        except BlobsCollectedError:
            if isinstance(artifact, Manifest):
                raise
            with self.pinned(staged.manifest):
                return self.commit(self.ingest(artifact, version=version, aliases=aliases), run_id=run_id,
                                   deliveries=deliveries)

    # -- reading ----------------------------------------------------------------------------------
    def get(self, name: str, version: str | int = LATEST) -> ArtifactVersion:
        """A version by number (``3``, ``"v3"``), version name (``"1.2.0"``) or alias."""
        return self.catalog.get(name, version)

    def fetch(
        self,
        name: str,
        version: str | int,
        dest: str | os.PathLike[str],
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[Path]:
        """Write a version's files under ``dest`` (verifying every digest); return their paths.

        ``progress(done_bytes, total_bytes)`` follows the whole version, chunk by chunk.
        """
        record = self.readable(name, version)
        target = Path(dest)
        entries = record.manifest.entries
        total, done, written = sum(e.size for e in entries), 0, []
        for entry in entries:
            path = target / validate_artifact_path(entry.path)
            self.blobs.copy_to(entry.digest, path, f"{record.ref}/{entry.path}", None if progress is None
                               else functools.partial(_offset_progress, progress, done, total))
            written.append(path)
            done += entry.size
            if progress:
                progress(done, total)
        return written

    def readable(self, name: str, version: str | int = LATEST) -> ArtifactVersion:
        """``get``, refusing a version whose content was lost in a crash (IntegrityError saying so)."""
        record = self.get(name, version)
        if record.durability == "lost":
            raise IntegrityError(f"{record.ref} was lost: {record.durability_detail or 'its content did not survive'}.")
        return record

    def blob_path(self, key: str) -> Path:
        """A blob as a local file (read only: never modify it); fetched into the cache first if need be."""
        return self.blobs.local_path(key)

    def ensure_local(self, manifest: Manifest) -> None:
        """Make every blob of ``manifest`` a local file (a no-op unless blobs live in a bucket)."""
        for entry in manifest.entries:
            self.blobs.local_path(entry.digest)

    def verify(self, name: str, version: str | int = LATEST) -> list[str]:
        """Entry paths of a version whose blob is missing or corrupt (empty when all is well)."""
        return [e.path for e in self.get(name, version).manifest.entries if not self.blobs.verify(e.digest)]

    def check(self, name: str, version: str | int = LATEST) -> None:
        """Raise IntegrityError when any blob of a version is missing or corrupt."""
        bad = self.verify(name, version)
        if bad:
            raise IntegrityError(
                f"{name}:{version} has missing or corrupt content at {bad[:5]}; re-fetch it from a backend."
            )

    # -- maintenance ------------------------------------------------------------------------------
    def gc(self, *, grace_s: float = 0.0, dry_run: bool = False) -> tuple[int, int]:
        """Remove blobs no version references; return (count, bytes). Safe while other processes write: a
        blob stored after gc started is never collected (``store/gc.py``). ``grace_s`` also keeps blobs
        modified in the last ``grace_s`` seconds (not needed for safety)."""
        report = self.collect_garbage(dry_run=dry_run, grace_s=grace_s)
        return report.removed, report.removed_bytes

    @contextmanager
    def pinned(self, manifest: Manifest) -> Iterator[None]:
        """Keep gc away from ``manifest``'s blobs inside the block: to store them again after a commit raised
        BlobsCollectedError, then commit (``store/gc.py``)."""
        log.info("gc collected blobs of %s while it was logged; storing them again, pinned", manifest.name)
        pin_id = blob_gc.pin(self.db, (e.digest for e in manifest.entries))
        try:
            yield
        finally:
            blob_gc.unpin(self.db, pin_id)

    def collect_garbage(self, *, dry_run: bool = False, grace_s: float = 0.0) -> blob_gc.GcReport:
        """``gc`` with the whole report (listed, kept, rescued by concurrent commits)."""
        return blob_gc.collect(self.db, self.blobs, dry_run=dry_run, grace_s=grace_s)

    def remove_version(self, name: str, version: str | int, *, force: bool = False) -> ArtifactVersion:
        """Delete one version (its blobs stay until ``gc``): refused with VersionInUseError while an alias
        other than ``latest`` points at it or a later run consumed it, unless ``force``."""
        return remove_version(self.catalog, name, version, force=force)

    def close(self, timeout: float | None = CLOSE_WAIT_S) -> None:
        """Wait (up to ``timeout``) for the versions this handle committed to be durable, then close."""
        if not self.group_sync.close(timeout):
            log.warning("Closing %s before its last group sync finished; the versions it committed stay "
                        "'committed' and are checked when the store is next opened.", self.root)
        if self.blobs.packs is not None:
            self.blobs.packs.close()
        self.db.close()


def _offset_progress(progress: Callable[[int, int], None], before: int, total: int, copied: int) -> None:
    """``progress`` of a whole transfer, from the bytes ``copied`` of the file that follows ``before`` bytes."""
    progress(before + copied, total)
