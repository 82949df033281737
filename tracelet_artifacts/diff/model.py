"""What a diff between two artifact versions holds: frozen values that the CLI and the web view both render.

``VersionDiff`` is the whole answer; each part (entries, metadata, aliases, file contents) is a tuple of
small records, in a stable order, with ``to_dict`` for JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

ADDED, REMOVED, CHANGED, UNCHANGED = "added", "removed", "changed", "unchanged"


@dataclass(frozen=True)
class EntryChange:
    """One entry path and how it differs: ``added`` (only in B), ``removed`` (only in A), ``changed``, ``unchanged``."""

    path: str
    status: str
    size_a: int | None
    size_b: int | None
    digest_a: str | None
    digest_b: str | None

    @property
    def size_delta(self) -> int:
        """Bytes B has more than A at this path (a missing side counts as 0)."""
        return (self.size_b or 0) - (self.size_a or 0)


@dataclass(frozen=True)
class ValueChange:
    """One key (a metadata key, or a dotted path inside a config file) that was added, removed or changed."""

    key: str
    status: str
    before: Any = None
    after: Any = None


@dataclass(frozen=True)
class MetricChange:
    """A number that moved, with the trend code's verdict where the metric's better direction is known.

    ``verdict`` is ``regression``, ``improvement`` or ``stable`` (moved less than 1 %), or None when the
    name does not say whether lower or higher is better (``lr``, ``epochs``) or numpy is not installed.
    """

    key: str
    before: float
    after: float
    delta: float
    percent: float | None
    lower_is_better: bool | None
    verdict: str | None


@dataclass(frozen=True)
class TensorChange:
    """One tensor of a state dict: its shapes on both sides and, for equal shapes, ``‖B-A‖ / ‖A‖``.

    ``status`` is ``shape`` (the shape changed), ``changed``, ``unchanged``, ``added`` or ``removed``.
    """

    key: str
    status: str
    shape_a: tuple[int, ...] | None
    shape_b: tuple[int, ...] | None
    relative_change: float | None = None


@dataclass(frozen=True)
class ContentDiff:
    """What changed inside one entry present in both versions; ``kind`` is ``config``, ``metrics`` or ``state_dict``.

    ``note`` says what could not be compared and why (too large, unreadable, torch missing).
    """

    path: str
    kind: str
    keys: tuple[ValueChange, ...] = ()
    metrics: tuple[MetricChange, ...] = ()
    tensors: tuple[TensorChange, ...] = ()
    note: str = ""

    @property
    def regressions(self) -> tuple[MetricChange, ...]:
        return tuple(m for m in self.metrics if m.verdict == "regression")


@dataclass(frozen=True)
class VersionDiff:
    """The differences between version A (``ref_a``) and version B (``ref_b``).

    Example::

        diff = diff_versions(store, "classifier:v1", "classifier:v2")
        [e.path for e in diff.entries if e.status == "changed"]
        [m.key for m in diff.regressions]
    """

    ref_a: str
    ref_b: str
    digest_a: str
    digest_b: str
    type_a: str
    type_b: str
    description_a: str | None
    description_b: str | None
    entries: tuple[EntryChange, ...]
    metadata: tuple[ValueChange, ...]
    aliases_a: tuple[str, ...]
    aliases_b: tuple[str, ...]
    labels: tuple[ValueChange, ...]
    contents: tuple[ContentDiff, ...]

    @property
    def identical(self) -> bool:
        """Same content (artifact digest), same metadata and labels."""
        return self.digest_a == self.digest_b and not self.metadata and not self.labels

    @property
    def changed_entries(self) -> tuple[EntryChange, ...]:
        """Entries added, removed or changed (the unchanged ones left out)."""
        return tuple(e for e in self.entries if e.status != UNCHANGED)

    @property
    def regressions(self) -> tuple[MetricChange, ...]:
        """Every metric whose verdict is ``regression``, across all compared files."""
        return tuple(m for c in self.contents for m in c.regressions)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what ``tracelet-artifacts diff --json`` prints)."""
        data = asdict(self)
        data["identical"] = self.identical
        data["regressions"] = [m.key for m in self.regressions]
        return data
