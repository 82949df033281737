"""CI artifacts recorded in the embedded store: one catalog, one search for experiments and CI."""

from __future__ import annotations

import json
from pathlib import Path

from tracelet_artifacts.artifact import TraceletArtifact
from tracelet_artifacts.ci.catalog_index import CatalogIndex, catalog_name
from tracelet_artifacts.ci.discovery import ArtifactDiscovery
from tracelet_artifacts.ci.metadata import ArtifactMetadata
from tracelet_artifacts.store.embedded import EmbeddedStore


def perf_report(folder: Path, run: str, fps: float) -> ArtifactMetadata:
    path = folder / run / "perf.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"metrics": {"fps": fps, "latency_ms": 1000 / fps}}))
    meta = ArtifactMetadata("perf.json", path, run, "github", created_at=f"2026-11-{10 + int(run[-1]):02d}T00:00:00Z")
    meta.add_label("nightly")
    meta.add_metadata("branch", "main")
    return meta


def test_ci_artifacts_are_found_through_the_catalog_with_operators_and_content(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "store")
    index = CatalogIndex(store)
    index.add(perf_report(tmp_path, "run-1", 25.0), perf_report(tmp_path, "run-2", 40.0))
    found = ArtifactDiscovery(index).discover_artifacts(
        artifact_type="perf_report", labels=["nightly"], metadata_query={"branch": "main"},
        content_query={"metrics.fps": ">30"})
    assert [(m.test_run_id, m.content_value("metrics.fps")) for m in found] == [("run-2", 40.0)]
    assert found[0].validate()  # the content is served from the store's blob, digest intact


def test_one_catalog_search_covers_experiment_and_ci_artifacts(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "store")
    meta = perf_report(tmp_path, "run-1", 30.0)
    (tmp_path / "model.pt").write_bytes(b"weights")
    store.log(TraceletArtifact("classifier", "model", labels=["nightly"]).add_file(tmp_path / "model.pt"))
    CatalogIndex(store).add(meta)
    names = [r.name for r in store.catalog.search(labels=["nightly"])]
    assert names == [catalog_name(meta), "classifier"] and catalog_name(meta) == "ci/github/run-1/perf.json"
    assert [r.name for r in store.catalog.search(labels=["ci"])] == [catalog_name(meta)]


def test_adding_the_same_ci_artifact_again_creates_no_new_version(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "store")
    index = CatalogIndex(store)
    meta = perf_report(tmp_path, "run-1", 30.0)
    first, again = index.add(meta)[0], index.add(meta)[0]
    assert (again.version, again.created) == (first.version, False)
    assert len(ArtifactDiscovery(index).discover_artifacts(artifact_type="perf_report")) == 1
