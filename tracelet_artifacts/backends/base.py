"""The adapter contract every backend implements, and the values that cross it.

An adapter gets a ``Delivery`` (the frozen manifest, its plan for this backend, and read-only access to
the stored blobs) and returns a ``Receipt``. Only ``log``, ``list`` and ``fetch`` are abstract; run
lifecycle, params and metrics default to no-ops. Adapters import their SDK inside methods.

Where a backend's data goes is resolved the way its SDK resolves it, in one precedence: explicit adapter
options > ``TRACELET_*`` settings > the SDK's own configuration (environment, config files, a run the user
already opened) > the embedded default under the store folder. ``resolve_target`` reports the outcome
and where each value came from (``tracelet-artifacts doctor`` prints it).
"""

from __future__ import annotations

import os
import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from tracelet_artifacts import digest
from tracelet_artifacts.routing import BackendPlan
from tracelet_artifacts.values import ArtifactType, Capabilities, Manifest, ManifestEntry, Receipt, ReceiptStatus

# Receipt and Capabilities are values of the ground floor (tracelet_artifacts.values), re-exported here for
# adapters, which import everything of their contract from this module.
__all__ = ["BackendAdapter", "BackendTarget", "Capabilities", "Delivery", "PlannedReference", "Receipt",
           "ReceiptStatus", "RemoteArtifact", "RunContext", "Setting", "VersionUse"]

#: Where an adapter option came from when neither label below applies.
FROM_OPTIONS = "backend_options"
EMBEDDED_DEFAULT = "embedded default"


@dataclass(frozen=True)
class Setting:
    """One resolved value of a backend's configuration, and where it came from.

    ``source`` names the place a user would change it: ``backend_options``, ``TRACELET_BACKEND_OPTIONS``,
    an SDK variable (``MLFLOW_TRACKING_URI``), an SDK call (``mlflow.set_tracking_uri()``), a config file,
    or ``embedded default``.
    """

    value: str
    source: str


@dataclass(frozen=True)
class BackendTarget:
    """Where a backend's data goes for a run, as resolved (what ``tracelet-artifacts doctor`` prints).

    Example::

        BackendTarget("mlflow", where="http://127.0.0.1:5000 (experiment 'resnet')",
                      settings={"tracking_uri": Setting("http://127.0.0.1:5000", "MLFLOW_TRACKING_URI")})
    """

    backend: str
    where: str
    settings: Mapping[str, Setting] = field(default_factory=dict)
    #: The user's own run that artifacts join (e.g. ``mlflow.active_run() 3f2a…``); None: the adapter opens one.
    active_run: str | None = None
    #: Nothing configured: the data goes to the embedded default under the store folder.
    embedded_default: bool = False
    #: How to send the data elsewhere, naming the settings (one line).
    change: str = ""
    #: The command that shows the data locally (``mlflow ui --backend-store-uri …``), where there is one.
    view: str | None = None

    def announcement(self) -> str:
        """The one line logged at INFO when the embedded default is used."""
        text = f"{self.backend}: nothing configured, so runs go to {self.where}"
        if self.view:
            text += f"; see them with `{self.view}`"
        return text + (f"; to send them elsewhere, {self.change}" if self.change else "") + "."


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
class VersionUse:
    """The run consumed a stored version (lineage): what ``BackendAdapter.use_version`` receives.

    ``how`` is ``use_artifact`` or the hook that saw it (``torch.load``, ``lightning ckpt_path``, ``watch
    inputs``); ``receipts`` are what each backend answered when the version was delivered (by backend name),
    so an adapter can point at its own copy.
    """

    name: str
    version: int
    digest: str
    artifact_type: ArtifactType
    how: str
    aliases: tuple[str, ...] = ()
    receipts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.name}:v{self.version}"


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
    """An entry or external URI a backend records as a reference (not an upload). ``digest`` is a content key:
    the entry's (``blake3:<hex>``, or a SHA-256 hex for content logged before), or the SHA-256 hex the user gave
    for an external reference."""

    path: str
    uri: str
    size_bytes: int | None
    digest: str | None

    @property
    def sha256(self) -> str | None:
        """The field's name before entries were named by BLAKE3 (use ``digest``)."""
        return self.digest


