"""The embedded store: content-addressed blobs plus the SQLite catalog, the source of truth.

``EmbeddedStore.log`` freezes a builder while copying its files into the blob store (a kernel copy, then
the SHA-256 of what was stored; several files at once; files unchanged since they were last stored are
skipped by their stat signature), then records the version, its aliases and its outbox rows in one
catalog transaction.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tracelet_artifacts import digest
from tracelet_artifacts.artifact import Manifest, TraceletArtifact, validate_artifact_path
from tracelet_artifacts.errors import ArtifactStoreError, IntegrityError
from tracelet_artifacts.procs import HOST
from tracelet_artifacts.settings import TraceletSettings
from tracelet_artifacts.store.blobs import BlobStore
from tracelet_artifacts.store.catalog import LATEST, ArtifactVersion, Catalog, parse_version, validate_alias

log = logging.getLogger(__name__)

PlanFn = Callable[[Manifest], Mapping[str, Mapping[str, Any]]]
StatRow = tuple[str, int, int, int, int, str]
# A file whose mtime is this close to when its digest was recorded is hashed again (same clock tick).
STAT_CACHE_MARGIN_NS = 50_000_000
# Files copied and hashed at once while logging one artifact.
INGEST_WORKERS = min(4, os.cpu_count() or 1)


class _IngestSink:
    """Streams files into the blob store, skipping files whose stat signature says they are unchanged.

    Given the builder's files up front, it copies and hashes up to ``INGEST_WORKERS`` of them at once
    (hashing and ``copy_file_range`` release the GIL); ``put_file`` then hands out each file's result in
    the order the manifest asks for it. The catalog is only read on the calling thread.
    """

    def __init__(self, store: EmbeddedStore, files: Sequence[Path] = ()) -> None:
        self.store = store
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
        cached = self.store.catalog.cached_digest(self._stat_key(path), signature, STAT_CACHE_MARGIN_NS)
        return (cached, signature[0]) if cached and self.store.blobs.touch(cached) else None

    def _stat_key(self, path: Path) -> str:
        """The stat cache's key: the absolute path, and on a catalog machines share, the host too."""
        return f"{HOST}:{path.absolute()}" if self.store.catalog.shared else str(path.absolute())

    def _store_file(self, path: Path) -> tuple[str, int, StatRow | None]:
        signature = digest.file_signature(path)
        sha, size = self.store.blobs.put_file(path)
        after = digest.file_signature(path)
        unchanged = after == signature and size == signature[0]  # unchanged while we read it: safe to remember
        return sha, size, (self._stat_key(path), *signature, sha) if unchanged else None

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
        return self.store.blobs.put_bytes(data)

    def close(self) -> None:
        """Wait for (or cancel) files still being stored, e.g. when freezing failed half-way."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


class EmbeddedStore:
    """Blobs under ``root/blobs`` and the catalog at ``root/catalog.db``.

    Example::

        store = EmbeddedStore(Path(".tracelet"))
        record = store.log(TraceletArtifact("cfg", "config").add_object({"lr": 0.1}, "hparams"))
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
    ) -> None:
        self.root = Path(root).absolute()  # fixed now: a later chdir must not move the store
        self._options = {"fsync": fsync, "catalog_url": catalog_url, "blob_url": blob_url,
                         "s3_endpoint_url": s3_endpoint_url}
        if blob_url:
            from tracelet_artifacts.store.s3 import S3BlobStore

            self.blobs: BlobStore = S3BlobStore(blob_url, cache_root=self.root / "blobs",
                                                endpoint_url=s3_endpoint_url, fsync=fsync)
        else:
            self.blobs = BlobStore(self.root / "blobs", fsync=fsync)
        self.catalog = Catalog(catalog_url or self.root / "catalog.db")
        self.blobs.clean_temp()

    @classmethod
    def from_settings(cls, settings: TraceletSettings | None = None, root: str | os.PathLike[str] | None = None
                      ) -> EmbeddedStore:
        """The store the settings name: ``store_path`` locally, or the team's ``catalog_url`` and ``blob_url``."""
        settings = settings or TraceletSettings()
        catalog_url = settings.catalog_url.get_secret_value() if settings.catalog_url else None
        return cls(settings.store_path if root is None else root, catalog_url=catalog_url,
                   blob_url=settings.blob_url, s3_endpoint_url=settings.s3_endpoint_url)

    def reopen(self) -> EmbeddedStore:
        """A second handle on the same store (own connections), e.g. for another thread's long work."""
        return type(self)(self.root, **self._options)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"EmbeddedStore({str(self.root)!r}, catalog={self.catalog.location!r}, blobs={self.blobs!r})"

    # -- writing ----------------------------------------------------------------------------------
    def log(
        self,
        artifact: TraceletArtifact | Manifest,
        *,
        version: int | None = None,
        aliases: Iterable[str] = (),
        run_id: str | None = None,
        plan: PlanFn | None = None,
    ) -> ArtifactVersion:
        """Store an artifact: a new version, or the existing one when the content is identical.

        ``plan`` turns the manifest into the deliveries (backend → plan) recorded in the outbox.
        """
        aliases = [validate_alias(a) for a in aliases]  # refused before any blob is written
        version = None if version is None else parse_version(version)
        if isinstance(artifact, TraceletArtifact):
            artifact.checked_metadata()
            sink = _IngestSink(self, [spec.local_path for spec in artifact.files])
            try:
                manifest = artifact.freeze(sink)
            finally:
                sink.close()
            stat_rows = sink.stat_rows
        else:
            manifest, stat_rows = artifact, []
            missing = [e.path for e in manifest.entries if not self.blobs.exists(e.sha256)]
            if missing:
                raise ArtifactStoreError(
                    f"Manifest {manifest.name!r} names content this store does not hold ({missing[:3]}); "
                    "log the TraceletArtifact builder instead."
                )
        self.blobs.settle(e.sha256 for e in manifest.entries)  # a version never names a blob others cannot read
        deliveries = dict(plan(manifest)) if plan else {}
        return self.catalog.add_version(manifest, version=version, aliases=aliases, run_id=run_id,
                                        deliveries=deliveries, stat_rows=stat_rows)

    # -- reading ----------------------------------------------------------------------------------
    def get(self, name: str, version: str | int = LATEST) -> ArtifactVersion:
        """A version by number or alias."""
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
        record = self.get(name, version)
        target = Path(dest)
        entries = record.manifest.entries
        total, done, written = sum(e.size for e in entries), 0, []
        for entry in entries:
            path = target / validate_artifact_path(entry.path)
            self.blobs.copy_to(entry.sha256, path, None if progress is None
                               else functools.partial(_offset_progress, progress, done, total))
            written.append(path)
            done += entry.size
            if progress:
                progress(done, total)
        return written

    def blob_path(self, sha256: str) -> Path:
        """A blob as a local file (read only: never modify it); fetched into the cache first if need be."""
        return self.blobs.local_path(sha256)

    def ensure_local(self, manifest: Manifest) -> None:
        """Make every blob of ``manifest`` a local file (a no-op unless blobs live in a bucket)."""
        for entry in manifest.entries:
            self.blobs.local_path(entry.sha256)

    def verify(self, name: str, version: str | int = LATEST) -> list[str]:
        """Entry paths of a version whose blob is missing or corrupt (empty when all is well)."""
        return [e.path for e in self.get(name, version).manifest.entries if not self.blobs.verify(e.sha256)]

    def check(self, name: str, version: str | int = LATEST) -> None:
        """Raise IntegrityError when any blob of a version is missing or corrupt."""
        bad = self.verify(name, version)
        if bad:
            raise IntegrityError(
                f"{name}:{version} has missing or corrupt content at {bad[:5]}; re-fetch it from a backend."
            )

    # -- maintenance ------------------------------------------------------------------------------
    def gc(self, *, grace_s: float = 3600.0, dry_run: bool = False) -> tuple[int, int]:
        """Remove blobs no version uses and older than ``grace_s``; return (count, bytes)."""
        keep = self.catalog.referenced_digests()
        cutoff = time.time() - grace_s
        count = size = 0
        for sha, blob_size, modified in list(self.blobs.inventory()):
            if sha in keep or modified > cutoff:
                continue
            count, size = count + 1, size + blob_size
            if not dry_run:
                self.blobs.delete(sha)
        log.info("gc: %s %d unreferenced blob(s), %d bytes", "would remove" if dry_run else "removed", count, size)
        return count, size

    def close(self) -> None:
        self.catalog.close()


def _offset_progress(progress: Callable[[int, int], None], before: int, total: int, copied: int) -> None:
    """``progress`` of a whole transfer, from the bytes ``copied`` of the file that follows ``before`` bytes."""
    progress(before + copied, total)
