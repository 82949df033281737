"""ArtifactMetadata: what we know about one CI artifact file once it is on local disk, and ``describe``,
the one function that reads the file to build it (type, MIME, text/binary, size, SHA-256, time, content).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tracelet_artifacts.ci.content import ContentAnalysis, ContentAnalysisError, analyze_content
from tracelet_artifacts.ci.errors import ArtifactMetadataError
from tracelet_artifacts.ci.kinds import CIArtifactKind, classify_ci_artifact
from tracelet_artifacts.detect import is_text, kind_for_name, mime_type, read_head
from tracelet_artifacts.digest import sha256_file

logger = logging.getLogger("tracelet_artifacts")

# Kinds that a file name alone says little about; a second opinion from the other name may do better.
_VAGUE_KINDS = {CIArtifactKind.GENERIC, CIArtifactKind.BINARY, CIArtifactKind.DATA, CIArtifactKind.CONFIG}
_MISSING = object()


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return _utc(value)
    try:
        return _utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
    except ValueError as exc:
        raise ArtifactMetadataError(f"created_at {value!r} is not an ISO-8601 time") from exc


@dataclass(frozen=True, init=False, eq=False, repr=False)
class ArtifactMetadata:
    """Metadata of one CI artifact file. Build it with ``describe(path, …)``, or read it back with ``from_dict``.

    What was read from the file is frozen: no attribute can be reassigned. ``labels`` and ``metadata`` are
    the user's annotations and the only parts that change, through ``add_label`` and ``add_metadata``
    (as in the CI artifact handling system's API); ``copy()`` gives a record with annotations of its own.

    ``artifact_type`` is the CI kind (``performance_report``, ``test_report``, ``coverage_report``,
    ``test_log``, …); ``file_type`` is the SDK's ArtifactType value from the detection table.
    ``created_at`` is the time given (e.g. the provider's ``created_at``), else the file's modification
    time, always in UTC. ``ArtifactMetadata(name, path, test_run_id, provider_name)`` is the original
    design's spelling of ``describe``.

    >>> meta = describe("out/perf.json", "perf", test_run_id="run-42", provider_name="github")  # doctest: +SKIP
    >>> meta.add_label("nightly").content_value("metrics.throughput")  # doctest: +SKIP
    120.5
    """

    artifact_name: str
    artifact_path: Path
    test_run_id: str
    provider_name: str
    artifact_type: str
    file_type: str
    mime_type: str
    is_text: bool
    size_bytes: int
    sha256: str
    created_at: datetime
    content: ContentAnalysis | None
    analysis_error: str | None
    labels: set[str] = field(default_factory=set)
    metadata: dict[str, Any] = field(default_factory=dict)

    def __init__(
        self,
        artifact_name: str,
        artifact_path: str | Path,
        test_run_id: str = "",
        provider_name: str = "",
        *,
        created_at: datetime | str | None = None,
        artifact_type: CIArtifactKind | str | None = None,
        labels: Iterable[str] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        described = describe(artifact_path, artifact_name, test_run_id=test_run_id, provider_name=provider_name,
                             created_at=created_at, artifact_type=artifact_type, labels=labels, metadata=metadata)
        for name in _FIELDS:
            object.__setattr__(self, name, getattr(described, name))

    @classmethod
    def _of(cls, values: Mapping[str, Any]) -> ArtifactMetadata:
        """A record from every field's value, reading nothing."""
        meta = cls.__new__(cls)
        for name in _FIELDS:
            object.__setattr__(meta, name, values[name])
        return meta

    # --- what users add ------------------------------------------------------------------------

    def add_label(self, *labels: str) -> ArtifactMetadata:
        """Attach labels (free-form tags such as ``nightly`` or ``linux``); returns self for chaining."""
        self.labels.update(str(label) for label in labels)
        return self

    def add_metadata(self, key: str | Mapping[str, Any], value: Any = _MISSING) -> ArtifactMetadata:
        """Set one key (``add_metadata("branch", "main")``) or merge a mapping; returns self."""
        if isinstance(key, Mapping):
            if value is not _MISSING:
                raise TypeError("add_metadata takes a mapping or a key and a value, not both")
            self.metadata.update(key)
        else:
            if value is _MISSING:
                raise TypeError(f"add_metadata({key!r}) needs a value")
            self.metadata[str(key)] = value
        return self

    def copy(self) -> ArtifactMetadata:
        """The same record with its own labels and metadata, so annotating it leaves this one alone."""
        values = {name: getattr(self, name) for name in _FIELDS}
        return self._of({**values, "labels": set(self.labels), "metadata": dict(self.metadata)})

    # --- reading ----------------------------------------------------------------------------------

    @property
    def metrics(self) -> Mapping[str, float]:
        """Numbers found in the content, keyed by dotted path (empty when nothing was analysed)."""
        return self.content.metrics if self.content else {}

    def content_value(self, path: str, default: Any = None) -> Any:
        """A value of the content by dotted path: a metric, a scalar JSON field, ``tests.failures``,
        or an analysis attribute (``format``, ``row_count``, ``columns``, ``root``)."""
        content = self.content
        if content is None:
            return default
        if path in content.metrics:
            return content.metrics[path]
        if path in content.fields:
            return content.fields[path]
        head, _, rest = path.partition(".")
        if head == "tests" and rest and content.tests is not None:
            return getattr(content.tests, rest, default)
        if not rest and head in ("format", "row_count", "columns", "root", "truncated"):
            return getattr(content, head)
        return default

    def validate(self) -> bool:
        """True when the file still exists with the recorded size and SHA-256; the reason is logged."""
        path = self.artifact_path
        problem = None
        try:
            if not path.is_file():
                problem = "file is missing"
            elif path.stat().st_size != self.size_bytes:
                problem = f"size is {path.stat().st_size}, recorded {self.size_bytes}"
            elif sha256_file(path) != self.sha256:
                problem = "SHA-256 differs from the recorded digest"
        except OSError as exc:
            problem = f"cannot read it: {exc}"
        if problem:
            logger.info("CI artifact %s at %s is not valid: %s", self.artifact_name, path, problem)
        return problem is None

    # --- serialising ------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``created_at`` as ISO-8601, labels sorted); ``from_dict`` reads it back."""
        data = {name: getattr(self, name) for name in _FIELDS}
        data.update(artifact_path=str(self.artifact_path), created_at=self.created_at.isoformat(),
                    content=self.content.to_dict() if self.content else None, labels=sorted(self.labels),
                    metadata=dict(self.metadata))
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ArtifactMetadata:
        """Rebuild metadata from ``to_dict`` output without touching the file (use ``validate`` for that).

        A type stored under one of the project's earlier names (``perf_report``) is read as today's.
        """
        try:
            content = data.get("content")
            kind = data.get("artifact_type") or CIArtifactKind.GENERIC.value
            values = {
                "artifact_name": str(data["artifact_name"]),
                "artifact_path": Path(data["artifact_path"]),
                "test_run_id": str(data["test_run_id"]),
                "provider_name": str(data["provider_name"]),
                "artifact_type": _kind_value(str(kind)),
                "file_type": str(data.get("file_type") or "custom"),
                "mime_type": str(data.get("mime_type") or "application/octet-stream"),
                "is_text": bool(data.get("is_text", False)),
                "size_bytes": int(data["size_bytes"]),
                "sha256": str(data["sha256"]),
                "created_at": _parse_time(data["created_at"]),
                "content": ContentAnalysis.from_dict(content) if content else None,
                "analysis_error": data.get("analysis_error"),
                "labels": set(data.get("labels") or ()),
                "metadata": dict(data.get("metadata") or {}),
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactMetadataError(f"cannot read artifact metadata from a dict: {exc!r}") from exc
        return cls._of(values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ArtifactMetadata) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.provider_name, self.test_run_id, self.artifact_name, self.sha256))

    def __repr__(self) -> str:
        return (
            f"ArtifactMetadata({self.artifact_name!r}, run={self.test_run_id!r}, "
            f"provider={self.provider_name!r}, type={self.artifact_type!r}, sha256={self.sha256[:12]}…)"
        )


_FIELDS = tuple(f.name for f in fields(ArtifactMetadata))


def _kind_value(kind: str) -> str:
    try:
        return CIArtifactKind(kind).value
    except ValueError:  # a kind this version does not know: keep it as written
        return kind


def _classify(artifact_name: str, path: Path, content: ContentAnalysis | None) -> str:
    kind = classify_ci_artifact(artifact_name, content)
    if kind in _VAGUE_KINDS:
        by_file = classify_ci_artifact(path.name, content)
        kind = by_file if by_file is not CIArtifactKind.GENERIC else kind
    return kind.value


def _read_file(
    artifact_name: str, path: Path, created_at: datetime | str | None, artifact_type: CIArtifactKind | str | None
) -> dict[str, Any]:
    """Everything ``describe`` learns from the file itself (one hash, one bounded content analysis)."""
    if not path.is_file():
        raise ArtifactMetadataError(f"artifact file {path} does not exist or is not a file")
    try:
        stat = path.stat()
        head = read_head(path)
        digest = sha256_file(path)
    except OSError as exc:
        raise ArtifactMetadataError(f"cannot read artifact file {path}: {exc}") from exc
    content, analysis_error = None, None
    try:
        content = analyze_content(path)
    except ContentAnalysisError as exc:
        analysis_error = str(exc)
        logger.info("content of CI artifact %s not analysed: %s", artifact_name, exc)
    row = kind_for_name(path.name)
    return {
        "artifact_name": artifact_name,
        "artifact_path": path,
        "artifact_type": (CIArtifactKind.parse(artifact_type).value if artifact_type
                          else _classify(artifact_name, path, content)),
        "file_type": row.artifact_type if row else "custom",
        "mime_type": mime_type(path.name),
        "is_text": is_text(path.name, head),
        "size_bytes": stat.st_size,
        "sha256": digest,
        "created_at": (_parse_time(created_at) if created_at is not None
                       else datetime.fromtimestamp(stat.st_mtime, tz=timezone.utc)),
        "content": content,
        "analysis_error": analysis_error,
    }


def describe(
    path: str | Path,
    artifact_name: str | None = None,
    *,
    test_run_id: str = "",
    provider_name: str = "",
    created_at: datetime | str | None = None,
    artifact_type: CIArtifactKind | str | None = None,
    labels: Iterable[str] = (),
    metadata: Mapping[str, Any] | None = None,
) -> ArtifactMetadata:
    """Read the file at ``path`` once and describe it (``artifact_name`` defaults to the file name).

    Raises ArtifactMetadataError when the file is missing or unreadable; a file whose content cannot be
    analysed is still described, with ``analysis_error`` saying why.
    """
    path = Path(path)
    described = _read_file(artifact_name or path.name, path, created_at, artifact_type)
    return ArtifactMetadata._of({**described, "test_run_id": str(test_run_id), "provider_name": provider_name,
                                 "labels": set(labels), "metadata": dict(metadata or {})})


def load_metadata(items: Iterable[Mapping[str, Any]]) -> list[ArtifactMetadata]:
    """Metadata records from dicts written by ``ArtifactMetadata.to_dict`` (e.g. a JSON index file)."""
    return [ArtifactMetadata.from_dict(item) for item in items]