@dataclass(frozen=True)
class Delivery:
    """Everything an adapter needs to log one version: manifest, its plan, the blob folder, and the
    version's aliases in the embedded store when the delivery started."""

    manifest: Manifest
    version: int
    plan: BackendPlan
    blob_root: Path
    aliases: tuple[str, ...] = ()
    #: Where the store's blobs live for other readers (``s3://bucket/prefix`` on a team store); None: the
    #: local blob folder, referenced as ``file://`` URIs.
    blob_uri_prefix: str | None = None
    #: ``(key, algorithm) -> hex digest`` of a stored blob in another algorithm (the store's, computed once and
    #: cached in the catalog); None: computed from the blob here.
    hexdigests: Callable[[str, str], str] | None = field(default=None, compare=False, repr=False)

    def blob_path(self, entry: ManifestEntry) -> Path:
        """The stored content of an entry (read only)."""
        return self.blob_root / digest.key_path(entry.digest)

    def blob_uri(self, entry: ManifestEntry) -> str:
        """The URI a reference to an entry's stored blob points at."""
        if self.blob_uri_prefix:
            return f"{self.blob_uri_prefix.rstrip('/')}/{digest.key_path(entry.digest)}"
        return self.blob_path(entry).absolute().as_uri()

    def entry_hexdigest(self, entry: ManifestEntry, algorithm: str) -> str:
        """An entry's hex digest in ``algorithm`` (``sha256``, ``md5``, …), for a backend that records or checks
        one: free when it is the entry's own algorithm, else computed once per blob."""
        if algorithm == entry.algorithm:
            return digest.hex_of(entry.digest)
        if self.hexdigests is not None:
            return self.hexdigests(entry.digest, algorithm)
        return digest.file_hexdigest(self.blob_path(entry), algorithm)

    def uploads(self) -> list[ManifestEntry]:
        """Entries this backend should upload."""
        wanted = set(self.plan.uploads)
        return [e for e in self.manifest.entries if e.path in wanted]

    def references(self) -> list[PlannedReference]:
        """Entries sent as references to their stored blob, then the artifact's own external references."""
        refs = [PlannedReference(e.path, self.blob_uri(e), e.size, e.digest)
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
        references = self.references()
        values.setdefault("uploaded", tuple(e.path for e in self.uploads()))
        values.setdefault("referenced", tuple(r.path for r in references))
        values.setdefault("reference_uris", {r.path: r.uri for r in references})
        values.setdefault("unreachable", tuple(self.plan.unreachable))
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
        #: option key → where it was set (``backend_options`` or ``TRACELET_BACKEND_OPTIONS``); filled in
        #: by whoever creates the adapter from settings.
        self.option_sources: dict[str, str] = {}

    def option(self, key: str) -> Setting | None:
        """An explicit adapter option as a resolved Setting (None when the option is not given)."""
        value = self.options.get(key)
        if value is None or value == "":
            return None
        return Setting(str(value), self.option_sources.get(key, FROM_OPTIONS))

    @property
    def run_capabilities(self) -> Capabilities:
        """Capabilities for the run this adapter started (e.g. ``file`` references readable when the backend
        lives on this filesystem); the router reads these. The class's own capabilities by default."""
        return self.capabilities

    def resolve_target(self, run: RunContext) -> BackendTarget:
        """Where this adapter's data goes for ``run``, and where each value came from.

        Side-effect free (no run is opened), so ``tracelet-artifacts doctor`` can call it on an adapter
        that never starts; ``start_run`` uses the same resolution.
        """
        settings = {key: setting for key in sorted(self.options) if (setting := self.option(key)) is not None
                    and isinstance(self.options[key], (str, int, float, bool, os.PathLike))}
        return BackendTarget(self.name, where=f"{self.name} (as its SDK is configured)", settings=settings)

    def start_run(self, run: RunContext) -> Mapping[str, Any]:
        """Open (or resume, from ``run.state``) the backend's run, or join the run the user already opened;
        return state to save for resuming."""
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

    def use_version(self, use: VersionUse) -> None:
        """Record in the backend's run that it consumed a version (lineage; no-op by default). Runs on the
        adapter's worker like ``log_params``; a failure is retried, then dropped with a warning."""

    def end_run(self) -> None:
        """Close the backend's run (no-op by default)."""
