"""An ArtifactIndex over the embedded store: CI artifacts are recorded as store artifacts (labelled ``ci``), so
one catalog holds experiments' and CI's artifacts and one search (``tracelet-artifacts ls``) covers both.

    index = CatalogIndex(EmbeddedStore.from_settings())   # the local store, or the team's
    index.add(metadata)                                   # content copied into the store, metadata catalogued
    ArtifactDiscovery(index).discover_artifacts(artifact_type="performance_report",
                                                content_query={"metrics.fps": ">30"})

Kind and labels are answered by the catalog's indexed SQL; metadata and content conditions (operators such
as ``>100`` and ``~regex``, dotted paths) are then checked on the rows that remain.
"""

from __future__ import annotations

from typing import Any

from tracelet_artifacts.artifact import ArtifactType, TraceletArtifact, name_segment
from tracelet_artifacts.ci.discovery import ArtifactQuery
from tracelet_artifacts.ci.kinds import CIArtifactKind
from tracelet_artifacts.ci.metadata import ArtifactMetadata
from tracelet_artifacts.store.catalog import ArtifactVersion
from tracelet_artifacts.store.embedded import EmbeddedStore

CI_LABEL = "ci"
KIND_KEY = "ci.kind"
PROVIDER_KEY = "ci.provider"
RUN_KEY = "ci.test_run_id"
RECORD_KEY = "ci.record"


def catalog_name(meta: ArtifactMetadata) -> str:
    """``ci/<provider>/<run>/<artifact>``: one catalog name per CI artifact of a run."""
    return "/".join(name_segment(part) for part in ("ci", meta.provider_name, meta.test_run_id, meta.artifact_name))


class CatalogIndex:
    """Records CI artifacts in the embedded store and answers ArtifactQuery from its catalog."""

    def __init__(self, store: EmbeddedStore) -> None:
        self.store = store

    def add(self, *artifacts: ArtifactMetadata) -> list[ArtifactVersion]:
        """Store each artifact's file (content-addressed, so a re-add stores nothing new) and its metadata."""
        records = []
        for meta in artifacts:
            builder = TraceletArtifact(catalog_name(meta), ArtifactType.REPORT, f"CI artifact {meta.artifact_name}",
                                       labels=[CI_LABEL, *sorted(meta.labels)])
            builder.add_file(meta.artifact_path, name_segment(meta.artifact_path.name))
            plain = {k: v for k, v in meta.metadata.items() if isinstance(v, (str, int, float, bool))}
            builder.metadata.update({**plain, KIND_KEY: meta.artifact_type, PROVIDER_KEY: meta.provider_name,
                                     RUN_KEY: meta.test_run_id, RECORD_KEY: meta.to_dict()})
            records.append(self.store.log(builder))
        return records

    def _metadata_of(self, record: ArtifactVersion) -> ArtifactMetadata:
        """The stored ArtifactMetadata, pointing at the content in the store (so ``validate()`` still holds)."""
        data: dict[str, Any] = dict(record.manifest.metadata[RECORD_KEY])
        data["artifact_path"] = str(self.store.blob_path(record.manifest.entries[0].digest))
        return ArtifactMetadata.from_dict(data)

    def search(self, query: ArtifactQuery) -> list[ArtifactMetadata]:
        """CI artifacts matching the query: the catalog's indexes narrow by kind and labels, then every
        metadata and content condition (operators, dotted paths, record fields) is checked on what remains."""
        labels = [CI_LABEL, *sorted(query.labels)]
        if query.artifact_type:  # stores written before the kinds were renamed hold the earlier name
            spellings = CIArtifactKind.parse(query.artifact_type).spellings
            rows = [row for kind in spellings
                    for row in self.store.catalog.search(labels=labels, metadata={KIND_KEY: kind}, latest_only=True)]
        else:
            rows = self.store.catalog.search(labels=labels, latest_only=True)
        found = (self._metadata_of(row) for row in rows if RECORD_KEY in row.manifest.metadata)
        return [meta for meta in found if query.matches(meta)]
