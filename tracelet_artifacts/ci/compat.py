"""The CI artifact handling system's names, kept so its users' code runs as written: the process-wide
handler and retriever (``initialize_artifact_systems``, ``get_artifact_handler``, ``get_artifact_retriever``)
and ``CIProviderInterface``, the original name of ``CIProvider``. Everything here delegates to the
bridge's own classes; nothing else in the package reads these globals.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tracelet_artifacts.ci.handler import ArtifactHandler
from tracelet_artifacts.ci.providers.base import CIProvider
from tracelet_artifacts.ci.providers.factory import CIProviderFactory
from tracelet_artifacts.ci.retriever import ArtifactRetriever
from tracelet_artifacts.errors import ConfigurationError

__all__ = [
    "ArtifactSystems",
    "CIProviderInterface",
    "get_artifact_handler",
    "get_artifact_retriever",
    "initialize_artifact_systems",
]

CIProviderInterface = CIProvider
"""The provider base class by the original design's name."""

DEFAULT_STORAGE_DIR = "./artifacts"
DEFAULT_CACHE_DIR = "./artifact_cache"

_lock = threading.Lock()
# The current handler and retriever (the process-wide singletons of the original design).
_CURRENT: dict[str, Any] = {"handler": None, "retriever": None}
_FOLDER = {"handler": "storage_dir", "retriever": "cache_dir"}


class ArtifactSystems(Mapping[str, CIProvider]):
    """What ``initialize_artifact_systems`` returns: the providers by name (a read-only mapping), plus the
    ``handler`` and ``retriever`` they were registered with. Awaiting it gives the same object back, so
    ``providers = await initialize_artifact_systems(...)`` works as the original design wrote it.
    """

    def __init__(self, providers: Mapping[str, CIProvider], handler: ArtifactHandler,
                 retriever: ArtifactRetriever) -> None:
        self._providers = dict(providers)
        self.handler = handler
        self.retriever = retriever

    def __getitem__(self, name: str) -> CIProvider:
        try:
            return self._providers[name]
        except KeyError:
            raise KeyError(f"no CI provider named {name!r}; configured: {', '.join(sorted(self._providers))}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._providers)

    def __len__(self) -> int:
        return len(self._providers)

    def __await__(self) -> Generator[Any, None, ArtifactSystems]:
        async def ready() -> ArtifactSystems:
            return self

        return ready().__await__()

    def __repr__(self) -> str:
        return (f"ArtifactSystems(providers={sorted(self._providers)}, handler={self.handler!r}, "
                f"retriever={self.retriever!r})")


def initialize_artifact_systems(
    provider_configs: Mapping[str, Mapping[str, Any]] | Sequence[Mapping[str, Any]],
    artifact_handler_storage_dir: Path | str = DEFAULT_STORAGE_DIR,
    artifact_retriever_cache_dir: Path | str = DEFAULT_CACHE_DIR,
    *,
    max_cache_size_mb: float = 1024,
    max_cache_age_days: float = 30,
    **provider_overrides: Any,
) -> ArtifactSystems:
    """Build one provider per config, register each with a new handler and retriever, make those the
    current ones, and return the providers by name (awaitable, as in the original design).

    ``provider_configs`` is ``{name: {<options>}}`` (the name is the provider type unless the options say
    ``"type"``) or a list of configs with ``name``. ``provider_overrides`` (e.g. ``transport=``) go to every
    provider. A config that cannot be built raises ConfigurationError; nothing is made current then.

    >>> providers = await initialize_artifact_systems(  # doctest: +SKIP
    ...     provider_configs={"github": {"token": "…", "repository": "owner/repo"}},
    ...     artifact_handler_storage_dir="./artifacts", artifact_retriever_cache_dir="./artifact_cache")
    >>> providers["github"], get_artifact_retriever()  # doctest: +SKIP
    """
    if isinstance(provider_configs, Mapping):
        named = [(str(name), dict(cfg)) for name, cfg in provider_configs.items()]
    else:
        named = [(str(cfg.get("name") or cfg.get("type")), dict(cfg)) for cfg in provider_configs]
    providers = {name: CIProviderFactory.create({"type": name, **cfg}, **provider_overrides) for name, cfg in named}
    handler = ArtifactHandler(Path(artifact_handler_storage_dir))
    retriever = ArtifactRetriever(artifact_retriever_cache_dir, max_cache_size_mb, max_cache_age_days)
    for name, provider in providers.items():
        handler.register_provider(name, provider)
        retriever.register_provider(name, provider)
    with _lock:
        previous = _CURRENT["retriever"]
        _CURRENT.update(handler=handler, retriever=retriever)
    if previous is not None:
        previous.close()
    return ArtifactSystems(providers, handler, retriever)


def get_artifact_handler(storage_dir: Path | str | None = None) -> ArtifactHandler:
    """The current handler; with ``storage_dir`` and none yet, one is created there and made current."""
    handler: ArtifactHandler = _current("handler", storage_dir, lambda folder: ArtifactHandler(Path(folder)))
    return handler


def get_artifact_retriever(cache_dir: Path | str | None = None) -> ArtifactRetriever:
    """The current retriever; with ``cache_dir`` and none yet, one is created there and made current."""
    retriever: ArtifactRetriever = _current("retriever", cache_dir, ArtifactRetriever)
    return retriever


def _current(what: str, folder: Path | str | None, build: Callable[[Path | str], Any]) -> Any:
    """The current handler or retriever, built at ``folder`` when there is none yet. Asking for it at
    another folder is a mistake, not a silent switch."""
    with _lock:
        if _CURRENT[what] is None and folder is not None:
            _CURRENT[what] = build(folder)
        current = _CURRENT[what]
    if current is None:
        raise ConfigurationError(
            f"CI artifact systems are not initialised; call initialize_artifact_systems() or pass the {what}'s folder."
        )
    place = getattr(current, _FOLDER[what])
    if folder is not None and Path(folder).resolve() != Path(place).resolve():
        raise ConfigurationError(
            f"the current {what} works in {place}, not {folder}; call initialize_artifact_systems() to change it."
        )
    return current
