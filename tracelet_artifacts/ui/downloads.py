"""Serving a version's content: one entry (inline for safe images, as an attachment otherwise) and the
whole version as a zip written while it is sent.

An entry is found by its exact path in the version's manifest and served from the blob named by its
digest, so no request can name a file outside the store.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

from tracelet_artifacts.artifact import ManifestEntry, validate_artifact_path
from tracelet_artifacts.digest import CHUNK_SIZE
from tracelet_artifacts.errors import ArtifactStoreNotFoundError
from tracelet_artifacts.store.catalog import ArtifactVersion


def find_entry(record: ArtifactVersion, path: str | None) -> ManifestEntry:
    """The entry of ``record`` stored under exactly ``path``; ArtifactStoreNotFoundError otherwise."""
    for entry in record.manifest.entries:
        if path is not None and entry.path == path:
            return entry
    raise ArtifactStoreNotFoundError(f"{record.ref} has no entry {path!r}.")


def download_name(path: str) -> str:
    """The file name a browser saves an entry as: its last path segment."""
    return PurePosixPath(path).name or "download"


class _Chunks:
    """A write-only, unseekable file for zipfile: what was written since the last ``take()``."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


def zip_stream(store: Any, record: ArtifactVersion) -> Iterator[bytes]:
    """The version's entries as a zip (under a folder named ``name-vN``), produced a chunk at a time."""
    folder = f"{record.name.replace('/', '_')}-{record.label}"
    sink = _Chunks()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for entry in record.manifest.entries:
            member = f"{folder}/{validate_artifact_path(entry.path)}"
            with store.blob_path(entry.digest).open("rb") as source, archive.open(member, "w", force_zip64=True) as out:
                while chunk := source.read(CHUNK_SIZE):
                    out.write(chunk)
                    yield sink.take()
            yield sink.take()
    yield sink.take()
