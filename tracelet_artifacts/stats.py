"""What a run has logged and where its deliveries stand, per backend: ``exp.artifact_stats()``.

Also the shape Tracelet's guide debugs with, ``exp._artifact_manager.get_stats()`` (a dict of the same).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tracelet_artifacts.routing import LOCAL
from tracelet_artifacts.store.embedded import EmbeddedStore

__all__ = ["ArtifactManagerView", "ArtifactStats", "BackendStats", "collect_stats"]


@dataclass(frozen=True)
class BackendStats:
    """One backend's share of a run: versions delivered (``logged``), still ``pending`` (or in flight) and
    ``failed`` for good (``tracelet-artifacts sync`` retries them), with the last error seen."""

    logged: int
    pending: int = 0
    failed: int = 0
    last_error: str | None = None


@dataclass(frozen=True)
class ArtifactStats:
    """A run's artifact counts: per backend (``local`` is the embedded store: versions this run created)
    and the store's outbox depth (deliveries of every run not yet done: pending, in flight or failed).

    Example::

        stats = exp.artifact_stats()
        stats.backends["mlflow"].pending      # 0 once exp.flush() returned
    """

    run_id: str
    enabled: bool
    backends: Mapping[str, BackendStats]
    outbox_depth: int
    reference_threshold_mb: float
    store: str = field(default="")

    def to_dict(self) -> dict[str, Any]:
        """Plain values (also Tracelet's ``backend_names`` and ``large_file_threshold_mb`` keys)."""
        return {
            "run_id": self.run_id,
            "enabled": self.enabled,
            "store": self.store,
            "backends": {name: {"logged": s.logged, "pending": s.pending, "failed": s.failed,
                                "last_error": s.last_error} for name, s in self.backends.items()},
            "outbox_depth": self.outbox_depth,
            "backend_names": [name for name in self.backends if name != LOCAL],
            "large_file_threshold_mb": self.reference_threshold_mb,
        }

    def __str__(self) -> str:
        parts = [f"{name}: {s.logged} logged, {s.pending} pending, {s.failed} failed"
                 + (f" (last error: {s.last_error})" if s.last_error else "") for name, s in self.backends.items()]
        state = "" if self.enabled else " (artifacts disabled)"
        return f"run {self.run_id[:12]}{state}: " + "; ".join(parts) + f"; outbox depth {self.outbox_depth}"


def collect_stats(
    store: EmbeddedStore | None, run_id: str, backends: Sequence[str], *, enabled: bool,
    reference_threshold_mb: float,
) -> ArtifactStats:
    """The counts of run ``run_id`` in ``store``, for the embedded store and each of ``backends`` (all zero
    when there is no store yet)."""
    if store is None:
        empty = {name: BackendStats(0) for name in (LOCAL, *backends)}
        return ArtifactStats(run_id, enabled, empty, 0, reference_threshold_mb)
    created = sum(1 for v in store.catalog.search() if v.run_id == run_id)
    out: dict[str, BackendStats] = {LOCAL: BackendStats(created)}
    for backend in backends:
        states = store.outbox.deliveries(backend=backend, run_id=run_id)
        failed = [s for s in states if s.status == "failed"]
        errors = [s.last_error for s in states if s.last_error and s.status != "done"]
        out[backend] = BackendStats(
            logged=sum(1 for s in states if s.status == "done"),
            pending=sum(1 for s in states if s.status in ("pending", "inflight")),
            failed=len(failed),
            last_error=errors[-1] if errors else None,
        )
    counts = store.outbox.counts()
    depth = sum(n for status, n in counts.items() if status != "done")
    return ArtifactStats(run_id, enabled, out, depth, reference_threshold_mb, str(store.root))


class ArtifactManagerView:
    """``exp._artifact_manager`` as Tracelet's guide uses it: ``get_stats()`` gives ``exp.artifact_stats()``
    as a dict. Nothing else of Tracelet's manager exists here; the experiment does its work."""

    def __init__(self, stats: Callable[[], ArtifactStats]) -> None:
        self._stats = stats

    def get_stats(self) -> dict[str, Any]:
        return self._stats().to_dict()
