"""The catalog's browsing pages (store/listing.py): filters hold for one version of a name, pages are stable,
and a catalog written before the browsing indexes gains them when opened."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from tracelet_artifacts.artifact import TraceletArtifact
from tracelet_artifacts.store.catalog import Catalog
from tracelet_artifacts.store.embedded import EmbeddedStore
from tracelet_artifacts.store.listing import ArtifactFilter
from tracelet_artifacts.store.migrations import MIGRATIONS, SCHEMA_VERSION


def test_version_filters_must_hold_for_one_and_the_same_version(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "s", fsync=False)
    store.log(TraceletArtifact("mixed", "dataset", labels=["gold"]).add_object({"v": 1}, "a"))
    store.log(TraceletArtifact("mixed", "model").add_object({"v": 2}, "a"))
    store.log(TraceletArtifact("pure", "model", labels=["gold"]).add_object({"v": 3}, "a"))
    names = [s.name for s in store.catalog.artifact_page(ArtifactFilter(artifact_type="model", label="gold"))]
    assert names == ["pure"]
    assert [s.name for s in store.catalog.artifact_page(ArtifactFilter(label="gold"))] == ["mixed", "pure"]
    assert store.catalog.count_artifacts(ArtifactFilter(artifact_type="dataset")) == 1
    later = time.time() + 3600
    assert store.catalog.count_artifacts(ArtifactFilter(since=later)) == 0
    assert store.catalog.count_artifacts(ArtifactFilter(until=later)) == 2


def test_version_page_is_newest_first_and_counts_all(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "s", fsync=False)
    for i in range(7):
        store.log(TraceletArtifact("many", "config").add_object({"i": i}, "cfg"))
    total, page = store.catalog.version_page("many", offset=5, limit=5)
    assert total == 7 and [v.version for v in page] == [2, 1]
    assert store.catalog.version_page("absent") == (0, [])


def test_a_catalog_from_before_the_browsing_indexes_gains_them_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    with sqlite3.connect(path) as db:  # as schema v1 left it
        db.executescript(MIGRATIONS[1]["sqlite"])
        db.execute("CREATE TABLE schema_info (version INTEGER NOT NULL)")
        db.execute("INSERT INTO schema_info VALUES (1)")
    Catalog(path).close()
    with sqlite3.connect(path) as db:
        indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        version = db.execute("SELECT version FROM schema_info").fetchone()[0]
    assert {"versions_type_artifact", "versions_created_artifact", "versions_id_artifact", "labels_version"} <= indexes
    assert "versions_type" not in indexes and version == SCHEMA_VERSION
