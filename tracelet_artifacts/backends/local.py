"""The ``local`` adapter: the embedded store itself, seen through the adapter contract.

The store already holds a version once it is logged, so ``log`` only confirms the blobs are there.
"""

from __future__ import annotations

from pathlib import Path

from tracelet_artifacts.artifact import ArtifactType
from tracelet_artifacts.backends.base import (
    BackendAdapter,
    Capabilities,
    Delivery,
    Receipt,
    RemoteArtifact,
    RunContext,
)
from tracelet_artifacts.errors import DeliveryError
from tracelet_artifacts.store.embedded import EmbeddedStore


class LocalAdapter(BackendAdapter):
    """Confirms, lists and fetches versions of the embedded store at ``options["path"]`` (or the run's store)."""

    name = "local"
    capabilities = Capabilities(references=True, aliases=True, versioning=True)

    _store: EmbeddedStore | None = None

    def start_run(self, run: RunContext) -> dict[str, str]:
        if self.options.get("path"):
            self._store = EmbeddedStore(self.options["path"])
        elif run.store is not None:
            self._store = run.store.reopen()  # the run's own store, local or the team's, with its own connections
        else:
            self._store = EmbeddedStore(run.store_root)
        return {}

    def end_run(self) -> None:
        if self._store is not None:
            self._store.close()  # its connections; a later call opens new ones

    @property
    def store(self) -> EmbeddedStore:
        if self._store is None:
            path = self.options.get("path")
            if not path:
                raise DeliveryError("The local adapter has no store: call start_run() or pass options={'path': …}.",
                                    retryable=False)
            self._store = EmbeddedStore(path)
        return self._store

    def log(self, delivery: Delivery) -> Receipt:
        manifest = delivery.manifest
        missing = [e.path for e in manifest.entries if not self.store.blobs.exists(e.digest)]
        if missing:
            raise DeliveryError(f"The embedded store lacks content of {manifest.name} ({missing[:3]}).",
                                retryable=False)
        record = self.store.get(manifest.name, delivery.version)
        return delivery.receipt(self.name, remote_id=record.digest, remote_version=record.label,
                                uri=f"tracelet://{record.ref}")

    def list(self, type_filter: ArtifactType | None = None) -> list[RemoteArtifact]:
        return [RemoteArtifact(self.name, r.name, r.label, r.artifact_type, r.digest, f"tracelet://{r.ref}", r.aliases)
                for r in self.store.catalog.search(artifact_type=type_filter)]

    def fetch(self, name: str, version: str, dest: Path) -> Path:
        self.store.fetch(name, version, dest)
        return Path(dest)
