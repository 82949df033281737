"""CI providers: the ``CIProvider`` contract, its GitHub, GitLab, Jenkins and Taskcluster modules,
and ``CIProviderFactory``; provider classes are imported on first use (they need httpx).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS: dict[str, str] = {
    "CIProvider": "tracelet_artifacts.ci.providers.base",
    "CIRun": "tracelet_artifacts.ci.providers.base",
    "CIArtifact": "tracelet_artifacts.ci.providers.base",
    "CIProviderFactory": "tracelet_artifacts.ci.providers.factory",
    "GitHubActionsProvider": "tracelet_artifacts.ci.providers.github",
    "GitLabProvider": "tracelet_artifacts.ci.providers.gitlab",
    "JenkinsProvider": "tracelet_artifacts.ci.providers.jenkins",
    "TaskclusterProvider": "tracelet_artifacts.ci.providers.taskcluster",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tracelet_artifacts.ci.providers' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
