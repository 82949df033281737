"""Build CI providers from plain configuration dicts. Which provider types exist is the registry's to say;
which options a provider reads from the environment is the provider class's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from tracelet_artifacts.ci.providers import registry
from tracelet_artifacts.ci.providers.base import CIProvider
from tracelet_artifacts.errors import ConfigurationError

_SECRET_KEYS = frozenset({"token", "password", "access_token", "certificate"})


class CIProviderFactory:
    """Builds configured providers; the provider types come from ``ci.providers.registry``.

    >>> provider = CIProviderFactory.create({"type": "github", "repo": "octo/repo"})  # doctest: +SKIP
    >>> CIProviderFactory.register("circleci", "my_pkg.circle:CircleCIProvider")  # doctest: +SKIP
    """

    @classmethod
    def registry(cls) -> Mapping[str, str]:
        """A read-only view of ``type -> "module:Class"``."""
        return MappingProxyType({name: spec.target for name, spec in registry.known().items()})

    @classmethod
    def register(cls, type_name: str, target: str | type[CIProvider], *, clobber: bool = False) -> None:
        """Add a provider type; replacing an existing one needs ``clobber=True``."""
        registry.register(type_name, target, clobber=clobber)

    @classmethod
    def provider_class(cls, type_name: str) -> type[CIProvider]:
        """Import and return the class registered for ``type_name``."""
        return registry.provider_class(type_name)

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
            known = ", ".join(sorted(registry.known()))
            raise ConfigurationError(f"a CI provider config needs 'type' ({known}).")
        provider_cls = cls.provider_class(str(type_name))
        from_env = dict(provider_cls.env_options)
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

    # -- the original design's names ----------------------------------------------------------------

    @classmethod
    def register_provider(cls, type_name: str, provider_class: str | type[CIProvider]) -> None:
        """``register`` by the original design's name."""
        cls.register(type_name, provider_class)

    @classmethod
    def get_available_providers(cls) -> list[str]:
        """The registered provider types, sorted."""
        return sorted(registry.known())

    @classmethod
    async def create_provider(cls, provider_type: str, config: Mapping[str, Any]) -> CIProvider:
        """``create`` by the original design's name and call shape: ``await create_provider("github", {...})``."""
        return cls.create({**config, "type": provider_type})
