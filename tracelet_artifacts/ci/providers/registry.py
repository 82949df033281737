"""The only place that knows the CI providers: name → ("module:Class", install hint).

Provider classes are imported the first time they are asked for and cached. Third-party providers arrive
through the ``tracelet_artifacts.ci_providers`` entry-point group, stored as strings until used, and never
replace a built-in name. The factory, the CLI and the retriever all ask this registry.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from tracelet_artifacts.errors import ConfigurationError

if TYPE_CHECKING:
    from tracelet_artifacts.ci.providers.base import CIProvider

log = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "tracelet_artifacts.ci_providers"
CI_EXTRA = "pip install 'tracelet-artifacts[ci]'"


@dataclass(frozen=True)
class ProviderSpec:
    """Where a provider class lives and how to install what it needs."""

    target: str
    install: str | None = CI_EXTRA


_BUILTIN: dict[str, ProviderSpec] = {
    "github": ProviderSpec("tracelet_artifacts.ci.providers.github:GitHubActionsProvider"),
    "gitlab": ProviderSpec("tracelet_artifacts.ci.providers.gitlab:GitLabProvider"),
    "jenkins": ProviderSpec("tracelet_artifacts.ci.providers.jenkins:JenkinsProvider"),
    "taskcluster": ProviderSpec("tracelet_artifacts.ci.providers.taskcluster:TaskclusterProvider"),
}
_registry: dict[str, ProviderSpec] = dict(_BUILTIN)
_classes: dict[str, type[CIProvider]] = {}
_lock = threading.RLock()
_entry_points_loaded = False


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _registry:
            log.warning("Ignoring entry point %r: the CI provider name %r is already registered.", ep.value, ep.name)
            continue
        _registry[ep.name] = ProviderSpec(ep.value, install=None)


def known() -> Mapping[str, ProviderSpec]:
    """A read-only view of every registered provider name (built-ins, entry points, ``register`` calls)."""
    with _lock:
        _load_entry_points()
        return MappingProxyType(dict(_registry))


def register(name: str, target: str | type[CIProvider], *, install: str | None = None, clobber: bool = False) -> None:
    """Register a provider (``"package.module:Class"`` or the class) under ``name``; an existing name is
    only replaced with ``clobber=True``."""
    with _lock:
        _load_entry_points()
        if name in _registry and not clobber:
            raise ConfigurationError(
                f"CI provider type {name!r} is already registered; pass clobber=True to replace it."
            )
        _classes.pop(name, None)
        if isinstance(target, type):
            _classes[name] = target
            target = f"{target.__module__}:{target.__qualname__}"
        _registry[name] = ProviderSpec(target, install)


def unregister(name: str) -> None:
    """Remove a name added by ``register`` or an entry point; built-ins stay."""
    with _lock:
        if name in _BUILTIN:
            raise ConfigurationError(f"{name!r} is a built-in CI provider and cannot be removed.")
        _registry.pop(name, None)
        _classes.pop(name, None)


def _spec(name: str) -> ProviderSpec:
    spec = known().get(name)
    if spec is None:
        raise ConfigurationError(f"unknown CI provider type {name!r}; known types: {', '.join(sorted(known()))}.")
    return spec


def provider_class(name: str) -> type[CIProvider]:
    """The provider class for ``name``, imported on first use; ConfigurationError names what to install."""
    with _lock:
        cached = _classes.get(name)
    if cached is not None:
        return cached
    spec = _spec(name)
    module_name, _, class_name = spec.target.partition(":")
    try:
        cls: type[CIProvider] = getattr(importlib.import_module(module_name), class_name)
    except ImportError as exc:
        hint = spec.install or "install the package that provides it"
        raise ConfigurationError(
            f"CI provider {name!r} needs packages that are missing ({exc.name}); install them with: {hint}"
        ) from exc
    except AttributeError as exc:
        raise ConfigurationError(f"cannot load CI provider {name!r} from {spec.target}: {exc}") from exc
    with _lock:
        _classes[name] = cls
    return cls
