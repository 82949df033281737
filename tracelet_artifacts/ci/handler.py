"""ArtifactHandler: keeps retrieved CI artifacts a user wants to hold on to, with their metadata,
in a storage folder laid out by provider and run (unlike the cache, nothing here is evicted).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from tracelet_artifacts.ci.cache import safe_filename
from tracelet_artifacts.errors import ConfigurationError

if TYPE_CHECKING:
    from tracelet_artifacts.ci.metadata import ArtifactMetadata
    from tracelet_artifacts.ci.providers.base import CIProvider

METADATA_SUFFIX = ".metadata.json"


class ArtifactHandler:
    """Stores artifact files with their ``ArtifactMetadata`` under ``storage_dir/<provider>/<run>/``.

    >>> handler = ArtifactHandler(Path("ci-artifacts"))  # doctest: +SKIP
    >>> meta = handler.store_artifact(path, "perf-report", "30433642", "github", labels=["nightly"])  # doctest: +SKIP
    >>> [m.artifact_name for m in handler.list_artifacts(provider_name="github")]  # doctest: +SKIP
    ['perf-report']
    """

    def __init__(self, storage_dir: Path) -> None:
        self.storage_dir = Path(storage_dir)
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._providers: dict[str, CIProvider] = {}

    def __repr__(self) -> str:
        return f"ArtifactHandler(storage_dir={str(self.storage_dir)!r})"

    @property
    def providers(self) -> Mapping[str, CIProvider]:
        """Providers registered by name (read-only): where ``upload_artifact`` sends files."""
        return MappingProxyType(self._providers)

    def register_provider(self, name: str, provider: CIProvider, *, replace: bool = False) -> None:
        """Make ``provider`` available as ``name``; replacing an existing name needs ``replace=True``."""
        if name in self._providers and not replace:
            raise ConfigurationError(f"a CI provider named {name!r} is already registered with this handler")
        self._providers[name] = provider

    def upload_artifact(self, provider_name: str, path: Path, name: str, **options: Any) -> str:
        """Upload a file through a registered provider (where the CI system allows it); returns its location."""
        provider = self._providers.get(provider_name)
        if provider is None:
            known = ", ".join(sorted(self._providers)) or "none"
            raise ConfigurationError(f"no CI provider registered as {provider_name!r} (registered: {known})")
        return provider.upload_artifact(Path(path), name, **options)

    def _folder(self, provider_name: str, test_run_id: str) -> Path:
        return self.storage_dir / safe_filename(provider_name) / safe_filename(str(test_run_id))

    def store_artifact(
        self,
        path: Path,
        artifact_name: str,
        test_run_id: str,
        provider_name: str,
        *,
        labels: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> ArtifactMetadata:
        """Copy ``path`` into storage (atomically) and write its metadata next to it."""
        from tracelet_artifacts.ci.metadata import describe

        folder = self._folder(provider_name, test_run_id)
        folder.mkdir(parents=True, exist_ok=True)
        suffix = "".join(Path(path).suffixes)
        filename = artifact_name if artifact_name.endswith(suffix) else artifact_name + suffix
        dest = folder / safe_filename(filename)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=folder)
        os.close(fd)
        try:
            shutil.copyfile(path, tmp)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        meta = describe(dest, artifact_name, test_run_id=test_run_id, provider_name=provider_name,
                        labels=labels or (), metadata=metadata)
        self._write_metadata(dest, meta)
        return meta

    def _write_metadata(self, dest: Path, meta: ArtifactMetadata) -> None:
        target = dest.with_name(dest.name + METADATA_SUFFIX)
        with self._lock:
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=dest.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(meta.to_dict(), out, indent=2)
            os.replace(tmp, target)

    def list_artifacts(
        self, *, provider_name: str | None = None, test_run_id: str | None = None
    ) -> list[ArtifactMetadata]:
        """Metadata of every stored artifact, optionally of one provider and/or run."""
        from tracelet_artifacts.ci.metadata import ArtifactMetadata

        found = []
        for meta_file in sorted(self.storage_dir.glob(f"*/*/*{METADATA_SUFFIX}")):
            meta = ArtifactMetadata.from_dict(json.loads(meta_file.read_text(encoding="utf-8")))
            if provider_name is not None and meta.provider_name != provider_name:
                continue
            if test_run_id is not None and meta.test_run_id != str(test_run_id):
                continue
            found.append(meta)
        return found

    def get_artifact(self, test_run_id: str, artifact_name: str, provider_name: str) -> ArtifactMetadata | None:
        """The stored artifact's metadata, or None."""
        for meta in self.list_artifacts(provider_name=provider_name, test_run_id=test_run_id):
            if meta.artifact_name == artifact_name:
                return meta
        return None
