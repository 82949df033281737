"""Version names: ``log_artifact(art, version="1.2.0")`` records an immutable name beside the version number,
accepted wherever ``v3`` is (store, experiment, CLI); other content under an existing name is refused with a
message saying how to publish it as a new version; names never take an alias's spelling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tracelet_artifacts import Experiment, TraceletArtifact
from tracelet_artifacts.cli import main
from tracelet_artifacts.errors import (
    ArtifactError,
    ArtifactStoreError,
    ArtifactStoreNotFoundError,
    InvalidVersionError,
    VersionConflictError,
)
from tracelet_artifacts.store.embedded import EmbeddedStore
from tracelet_artifacts.version_names import next_version_name, split_version

pytestmark = pytest.mark.usefixtures("isolated")


def app(value: int, **metadata: object) -> TraceletArtifact:
    return TraceletArtifact("my-app", "code", metadata=metadata).add_object({"build": value}, "app")


@pytest.fixture
def store(isolated: Path) -> EmbeddedStore:
    return EmbeddedStore(isolated / ".tracelet")


def test_a_version_name_sits_beside_the_number(store: EmbeddedStore) -> None:
    first = store.log(app(1), version="1.0.0")
    second = store.log(app(2), version="1.1.0")
    assert (first.ref, first.version_name, second.ref, second.version_name) == (
        "my-app:v1", "1.0.0", "my-app:v2", "1.1.0")
    assert [v.named_label for v in store.catalog.versions("my-app")] == ["v1 (1.0.0)", "v2 (1.1.0)"]


@pytest.mark.parametrize("asked", ["1.0.0", "v1.0.0", "V1.0.0"])
def test_a_version_is_found_by_its_name_with_or_without_a_leading_v(store: EmbeddedStore, asked: str) -> None:
    store.log(app(1), version="v1.0.0")
    store.log(app(2))
    assert store.get("my-app", asked).version == 1


def test_numbers_and_aliases_still_resolve_as_before(store: EmbeddedStore) -> None:
    store.log(app(1), version="1.0.0")
    store.log(app(2), version="2.0.0")
    assert store.get("my-app", "v1").version_name == "1.0.0"
    assert store.get("my-app", 2).version_name == "2.0.0"
    assert store.get("my-app", "latest").version == 2


def test_the_same_content_under_the_same_name_returns_that_version(store: EmbeddedStore) -> None:
    store.log(app(1), version="1.0.0")
    again = store.log(app(1), version="1.0.0")
    assert (again.version, again.created) == (1, False)


def test_other_content_under_an_existing_name_is_refused_and_says_how_to_publish_it(store: EmbeddedStore) -> None:
    store.log(app(1), version="1.0.0")
    with pytest.raises(VersionConflictError) as err:
        store.log(app(2), version="1.0.0")
    message = str(err.value)
    assert "my-app 1.0.0 (v1) already holds different content" in message
    assert "never overwritten" in message and "version='1.0.1'" in message and "make it v2" in message
    assert [v.version for v in store.catalog.versions("my-app")] == [1]


def test_the_same_files_with_other_metadata_under_an_existing_name_is_refused(store: EmbeddedStore) -> None:
    store.log(app(1, tags={"jdkVersion": "11"}), version="1.0.0")
    with pytest.raises(VersionConflictError, match="the same files with different metadata"):
        store.log(app(1, tags={"jdkVersion": "17"}), version="1.0.0")
    assert store.get("my-app", "1.0.0").manifest.metadata["tags"]["jdkVersion"] == "11"


def test_a_new_name_goes_on_the_identical_unnamed_version(store: EmbeddedStore) -> None:
    store.log(app(1))
    named = store.log(app(1), version="1.0.0")
    assert (named.version, named.created, named.version_name) == (1, False, "1.0.0")


def test_identical_content_released_again_under_another_name_is_a_new_version(store: EmbeddedStore) -> None:
    store.log(app(1), version="1.0.0")
    again = store.log(app(1), version="1.0.1")
    assert (again.version, again.created, again.version_name) == (2, True, "1.0.1")
    assert store.get("my-app", "1.0.0").version == 1  # the first name stays where it was


def test_the_builder_carries_its_version_name(store: EmbeddedStore) -> None:
    artifact = app(1)
    artifact.version = "2.0.0-rc1"
    assert store.log(artifact).version_name == "2.0.0-rc1"
    assert store.log(TraceletArtifact("other", "code", version="1.0").add_object({}, "x")).version_name == "1.0"


@pytest.mark.parametrize("bad", ["best", "latest", "1 0", "a:b", "x@1", "", "v0", 0, -3])
def test_a_malformed_version_is_refused_at_the_builder(bad: object) -> None:
    with pytest.raises(InvalidVersionError):
        TraceletArtifact("x", "code", version=bad)  # type: ignore[arg-type]
    assert issubclass(InvalidVersionError, ArtifactError) and issubclass(InvalidVersionError, ArtifactStoreError)


def test_a_malformed_version_leaves_nothing_in_the_store(store: EmbeddedStore) -> None:
    with pytest.raises(InvalidVersionError, match="for a name that moves, such as 'best', set an alias"):
        store.log(app(1), version="prod")
    assert store.catalog.names() == []


def test_names_and_aliases_never_share_a_spelling(store: EmbeddedStore) -> None:
    store.log(app(1), version="1.0.0")
    store.log(app(2))
    store.catalog.set_alias("my-app", "candidate-2", "v2")
    with pytest.raises(ArtifactStoreError, match="an alias cannot take a version name's spelling"):
        store.catalog.set_alias("my-app", "1.0.0", "v2")
    with pytest.raises(ArtifactStoreError, match="a version name cannot take an alias's spelling"):
        store.log(app(3), version="candidate-2")


def test_latest_cannot_be_moved_by_hand(store: EmbeddedStore) -> None:
    store.log(app(1))
    store.log(app(2))
    with pytest.raises(ArtifactStoreError, match="'latest' is the store's own alias"):
        store.catalog.set_alias("my-app", "latest", "v1")
    assert store.get("my-app").version == 2


def test_a_missing_name_lists_the_versions_with_their_names(store: EmbeddedStore) -> None:
    store.log(app(1), version="1.0.0")
    with pytest.raises(ArtifactStoreNotFoundError, match=r"no version name or alias '1.2.0'; .*v1 \(1.0.0\)"):
        store.get("my-app", "1.2.0")


def test_the_experiment_logs_and_gets_by_version_name(isolated: Path) -> None:
    with Experiment("run") as exp:
        exp.log_artifact(app(1), version="1.2.0")
        exp.log_artifact(app(2))
        assert exp.get_artifact("my-app", version="v1.2.0").version == 1
        with pytest.raises(VersionConflictError):
            exp.log_artifact(app(3), version="1.2.0")


def test_the_cli_shows_and_fetches_by_version_name(store: EmbeddedStore, isolated: Path) -> None:
    store.log(app(1), version="1.0.0")
    store.log(app(2), version="1.1.0")
    root = str(store.root)
    shown = CliRunner().invoke(main, ["show", "my-app:1.0.0", "--store", root])
    assert shown.exit_code == 0 and shown.stdout.startswith("my-app:v1 (1.0.0)")
    assert "versions: v1 (1.0.0), v2 (1.1.0)" in shown.stdout
    listed = CliRunner().invoke(main, ["ls", "--all-versions", "--store", root])
    assert "v1 (1.0.0)" in listed.stdout and "v2 (1.1.0)" in listed.stdout
    got = CliRunner().invoke(main, ["get", "my-app:v1.1.0", str(isolated / "out"), "--store", root])
    assert got.exit_code == 0 and json.loads((isolated / "out" / "app.json").read_text()) == {"build": 2}
    missing = CliRunner().invoke(main, ["show", "my-app:9.9.9", "--store", root])
    assert missing.exit_code == 1 and "no version name or alias '9.9.9'" in missing.stderr


def test_the_catalog_of_an_older_release_gains_version_names_when_opened(isolated: Path) -> None:
    import sqlite3

    path = isolated / "old"
    EmbeddedStore(path).log(app(1)).version  # noqa: B018
    with sqlite3.connect(path / "catalog.db") as db:  # as schema v2 left it
        db.execute("DROP INDEX versions_name")
        db.execute("ALTER TABLE versions DROP COLUMN version_name")
        db.execute("DROP INDEX versions_not_durable")  # nor durability (v7)
        db.execute("ALTER TABLE versions DROP COLUMN durability")
        db.execute("ALTER TABLE versions DROP COLUMN durability_detail")
        db.execute("DROP TABLE blob_digests")
        db.execute("UPDATE schema_info SET version=2")
    reopened = EmbeddedStore(path)
    assert reopened.get("my-app").version_name is None
    assert reopened.log(app(2), version="1.0.0").version_name == "1.0.0"


def test_split_version_and_the_suggested_next_name() -> None:
    assert split_version("v1.2.0") == (None, "1.2.0") and split_version("v3") == (3, None)
    assert split_version(4) == (4, None) and split_version(None) == (None, None)
    assert [next_version_name(n) for n in ("1.2.0", "rc1", "2024-06-09", "1.0.0+build")] == [
        "1.2.1", "rc2", "2024-06-10", "1.0.1+build"]


def test_a_catalog_the_release_with_empty_migrations_3_and_4_stamped_v5_gains_names_and_durability(
        isolated: Path) -> None:
    import sqlite3

    path = isolated / "released"
    EmbeddedStore(path).log(app(1)).version  # noqa: B018
    with sqlite3.connect(path / "catalog.db") as db:  # as that release left it: lineage (v5), nothing of 6 or 7
        db.execute("DROP INDEX versions_name")
        db.execute("ALTER TABLE versions DROP COLUMN version_name")
        db.execute("DROP INDEX versions_not_durable")
        db.execute("ALTER TABLE versions DROP COLUMN durability")
        db.execute("ALTER TABLE versions DROP COLUMN durability_detail")
        db.execute("DROP TABLE blob_digests")
        db.execute("UPDATE schema_info SET version=5")
    reopened = EmbeddedStore(path)
    assert reopened.get("my-app").version == 1
    second = reopened.log(app(2), version="1.0.0")
    assert second.version_name == "1.0.0"
    with sqlite3.connect(path / "catalog.db") as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(versions)")}
        assert {"version_name", "durability", "durability_detail"} <= columns
        assert db.execute("SELECT version FROM schema_info").fetchone()[0] == 7
