"""The CI-provider bridge: read CI systems' artifacts back, describe, find, trend and compare them.

Names are imported on first use, so ``import tracelet_artifacts.ci`` pulls in neither numpy nor matplotlib.
"""

from __future__ import annotations

from tracelet_artifacts._lazy import lazy_exports

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "ArtifactMetadata": "tracelet_artifacts.ci.metadata",
    "ArtifactDiscovery": "tracelet_artifacts.ci.discovery",
    "CatalogIndex": "tracelet_artifacts.ci.catalog_index",
    "ArtifactQuery": "tracelet_artifacts.ci.discovery",
    "analyze_series": "tracelet_artifacts.ci.trends",
    "analyze_metrics_trend": "tracelet_artifacts.ci.trends",
    "detect_changes_ttest": "tracelet_artifacts.ci.trends",
    "detect_changes_edivisive": "tracelet_artifacts.ci.trends",
    "compare_artifacts": "tracelet_artifacts.ci.compare",
    "plot_trend": "tracelet_artifacts.ci.plot",
    "write_html_report": "tracelet_artifacts.ci.plot",
    # providers, retrieval and the Taskcluster downloader
    "CIProvider": "tracelet_artifacts.ci.providers.base",
    "CIRun": "tracelet_artifacts.ci.providers.base",
    "CIArtifact": "tracelet_artifacts.ci.providers.base",
    "CIProviderFactory": "tracelet_artifacts.ci.providers.factory",
    "GitHubActionsProvider": "tracelet_artifacts.ci.providers.github",
    "GitLabProvider": "tracelet_artifacts.ci.providers.gitlab",
    "JenkinsProvider": "tracelet_artifacts.ci.providers.jenkins",
    "TaskclusterProvider": "tracelet_artifacts.ci.providers.taskcluster",
    "ArtifactRetriever": "tracelet_artifacts.ci.retriever",
    "ArtifactRequest": "tracelet_artifacts.ci.retriever",
    "RetrievalResult": "tracelet_artifacts.ci.retriever",
    "describe": "tracelet_artifacts.ci.metadata",
    "CIArtifactKind": "tracelet_artifacts.ci.kinds",
    "MetricPoint": "tracelet_artifacts.ci.discovery",
    "RetryPolicy": "tracelet_artifacts.retry",
    # the CI artifact handling system's names (see ci/compat.py)
    "initialize_artifact_systems": "tracelet_artifacts.ci.compat",
    "get_artifact_handler": "tracelet_artifacts.ci.compat",
    "get_artifact_retriever": "tracelet_artifacts.ci.compat",
    "ArtifactSystems": "tracelet_artifacts.ci.compat",
    "CIProviderInterface": "tracelet_artifacts.ci.compat",
    "ArtifactHandler": "tracelet_artifacts.ci.handler",
    "safe_extract": "tracelet_artifacts.ci.archive",
    "TaskGroupDownloader": "tracelet_artifacts.ci.taskcluster_download",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
