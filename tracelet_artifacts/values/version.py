"""``ArtifactVersion``: one immutable version of an artifact as the catalog holds it (what committing returns)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property

from tracelet_artifacts.values.artifact_type import ArtifactType
from tracelet_artifacts.values.manifest import Manifest


@dataclass(frozen=True)
class ArtifactVersion:
    """One immutable version of an artifact as the catalog holds it.

    ``created`` is False when logging found identical content already stored (no new version was made).
    ``version_name`` is the name it was logged under (``1.2.0``), if any: as immutable as the number.
    """

    name: str
    version: int
    digest: str
    artifact_type: ArtifactType
    size_bytes: int
    created_at: float
    aliases: tuple[str, ...]
    description: str | None = None
    run_id: str | None = None
    created: bool = True
    manifest_json: str = field(default="", repr=False, compare=False)
    row_id: int = field(default=0, repr=False, compare=False)
    version_name: str | None = None

    @property
    def label(self) -> str:
        """``v3``-style version label."""
        return f"v{self.version}"

    @property
    def named_label(self) -> str:
        """``v3 (1.2.0)`` for a version with a name, else ``v3``."""
        return f"{self.label} ({self.version_name})" if self.version_name else self.label

    @property
    def ref(self) -> str:
        """``name:v3``."""
        return f"{self.name}:{self.label}"

    @cached_property
    def manifest(self) -> Manifest:
        """The frozen manifest of this version (parsed on first use)."""
        return Manifest.from_dict(json.loads(self.manifest_json))
