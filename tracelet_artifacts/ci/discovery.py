"""Finding CI artifacts by type, labels, metadata and content, and pulling metric series out of them.

Queries are data (``ArtifactQuery``) evaluated by an index: in memory here; a catalog index can plug in.
"""

from __future__ import annotations

import functools
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar

from tracelet_artifacts.ci.errors import ArtifactQueryError
from tracelet_artifacts.ci.kinds import CIArtifactKind
from tracelet_artifacts.ci.metadata import ArtifactMetadata

_OPERATOR = re.compile(r"^\s*(>=|<=|!=|==|>|<|~)\s*(.*?)\s*$", re.DOTALL)
_RECORD_FIELDS = (
    "artifact_name",
    "test_run_id",
    "provider_name",
    "artifact_type",
    "file_type",
    "mime_type",
    "is_text",
    "size_bytes",
    "sha256",
    "created_at",
)
_MISSING = object()
_SHOWN_KEYS = 25
_P = ParamSpec("_P")
_R = TypeVar("_R")


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _as_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Condition:
    """One test on the value found at a dotted ``path``.

    Operators, written as a string prefix: ``">100"``, ``">=1.5"``, ``"<"``, ``"<="`` (numeric, or
    chronological with an ISO-8601 operand such as ``">=2024-03-01"``; a value of the other kind never
    matches), ``"==x"``/``"!=x"`` (numeric when both sides are numbers,
    otherwise text; ``"true"``/``"false"`` match booleans), ``"~regex"`` (``re.search`` on the text).
    A string with no operator means equality; a list, tuple or set means "one of"; a callable is a
    predicate; any other value is compared with ``==``. A missing value matches only ``"!=…"``.
    """

    path: str
    op: str
    operand: Any

    @classmethod
    def parse(cls, path: str, spec: Any) -> Condition:
        """Build a condition from a query value such as ``">100"``, ``"main"``, ``[1, 2]`` or a callable."""
        if callable(spec):
            return cls(path, "call", spec)
        if isinstance(spec, (list, tuple, set, frozenset)):
            return cls(path, "in", tuple(spec))
        if not isinstance(spec, str):
            return cls(path, "==", spec)
        match = _OPERATOR.match(spec)
        if not match:
            return cls(path, "==", spec)
        op, operand = match.groups()
        if op in (">", ">=", "<", "<="):
            limit = _as_number(operand)
            bound = _as_time(operand) if limit is None else limit
            if bound is None:
                raise ArtifactQueryError(
                    f"query {path!r}: {spec!r} compares with {operand!r}, which is neither a number nor a time"
                )
            return cls(path, op, bound)
        if op == "~":
            try:
                return cls(path, op, re.compile(operand))
            except re.error as exc:
                raise ArtifactQueryError(f"query {path!r}: bad regular expression {operand!r}: {exc}") from exc
        return cls(path, op, operand)

    def test(self, value: Any) -> bool:
        """Whether ``value`` (``_MISSING`` when the path is absent) satisfies this condition."""
        if value is _MISSING:
            return self.op == "!="
        if self.op == "call":
            return bool(self.operand(value))
        if self.op == "in":
            return any(_equal(value, option) for option in self.operand)
        if self.op in ("==", "!="):
            return _equal(value, self.operand) == (self.op == "==")
        if self.op == "~":
            return self.operand.search(str(value)) is not None
        limit = self.operand
        current = _as_time(value) if isinstance(limit, datetime) else _as_number(value)
        if current is None:
            return False
        return {">": current > limit, ">=": current >= limit, "<": current < limit, "<=": current <= limit}[self.op]


def _equal(value: Any, operand: Any) -> bool:
    if isinstance(operand, str) and not isinstance(value, str):
        if isinstance(value, bool):
            return operand.lower() == str(value).lower()
        number, expected = _as_number(value), _as_number(operand)
        if number is not None and expected is not None:
            return number == expected
        return str(value) == operand
    return bool(value == operand)


def _conditions(query: Mapping[str, Any] | None) -> tuple[Condition, ...]:
    return tuple(Condition.parse(str(path), spec) for path, spec in (query or {}).items())


def _dotted(data: Any, path: str) -> Any:
    if isinstance(data, Mapping) and path in data:
        return data[path]
    for part in path.split("."):
        if isinstance(data, Mapping) and part in data:
            data = data[part]
        elif isinstance(data, Sequence) and not isinstance(data, str) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return _MISSING
    return data


