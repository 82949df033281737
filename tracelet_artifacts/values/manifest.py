"""The frozen description of an artifact: ``Manifest`` and what it is made of (entries, external references,
the model an artifact holds). Freezing a builder produces one (``tracelet_artifacts/frozen.py``); the store
records it, the router plans from it, adapters deliver it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from tracelet_artifacts.values.artifact_type import ArtifactType

EntryKind = Literal["file", "object", "model"]


@dataclass(frozen=True)
class Reference:
    """An external URI recorded in the artifact but not uploaded."""

    uri: str
    size_bytes: int | None = None
    sha256: str | None = None
    description: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"uri": self.uri, "size_bytes": self.size_bytes, "sha256": self.sha256,
                "description": self.description}


@dataclass(frozen=True)
class ModelInfo:
    """What add_model recorded: the framework, the model's class, and where its files are."""

    framework: str
    class_name: str
    path: str
    input_example_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"framework": self.framework, "class_name": self.class_name, "path": self.path,
                "input_example_path": self.input_example_path}


@dataclass(frozen=True)
class ManifestEntry:
    """One stored file of a frozen artifact.

    ``digest`` is the key its content is stored under: ``blake3:<hex>`` for content logged with BLAKE3 (every
    new entry), a bare SHA-256 hex digest for content logged before (``algorithm`` says which).
    """

    path: str
    size: int
    digest: str
    mime: str
    is_text: bool
    kind: EntryKind = "file"
    description: str | None = None

    @property
    def algorithm(self) -> str:
        """How ``digest`` was computed: ``blake3`` or ``sha256``."""
        return "blake3" if self.digest.startswith("blake3:") else "sha256"

    @property
    def sha256(self) -> str:
        """The entry's content key, under its pre-BLAKE3 name (the field was ``sha256`` until entries were
        named by BLAKE3; it is a SHA-256 hex digest only when ``algorithm == "sha256"``). Use ``digest``."""
        warnings.warn("ManifestEntry.sha256 is now ManifestEntry.digest (a BLAKE3 key for new entries: "
                      "'blake3:<hex>'); read .digest instead.", DeprecationWarning, stacklevel=2)
        return self.digest

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "digest": self.digest, "mime": self.mime,
                "is_text": self.is_text, "kind": self.kind, "description": self.description}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ManifestEntry:
        """An entry from ``to_dict`` output, or from a manifest written before BLAKE3 (``"sha256"`` key)."""
        fields = dict(data)
        if "digest" not in fields:
            fields["digest"] = fields.pop("sha256")
        fields.pop("sha256", None)
        return cls(**fields)


def entry_digest(data: Mapping[str, Any]) -> str:
    """The content key of an entry as a manifest dict holds it (``digest``, or ``sha256`` in older ones)."""
    return str(data.get("digest") or data["sha256"])


def freeze_json(value: Any) -> Any:
    """A read-only copy of JSON data: mappings become MappingProxyType, lists tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze_json(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(freeze_json(v) for v in value)
    return value


def thaw_json(value: Any) -> Any:
    """A plain, mutable JSON copy of frozen metadata."""
    if isinstance(value, Mapping):
        return {k: thaw_json(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw_json(v) for v in value]
    return value


@dataclass(frozen=True)
class Manifest:
    """An immutable, hashed description of an artifact: what ``log_artifact`` stores and routes."""

    name: str
    artifact_type: ArtifactType
    digest: str
    entries: tuple[ManifestEntry, ...]
    references: tuple[Reference, ...] = ()
    description: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    labels: tuple[str, ...] = ()
    model: ModelInfo | None = None

    @property
    def digest_algorithm(self) -> str:
        """How the entries' content keys were computed: ``blake3``, ``sha256`` (logged before BLAKE3) or
        ``mixed`` (a manifest assembled from both); ``blake3`` when there are no entries."""
        found = {e.algorithm for e in self.entries}
        return found.pop() if len(found) == 1 else "mixed" if found else "blake3"

    @property
    def size_bytes(self) -> int:
        """Bytes stored in the artifact's own entries (references excluded)."""
        return sum(e.size for e in self.entries)

    def entry(self, path: str) -> ManifestEntry:
        """The entry stored under ``path``."""
        for item in self.entries:
            if item.path == path:
                return item
        raise KeyError(path)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.artifact_type.value,
            "digest": self.digest,
            "digest_algorithm": self.digest_algorithm,
            "description": self.description,
            "entries": [e.to_dict() for e in self.entries],
            "references": [r.to_dict() for r in self.references],
            "metadata": thaw_json(self.metadata),
            "labels": list(self.labels),
            "model": self.model.to_dict() if self.model else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Manifest:
        return cls(
            name=data["name"],
            artifact_type=ArtifactType.parse(data["type"]),
            digest=data["digest"],
            description=data.get("description"),
            entries=tuple(ManifestEntry.from_dict(e) for e in data["entries"]),
            references=tuple(Reference(**r) for r in data.get("references", ())),
            metadata=freeze_json(data.get("metadata") or {}),
            labels=tuple(data.get("labels") or ()),
            model=ModelInfo(**data["model"]) if data.get("model") else None,
        )
