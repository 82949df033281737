"""tracelet-artifacts: every model, checkpoint, image, dataset, config and report versioned, findable, and
delivered to MLflow, W&B, ClearML or Aim with no upload code.

The public API is re-exported here and loaded on first use, so ``import tracelet_artifacts`` stays cheap
and never imports torch, lightning or a backend SDK::

    from tracelet_artifacts import Experiment, ArtifactType
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tracelet_artifacts._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "ArtifactType": "tracelet_artifacts.artifact",
    "TraceletArtifact": "tracelet_artifacts.artifact",
    "Manifest": "tracelet_artifacts.artifact",
    "ManifestEntry": "tracelet_artifacts.artifact",
    "Reference": "tracelet_artifacts.artifact",
    "ArtifactFile": "tracelet_artifacts.artifact",
    "ArtifactObject": "tracelet_artifacts.artifact",
    "ArtifactReference": "tracelet_artifacts.artifact",
    "ArtifactStats": "tracelet_artifacts.stats",
    "BackendStats": "tracelet_artifacts.stats",
    "framework_available": "tracelet_artifacts.frameworks",
    "InvalidSettingError": "tracelet_artifacts.errors",
    "Experiment": "tracelet_artifacts.experiment",
    "ExperimentConfig": "tracelet_artifacts.settings",
    "TraceletSettings": "tracelet_artifacts.settings",
    "EmbeddedStore": "tracelet_artifacts.store.embedded",
    "ArtifactVersion": "tracelet_artifacts.store.catalog",
    "ArtifactStore": "tracelet_artifacts.store.service",
    "ArtifactStoreConfiguration": "tracelet_artifacts.store.service",
    "ArtifactStoreFactory": "tracelet_artifacts.store.service",
    "RoutingPolicy": "tracelet_artifacts.routing",
    "RoutePlan": "tracelet_artifacts.routing",
    "BackendPlan": "tracelet_artifacts.routing",
    "BackendAdapter": "tracelet_artifacts.backends.base",
    "Capabilities": "tracelet_artifacts.backends.base",
    "Receipt": "tracelet_artifacts.backends.base",
    "sync_outbox": "tracelet_artifacts.delivery",
    "TraceletError": "tracelet_artifacts.errors",
    "ArtifactError": "tracelet_artifacts.errors",
    "ArtifactStoreError": "tracelet_artifacts.errors",
    "ArtifactStoreNotFoundError": "tracelet_artifacts.errors",
    "VersionConflictError": "tracelet_artifacts.errors",
    "BackendError": "tracelet_artifacts.errors",
    "BackendNotInstalledError": "tracelet_artifacts.errors",
    "UnknownBackendError": "tracelet_artifacts.errors",
    "ConfigurationError": "tracelet_artifacts.errors",
    "diff_versions": "tracelet_artifacts.diff",
    "VersionDiff": "tracelet_artifacts.diff",
}

__all__ = [*sorted(_EXPORTS), "__version__"]

if TYPE_CHECKING:
    from tracelet_artifacts.artifact import (
        ArtifactFile,
        ArtifactObject,
        ArtifactReference,
        ArtifactType,
        Manifest,
        ManifestEntry,
        Reference,
        TraceletArtifact,
    )
    from tracelet_artifacts.backends.base import BackendAdapter, Capabilities, Receipt
    from tracelet_artifacts.delivery import sync_outbox
    from tracelet_artifacts.diff import VersionDiff, diff_versions
    from tracelet_artifacts.errors import (
        ArtifactError,
        ArtifactStoreError,
        ArtifactStoreNotFoundError,
        BackendError,
        BackendNotInstalledError,
        ConfigurationError,
        InvalidSettingError,
        TraceletError,
        UnknownBackendError,
        VersionConflictError,
    )
    from tracelet_artifacts.experiment import Experiment
    from tracelet_artifacts.frameworks import framework_available
    from tracelet_artifacts.routing import BackendPlan, RoutePlan, RoutingPolicy
    from tracelet_artifacts.settings import ExperimentConfig, TraceletSettings
    from tracelet_artifacts.stats import ArtifactStats, BackendStats
    from tracelet_artifacts.store.catalog import ArtifactVersion
    from tracelet_artifacts.store.embedded import EmbeddedStore
    from tracelet_artifacts.store.service import ArtifactStore, ArtifactStoreConfiguration, ArtifactStoreFactory


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