def metadata_value(meta: ArtifactMetadata, path: str) -> Any:
    """A user-metadata value by dotted path, else a record field (``provider_name``, ``size_bytes``, …)."""
    value = _dotted(meta.metadata, path)
    if value is _MISSING and path in _RECORD_FIELDS:
        value = getattr(meta, path)
    return value


def content_value(meta: ArtifactMetadata, path: str) -> Any:
    """A content value by dotted path (see ``ArtifactMetadata.content_value``), ``_MISSING`` if absent."""
    return meta.content_value(path, _MISSING)


@dataclass(frozen=True)
class ArtifactQuery:
    """What to look for; every given part must match. Indexes translate it (SQL for a catalog)."""

    artifact_type: str | None = None
    labels: frozenset[str] = frozenset()
    metadata_query: tuple[Condition, ...] = ()
    content_query: tuple[Condition, ...] = ()

    @classmethod
    def build(
        cls,
        artifact_type: CIArtifactKind | str | None = None,
        labels: Iterable[str] | None = None,
        metadata_query: Mapping[str, Any] | None = None,
        content_query: Mapping[str, Any] | None = None,
    ) -> ArtifactQuery:
        """A query from the keyword arguments of ``discover_artifacts``."""
        kind = CIArtifactKind.parse(artifact_type).value if artifact_type else None
        return cls(kind, frozenset(labels or ()), _conditions(metadata_query), _conditions(content_query))

    def matches(self, meta: ArtifactMetadata) -> bool:
        """Whether one artifact satisfies the query."""
        if self.artifact_type and meta.artifact_type != self.artifact_type:
            return False
        if not self.labels <= meta.labels:
            return False
        if not all(c.test(metadata_value(meta, c.path)) for c in self.metadata_query):
            return False
        return all(c.test(content_value(meta, c.path)) for c in self.content_query)


class ArtifactIndex(Protocol):
    """Anything that can answer an ArtifactQuery: the in-memory index, or a catalog-backed one."""

    def search(self, query: ArtifactQuery) -> list[ArtifactMetadata]:
        """All stored artifacts that match, in any order."""
        ...


@dataclass
class InMemoryIndex:
    """An ArtifactIndex over a list held in memory."""

    artifacts: list[ArtifactMetadata] = field(default_factory=list)

    def add(self, *artifacts: ArtifactMetadata) -> None:
        """Add artifacts to the index."""
        self.artifacts.extend(artifacts)

    def search(self, query: ArtifactQuery) -> list[ArtifactMetadata]:
        """Artifacts that match, in the order they were added."""
        return [meta for meta in self.artifacts if query.matches(meta)]


@dataclass(frozen=True)
class MetricPoint:
    """One value of one metric, taken from one artifact."""

    timestamp: datetime
    value: float
    test_run_id: str
    artifact_name: str
    provider_name: str


class _ClassOrInstance(Generic[_P, _R]):
    """A method that may be called on the class (its first argument is then None) or on an instance."""

    def __init__(self, func: Callable[Concatenate[Any, _P], _R]) -> None:
        self.func = func
        functools.update_wrapper(self, func)  # type: ignore[arg-type]

    def __get__(self, instance: Any, owner: type | None = None) -> Callable[_P, _R]:
        return functools.partial(self.func, instance)


