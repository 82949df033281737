"""The only place that knows the backend adapters: name → ("module:Class", SDK module, install hint).

Adapter classes are imported the first time they are asked for and cached. Third-party adapters arrive
through the ``tracelet_artifacts.backends`` entry-point group and never replace a built-in name.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from tracelet_artifacts.errors import BackendNotInstalledError, ConfigurationError, UnknownBackendError

if TYPE_CHECKING:
    from tracelet_artifacts.backends.base import BackendAdapter

log = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "tracelet_artifacts.backends"


@dataclass(frozen=True)
class AdapterSpec:
    """Where an adapter lives, which SDK it needs, and how to install that SDK."""

    target: str
    sdk: str | None = None
    install: str | None = None


_BUILTIN: dict[str, AdapterSpec] = {
    "local": AdapterSpec("tracelet_artifacts.backends.local:LocalAdapter"),
    "mlflow": AdapterSpec("tracelet_artifacts.backends.mlflow:MlflowAdapter", "mlflow",
                          "pip install 'tracelet-artifacts[mlflow]'"),
    "wandb": AdapterSpec("tracelet_artifacts.backends.wandb:WandbAdapter", "wandb",
                         "pip install 'tracelet-artifacts[wandb]'"),
    "clearml": AdapterSpec("tracelet_artifacts.backends.clearml:ClearmlAdapter", "clearml",
                           "pip install 'tracelet-artifacts[clearml]'"),
    "aim": AdapterSpec("tracelet_artifacts.backends.aim:AimAdapter", "aim", "pip install 'tracelet-artifacts[aim]'"),
}
_registry: dict[str, AdapterSpec] = dict(_BUILTIN)
_classes: dict[str, type[BackendAdapter]] = {}
_lock = threading.Lock()
_entry_points_loaded = False


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _registry:
            log.warning("Ignoring entry point %r: the backend name %r is already registered.", ep.value, ep.name)
            continue
        _registry[ep.name] = AdapterSpec(ep.value)


def known() -> Mapping[str, AdapterSpec]:
    """A read-only view of every registered backend name."""
    with _lock:
        _load_entry_points()
        return MappingProxyType(dict(_registry))


def register(name: str, target: str, *, sdk: str | None = None, install: str | None = None,
             clobber: bool = False) -> None:
    """Register an adapter (``"package.module:Class"``) under ``name``; never replaces one unless ``clobber``."""
    with _lock:
        _load_entry_points()
        if name in _registry and not clobber:
            raise ConfigurationError(f"A backend named {name!r} is already registered; pass clobber=True to replace.")
        _registry[name] = AdapterSpec(target, sdk, install)
        _classes.pop(name, None)


def _spec(name: str) -> AdapterSpec:
    spec = known().get(name)
    if spec is None:
        raise UnknownBackendError(f"Unknown backend {name!r}; known backends: {', '.join(sorted(known()))}.")
    return spec


def is_installed(name: str) -> bool:
    """Whether the backend's SDK can be imported (checked without importing it)."""
    spec = _spec(name)
    return spec.sdk is None or importlib.util.find_spec(spec.sdk) is not None


def adapter_class(name: str) -> type[BackendAdapter]:
    """The adapter class for ``name``; raises UnknownBackendError or BackendNotInstalledError."""
    with _lock:
        cached = _classes.get(name)
    if cached is not None:
        return cached
    spec = _spec(name)
    if not is_installed(name):
        raise BackendNotInstalledError(
            f"The {name} backend needs the {spec.sdk} package: {spec.install or f'pip install {spec.sdk}'}"
        )
    module_name, _, class_name = spec.target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        hint = spec.install or "check the adapter's package"
        raise BackendNotInstalledError(f"Cannot load the {name} adapter ({spec.target}): {exc}; {hint}.") from exc
    with _lock:
        _classes[name] = cls
    return cls


def create(name: str, options: Mapping[str, Any] | None = None) -> BackendAdapter:
    """A new adapter instance for ``name`` with its options."""
    return adapter_class(name)(options)
