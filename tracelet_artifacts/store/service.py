"""The ArtifactStore service layer: one small key → artifact contract with a memory and a local implementation.

Keys are artifact names; ``get`` also takes ``name:v3`` and ``name@alias``. Besides artifacts it keeps
pipeline messages (``save(step_id=..., message=obj)``, ``store/messages.py``). The ``local`` store is built on
the embedded store, opened the one way every entry point opens it (``EmbeddedStore.from_settings``);
``memory`` (``InMemoryArtifactStore``) keeps versions in dicts. Which one, and where, come from
``TraceletSettings`` (``TRACELET_STORE_TYPE``, ``TRACELET_STORE_PATH``), the one reader of the store variables.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from tracelet_artifacts import digest
from tracelet_artifacts.artifact import Manifest, TraceletArtifact
from tracelet_artifacts.errors import (
    ArtifactStoreError,
    ArtifactStoreNotFoundError,
    ConfigurationError,
    InvalidSettingError,
)
from tracelet_artifacts.settings import TraceletSettings
from tracelet_artifacts.settings_errors import OneLineErrors
from tracelet_artifacts.store import messages
from tracelet_artifacts.store.catalog import LATEST, parse_version
from tracelet_artifacts.store.embedded import EmbeddedStore
from tracelet_artifacts.values import ArtifactVersion

__all__ = [
    "ArtifactStore",
    "ArtifactStoreConfiguration",
    "ArtifactStoreError",
    "ArtifactStoreFactory",
    "ArtifactStoreNotFoundError",
    "InMemoryArtifactStore",
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


_MISSING: Any = object()


def _one_key(key: str | None, step_id: str | None, call: str) -> str:
    if (key is None) == (step_id is None):
        raise ArtifactStoreError(f"{call}() takes a key (an artifact name) or step_id=, one of the two.")
    return key if key is not None else step_id  # type: ignore[return-value]


class ArtifactStore(ABC):
    """Save, get, check and delete artifacts (and pipeline messages) by key.

    Example::

        store = ArtifactStoreFactory(ArtifactStoreConfiguration(backend="memory")).create()
        store.save("cfg", TraceletArtifact("cfg", "config").add_object({"a": 1}, "cfg"))
        store.get("cfg:v1").manifest.entries            # an ArtifactVersion
        store.save(step_id="extract", message={"rows": 3})
        store.get(step_id="extract")                     # {"rows": 3}
    """

    def __init__(self) -> None:
        self._trusted: set[str] = set()  # digests of pickled messages this store wrote

    def save(self, key: str | None = None, artifact: Any = None, *, step_id: str | None = None,
             message: Any = _MISSING) -> ArtifactVersion:
        """Store a TraceletArtifact (or Manifest) under its name, or any JSON-able or picklable object as
        ``message=`` under a step id; a new version unless the content is unchanged."""
        name = _one_key(key, step_id, "save")
        if message is _MISSING and not isinstance(artifact, (TraceletArtifact, Manifest)):
            if artifact is None:
                raise ArtifactStoreError("save() needs an artifact (TraceletArtifact or Manifest) or message=obj.")
            message = artifact  # a plain object (a dict, a dataclass): stored as a message
        elif message is not _MISSING and artifact is not None:
            raise ArtifactStoreError("save() takes an artifact or message=, not both.")
        if message is _MISSING:
            return self._save(_checked_key(name, artifact), artifact)
        record = self._save(_checked_key(name, None), messages.message_artifact(name, message))
        messages.remember(record, self._trusted)
        return record

    def get(self, key: str | None = None, *, step_id: str | None = None, allow_pickle: bool = False) -> Any:
        """What ``key`` (``name``, ``name:v3``, ``name@alias``) or ``step_id`` names: the message object for a
        saved message, else its ArtifactVersion; raises ArtifactStoreNotFoundError. A pickled message
        written by another process loads only with ``allow_pickle=True``."""
        record = self.version(_one_key(key, step_id, "get"))
        if messages.is_message(record):
            return messages.read_message(record, self._read, self._trusted, allow_pickle=allow_pickle)
        return record

    def version(self, key: str) -> ArtifactVersion:
        """The ArtifactVersion ``key`` names (a message's too); raises ArtifactStoreNotFoundError."""
        return self._get(key)

    def exists(self, key: str | None = None, *, step_id: str | None = None) -> bool:
        """Whether ``key`` (or ``step_id``) names a stored version."""
        try:
            self._get(_one_key(key, step_id, "exists"))
        except ArtifactStoreNotFoundError:
            return False
        return True

    def delete(self, key: str | None = None, *, step_id: str | None = None) -> None:
        """Remove the artifact ``key`` (or ``step_id``) names, all its versions; raises ArtifactStoreNotFoundError."""
        self._delete(parse_key(_one_key(key, step_id, "delete"))[0])

    @abstractmethod
    def clear(self) -> None:
        """Remove every artifact."""

    @abstractmethod
    def _save(self, name: str, artifact: TraceletArtifact | Manifest) -> ArtifactVersion: ...

    @abstractmethod
    def _get(self, key: str) -> ArtifactVersion: ...

    @abstractmethod
    def _read(self, sha256: str) -> bytes: ...

    @abstractmethod
    def _delete(self, name: str) -> None: ...


def _checked_key(key: str, artifact: TraceletArtifact | Manifest | None) -> str:
    name, version = parse_key(key)
    if version != LATEST or (artifact is not None and name != artifact.name):
        own = f" {artifact.name!r}" if artifact is not None else ""
        raise ArtifactStoreError(f"save() key {key!r} must be the artifact's own name{own} (versions are assigned).")
    return name


class LocalArtifactStore(ArtifactStore):
    """The embedded store behind the service contract: blobs + SQLite under ``path``, or the team's
    store when ``TRACELET_CATALOG_URL`` / ``TRACELET_BLOB_URL`` are set (``path`` then holds the cache)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.embedded = EmbeddedStore.from_settings(root=path)

    def _save(self, name: str, artifact: TraceletArtifact | Manifest) -> ArtifactVersion:
        return self.embedded.log(artifact)

    def _get(self, key: str) -> ArtifactVersion:
        name, version = parse_key(key)
        return self.embedded.get(name, version)

    def _read(self, sha256: str) -> bytes:
        return self.embedded.blob_path(sha256).read_bytes()

    def _delete(self, name: str) -> None:
        self.embedded.catalog.delete(name)

    def clear(self) -> None:
        self.embedded.catalog.clear()


class MemoryArtifactStore(ArtifactStore):
    """Versions (and the bytes of their objects) kept in dicts behind a lock; same rules as the local store
    (dedup, immutable, latest). Thread-safe."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._versions: dict[str, list[ArtifactVersion]] = {}
        self._aliases: dict[str, dict[str, int]] = {}
        self._blobs: dict[str, bytes] = {}

    def _save(self, name: str, artifact: TraceletArtifact | Manifest) -> ArtifactVersion:
        manifest = artifact.freeze() if isinstance(artifact, TraceletArtifact) else artifact
        kept = {digest.bytes_key(o.data): o.data for o in artifact.objects} \
            if isinstance(artifact, TraceletArtifact) else {}
        with self._lock:
            self._blobs.update(kept)
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

    def _get(self, key: str) -> ArtifactVersion:
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

    def _read(self, sha256: str) -> bytes:
        with self._lock:
            if sha256 not in self._blobs:
                raise ArtifactStoreNotFoundError(f"The memory store holds no content {sha256[:12]}… (only objects "
                                                 "saved with it; files stay where they are).")
            return self._blobs[sha256]

    def _delete(self, name: str) -> None:
        with self._lock:
            if self._versions.pop(name, None) is None:
                raise ArtifactStoreNotFoundError(f"No artifact named {name!r} in the memory store.")
            self._aliases.pop(name, None)

    def clear(self) -> None:
        with self._lock:
            self._versions.clear()
            self._aliases.clear()
            self._blobs.clear()


#: The waivern-artifact-store name of the memory store.
InMemoryArtifactStore = MemoryArtifactStore

#: Every store the configuration can name: backend name → class. The one place that maps them.
BACKENDS: dict[str, type[ArtifactStore]] = {"local": LocalArtifactStore, "memory": MemoryArtifactStore}
#: The document's variable, read when TRACELET_STORE_TYPE is not set.
DOCUMENT_VARIABLE = "ARTIFACT_STORE_BACKEND"


BackendName = Literal["local", "memory"]


def _default_backend() -> BackendName:
    """TRACELET_STORE_TYPE (or ``.env``), else ARTIFACT_STORE_BACKEND, else ``local``."""
    settings = TraceletSettings()
    fallback = os.environ.get(DOCUMENT_VARIABLE)
    if "store_type" in settings.model_fields_set or not fallback:
        return settings.store_type
    if fallback not in ("local", "memory"):
        raise InvalidSettingError(f"{DOCUMENT_VARIABLE}={fallback!r} is not valid: expected one of "
                                  f"{', '.join(map(repr, BACKENDS))}.", setting=DOCUMENT_VARIABLE, value=fallback,
                                  accepted=", ".join(BACKENDS))
    return "memory" if fallback == "memory" else "local"


class ArtifactStoreConfiguration(OneLineErrors, BaseModel):
    """Which store to build (``type``, also spelt ``backend``: local|memory) and where (``path``).

    Fields not given come from ``TraceletSettings`` (``TRACELET_STORE_TYPE``, ``TRACELET_STORE_PATH``, the
    ``.env`` file, the defaults; ``ARTIFACT_STORE_BACKEND`` too), so explicit arguments beat the environment,
    which beats the defaults. An unknown backend or field is refused here, naming the known ones.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: BackendName = Field(default_factory=_default_backend,
                                             validation_alias=AliasChoices("type", "backend"))
    path: Path = Field(default_factory=lambda: TraceletSettings().store_path)

    @property
    def backend(self) -> str:
        """The waivern-artifact-store name of ``type``."""
        return self.type

    @classmethod
    def from_properties(cls, properties: Mapping[str, Any]) -> ArtifactStoreConfiguration:
        """A configuration from a mapping (``{"type": "memory"}``); what is not in it is read as above."""
        return cls(**dict(properties))


class _ClassOrInstance:
    """A method callable on the class with a configuration (``Factory.create(config)``) and on an instance
    built with one (``Factory(config).create()``)."""

    def __init__(self, func: Callable[..., ArtifactStore]) -> None:
        self.func = func
        self.__doc__ = func.__doc__

    def __get__(self, obj: ArtifactStoreFactory | None, owner: type) -> Callable[..., ArtifactStore]:
        config = obj.config if obj is not None else None
        return functools.partial(self.func, config)


def _create(default: ArtifactStoreConfiguration | None, config: ArtifactStoreConfiguration | None = None
            ) -> ArtifactStore:
    """The store ``config`` names (else the factory's configuration, else one read from the environment now)."""
    chosen = config or default or ArtifactStoreConfiguration()
    store_class = BACKENDS.get(chosen.type)
    if store_class is None:
        raise ConfigurationError(f"Unknown store backend {chosen.type!r}; known: {', '.join(BACKENDS)}.")
    return LocalArtifactStore(chosen.path) if store_class is LocalArtifactStore else store_class()


class ArtifactStoreFactory:
    """Builds an ArtifactStore from configuration; the only place that maps backends to classes.

    Example::

        ArtifactStoreFactory.create(ArtifactStoreConfiguration(type="memory"))     # on the class
        ArtifactStoreFactory(ArtifactStoreConfiguration(backend="memory")).create()  # as a DI factory
        ArtifactStoreFactory().create()           # TRACELET_STORE_TYPE / ARTIFACT_STORE_BACKEND, else local
    """

    def __init__(self, config: ArtifactStoreConfiguration | None = None) -> None:
        self.config = config

    create = _ClassOrInstance(_create)

    def can_create(self) -> bool:
        """Whether ``create()`` would work with this configuration (an invalid environment says False)."""
        try:
            self.config or ArtifactStoreConfiguration()
        except ConfigurationError:
            return False
        return True
