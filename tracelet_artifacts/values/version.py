"""``ArtifactVersion``: one immutable version of an artifact as the catalog holds it (what committing returns)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property

from tracelet_artifacts.values.artifact_type import ArtifactType
from tracelet_artifacts.values.manifest import Manifest

#: committed: visible, its blobs not yet synced (a crash of the machine may lose it; ``flush`` waits);
#: durable: synced (or held by the team's bucket); lost: a crash tore its content before it was durable;
#: unsynced: stored by a store that never syncs (``TRACELET_DURABILITY=none``).
DURABILITY_STATES = ("committed", "durable", "lost", "unsynced")


@dataclass(frozen=True)
class ArtifactVersion:
    """One immutable version of an artifact as the catalog holds it.

    ``created`` is False when logging found identical content already stored (no new version was made).
    ``version_name`` is the name it was logged under (``1.2.0``), if any: as immutable as the number.
    ``durability`` says how safe its content is from a crash (see ``DURABILITY_STATES``).
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
    durability: str = field(default="durable", compare=False)
    #: Why a ``lost`` version was lost (or which process is syncing a ``committed`` one).
    durability_detail: str | None = field(default=None, repr=False, compare=False)

    @property
    def durable(self) -> bool:
        """True when the version's content is on disk (synced), or held by a bucket, and survives a crash."""
        return self.durability == "durable"

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

    def known_manifest(self, manifest: Manifest) -> ArtifactVersion:
        """This record with ``manifest`` as its manifest (the one just stored, so 10,000 entries are not parsed
        back from the JSON the catalog holds of it); returns the record."""
        self.__dict__["manifest"] = manifest
        return self
