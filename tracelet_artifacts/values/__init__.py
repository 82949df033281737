"""The ground floor: the values every layer passes around (artifact types, manifests, versions, receipts,
backend capabilities), as immutable dataclasses and enums.

Nothing here imports another module of this package except the exception tree (``errors.py``, which
imports nothing), so any layer can import these without pulling in a layer above it::

    from tracelet_artifacts.values import ArtifactType, Manifest, ArtifactVersion, Receipt, Capabilities
"""

from __future__ import annotations

from tracelet_artifacts.values.artifact_type import MEDIA_TYPES, MODEL_TYPES, ArtifactType
from tracelet_artifacts.values.capabilities import SHARED_SCHEMES, Capabilities
from tracelet_artifacts.values.manifest import EntryKind, Manifest, ManifestEntry, ModelInfo, Reference, thaw_json
from tracelet_artifacts.values.receipt import Receipt, ReceiptStatus
from tracelet_artifacts.values.version import ArtifactVersion

__all__ = ["MEDIA_TYPES", "MODEL_TYPES", "SHARED_SCHEMES", "ArtifactType", "ArtifactVersion", "Capabilities",
           "EntryKind", "Manifest", "ManifestEntry", "ModelInfo", "Receipt", "ReceiptStatus", "Reference",
           "thaw_json"]
