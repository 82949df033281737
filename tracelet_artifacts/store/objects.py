"""Objects logged with ``add_object`` (and the service store's messages) read back from the store: the entry
found by its name with or without its suffix, its bytes checked against their digest before anything is
deserialised, pickles refused unless the caller allows them (``serialize.deserialize_object``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

from tracelet_artifacts import digest, serialize
from tracelet_artifacts.errors import ArtifactStoreNotFoundError, IntegrityError, SerializationError
from tracelet_artifacts.values import ArtifactVersion
from tracelet_artifacts.values.manifest import ManifestEntry

__all__ = ["load_object", "verified_bytes"]


def verified_bytes(entry: ManifestEntry, read: Callable[[str], bytes], what: str, again: str) -> bytes:
    """The stored bytes of ``entry``; IntegrityError (``what`` no longer matches, ``again``) when they changed."""
    data = read(entry.digest)
    if digest.bytes_key(data, entry.algorithm) != entry.digest:
        raise IntegrityError(f"{what} no longer matches its digest; {again}.")
    return data


def load_object(record: ArtifactVersion, object_name: str, read: Callable[[str], bytes], *,
                allow_pickle: bool) -> Any:
    """The object ``object_name`` (``"hparams"`` or ``"hparams.json"``) of ``record``."""
    entry = next((e for e in record.manifest.entries
                  if object_name in (e.path, PurePosixPath(e.path).with_suffix("").as_posix())), None)
    if entry is None:
        held = [e.path for e in record.manifest.entries][:10]
        raise ArtifactStoreNotFoundError(f"{record.ref} holds no object {object_name!r}; it holds {held}.")
    serializer = serialize.SERIALIZER_FOR_SUFFIX.get(PurePosixPath(entry.path).suffix.lower())
    what = f"{record.ref}/{entry.path}"
    if serializer is None:
        raise SerializationError(f"{what} is not a json, yaml, pickle or torch object; "
                                 "use fetch_artifact() to get the file.")
    data = verified_bytes(entry, read, what, "log it again")
    return serialize.deserialize_object(data, serializer, allow_pickle=allow_pickle, what=what)
