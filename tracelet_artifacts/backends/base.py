"""The adapter contract every backend implements, and the values that cross it.

An adapter gets a ``Delivery`` (the frozen manifest, its plan for this backend, and read-only access to
the stored blobs) and returns a ``Receipt``. Only ``log``, ``list`` and ``fetch`` are abstract; run
lifecycle, params and metrics default to no-ops. Adapters import their SDK inside methods.
"""

from __future__ import annotations

import os
import shutil
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from tracelet_artifacts.artifact import ArtifactType, Manifest, ManifestEntry
from tracelet_artifacts.routing import BackendPlan

ReceiptStatus = Literal["done", "pending", "failed"]


@dataclass(frozen=True)
class Capabilities:
    """What a backend can hold; the router and the docs matrix read these."""

    model_registry: bool = False
    media: bool = False
    references: bool = False
    aliases: bool = False
    versioning: bool = False


@dataclass(frozen=True)
class RunContext:
    """The experiment run an adapter logs into; ``state`` is what the adapter saved to resume it later."""

    run_id: str
    experiment: str
    store_root: Path
    state: Mapping[str, Any] = field(default_factory=dict)
    #: The run's embedded store (an ``EmbeddedStore``), for the ``local`` adapter, which *is* that store;
    #: on a team store its root is only this machine's cache. Other adapters never open the catalog.
    store: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Receipt:
    """What a backend did with one artifact version (or that it is still pending / failed)."""

    backend: str
    status: ReceiptStatus
    artifact: str
    version: int
    remote_id: str | None = None
    remote_version: str | None = None
    uri: str | None = None
    uploaded: tuple[str, ...] = ()
    referenced: tuple[str, ...] = ()
    not_held: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "done"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["not_held"] = dict(self.not_held)
        data["uploaded"], data["referenced"] = list(self.uploaded), list(self.referenced)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Receipt:
        values = dict(data)
        values["uploaded"] = tuple(values.get("uploaded", ()))
        values["referenced"] = tuple(values.get("referenced", ()))
        return cls(**values)


@dataclass(frozen=True)
class RemoteArtifact:
    """An artifact version as a backend lists it."""

    backend: str
    name: str
    version: str
    artifact_type: ArtifactType | None = None
    digest: str | None = None
    uri: str | None = None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlannedReference:
    """An entry or external URI a backend records as a reference (not an upload)."""

    path: str
    uri: str
    size_bytes: int | None
    sha256: str | None


@dataclass(frozen=True)
class Delivery:
    """Everything an adapter needs to log one version: manifest, its plan, the blob folder, and the
    version's aliases in the embedded store when the delivery started."""

    manifest: Manifest
    version: int
    plan: BackendPlan
    blob_root: Path
    aliases: tuple[str, ...] = ()

    def blob_path(self, entry: ManifestEntry) -> Path:
        """The stored content of an entry (read only)."""
        return self.blob_root / entry.sha256[:2] / entry.sha256[2:]

    def uploads(self) -> list[ManifestEntry]:
        """Entries this backend should upload."""
        wanted = set(self.plan.uploads)
        return [e for e in self.manifest.entries if e.path in wanted]

    def references(self) -> list[PlannedReference]:
        """Entries sent as references to their stored blob, then the artifact's own external references."""
        refs = [PlannedReference(e.path, self.blob_path(e).absolute().as_uri(), e.size, e.sha256)
                for e in self.manifest.entries if e.path in set(self.plan.entry_references)]
        refs += [PlannedReference(r.uri, r.uri, r.size_bytes, r.sha256)
                 for r in self.manifest.references if r.uri in set(self.plan.external_references)]
        return refs

    def link_entry(self, entry: ManifestEntry, target: Path) -> Path:
        """Make ``target`` hold an entry's stored content: a hard link where possible (read only!), else a copy."""
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(self.blob_path(entry), target)
        except OSError:
            shutil.copyfile(self.blob_path(entry), target)
        return target

    def stage(self, folder: Path) -> Path:
        """Lay the uploads out under ``folder`` with their artifact paths (hard links, else copies)."""
        for entry in self.uploads():
            self.link_entry(entry, folder / entry.path)
        return folder

    def receipt(self, backend: str, **values: Any) -> Receipt:
        """A done receipt for this delivery, listing what was uploaded and referenced by default."""
        values.setdefault("uploaded", tuple(e.path for e in self.uploads()))
        values.setdefault("referenced", tuple(r.path for r in self.references()))
        values.setdefault("not_held", dict(self.plan.not_held))
        return Receipt(backend=backend, status="done", artifact=self.manifest.name, version=self.version, **values)


class BackendAdapter(ABC):
    """The contract of a backend adapter.

    Example (a minimal third-party adapter)::

        class EchoAdapter(BackendAdapter):
            name = "echo"
            capabilities = Capabilities()
            def log(self, delivery): return delivery.receipt(self.name)
            def list(self, type_filter=None): return []
            def fetch(self, name, version, dest): raise NotImplementedError
    """

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self.options: dict[str, Any] = dict(options or {})

    def start_run(self, run: RunContext) -> Mapping[str, Any]:
        """Open (or resume, from ``run.state``) the backend's run; return state to save for resuming."""
        return {}

    @abstractmethod
    def log(self, delivery: Delivery) -> Receipt:
        """Send one version to the backend; raise DeliveryError (retryable or not) on failure."""

    @abstractmethod
    def list(self, type_filter: ArtifactType | None = None) -> list[RemoteArtifact]:
        """Artifacts the backend holds for this run/project."""

    @abstractmethod
    def fetch(self, name: str, version: str, dest: Path) -> Path:
        """Download a version's files under ``dest``; return the folder."""

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record hyper-parameters (no-op by default)."""

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        """Record one metric value (no-op by default)."""

    def end_run(self) -> None:
        """Close the backend's run (no-op by default)."""
