"""Freezing: what a builder holds, frozen (``FrozenArtifact``), and how it becomes a hashed ``Manifest``.

Step 1 of the write path (``artifact.freeze``) gives a ``FrozenArtifact``: the builder's files, objects,
references, labels and checked metadata, immutable, with nothing read yet. ``to_manifest(sink)`` then
streams every entry through a ``ContentSink`` once: the store's sink copies each file into the blob store
and hashes what it stored (``store.ingest``, step 2); ``HashOnlySink`` only hashes. The artifact digest
is the hash of the sorted entries and references.

    frozen = freeze(TraceletArtifact("cfg", "config").add_object({"lr": 0.1}, "hparams"))
    manifest = frozen.to_manifest(HashOnlySink())
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from tracelet_artifacts import detect, digest
from tracelet_artifacts.errors import ArtifactFileError
from tracelet_artifacts.values import ArtifactType, EntryKind, Manifest, ManifestEntry, ModelInfo, Reference


@dataclass(frozen=True)
class FileSpec:
    """A local file the builder will store under ``artifact_path``; ``source`` is its absolute path (kept as
    text: a folder of thousands of files is added without a ``Path`` parse each)."""

    source: str
    artifact_path: str
    description: str | None = None

    @property
    def local_path(self) -> Path:
        """The file, as a Path."""
        return Path(self.source)


@dataclass(frozen=True)
class ObjectSpec:
    """An object already serialised once, at the call; ``data`` is what will be stored."""

    name: str
    artifact_path: str
    serializer: str
    data: bytes
    description: str | None = None
    kind: EntryKind = "object"


class ContentSink(Protocol):
    """Where freezing puts content: each call returns (key, size) of what it took in (``digest.file_key``).
    ``put_file`` is given a file's absolute path as text (``FileSpec.source``).

    A sink may also offer ``head(path) -> bytes | None``: the first bytes of the file ``put_file`` was just
    given, when it read them, so freezing does not open the file again to tell text from binary.
    """

    def put_file(self, path: str) -> tuple[str, int]: ...

    def put_bytes(self, data: bytes) -> tuple[str, int]: ...


class HashOnlySink:
    """A sink that only hashes: freezing without a store."""

    def put_file(self, path: str | os.PathLike[str]) -> tuple[str, int]:
        return digest.file_key(path), os.stat(path).st_size

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        return digest.bytes_key(data), len(data)


def compute_digest(entries: Iterable[ManifestEntry], references: Iterable[Reference]) -> str:
    """The artifact digest: a hash over the sorted entries (path, content key, size) and references."""
    lines = sorted(f"E\t{e.path}\t{e.digest}\t{e.size}" for e in entries)
    lines += sorted(f"R\t{r.uri}\t{r.sha256 or ''}\t{r.size_bytes if r.size_bytes is not None else ''}"
                    for r in references)
    return digest.combine(lines)


@dataclass(frozen=True)
class FrozenArtifact:
    """A builder's content at the moment it was frozen: what will be hashed and stored, nothing read yet.

    Later changes to the builder do not reach it; its metadata has already passed the JSON check.
    """

    name: str
    artifact_type: ArtifactType
    description: str | None = None
    files: tuple[FileSpec, ...] = ()
    objects: tuple[ObjectSpec, ...] = ()
    references: tuple[Reference, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    labels: tuple[str, ...] = ()
    model: ModelInfo | None = None

    @property
    def sources(self) -> tuple[str, ...]:
        """The local files to read (absolute paths), in the order they were added (what a store copies ahead)."""
        return tuple(spec.source for spec in self.files)

    def to_manifest(self, sink: ContentSink | None = None) -> Manifest:
        """Stream every entry through ``sink`` (default: hash only) once, into an immutable Manifest."""
        sink = sink or HashOnlySink()
        known_head = getattr(sink, "head", None)
        entries: list[ManifestEntry] = []
        for spec in self.files:
            try:
                sha, size = sink.put_file(spec.source)
                mime, text = detect.by_name(spec.artifact_path)
                if text is None:
                    head = known_head(spec.source) if known_head else None
                    text = detect.looks_like_text(detect.read_head(spec.source) if head is None else head)
            except FileNotFoundError:
                raise ArtifactFileError(
                    f"{spec.source!r} was removed after add_file(); keep it until log_artifact() returns."
                ) from None
            entries.append(ManifestEntry(spec.artifact_path, size, sha, mime, text, "file", spec.description))
        for obj in self.objects:
            sha, size = sink.put_bytes(obj.data)
            mime, text = detect.by_name(obj.artifact_path)
            text = detect.looks_like_text(obj.data[:detect.SNIFF_BYTES]) if text is None else text
            entries.append(ManifestEntry(obj.artifact_path, size, sha, mime, text, obj.kind, obj.description))
        entries.sort(key=lambda e: e.path)
        return Manifest(
            name=self.name,
            artifact_type=self.artifact_type,
            digest=compute_digest(entries, self.references),
            entries=tuple(entries),
            references=self.references,
            description=self.description,
            metadata=self.metadata,
            labels=self.labels,
            model=self.model,
        )
