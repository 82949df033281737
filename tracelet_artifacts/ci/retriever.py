"""ArtifactRetriever: fetch CI artifacts through registered providers into a verified local cache,
one at a time or as a batch with bounded concurrency, and trend or compare what it has retrieved.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from tracelet_artifacts.ci.cache import ArtifactCache, CacheEntry, cache_key
from tracelet_artifacts.ci.errors import DownloadIntegrityError
from tracelet_artifacts.errors import ConfigurationError

if TYPE_CHECKING:
    from tracelet_artifacts.ci.compare import ArtifactComparison
    from tracelet_artifacts.ci.download import ProgressCallback
    from tracelet_artifacts.ci.metadata import ArtifactMetadata
    from tracelet_artifacts.ci.providers.base import CIArtifact, CIProvider
    from tracelet_artifacts.ci.trends import MetricTrend

logger = logging.getLogger("tracelet_artifacts.ci")

DEFAULT_CONCURRENCY = 16
INLINE_HIT_BYTES = 4 * 1024 * 1024  # cache hits up to this size are verified on the event loop


@dataclass(frozen=True)
class ArtifactRequest:
    """One artifact to retrieve: which provider, which run (and attempt), which name."""

    test_run_id: str
    artifact_name: str
    provider_name: str
    attempt: int | None = None

    @classmethod
    def of(cls, item: ArtifactRequest | Mapping[str, Any] | Sequence[Any]) -> ArtifactRequest:
        """Accept a request, a dict with the same keys, or a ``(run, name, provider[, attempt])`` tuple."""
        if isinstance(item, ArtifactRequest):
            return item
        if isinstance(item, Mapping):
            return cls(str(item["test_run_id"]), item["artifact_name"], item["provider_name"], item.get("attempt"))
        return cls(str(item[0]), item[1], item[2], item[3] if len(item) > 3 else None)


@dataclass(frozen=True)
class ByteProgress:
    """Byte-level progress of a batch: ``size(request, bytes)`` is told each artifact's size once the
    provider lists it; ``file(request)`` gives the ``(done, total)`` callback its download reports to."""

    size: Callable[[ArtifactRequest, int | None], None]
    file: Callable[[ArtifactRequest], ProgressCallback]


@dataclass(frozen=True)
class RetrievalResult:
    """The outcome of one request in a batch: a path and metadata, or the error that stopped it."""

    request: ArtifactRequest
    path: Path | None = None
    metadata: ArtifactMetadata | None = None
    from_cache: bool = False
    error: str | None = None
    error_type: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class ArtifactRetriever:
    """Retrieve artifacts by (run, name, provider), caching them on disk.

    The cache is keyed by provider + run + attempt + name; every hit is re-hashed and a corrupt
    entry is fetched again. Old entries (``max_cache_age_days``) and least recently used ones beyond
    ``max_cache_size_mb`` are evicted. With ``attempt=None`` the newest cached attempt is served; pass
    ``attempt=`` or ``use_cache=False`` to ask the provider again.

    >>> retriever = ArtifactRetriever(Path(".ci-cache"), max_cache_size_mb=512, max_cache_age_days=7)  # doctest: +SKIP
    >>> retriever.register_provider("github", GitHubActionsProvider("octo/repo"))  # doctest: +SKIP
    >>> path, meta = asyncio.run(retriever.retrieve_artifact("30433642", "perf", "github"))  # doctest: +SKIP
    """

    def __init__(
        self,
        cache_dir: Path | str,
        max_cache_size_mb: float = 1024,
        max_cache_age_days: float = 30,
        *,
        max_concurrency: int = DEFAULT_CONCURRENCY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_concurrency < 1:
            raise ConfigurationError("max_concurrency must be at least 1")
        self.cache_dir = Path(cache_dir)
        self.cache = ArtifactCache(
            self.cache_dir,
            max_bytes=int(max_cache_size_mb * 1024 * 1024),
            max_age_seconds=max_cache_age_days * 86400,
            clock=clock,
        )
        self.max_concurrency = max_concurrency
        self._providers: dict[str, CIProvider] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._described: dict[tuple[ArtifactRequest, str], ArtifactMetadata] = {}

    def __repr__(self) -> str:
        return f"ArtifactRetriever(cache_dir={str(self.cache_dir)!r}, providers={sorted(self._providers)})"

    @property
    def providers(self) -> Mapping[str, CIProvider]:
        """Registered providers by name (read-only)."""
        return MappingProxyType(self._providers)

    def register_provider(self, name: str, provider: CIProvider, *, replace: bool = False) -> None:
        """Make ``provider`` available as ``name``; replacing an existing name needs ``replace=True``."""
        if name in self._providers and not replace:
            raise ConfigurationError(f"a CI provider named {name!r} is already registered")
        self._providers[name] = provider

    def _provider(self, name: str) -> CIProvider:
        try:
            return self._providers[name]
        except KeyError:
            known = ", ".join(sorted(self._providers)) or "none"
            raise ConfigurationError(
                f"no CI provider registered as {name!r} (registered: {known}); call register_provider first."
            ) from None

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="tracelet-ci")
        return self._executor

    def close(self) -> None:
        """Write the cache index and stop the worker threads (providers are left open)."""
        self.cache.flush_if_dirty(force=True)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    # -- the synchronous pieces (run in worker threads) ---------------------------------------------

    def _metadata(self, request: ArtifactRequest, path: Path, created_at: str | None = None) -> ArtifactMetadata:
        from tracelet_artifacts.ci.errors import ArtifactMetadataError
        from tracelet_artifacts.ci.metadata import describe

        def described(when: str | None) -> ArtifactMetadata:
            return describe(path, request.artifact_name, test_run_id=request.test_run_id,
                            provider_name=request.provider_name, created_at=when)

        try:
            return described(created_at)
        except ArtifactMetadataError:
            if created_at is None:
                raise
            return described(None)  # the provider's time could not be read: the file's time will do

    def _verified_hit(self, request: ArtifactRequest, entry: CacheEntry) -> ArtifactMetadata | None:
        """Metadata of a cache hit whose bytes still hash to the recorded digest; None otherwise."""
        from tracelet_artifacts.digest import sha256_file

        path = self.cache.path_of(entry)
        try:
            digest = sha256_file(path)
        except OSError:
            logger.warning("cached CI artifact %r (%s run %s, attempt %d) is missing from %s; downloading it again",
                           entry.name, entry.provider, entry.run_id, entry.attempt, path)
            self.cache.remove(entry)
            return None
        if digest != entry.sha256:
            logger.warning(
                "cached CI artifact %r (%s run %s, attempt %d) at %s is corrupt: it hashes to %s…, not %s…; "
                "removed it and downloading it again from the provider",
                entry.name, entry.provider, entry.run_id, entry.attempt, path, digest[:12], entry.sha256[:12],
            )
            self.cache.remove(entry)
            return None
        self.cache.touch(entry)
        return self._describe_hit(request, entry, path)

    def _describe_hit(self, request: ArtifactRequest, entry: CacheEntry, path: Path) -> ArtifactMetadata:
        """Metadata of verified cached bytes: from the stored record, memoised per request and digest."""
        from tracelet_artifacts.ci.metadata import ArtifactMetadata

        memo_key = (request, entry.sha256)
        pristine = self._described.get(memo_key)
        if pristine is None:
            if entry.metadata is None:
                pristine = self._metadata(request, path)
            else:
                stored = {
                    **entry.metadata,
                    "artifact_path": path,  # a Path: from_dict need not parse it again
                    "artifact_name": request.artifact_name,
                    "test_run_id": request.test_run_id,
                    "provider_name": request.provider_name,
                }
                pristine = ArtifactMetadata.from_dict(stored)
            self._described[memo_key] = pristine
        return pristine.copy()  # callers may label or annotate their copy

    def _cached(
        self, request: ArtifactRequest, *, inline_only: bool = False, pins: set[str] | None = None
    ) -> tuple[Path, ArtifactMetadata] | None:
        """A verified cache hit, or None. ``inline_only`` declines entries too big to hash on the loop;
        ``pins`` (from ``cache.pinned()``) receives the key so a later store cannot evict it."""
        entry = self.cache.lookup(request.provider_name, request.test_run_id, request.artifact_name, request.attempt)
        if entry is None or (inline_only and entry.size > INLINE_HIT_BYTES):
            return None
        if pins is not None:
            self.cache.pin(pins, entry.key)
        meta = self._verified_hit(request, entry)
        if meta is None:
            return None
        meta.add_metadata({"ci_attempt": entry.attempt, "ci_cached": True})
        return self.cache.path_of(entry), meta

    def _fetch(
        self, request: ArtifactRequest, pins: set[str] | None = None, watch: ByteProgress | None = None
    ) -> tuple[Path, ArtifactMetadata]:
        provider = self._provider(request.provider_name)
        artifact: CIArtifact = provider.get_artifact(
            request.test_run_id, request.artifact_name, attempt=request.attempt
        )
        if watch is not None:
            watch.size(request, artifact.size)
        slot = self.cache.slot(
            request.provider_name,
            artifact.run_id,
            artifact.attempt,
            artifact.name,
            suffix=".zip" if artifact.archive else "",
        )
        try:
            downloaded = provider.download_artifact(artifact, slot,
                                                    progress=watch.file(request) if watch is not None else None)
        except BaseException:
            with contextlib.suppress(OSError):
                slot.parent.rmdir()  # only succeeds when nothing else lives there
            raise
        meta = self._metadata(request, downloaded.path, artifact.created_at)
        if meta.sha256 != downloaded.sha256:
            raise DownloadIntegrityError(f"{artifact.name} changed on disk while it was being described")
        if artifact.extra.get("cacheable", True):
            if pins is not None:
                self.cache.pin(pins, cache_key(request.provider_name, artifact.run_id, artifact.attempt, artifact.name))
            self.cache.record(
                request.provider_name,
                artifact.run_id,
                artifact.attempt,
                artifact.name,
                downloaded.path,
                downloaded.size,
                downloaded.sha256,
                metadata=meta.to_dict(),
            )
        meta.add_metadata({"ci_attempt": artifact.attempt, "ci_cached": False})
        return downloaded.path, meta

    def _retrieve_sync(
        self, request: ArtifactRequest, use_cache: bool, pins: set[str] | None = None,
        watch: ByteProgress | None = None,
    ) -> tuple[Path, ArtifactMetadata, bool]:
        self._provider(request.provider_name)
        if use_cache:
            hit = self._cached(request, pins=pins)
            if hit is not None:
                return hit[0], hit[1], True
        path, meta = self._fetch(request, pins, watch)
        return path, meta, False

    # -- the async API -------------------------------------------------------------------------------

    async def retrieve_artifact(
        self,
        test_run_id: str,
        artifact_name: str,
        provider_name: str,
        use_cache: bool = True,
        *,
        attempt: int | None = None,
    ) -> tuple[Path, ArtifactMetadata]:
        """The local path and metadata of one artifact, from the cache when it holds a sound copy."""
        request = ArtifactRequest(str(test_run_id), artifact_name, provider_name, attempt)
        if use_cache and provider_name in self._providers:
            hit = self._cached(request, inline_only=True)
            if hit is not None:
                self.cache.flush_if_dirty()
                return hit
        loop = asyncio.get_running_loop()
        try:
            path, meta, _ = await loop.run_in_executor(self._pool(), self._retrieve_sync, request, use_cache)
        finally:
            self.cache.flush_if_dirty()
        return path, meta

    async def retrieve_artifacts_batch(
        self,
        requests: Iterable[ArtifactRequest | Mapping[str, Any] | Sequence[Any]],
        *,
        use_cache: bool = True,
        max_concurrency: int | None = None,
        progress: Callable[[RetrievalResult], None] | None = None,
        bytes_progress: ByteProgress | None = None,
    ) -> list[RetrievalResult]:
        """Retrieve many artifacts, at most ``max_concurrency`` at a time, results in request order.

        A failed item is reported in its result (``error``, ``error_type``); the others continue.
        ``progress`` is called with each result as it completes, ``bytes_progress`` while bytes arrive.
        """
        items = [ArtifactRequest.of(item) for item in requests]
        with self.cache.pinned() as pins:  # no path returned by this batch is evicted by a later item
            try:
                return await self._batch(items, use_cache, max_concurrency, progress, pins, bytes_progress)
            finally:
                self.cache.flush_if_dirty()

    async def _batch(
        self,
        items: list[ArtifactRequest],
        use_cache: bool,
        max_concurrency: int | None,
        progress: Callable[[RetrievalResult], None] | None,
        pins: set[str],
        watch: ByteProgress | None = None,
    ) -> list[RetrievalResult]:
        done: dict[int, RetrievalResult] = {}
        if use_cache:  # small verified hits are answered here, without a thread hop
            for i, request in enumerate(items):
                if request.provider_name not in self._providers:
                    continue
                try:
                    hit = self._cached(request, inline_only=True, pins=pins)
                except Exception as exc:  # an unreadable record: let the full path fetch it again
                    logger.warning("cache entry for %s could not be served (%s); fetching it", request, exc)
                    hit = None
                if hit is not None:
                    done[i] = RetrievalResult(request, hit[0], hit[1], from_cache=True)
                    if progress is not None:
                        progress(done[i])
        limit = asyncio.Semaphore(max_concurrency or self.max_concurrency)
        loop = asyncio.get_running_loop()
        pool = self._pool()

        async def one(request: ArtifactRequest) -> RetrievalResult:
            async with limit:
                try:
                    path, meta, hit = await loop.run_in_executor(pool, self._retrieve_sync, request, use_cache, pins,
                                                                 watch)
                    result = RetrievalResult(request, path, meta, from_cache=hit)
                except Exception as exc:
                    logger.warning(
                        "retrieving %s of run %s from %s failed: %s",
                        request.artifact_name,
                        request.test_run_id,
                        request.provider_name,
                        exc,
                    )
                    result = RetrievalResult(request, error=str(exc), error_type=type(exc).__name__)
            if progress is not None:
                progress(result)
            return result

        missing = [i for i in range(len(items)) if i not in done]
        fetched = await asyncio.gather(*(one(items[i]) for i in missing))
        done.update(zip(missing, fetched, strict=True))
        return [done[i] for i in range(len(items))]

    def retrieve_batch(self, requests: Iterable[Any], **options: Any) -> list[RetrievalResult]:
        """``retrieve_artifacts_batch`` for synchronous code (runs its own event loop)."""
        return asyncio.run(self.retrieve_artifacts_batch(requests, **options))

    # -- trends and comparison over what was retrieved ----------------------------------------------------

    def cached_artifacts(self) -> list[ArtifactMetadata]:
        """The metadata of every artifact in the cache, as recorded when it was stored (no file is read)."""
        from tracelet_artifacts.ci.metadata import ArtifactMetadata

        return [ArtifactMetadata.from_dict({**entry.metadata, "artifact_path": str(self.cache.path_of(entry))})
                for entry in self.cache if entry.metadata is not None]

    async def analyze_metrics_trend(
        self,
        provider_name: str | None,
        artifact_type: str,
        metric_name: str,
        days: float = 30,
        **options: Any,
    ) -> MetricTrend:
        """The trend of ``metric_name`` over the cached artifacts of ``artifact_type`` retrieved from
        ``provider_name`` in the last ``days`` days (see ``trends.analyze_metrics_trend`` for ``options``)."""
        from tracelet_artifacts.ci.trends import analyze_metrics_trend

        return analyze_metrics_trend(provider_name, artifact_type, metric_name, days,
                                     source=self.cached_artifacts, **options)

    async def compare_artifacts(
        self,
        artifact1: ArtifactRequest | Mapping[str, Any] | Sequence[Any],
        artifact2: ArtifactRequest | Mapping[str, Any] | Sequence[Any],
        *,
        use_cache: bool = True,
    ) -> ArtifactComparison:
        """Retrieve both artifacts (from the cache when it holds them) and compare ``artifact1`` → ``artifact2``.

        Each side is ``{"test_run_id", "artifact_name", "provider_name"[, "attempt"]}``, a tuple, or a request.
        """
        from tracelet_artifacts.ci.compare import compare_artifacts

        sides = []
        for item in (artifact1, artifact2):
            request = ArtifactRequest.of(item)
            sides.append(await self.retrieve_artifact(request.test_run_id, request.artifact_name,
                                                      request.provider_name, use_cache, attempt=request.attempt))
        return compare_artifacts(sides[0][1], sides[1][1])

    def cache_stats(self) -> dict[str, Any]:
        """Entries, bytes used and the limits."""
        return {
            "entries": len(self.cache),
            "bytes": self.cache.total_bytes,
            "max_bytes": self.cache.max_bytes,
            "max_age_seconds": self.cache.max_age_seconds,
        }
