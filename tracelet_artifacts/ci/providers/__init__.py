"""CI providers: the ``CIProvider`` contract, its GitHub, GitLab, Jenkins and Taskcluster modules,
``CIProviderFactory``, and the registry that knows them all; provider classes are imported on first use
(they need httpx).
"""

from __future__ import annotations

from tracelet_artifacts._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "CIProvider": "tracelet_artifacts.ci.providers.base",
    "CIProviderInterface": "tracelet_artifacts.ci.compat",
    "CIRun": "tracelet_artifacts.ci.providers.base",
    "CIArtifact": "tracelet_artifacts.ci.providers.base",
    "CIProviderFactory": "tracelet_artifacts.ci.providers.factory",
    "GitHubActionsProvider": "tracelet_artifacts.ci.providers.github",
    "GitLabProvider": "tracelet_artifacts.ci.providers.gitlab",
    "JenkinsProvider": "tracelet_artifacts.ci.providers.jenkins",
    "TaskclusterProvider": "tracelet_artifacts.ci.providers.taskcluster",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
