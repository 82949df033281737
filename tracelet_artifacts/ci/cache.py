"""The on-disk cache of retrieved CI artifacts, keyed by provider + run + attempt + name, with LRU
eviction by total size and by age, and an index written atomically so a crash never corrupts it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

logger = logging.getLogger("tracelet_artifacts.ci")

INDEX_NAME = "index.json"
ACCESS_NAME = "access.json"
INDEX_VERSION = 2
ACCESS_FLUSH_SECONDS = 60.0  # access times alone are written at most this often (and on close)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class CacheEntry:
    """One cached artifact file and what it must hash to."""

    provider: str
    run_id: str
    attempt: int
    name: str
    relpath: str
    size: int
    sha256: str
    stored_at: float
    last_access: float
    metadata: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        return cache_key(self.provider, self.run_id, self.attempt, self.name)


def cache_key(provider: str, run_id: str, attempt: int, name: str) -> str:
    """The index key of one artifact: provider, run, attempt and name, joined by a unit separator."""
    return f"{provider}\x1f{run_id}\x1f{int(attempt)}\x1f{name}"


def safe_filename(name: str) -> str:
    """A file name derived from an artifact name (which may contain slashes) that is safe on disk."""
    leaf = name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    cleaned = _UNSAFE.sub("_", leaf).strip("._") or "artifact"
    return cleaned[:120]


class ArtifactCache:
    """Cached artifact files under ``root``; at most ``max_bytes`` in total, none older than ``max_age``.

    Thread-safe. ``flush_if_dirty()`` (called by the retriever after every retrieval or batch) rewrites
    ``index.json`` after stores and removals, or only the small ``access.json`` after mere hits. Files
    are complete before they are indexed, so a crash before a flush costs cache misses, never bad data.

    >>> cache = ArtifactCache(Path("~/.cache/tracelet/ci").expanduser(), max_bytes=1 << 30)  # doctest: +SKIP
    """

    def __init__(
        self,
        root: Path,
        *,
        max_bytes: int,
        max_age_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = Path(root)
        self.objects = self.root / "objects"
        self.objects.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.max_age_seconds = max_age_seconds
        self.clock = clock
        self._lock = threading.RLock()
        self._dirty = False
        self._access_dirty = False
        self._access_written = 0.0
        self._entries: dict[str, CacheEntry] = {}
        self._attempts: dict[tuple[str, str, str], set[int]] = {}
        self._access: dict[str, float] = {}
        self._paths: dict[str, Path] = {}
        self._pin_sets: list[set[str]] = []
        for entry in self._load():
            self._add(entry)
        self._access = {k: v for k, v in self._load_access().items() if k in self._entries}

    def _add(self, entry: CacheEntry) -> None:
        self._entries[entry.key] = entry
        self._attempts.setdefault((entry.provider, entry.run_id, entry.name), set()).add(entry.attempt)

    def _drop(self, entry: CacheEntry) -> None:
        self._entries.pop(entry.key, None)
        attempts = self._attempts.get((entry.provider, entry.run_id, entry.name))
        if attempts is not None:
            attempts.discard(entry.attempt)
            if not attempts:
                del self._attempts[(entry.provider, entry.run_id, entry.name)]

    def _load(self) -> list[CacheEntry]:
        index = self.root / INDEX_NAME
        if not index.exists():
            return []
        try:
            raw = json.loads(index.read_text(encoding="utf-8"))
            if raw.get("version") != INDEX_VERSION:
                logger.info("CI artifact cache index %s has an old format; starting empty", index)
                return []
            entries = [CacheEntry(**item) for item in raw.get("entries", [])]
        except (OSError, ValueError, TypeError) as exc:
            logger.warning("CI artifact cache index %s is unreadable (%s); starting empty", index, exc)
            return []
        return entries

    def _load_access(self) -> dict[str, float]:
        path = self.root / ACCESS_NAME
        try:
            return {str(k): float(v) for k, v in json.loads(path.read_text(encoding="utf-8")).items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, TypeError, AttributeError):
            return {}

    def _write(self, name: str, payload: Any) -> None:
        text = json.dumps(payload, separators=(",", ":"))
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=self.root)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(tmp, self.root / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def flush(self) -> None:
        """Write the index and the access times atomically (temp file + rename)."""
        with self._lock:
            entries = [{f.name: getattr(e, f.name) for f in fields(e)} for e in self._entries.values()]
            self._write(INDEX_NAME, {"version": INDEX_VERSION, "entries": entries})
            self._write(ACCESS_NAME, self._access)
            self._dirty = self._access_dirty = False

    def flush_if_dirty(self, *, force: bool = False) -> None:
        """Write what changed: the whole index after stores/removals; access times alone at most every
        ``ACCESS_FLUSH_SECONDS`` (or now, with ``force``), since losing them only blurs the LRU order."""
        with self._lock:
            if self._dirty:
                self.flush()
                self._access_written = self.clock()
            elif self._access_dirty and (force or self.clock() - self._access_written >= ACCESS_FLUSH_SECONDS):
                self._write(ACCESS_NAME, self._access)
                self._access_dirty = False
                self._access_written = self.clock()

    def last_access(self, entry: CacheEntry) -> float:
        """When ``entry`` was last served or stored."""
        return self._access.get(entry.key, entry.last_access)

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[CacheEntry]:
        with self._lock:
            return iter(list(self._entries.values()))

    @property
    def total_bytes(self) -> int:
        with self._lock:
            return sum(e.size for e in self._entries.values())

    def path_of(self, entry: CacheEntry) -> Path:
        """The cached file of ``entry``."""
        path = self._paths.get(entry.relpath)
        if path is None:
            path = self._paths[entry.relpath] = self.root / entry.relpath
        return path

    def slot(self, provider: str, run_id: str, attempt: int, name: str, *, suffix: str = "") -> Path:
        """Where the file for this key lives (its folder is created); ``suffix`` e.g. ``.zip``."""
        digest = hashlib.sha256(cache_key(provider, run_id, attempt, name).encode()).hexdigest()[:32]
        folder = self.objects / digest[:2] / digest
        folder.mkdir(parents=True, exist_ok=True)
        filename = safe_filename(name)
        if suffix and not filename.lower().endswith(suffix):
            filename += suffix
        return folder / filename

    def lookup(self, provider: str, run_id: str, name: str, attempt: int | None = None) -> CacheEntry | None:
        """The entry for the key; with ``attempt=None``, the newest cached attempt. Expired → None."""
        with self._lock:
            if attempt is None:
                attempts = self._attempts.get((provider, str(run_id), name))
                if not attempts:
                    return None
                attempt = max(attempts)
            entry = self._entries.get(cache_key(provider, run_id, attempt, name))
            if entry is None:
                return None
            if self.clock() - entry.stored_at > self.max_age_seconds:
                self.remove(entry)
                return None
            return entry

    def touch(self, entry: CacheEntry) -> None:
        """Mark ``entry`` as just used (for LRU)."""
        with self._lock:
            if entry.key in self._entries:
                self._access[entry.key] = self.clock()
                self._access_dirty = True

    def record(
        self,
        provider: str,
        run_id: str,
        attempt: int,
        name: str,
        path: Path,
        size: int,
        sha256: str,
        metadata: dict[str, Any] | None = None,
    ) -> CacheEntry:
        """Index a file already written to ``slot(...)``, then evict to stay within the limits.

        The index is written by the next ``flush()``/``flush_if_dirty()``."""
        now = self.clock()
        entry = CacheEntry(
            provider=provider,
            run_id=str(run_id),
            attempt=int(attempt),
            name=name,
            relpath=Path(path).relative_to(self.root).as_posix(),
            size=size,
            sha256=sha256,
            stored_at=now,
            last_access=now,
            metadata=metadata,
        )
        with self._lock:
            self._add(entry)
            self._access[entry.key] = now
            self._dirty = True
            self.evict(keep=entry.key)
        return entry

    def remove(self, entry: CacheEntry) -> None:
        """Forget the entry and delete its file."""
        with self._lock:
            self._drop(entry)
            self._access.pop(entry.key, None)
            self._dirty = True
            shutil.rmtree(self.path_of(entry).parent, ignore_errors=True)

    def evict(self, *, keep: str | None = None) -> list[CacheEntry]:
        """Drop entries older than the age limit, then least recently used ones until under size.

        ``keep`` and every pinned key (see ``pinned``) survive, even past the size limit.
        """
        removed: list[CacheEntry] = []
        with self._lock:
            spare = set(self._pins) | ({keep} if keep else set())
            now = self.clock()
            for entry in list(self._entries.values()):
                if entry.key not in spare and now - entry.stored_at > self.max_age_seconds:
                    self.remove(entry)
                    removed.append(entry)
            by_age = sorted(self._entries.values(), key=self.last_access)
            total = sum(e.size for e in by_age)
            for entry in by_age:
                if total <= self.max_bytes:
                    break
                if entry.key in spare:
                    continue
                self.remove(entry)
                removed.append(entry)
                total -= entry.size
        for entry in removed:
            logger.debug("evicted %s from the CI artifact cache", entry.key)
        return removed

    @contextlib.contextmanager
    def pinned(self) -> Iterator[set[str]]:
        """Keys added to the yielded set are not evicted while the block runs.

        The retriever pins a batch's results so no path it returns is deleted by a later item of the same
        batch; the cache may then stand over its size limit until the next store evicts.
        """
        keys: set[str] = set()
        with self._lock:
            self._pin_sets.append(keys)
        try:
            yield keys
        finally:
            with self._lock:
                self._pin_sets.remove(keys)

    def pin(self, keys: set[str], key: str) -> None:
        """Add ``key`` to a set yielded by ``pinned`` (thread-safe)."""
        with self._lock:
            keys.add(key)

    @property
    def _pins(self) -> set[str]:
        return set().union(*self._pin_sets) if self._pin_sets else set()

    def clear(self) -> None:
        """Remove every cached file and the index."""
        with self._lock:
            for entry in list(self._entries.values()):
                self.remove(entry)
            self.flush()
