"""tracelet-artifacts: every model, checkpoint, image, dataset, config and report versioned, findable, and
delivered to MLflow, W&B, ClearML or Aim with no upload code.

The public API is re-exported here and loaded on first use, so ``import tracelet_artifacts`` stays cheap
and never imports torch, lightning or a backend SDK. ``__all__`` lists every public name: the builder, the
values every layer shares, the store, routing, the adapter contract, and every error of the exception
tree (``errors.py`` draws it)::

    from tracelet_artifacts import Experiment, ArtifactType
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tracelet_artifacts._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    # the builder and freezing
    "TraceletArtifact": "tracelet_artifacts.artifact",
    "freeze": "tracelet_artifacts.artifact",
    # Tracelet's names for the item types of artifact.files / objects / references
    "ArtifactFile": "tracelet_artifacts.artifact",
    "ArtifactObject": "tracelet_artifacts.artifact",
    "ArtifactReference": "tracelet_artifacts.artifact",
    # values every layer shares
    "ArtifactType": "tracelet_artifacts.values",
    "ArtifactVersion": "tracelet_artifacts.values",
    "Capabilities": "tracelet_artifacts.values",
    "Manifest": "tracelet_artifacts.values",
    "ManifestEntry": "tracelet_artifacts.values",
    "ModelInfo": "tracelet_artifacts.values",
    "Receipt": "tracelet_artifacts.values",
    "Reference": "tracelet_artifacts.values",
    # the run
    "Experiment": "tracelet_artifacts.experiment",
    "ArtifactStats": "tracelet_artifacts.stats",
    "BackendStats": "tracelet_artifacts.stats",
    "framework_available": "tracelet_artifacts.frameworks",
    # settings
    "ExperimentConfig": "tracelet_artifacts.settings",
    "TraceletSettings": "tracelet_artifacts.settings",
    # the store
    "EmbeddedStore": "tracelet_artifacts.store.embedded",
    # the store
    "ArtifactStore": "tracelet_artifacts.store.service",
    "ArtifactStoreConfiguration": "tracelet_artifacts.store.service",
    "ArtifactStoreFactory": "tracelet_artifacts.store.service",
    # routing
    "BackendPlan": "tracelet_artifacts.routing",
    "RoutePlan": "tracelet_artifacts.routing",
    "RoutingPolicy": "tracelet_artifacts.routing",
    # the adapter contract
    "BackendAdapter": "tracelet_artifacts.backends.base",
    "BackendTarget": "tracelet_artifacts.backends.base",
    "Delivery": "tracelet_artifacts.backends.base",
    "PlannedReference": "tracelet_artifacts.backends.base",
    "RemoteArtifact": "tracelet_artifacts.backends.base",
    "RunContext": "tracelet_artifacts.backends.base",
    "Setting": "tracelet_artifacts.backends.base",
    "VersionUse": "tracelet_artifacts.backends.base",
    # delivery
    "sync_outbox": "tracelet_artifacts.delivery",
    # delivery
    "RetryPolicy": "tracelet_artifacts.retry",
    # the exception tree
    "TraceletError": "tracelet_artifacts.errors",
    "ArtifactError": "tracelet_artifacts.errors",
    "InvalidArtifactNameError": "tracelet_artifacts.errors",
    "InvalidArtifactPathError": "tracelet_artifacts.errors",
    "ArtifactFileError": "tracelet_artifacts.errors",
    "ContentAnalysisError": "tracelet_artifacts.errors",
    "ContentTooLargeError": "tracelet_artifacts.errors",
    "SerializationError": "tracelet_artifacts.errors",
    "UnsafeLoadError": "tracelet_artifacts.errors",
    "UnsupportedReferenceError": "tracelet_artifacts.errors",
    "ModelFrameworkError": "tracelet_artifacts.errors",
    "ArtifactStoreError": "tracelet_artifacts.errors",
    "ArtifactStoreNotFoundError": "tracelet_artifacts.errors",
    "VersionConflictError": "tracelet_artifacts.errors",
    "InvalidVersionError": "tracelet_artifacts.errors",
    "VersionInUseError": "tracelet_artifacts.errors",
    "BlobsCollectedError": "tracelet_artifacts.errors",
    "IntegrityError": "tracelet_artifacts.errors",
    "ConfigurationError": "tracelet_artifacts.errors",
    "InvalidSettingError": "tracelet_artifacts.errors",
    "BackendError": "tracelet_artifacts.errors",
    "UnknownBackendError": "tracelet_artifacts.errors",
    "BackendNotInstalledError": "tracelet_artifacts.errors",
    "DeliveryError": "tracelet_artifacts.errors",
    "DeliveryPendingError": "tracelet_artifacts.errors",
    "CIError": "tracelet_artifacts.errors",
    # comparing versions
    "diff_versions": "tracelet_artifacts.diff",
    "VersionDiff": "tracelet_artifacts.diff",
    # lineage and retention
    "LineageGraph": "tracelet_artifacts.store.lineage",
    "RetentionRule": "tracelet_artifacts.retention",
}

__all__ = [*sorted(_EXPORTS), "__version__"]

if TYPE_CHECKING:
    from tracelet_artifacts.artifact import ArtifactFile, ArtifactObject, ArtifactReference, TraceletArtifact, freeze
    from tracelet_artifacts.backends.base import (
        BackendAdapter,
        BackendTarget,
        Delivery,
        PlannedReference,
        RemoteArtifact,
        RunContext,
        Setting,
        VersionUse,
    )
    from tracelet_artifacts.delivery import sync_outbox
    from tracelet_artifacts.diff import VersionDiff, diff_versions
    from tracelet_artifacts.errors import (
        ArtifactError,
        ArtifactFileError,
        ArtifactStoreError,
        ArtifactStoreNotFoundError,
        BackendError,
        BackendNotInstalledError,
        BlobsCollectedError,
        CIError,
        ConfigurationError,
        ContentAnalysisError,
        ContentTooLargeError,
        DeliveryError,
        DeliveryPendingError,
        IntegrityError,
        InvalidArtifactNameError,
        InvalidArtifactPathError,
        InvalidSettingError,
        InvalidVersionError,
        ModelFrameworkError,
        SerializationError,
        TraceletError,
        UnknownBackendError,
        UnsafeLoadError,
        UnsupportedReferenceError,
        VersionConflictError,
        VersionInUseError,
    )
    from tracelet_artifacts.experiment import Experiment
    from tracelet_artifacts.frameworks import framework_available
    from tracelet_artifacts.retention import RetentionRule
    from tracelet_artifacts.retry import RetryPolicy
    from tracelet_artifacts.routing import BackendPlan, RoutePlan, RoutingPolicy
    from tracelet_artifacts.settings import ExperimentConfig, TraceletSettings
    from tracelet_artifacts.stats import ArtifactStats, BackendStats
    from tracelet_artifacts.store.embedded import EmbeddedStore
    from tracelet_artifacts.store.lineage import LineageGraph
    from tracelet_artifacts.store.service import ArtifactStore, ArtifactStoreConfiguration, ArtifactStoreFactory
    from tracelet_artifacts.values import (
        ArtifactType,
        ArtifactVersion,
        Capabilities,
        Manifest,
        ManifestEntry,
        ModelInfo,
        Receipt,
        Reference,
    )


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
