"""The ArtifactStore service layer: one small key → artifact contract with a memory and a local implementation.

Keys are artifact names; ``get`` also takes ``name:v3`` and ``name@alias``. The ``local`` store is built on
the embedded store, opened the one way every entry point opens it (``EmbeddedStore.from_settings``);
``memory`` keeps versions in a dict for tests. Which one, and where, come from ``TraceletSettings``
(``TRACELET_STORE_TYPE``, ``TRACELET_STORE_PATH``), the one reader of the store variables.
"""

from __future__ import annotations

import json
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import replace
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tracelet_artifacts.artifact import Manifest, TraceletArtifact
from tracelet_artifacts.errors import (
    ArtifactStoreError,
    ArtifactStoreNotFoundError,
    ConfigurationError,
)
from tracelet_artifacts.settings import TraceletSettings
from tracelet_artifacts.store.catalog import LATEST, parse_version
from tracelet_artifacts.store.embedded import EmbeddedStore
from tracelet_artifacts.values import ArtifactVersion

__all__ = [
    "ArtifactStore",
    "ArtifactStoreConfiguration",
    "ArtifactStoreError",
    "ArtifactStoreFactory",
    "ArtifactStoreNotFoundError",
    "LocalArtifactStore",
    "MemoryArtifactStore",
    "parse_key",
]


def parse_key(key: str) -> tuple[str, str]:
    """``name`` → (name, "latest"); ``name:v3`` → (name, "v3"); ``name@best`` → (name, "best").

    A key with nothing after ``:`` or ``@``, or nothing before, is refused (never read as ``latest``).
    """
    if not isinstance(key, str) or not key:
        raise ArtifactStoreError("A store key must be an artifact name such as 'classifier' or 'classifier:v2'.")
    name, sep, rest = key.partition("@") if "@" in key else key.partition(":")
    if sep and not rest:
        what = "alias" if sep == "@" else "version"
        example = name or "classifier"
        raise ArtifactStoreError(f"{key!r} has an empty {what}; write NAME, NAME:v3 or NAME@alias "
                                 f"(e.g. {example}:v1 or {example}@latest).")
    if not name:
        raise ArtifactStoreError(f"{key!r} has no artifact name; write NAME, NAME:v3 or NAME@alias.")
    return name, rest or LATEST


