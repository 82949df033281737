"""Comparing two CI artifacts: JSON key and metric changes, a unified diff for text, size/digest for binary.

Both sides are read with a size limit; anything too large, or not both text, is compared by digest.
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tracelet_artifacts.ci.content import ContentAnalysisError, ContentTooLargeError, json_leaves, unwrapped
from tracelet_artifacts.ci.errors import ComparisonError
from tracelet_artifacts.ci.metadata import ArtifactMetadata
from tracelet_artifacts.detect import SNIFF_BYTES, is_text, read_head
from tracelet_artifacts.digest import sha256_file

MAX_COMPARE_BYTES = 16 * 1024 * 1024
MAX_DIFF_LINES = 2000


@dataclass(frozen=True)
class MetricDelta:
    """How one number moved: ``percent`` is ``100·delta/|before|`` (None when ``before`` is 0)."""

    before: float
    after: float
    delta: float
    percent: float | None


@dataclass(frozen=True)
class ArtifactComparison:
    """The result of ``compare_artifacts``; ``kind`` is ``json``, ``text`` or ``binary``.

    JSON: ``added``/``removed`` map dotted paths to values, ``changed`` maps them to
    ``{"before": …, "after": …}``, ``metric_deltas`` holds the changed numbers. Text: ``diff`` is a
    unified diff (cut after 2,000 lines, then ``diff_truncated``). Every kind has sizes and SHA-256.
    """

    kind: str
    left: str
    right: str
    identical: bool
    left_size: int
    right_size: int
    left_sha256: str
    right_sha256: str
    added: dict[str, Any] = field(default_factory=dict)
    removed: dict[str, Any] = field(default_factory=dict)
    changed: dict[str, dict[str, Any]] = field(default_factory=dict)
    metric_deltas: dict[str, MetricDelta] = field(default_factory=dict)
    diff: str = ""
    diff_truncated: bool = False
    note: str = ""

    @property
    def size_delta(self) -> int:
        """Bytes the right side has more than the left."""
        return self.right_size - self.left_size

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        data = asdict(self)
        data["size_delta"] = self.size_delta
        return data


def _side(artifact: str | Path | ArtifactMetadata) -> tuple[Path, str]:
    if isinstance(artifact, ArtifactMetadata):
        return artifact.artifact_path, artifact.artifact_name
    path = Path(artifact)
    return path, str(path)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def metric_delta(before: float, after: float) -> MetricDelta:
    """The change from ``before`` to ``after``, absolute and in percent."""
    delta = after - before
    return MetricDelta(before, after, delta, 100.0 * delta / abs(before) if before else None)


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (ValueError, RecursionError):
        return _NOT_JSON


_NOT_JSON = object()


def compare_documents(left: Any, right: Any) -> dict[str, Any]:
    """Key-level changes between two parsed documents (JSON, or YAML/TOML read into the same shapes).

    Returns ``added``/``removed`` (dotted path → value), ``changed`` (path → ``{"before", "after"}``),
    ``metric_deltas`` (path → MetricDelta for changed numbers) and, when a side was cut, ``note``.
    """
    before, cut_left = json_leaves(left)
    after, cut_right = json_leaves(right)
    result: dict[str, Any] = {
        "added": {k: v for k, v in after.items() if k not in before},
        "removed": {k: v for k, v in before.items() if k not in after},
        "changed": {},
        "metric_deltas": {},
    }
    for key in before.keys() & after.keys():
        old, new = before[key], after[key]
        if old == new and type(old) is type(new):
            continue
        result["changed"][key] = {"before": old, "after": new}
        old_n, new_n = _number(old), _number(new)
        if old_n is not None and new_n is not None:
            result["metric_deltas"][key] = metric_delta(old_n, new_n)
    result["changed"] = dict(sorted(result["changed"].items()))
    result["metric_deltas"] = dict(sorted(result["metric_deltas"].items()))
    if cut_left or cut_right:
        result["note"] = "only the first 10,000 leaves of each document were compared"
    return result


def _compare_text(left: Path, right: Path, left_name: str, right_name: str) -> dict[str, Any]:
    try:
        old = left.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
        new = right.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
    except OSError as exc:
        raise ComparisonError(f"cannot read the artifacts to compare: {exc}") from exc
    lines: list[str] = []
    truncated = False
    for line in difflib.unified_diff(old, new, fromfile=left_name, tofile=right_name):
        if len(lines) >= MAX_DIFF_LINES:
            truncated = True
            break
        lines.append(line if line.endswith("\n") else line + "\n")
    return {"diff": "".join(lines), "diff_truncated": truncated}


def compare_artifacts(
    artifact1: str | Path | ArtifactMetadata,
    artifact2: str | Path | ArtifactMetadata,
    *,
    max_bytes: int = MAX_COMPARE_BYTES,
) -> ArtifactComparison:
    """Compare two artifact files (paths or ArtifactMetadata), left = ``artifact1``.

    Both JSON → key and metric changes; both text → unified diff; otherwise, or when either side is
    larger than ``max_bytes``, size and SHA-256 only. Raises ComparisonError when a side is missing.

    >>> compare_artifacts("old/perf.json", "new/perf.json").metric_deltas  # doctest: +SKIP
    {'metrics.throughput': MetricDelta(before=100.0, after=120.0, delta=20.0, percent=20.0)}
    """
    (left, left_name), (right, right_name) = _side(artifact1), _side(artifact2)
    for path in (left, right):
        if not path.is_file():
            raise ComparisonError(f"cannot compare: {path} does not exist or is not a file")
    try:
        sizes = left.stat().st_size, right.stat().st_size
        digests = sha256_file(left), sha256_file(right)
    except OSError as exc:
        raise ComparisonError(f"cannot read the artifacts to compare: {exc}") from exc
    base: dict[str, Any] = {
        "left": str(left),
        "right": str(right),
        "identical": digests[0] == digests[1],
        "left_size": sizes[0],
        "right_size": sizes[1],
        "left_sha256": digests[0],
        "right_sha256": digests[1],
    }
    try:
        with unwrapped(left, max_bytes) as inner_left, unwrapped(right, max_bytes) as inner_right:
            return _compare_contents(inner_left, inner_right, (left_name, right_name), base, max_bytes)
    except ContentTooLargeError:
        note = f"larger than {max_bytes} bytes: compared by size and SHA-256 only"
        return ArtifactComparison("binary", **base, note=note)
    except ContentAnalysisError as exc:
        raise ComparisonError(f"cannot read the artifacts to compare: {exc}") from exc


def _compare_contents(
    inner_left: tuple[Path, str], inner_right: tuple[Path, str], labels: tuple[str, str], base: dict[str, Any],
    max_bytes: int,
) -> ArtifactComparison:
    """JSON, text or binary comparison of two ``(file, file name)`` (the single file of a zip stands for it)."""
    (left, left_type), (right, right_type) = inner_left, inner_right
    try:
        sizes = left.stat().st_size, right.stat().st_size
        heads = read_head(left, SNIFF_BYTES), read_head(right, SNIFF_BYTES)
    except OSError as exc:
        raise ComparisonError(f"cannot read the artifacts to compare: {exc}") from exc
    if max(sizes) > max_bytes:
        note = f"larger than {max_bytes} bytes: compared by size and SHA-256 only"
        return ArtifactComparison("binary", **base, note=note)
    if not (is_text(left_type, heads[0]) and is_text(right_type, heads[1])):
        return ArtifactComparison("binary", **base)
    jsonish = any(n.lower().endswith(".json") for n in (left_type, right_type)) or all(
        h.lstrip()[:1] in (b"{", b"[") for h in heads
    )
    if jsonish:
        documents = _load_json(left), _load_json(right)
        if _NOT_JSON not in documents:
            return ArtifactComparison("json", **base, **compare_documents(*documents))
    return ArtifactComparison("text", **base, **_compare_text(left, right, *labels))
