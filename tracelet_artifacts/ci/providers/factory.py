"""Build CI providers from plain configuration dicts; the only place that maps a provider type name
to its class (imported lazily) and reads a provider's token from the environment.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from tracelet_artifacts.errors import ConfigurationError

from .base import CIProvider

_BUILTIN: dict[str, str] = {
    "github": "tracelet_artifacts.ci.providers.github:GitHubActionsProvider",
    "gitlab": "tracelet_artifacts.ci.providers.gitlab:GitLabProvider",
    "jenkins": "tracelet_artifacts.ci.providers.jenkins:JenkinsProvider",
    "taskcluster": "tracelet_artifacts.ci.providers.taskcluster:TaskclusterProvider",
}
# Constructor options read from the environment when the config leaves them out: option -> variable.
DEFAULT_ENV: dict[str, dict[str, str]] = {
    "github": {"token": "GITHUB_TOKEN"},
    "gitlab": {"token": "GITLAB_TOKEN"},
    "jenkins": {"token": "JENKINS_TOKEN", "user": "JENKINS_USER"},
    "taskcluster": {
        "root_url": "TASKCLUSTER_ROOT_URL",
        "client_id": "TASKCLUSTER_CLIENT_ID",
        "access_token": "TASKCLUSTER_ACCESS_TOKEN",
        "certificate": "TASKCLUSTER_CERTIFICATE",
    },
}
_SECRET_KEYS = frozenset({"token", "password", "access_token", "certificate"})


class CIProviderFactory:
    """Maps provider types to classes and builds configured instances.

    >>> provider = CIProviderFactory.create({"type": "github", "repo": "octo/repo"})  # doctest: +SKIP
    >>> CIProviderFactory.register("circleci", "my_pkg.circle:CircleCIProvider")  # doctest: +SKIP
    """

    _registry: dict[str, str] = dict(_BUILTIN)

    @classmethod
    def registry(cls) -> Mapping[str, str]:
        """A read-only view of ``type -> "module:Class"``."""
        return MappingProxyType(cls._registry)

    @classmethod
    def register(cls, type_name: str, target: str | type[CIProvider], *, clobber: bool = False) -> None:
        """Add a provider type; replacing an existing one needs ``clobber=True``."""
        if type_name in cls._registry and not clobber:
            raise ConfigurationError(
                f"CI provider type {type_name!r} is already registered; pass clobber=True to replace it."
            )
        if isinstance(target, type):
            target = f"{target.__module__}:{target.__qualname__}"
        cls._registry[type_name] = target

    @classmethod
    def provider_class(cls, type_name: str) -> type[CIProvider]:
        """Import and return the class registered for ``type_name``."""
        try:
            target = cls._registry[type_name]
        except KeyError:
            raise ConfigurationError(
                f"unknown CI provider type {type_name!r}; known types: {', '.join(sorted(cls._registry))}."
            ) from None
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigurationError(
                f"CI provider {type_name!r} needs packages that are missing ({exc.name}); "
                "install them with: pip install 'tracelet-artifacts[ci]'"
            ) from exc
        provider_cls: type[CIProvider] = getattr(module, attr)
        return provider_cls

    @classmethod
    def create(cls, config: Mapping[str, Any], **overrides: Any) -> CIProvider:
        """A provider from ``{"type": ..., <constructor options>}``.

        ``<option>_env`` keys (``token_env``, ``user_env``, ``access_token_env``, …) name environment
        variables to read an option from; without them the provider's usual variables are read
        (``GITHUB_TOKEN``, ``GITLAB_TOKEN``, ``JENKINS_USER``/``JENKINS_TOKEN``, ``TASKCLUSTER_ROOT_URL``/
        ``TASKCLUSTER_CLIENT_ID``/``TASKCLUSTER_ACCESS_TOKEN``/``TASKCLUSTER_CERTIFICATE``).
        ``name`` is ignored here (it is the retriever's label).
        ``overrides`` (e.g. ``client=``/``transport=``) are passed to the constructor.
        """
        options = dict(config)
        type_name = options.pop("type", None) or options.get("name")
        options.pop("name", None)
        if not type_name:
            raise ConfigurationError("a CI provider config needs 'type' (github, gitlab, jenkins, taskcluster).")
        provider_cls = cls.provider_class(str(type_name))
        from_env = dict(DEFAULT_ENV.get(str(type_name), {}))
        for key in [k for k in options if k.endswith("_env")]:  # token_env, user_env, access_token_env, ...
            from_env[key[: -len("_env")]] = options.pop(key)
        for option, variable in from_env.items():
            if option not in options and os.environ.get(variable):
                options[option] = os.environ[variable]
        options.update(overrides)
        try:
            return provider_cls(**options)
        except TypeError as exc:
            shown = sorted(k for k in options if k not in _SECRET_KEYS)
            raise ConfigurationError(f"bad options for CI provider {type_name!r} (given: {shown}): {exc}") from None
