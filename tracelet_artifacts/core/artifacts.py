"""``from tracelet.core.artifacts import ...`` as Tracelet's guide writes it; the names live in
``tracelet_artifacts.artifact``."""

from __future__ import annotations

from tracelet_artifacts.artifact import (
    ArtifactFile,
    ArtifactObject,
    ArtifactReference,
    ArtifactType,
    ModelInfo,
    TraceletArtifact,
)

__all__ = ["ArtifactFile", "ArtifactObject", "ArtifactReference", "ArtifactType", "ModelInfo", "TraceletArtifact"]
