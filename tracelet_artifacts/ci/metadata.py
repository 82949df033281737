"""ArtifactMetadata: what we know about one CI artifact file once it is on local disk.

Type, MIME, text/binary, size, SHA-256, creation time and content analysis, plus user labels and metadata.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tracelet_artifacts.ci.errors import ArtifactMetadataError
from tracelet_artifacts.content import (
    CIArtifactKind,
    ContentAnalysis,
    ContentAnalysisError,
    analyze_content,
    classify_ci_artifact,
)
from tracelet_artifacts.detect import is_text, kind_for_name, mime_type, read_head
from tracelet_artifacts.digest import sha256_file

logger = logging.getLogger("tracelet_artifacts")

# Kinds that a file name alone says little about; a second opinion from the other name may do better.
_VAGUE_KINDS = {CIArtifactKind.OTHER, CIArtifactKind.BINARY, CIArtifactKind.DATA, CIArtifactKind.CONFIG}
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


class ArtifactMetadata:
    """Metadata of one CI artifact file: built from the file, or read back with ``from_dict``.

    ``artifact_type`` is the CI kind (``perf_report``, ``test_results``, ``coverage``, ``log``, …);
    ``file_type`` is the SDK's ArtifactType value from the detection table. ``created_at`` is the time
    given (e.g. the provider's ``created_at``), else the file's modification time, always in UTC.

    >>> meta = ArtifactMetadata("perf", "out/perf.json", "run-42", "github")  # doctest: +SKIP
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
    labels: set[str]
    metadata: dict[str, Any]

    def __init__(
        self,
        artifact_name: str,
        artifact_path: str | Path,
        test_run_id: str,
        provider_name: str,
        *,
        created_at: datetime | str | None = None,
        artifact_type: CIArtifactKind | str | None = None,
    ) -> None:
        path = Path(artifact_path)
        if not path.is_file():
            raise ArtifactMetadataError(f"artifact file {path} does not exist or is not a file")
        try:
            stat = path.stat()
            head = read_head(path)
            digest = sha256_file(path)
        except OSError as exc:
            raise ArtifactMetadataError(f"cannot read artifact file {path}: {exc}") from exc
        self.artifact_name = artifact_name
        self.artifact_path = path
        self.test_run_id = str(test_run_id)
        self.provider_name = provider_name
        row = kind_for_name(path.name)
        self.file_type = row.artifact_type if row else "custom"
        self.mime_type = mime_type(path.name)
        self.is_text = is_text(path.name, head)
        self.size_bytes = stat.st_size
        self.sha256 = digest
        self.created_at = (
            _parse_time(created_at)
            if created_at is not None
            else datetime.fromtimestamp(stat.st_mtime, tz=timezone.utc)
        )
        self.content, self.analysis_error = None, None
        try:
            self.content = analyze_content(path)
        except ContentAnalysisError as exc:
            self.analysis_error = str(exc)
            logger.info("content of CI artifact %s not analysed: %s", artifact_name, exc)
        self.artifact_type = (
            CIArtifactKind(artifact_type).value if artifact_type else self._classify(artifact_name, path)
        )
        self.labels = set()
        self.metadata = {}

    def _classify(self, artifact_name: str, path: Path) -> str:
        kind = classify_ci_artifact(artifact_name, self.content)
        if kind in _VAGUE_KINDS:
            by_file = classify_ci_artifact(path.name, self.content)
            kind = by_file if by_file is not CIArtifactKind.OTHER else kind
        return kind.value

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
        return {
            "artifact_name": self.artifact_name,
            "artifact_path": str(self.artifact_path),
            "test_run_id": self.test_run_id,
            "provider_name": self.provider_name,
            "artifact_type": self.artifact_type,
            "file_type": self.file_type,
            "mime_type": self.mime_type,
            "is_text": self.is_text,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "created_at": self.created_at.isoformat(),
            "content": self.content.to_dict() if self.content else None,
            "analysis_error": self.analysis_error,
            "labels": sorted(self.labels),
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ArtifactMetadata:
        """Rebuild metadata from ``to_dict`` output without touching the file (use ``validate`` for that)."""
        meta = cls.__new__(cls)
        try:
            meta.artifact_name = str(data["artifact_name"])
            meta.artifact_path = Path(data["artifact_path"])
            meta.test_run_id = str(data["test_run_id"])
            meta.provider_name = str(data["provider_name"])
            meta.artifact_type = str(data.get("artifact_type") or CIArtifactKind.OTHER.value)
            meta.file_type = str(data.get("file_type") or "custom")
            meta.mime_type = str(data.get("mime_type") or "application/octet-stream")
            meta.is_text = bool(data.get("is_text", False))
            meta.size_bytes = int(data["size_bytes"])
            meta.sha256 = str(data["sha256"])
            meta.created_at = _parse_time(data["created_at"])
            content = data.get("content")
            meta.content = ContentAnalysis.from_dict(content) if content else None
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactMetadataError(f"cannot read artifact metadata from a dict: {exc!r}") from exc
        meta.analysis_error = data.get("analysis_error")
        meta.labels = set(data.get("labels") or ())
        meta.metadata = dict(data.get("metadata") or {})
        return meta

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ArtifactMetadata) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable (labels, metadata): not hashable

    def __repr__(self) -> str:
        return (
            f"ArtifactMetadata({self.artifact_name!r}, run={self.test_run_id!r}, "
            f"provider={self.provider_name!r}, type={self.artifact_type!r}, sha256={self.sha256[:12]}…)"
        )


def load_metadata(items: Iterable[Mapping[str, Any]]) -> list[ArtifactMetadata]:
    """Metadata records from dicts written by ``ArtifactMetadata.to_dict`` (e.g. a JSON index file)."""
    return [ArtifactMetadata.from_dict(item) for item in items]
