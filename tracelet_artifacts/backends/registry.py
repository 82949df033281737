"""The only place that knows the backend adapters: name → ("module:Class", SDK module, install hint).

Adapter classes are imported the first time they are asked for and cached. Third-party adapters arrive
through the ``tracelet_artifacts.backends`` entry-point group and never replace a built-in name. The
registry itself is ``plugins.PluginRegistry``, the same one the CI providers use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tracelet_artifacts.errors import BackendNotInstalledError, TraceletError, UnknownBackendError
from tracelet_artifacts.plugins import PluginRegistry, PluginSpec

if TYPE_CHECKING:
    from tracelet_artifacts.backends.base import BackendAdapter

ENTRY_POINT_GROUP = "tracelet_artifacts.backends"
AdapterSpec = PluginSpec  # the name this module has always used for a registered adapter

_BUILTIN: dict[str, PluginSpec] = {
    "local": PluginSpec("tracelet_artifacts.backends.local:LocalAdapter"),
    "mlflow": PluginSpec("tracelet_artifacts.backends.mlflow:MlflowAdapter", "mlflow",
                         "pip install 'tracelet-artifacts[mlflow]'"),
    "wandb": PluginSpec("tracelet_artifacts.backends.wandb:WandbAdapter", "wandb",
                        "pip install 'tracelet-artifacts[wandb]'"),
    "clearml": PluginSpec("tracelet_artifacts.backends.clearml:ClearmlAdapter", "clearml",
                          "pip install 'tracelet-artifacts[clearml]'"),
    "aim": PluginSpec("tracelet_artifacts.backends.aim:AimAdapter", "aim", "pip install 'tracelet-artifacts[aim]'"),
}


def _unknown(name: str, known: list[str]) -> TraceletError:
    return UnknownBackendError(f"Unknown backend {name!r}; known backends: {', '.join(known)}.")


def _missing(name: str, spec: PluginSpec, exc: Exception | None) -> TraceletError:
    if exc is None:
        return BackendNotInstalledError(
            f"The {name} backend needs the {spec.sdk} package: {spec.install or f'pip install {spec.sdk}'}")
    hint = spec.install or "check the adapter's package"
    return BackendNotInstalledError(f"Cannot load the {name} adapter ({spec.target}): {exc}; {hint}.")


_plugins: PluginRegistry[BackendAdapter] = PluginRegistry("backend", ENTRY_POINT_GROUP, _BUILTIN,
                                                          unknown=_unknown, missing=_missing)


def known() -> Mapping[str, PluginSpec]:
    """A read-only view of every registered backend name."""
    return _plugins.known()


def register(name: str, target: str, *, sdk: str | None = None, install: str | None = None,
             clobber: bool = False) -> None:
    """Register an adapter (``"package.module:Class"``) under ``name``; never replaces one unless ``clobber``."""
    _plugins.register(name, target, sdk=sdk, install=install, clobber=clobber)


def is_installed(name: str) -> bool:
    """Whether the backend's SDK can be imported (checked without importing it)."""
    return _plugins.is_installed(name)


def adapter_class(name: str) -> type[BackendAdapter]:
    """The adapter class for ``name``; raises UnknownBackendError or BackendNotInstalledError."""
    return _plugins.load(name)


def create(name: str, options: Mapping[str, Any] | None = None) -> BackendAdapter:
    """A new adapter instance for ``name`` with its options."""
    return adapter_class(name)(options)
