"""The only place that knows the CI providers: name → ("module:Class", install hint).

Provider classes are imported the first time they are asked for and cached. Third-party providers arrive
through the ``tracelet_artifacts.ci_providers`` entry-point group, stored as strings until used, and never
replace a built-in name. The factory, the CLI and the retriever all ask this registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from tracelet_artifacts.errors import ConfigurationError, TraceletError
from tracelet_artifacts.plugins import PluginRegistry, PluginSpec

if TYPE_CHECKING:
    from tracelet_artifacts.ci.providers.base import CIProvider

ENTRY_POINT_GROUP = "tracelet_artifacts.ci_providers"
CI_EXTRA = "pip install 'tracelet-artifacts[ci]'"
ProviderSpec = PluginSpec  # the name this module has always used for a registered provider

_BUILTIN: dict[str, PluginSpec] = {
    name: PluginSpec(f"tracelet_artifacts.ci.providers.{module}:{cls}", install=CI_EXTRA)
    for name, module, cls in (("github", "github", "GitHubActionsProvider"), ("gitlab", "gitlab", "GitLabProvider"),
                              ("jenkins", "jenkins", "JenkinsProvider"),
                              ("taskcluster", "taskcluster", "TaskclusterProvider"))
}


def _unknown(name: str, known: list[str]) -> TraceletError:
    return ConfigurationError(f"unknown CI provider type {name!r}; known types: {', '.join(known)}.")


def _missing(name: str, spec: PluginSpec, exc: Exception | None) -> TraceletError:
    if isinstance(exc, ImportError):
        hint = spec.install or "install the package that provides it"
        return ConfigurationError(
            f"CI provider {name!r} needs packages that are missing ({exc.name}); install them with: {hint}")
    return ConfigurationError(f"cannot load CI provider {name!r} from {spec.target}: {exc}")


_plugins: PluginRegistry[CIProvider] = PluginRegistry("CI provider", ENTRY_POINT_GROUP, _BUILTIN,
                                                      unknown=_unknown, missing=_missing)


def known() -> Mapping[str, PluginSpec]:
    """A read-only view of every registered provider name (built-ins, entry points, ``register`` calls)."""
    return _plugins.known()


def register(name: str, target: str | type[CIProvider], *, install: str | None = None, clobber: bool = False) -> None:
    """Register a provider (``"package.module:Class"`` or the class) under ``name``; an existing name is
    only replaced with ``clobber=True``."""
    _plugins.register(name, target, install=install, clobber=clobber)


def unregister(name: str) -> None:
    """Remove a name added by ``register`` or an entry point; built-ins stay."""
    _plugins.unregister(name)


def provider_class(name: str) -> type[CIProvider]:
    """The provider class for ``name``, imported on first use; ConfigurationError names what to install."""
    return _plugins.load(name)