class ArtifactDiscovery:
    """Find CI artifacts and extract metric series from them; every method may be called on the class
    (over the ``artifacts`` given, as the CI artifact handling system does) or on an instance with an index.

    >>> perf = ArtifactDiscovery.discover_artifacts(  # doctest: +SKIP
    ...     artifacts=all_artifacts, artifact_type="performance_report", labels=["nightly"],
    ...     metadata_query={"branch": "main"}, content_query={"metrics.throughput": ">100"})
    >>> ArtifactDiscovery(CatalogIndex(store)).discover_artifacts(artifact_type="test_report")  # doctest: +SKIP
    """

    def __init__(self, index: ArtifactIndex | None = None) -> None:
        self.index = index

    @_ClassOrInstance
    def discover_artifacts(
        self: ArtifactDiscovery | None,
        artifacts: Iterable[ArtifactMetadata] | None = None,
        artifact_type: CIArtifactKind | str | None = None,
        labels: Iterable[str] | None = None,
        metadata_query: Mapping[str, Any] | None = None,
        content_query: Mapping[str, Any] | None = None,
    ) -> list[ArtifactMetadata]:
        """Artifacts matching every given filter: from ``artifacts`` when given, else from the index.

        ``metadata_query`` and ``content_query`` map dotted paths to conditions (see ``Condition``).
        """
        query = ArtifactQuery.build(artifact_type, labels, metadata_query, content_query)
        if artifacts is not None:
            return InMemoryIndex(list(artifacts)).search(query)
        if self is None or self.index is None:
            raise ArtifactQueryError(
                "no artifacts given and no index to search: pass artifacts=[...], or use ArtifactDiscovery(index)"
            )
        return self.index.search(query)

    @staticmethod
    def group_artifacts_by_type(artifacts: Iterable[ArtifactMetadata]) -> dict[str, list[ArtifactMetadata]]:
        """Artifacts keyed by their CI kind (``performance_report``, ``test_report``, …), input order kept."""
        groups: dict[str, list[ArtifactMetadata]] = defaultdict(list)
        for meta in artifacts:
            groups[meta.artifact_type].append(meta)
        return dict(groups)

    @staticmethod
    def find_latest_artifact(
        artifacts: Iterable[ArtifactMetadata],
        artifact_name: str | None = None,
        artifact_type: CIArtifactKind | str | None = None,
        provider_name: str | None = None,
        test_run_id: str | None = None,
    ) -> ArtifactMetadata | None:
        """The newest artifact (by ``created_at``; the later one in the input wins a tie), or None."""
        kind = CIArtifactKind.parse(artifact_type).value if artifact_type else None
        latest: ArtifactMetadata | None = None
        for meta in artifacts:
            if artifact_name is not None and meta.artifact_name != artifact_name:
                continue
            if kind is not None and meta.artifact_type != kind:
                continue
            if provider_name is not None and meta.provider_name != provider_name:
                continue
            if test_run_id is not None and meta.test_run_id != str(test_run_id):
                continue
            if latest is None or meta.created_at >= latest.created_at:
                latest = meta
        return latest

    @staticmethod
    def extract_metrics_from_artifacts(
        artifacts: Iterable[ArtifactMetadata], metric_names: Iterable[str]
    ) -> dict[str, list[MetricPoint]]:
        """For each metric name, its points over time, oldest first, keyed by the name as given.

        A name is a dotted content path (``metrics.throughput``), or a leaf (``throughput``) that stands
        for the one dotted path ending in it. Artifacts without a numeric value there are skipped for that
        metric. A name no artifact holds, or a leaf that ends several paths, raises ArtifactQueryError
        naming the metrics the artifacts do hold.
        """
        chosen = list(artifacts)
        names = list(metric_names)
        paths = {name: resolve_metric(chosen, name) for name in names} if chosen else {n: n for n in names}
        series: dict[str, list[MetricPoint]] = {name: [] for name in names}
        for meta in chosen:
            for name in names:
                number = _as_number(meta.content_value(paths[name]))
                if number is not None:
                    point = MetricPoint(
                        meta.created_at, number, meta.test_run_id, meta.artifact_name, meta.provider_name
                    )
                    series[name].append(point)
        for points in series.values():
            points.sort(key=_point_time)
        return series


def resolve_metric(artifacts: Sequence[ArtifactMetadata], name: str) -> str:
    """The content path ``name`` stands for in ``artifacts``: itself when some artifact holds a number there,
    else the one metric path ending in ``.name``; ArtifactQueryError when there is none or several."""
    if any(_as_number(meta.content_value(name)) is not None for meta in artifacts):
        return name
    return leaf_metric(name, {key for meta in artifacts for key in meta.metrics}, f"{len(artifacts)} artifact(s)")


def leaf_metric(name: str, held: Iterable[str], holders: str) -> str:
    """The one metric path in ``held`` that ends in ``.name``; ArtifactQueryError (naming what ``holders``
    hold) when there is none or several."""
    held = sorted(set(held))
    ending = [key for key in held if key.endswith(f".{name}")]
    if len(ending) == 1:
        return ending[0]
    if ending:
        raise ArtifactQueryError(
            f"metric {name!r} is ambiguous: it ends {', '.join(ending)}; give the dotted path you mean"
        )
    shown = ", ".join(held[:_SHOWN_KEYS]) + (f", … ({len(held)} in all)" if len(held) > _SHOWN_KEYS else "")
    raise ArtifactQueryError(
        f"no metric {name!r} in {holders}; they hold: {shown or 'no metrics'}"
    )


def _point_time(point: MetricPoint) -> datetime:
    return point.timestamp