class ArtifactStore(ABC):
    """Save, get, check and delete artifacts by key.

    Example::

        store = ArtifactStoreFactory.create(ArtifactStoreConfiguration(type="memory"))
        store.save("cfg", TraceletArtifact("cfg", "config").add_object({"a": 1}, "cfg"))
        store.get("cfg:v1").manifest.entries
    """

    @abstractmethod
    def save(self, key: str, artifact: TraceletArtifact | Manifest) -> ArtifactVersion:
        """Store ``artifact`` under the name ``key`` (a new version unless the content is unchanged)."""

    @abstractmethod
    def get(self, key: str) -> ArtifactVersion:
        """The version named by ``key``; raises ArtifactStoreNotFoundError."""

    def exists(self, key: str) -> bool:
        """Whether ``key`` names a stored version."""
        try:
            self.get(key)
        except ArtifactStoreNotFoundError:
            return False
        return True

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the artifact ``key`` names (all its versions); raises ArtifactStoreNotFoundError."""

    @abstractmethod
    def clear(self) -> None:
        """Remove every artifact."""


def _freeze_for(key: str, artifact: TraceletArtifact | Manifest) -> TraceletArtifact | Manifest:
    name, version = parse_key(key)
    if version != LATEST or name != artifact.name:
        raise ArtifactStoreError(
            f"save() key {key!r} must be the artifact's own name {artifact.name!r} (versions are assigned)."
        )
    return artifact


class LocalArtifactStore(ArtifactStore):
    """The embedded store behind the service contract: blobs + SQLite under ``path``, or the team's
    store when ``TRACELET_CATALOG_URL`` / ``TRACELET_BLOB_URL`` are set (``path`` then holds the cache)."""

    def __init__(self, path: Path) -> None:
        self.embedded = EmbeddedStore.from_settings(root=path)

    def save(self, key: str, artifact: TraceletArtifact | Manifest) -> ArtifactVersion:
        return self.embedded.log(_freeze_for(key, artifact))

    def get(self, key: str) -> ArtifactVersion:
        name, version = parse_key(key)
        return self.embedded.get(name, version)

    def delete(self, key: str) -> None:
        self.embedded.catalog.delete(parse_key(key)[0])

    def clear(self) -> None:
        self.embedded.catalog.clear()


class MemoryArtifactStore(ArtifactStore):
    """Versions kept in a dict behind a lock; same rules as the local store (dedup, immutable, latest)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._versions: dict[str, list[ArtifactVersion]] = {}
        self._aliases: dict[str, dict[str, int]] = {}

    def save(self, key: str, artifact: TraceletArtifact | Manifest) -> ArtifactVersion:
        manifest = _freeze_for(key, artifact)
        manifest = manifest.freeze() if isinstance(manifest, TraceletArtifact) else manifest
        with self._lock:
            versions = self._versions.setdefault(manifest.name, [])
            same = [v for v in versions if v.digest == manifest.digest]
            if same:
                number, created = same[-1].version, False
            else:
                number, created = len(versions) + 1, True
                versions.append(self._record(manifest, number))
            self._aliases.setdefault(manifest.name, {})[LATEST] = number
            return self._with_aliases(manifest.name, number, created)

    @staticmethod
    def _record(manifest: Manifest, number: int) -> ArtifactVersion:
        return ArtifactVersion(manifest.name, number, manifest.digest, manifest.artifact_type, manifest.size_bytes,
                               time.time(), (), manifest.description, None, True,
                               json.dumps(manifest.to_dict(), sort_keys=True))

    def _with_aliases(self, name: str, number: int, created: bool = True) -> ArtifactVersion:
        aliases = tuple(sorted(a for a, n in self._aliases.get(name, {}).items() if n == number))
        return replace(self._versions[name][number - 1], aliases=aliases, created=created)

    def get(self, key: str) -> ArtifactVersion:
        name, version = parse_key(key)
        with self._lock:
            if name not in self._versions:
                raise ArtifactStoreNotFoundError(f"No artifact named {name!r} in the memory store.")
            try:
                number = parse_version(version)
            except ArtifactStoreError:
                number = self._aliases[name].get(version, 0)
            if not 0 < number <= len(self._versions[name]):
                raise ArtifactStoreNotFoundError(f"{name!r} has no version or alias {version!r}.")
            return self._with_aliases(name, number)

    def delete(self, key: str) -> None:
        name = parse_key(key)[0]
        with self._lock:
            if self._versions.pop(name, None) is None:
                raise ArtifactStoreNotFoundError(f"No artifact named {name!r} in the memory store.")
            self._aliases.pop(name, None)

    def clear(self) -> None:
        with self._lock:
            self._versions.clear()
            self._aliases.clear()


class ArtifactStoreConfiguration(BaseModel):
    """Which store to build (``type``: local|memory) and where (``path``).

    Fields not given come from ``TraceletSettings`` (``TRACELET_STORE_TYPE``, ``TRACELET_STORE_PATH``, the
    ``.env`` file, the defaults), so explicit arguments beat the environment, which beats the defaults.
    """

    model_config = ConfigDict(extra="ignore")

    type: Literal["local", "memory"] = Field(default_factory=lambda: TraceletSettings().store_type)
    path: Path = Field(default_factory=lambda: TraceletSettings().store_path)


class ArtifactStoreFactory:
    """Builds an ArtifactStore from configuration; the only place that maps store types to classes."""

    @staticmethod
    def create(config: ArtifactStoreConfiguration | None = None) -> ArtifactStore:
        config = config or ArtifactStoreConfiguration()
        if config.type == "memory":
            return MemoryArtifactStore()
        if config.type == "local":
            return LocalArtifactStore(config.path)
        raise ConfigurationError(f"Unknown store type {config.type!r}; use 'local' or 'memory'.")

