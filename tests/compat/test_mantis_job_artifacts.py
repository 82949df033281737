"""The Mantis JobArtifact registry document ("JobArtifact Handling in Mantis"), its registry examples run here.

The document's examples are REST calls to Mantis's ``/api/v1/jobArtifacts``; each test quotes one (as a
comment, verbatim) and makes the same request of the store here: the Python call and, where the document
lists or searches, the ``tracelet-artifacts`` command. The JobArtifact JSON of the document is the fixture
``job_artifact``; tags are the version's metadata, ``version`` a version name beside the store's number.
What the document calls a hazard (an upsert that silently replaces a name+version) is refused here with
an error that says how to publish the change as a new version.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tracelet_artifacts import ArtifactType, TraceletArtifact, VersionConflictError
from tracelet_artifacts.cli import main
from tracelet_artifacts.store.embedded import EmbeddedStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    opened = EmbeddedStore(tmp_path / "registry")
    yield opened
    opened.close()


@pytest.fixture
def job_artifact() -> dict[str, Any]:
    """The document's JobArtifact Data Structure."""
    return {
        "artifactID": "artifact-123",
        "name": "my-app",
        "version": "1.0.0",
        "createdAt": "2023-10-01T12:00:00Z",
        "runtimeType": "spring-boot",
        "dependencies": {
            "mantis-runtime": "1.0.0"
        },
        "entrypoint": "com.example.MyApp",
        "tags": {
            "jdkVersion": "17",
            "sbnVersion": "2.7.0",
            "environment": "production"
        }
    }


def register(store: EmbeddedStore, job: dict[str, Any]) -> Any:
    """POST /api/v1/jobArtifacts: the JobArtifact's fields as metadata, its version as the version name."""
    fields = {k: v for k, v in job.items() if k not in ("name", "version", "artifactID", "createdAt")}
    artifact = TraceletArtifact(job["name"], ArtifactType.CODE, metadata=fields)
    artifact.add_object({"entrypoint": job.get("entrypoint")}, "job")
    return store.log(artifact, version=job["version"])


def ls(store: EmbeddedStore, *args: str) -> str:
    result = CliRunner().invoke(main, ["ls", *args, "--store", str(store.root)])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_registering_a_job_artifact_keeps_its_version_and_tags(store: EmbeddedStore,
                                                                job_artifact: dict[str, Any]) -> None:
    # POST /api/v1/jobArtifacts - Register New Job Artifact
    record = register(store, job_artifact)
    assert (record.name, record.version_name, record.ref) == ("my-app", "1.0.0", "my-app:v1")
    assert record.manifest.metadata["tags"]["jdkVersion"] == "17"
    assert record.manifest.metadata["dependencies"] == {"mantis-runtime": "1.0.0"}


def test_search_all_artifacts_with_a_specific_name(store: EmbeddedStore, job_artifact: dict[str, Any]) -> None:
    register(store, job_artifact)
    register(store, {**job_artifact, "version": "1.1.0", "entrypoint": "com.example.MyApp2"})
    register(store, {**job_artifact, "name": "my-app-2"})

    # Search all artifacts with a specific name
    # GET /api/v1/jobArtifacts?name=my-job-artifact
    found = store.catalog.versions("my-app")

    assert [v.version_name for v in found] == ["1.0.0", "1.1.0"]
    listed = ls(store, "my-app")
    assert "v1 (1.0.0)" in listed and "v2 (1.1.0)" in listed and "my-app-2" not in listed


def test_search_for_a_specific_version(store: EmbeddedStore, job_artifact: dict[str, Any]) -> None:
    register(store, job_artifact)
    register(store, {**job_artifact, "version": "1.1.0", "entrypoint": "com.example.MyApp2"})

    # Search for a specific version
    # GET /api/v1/jobArtifacts?name=my-job-artifact&version=1.0.0
    found = store.get("my-app", "1.0.0")

    assert found.version_name == "1.0.0" and found.version == 1
    shown = CliRunner().invoke(main, ["show", "my-app:1.0.0", "--store", str(store.root)])
    assert shown.exit_code == 0 and shown.stdout.startswith("my-app:v1 (1.0.0)")


def test_list_artifact_names_by_prefix_and_by_contains(store: EmbeddedStore, job_artifact: dict[str, Any]) -> None:
    for name in ("my-app", "my-streaming-job", "other-streaming-job", "batch"):
        register(store, {**job_artifact, "name": name})

    # List all artifact names starting with "my-"
    # GET /api/v1/jobArtifacts/names?prefix=my-
    assert store.catalog.names(prefix="my-") == ["my-app", "my-streaming-job"]

    # List all artifact names containing "streaming"
    # GET /api/v1/jobArtifacts/names?contains=streaming
    assert store.catalog.names(contains="streaming") == ["my-streaming-job", "other-streaming-job"]

    assert "batch" not in ls(store, "--prefix", "my-") and "my-app" not in ls(store, "--contains", "streaming")


def test_the_accidental_overwrite_is_refused_and_says_how_to_publish_the_change(
    store: EmbeddedStore, job_artifact: dict[str, Any]
) -> None:
    # First submission
    # POST /api/v1/jobArtifacts {"name": "my-app", "version": "1.0.0", "tags": {"jdkVersion": "11"}}
    register(store, {"name": "my-app", "version": "1.0.0", "tags": {"jdkVersion": "11"}})

    # Later submission - OVERWRITES the first one (in Mantis)
    # POST /api/v1/jobArtifacts {"name": "my-app", "version": "1.0.0", "tags": {"jdkVersion": "17"}}
    with pytest.raises(VersionConflictError) as refused:
        register(store, {"name": "my-app", "version": "1.0.0", "tags": {"jdkVersion": "17"}})

    assert "my-app 1.0.0 (v1) already holds the same files with different metadata" in str(refused.value)
    assert "log it under a new version name (e.g. version='1.0.1')" in str(refused.value)
    assert store.get("my-app", "1.0.0").manifest.metadata["tags"] == {"jdkVersion": "11"}  # original kept
    published = register(store, {"name": "my-app", "version": "1.0.1", "tags": {"jdkVersion": "17"}})
    assert (published.ref, published.version_name) == ("my-app:v2", "1.0.1")


@pytest.mark.parametrize(("second", "result"), [
    ({"version": "1.0.0", "entrypoint": "com.example.Other"}, "refused"),   # same name + same version
    ({"version": "1.0.0"}, "same version"),                                 # ... with the same content
    ({"version": "2.0.0", "entrypoint": "com.example.Other"}, "new version"),  # same name + different version
    ({"name": "other-app", "version": "2.0.0"}, "new artifact"),            # different name + different version
])  # fmt: skip
def test_the_override_scenarios(store: EmbeddedStore, job_artifact: dict[str, Any], second: dict[str, Any],
                                result: str) -> None:
    register(store, job_artifact)
    if result == "refused":
        with pytest.raises(VersionConflictError, match="is immutable and is never overwritten"):
            register(store, {**job_artifact, **second})
        return
    record = register(store, {**job_artifact, **second})
    expected = {"same version": ("my-app", 1, False), "new version": ("my-app", 2, True),
                "new artifact": ("other-app", 1, True)}[result]
    assert (record.name, record.version, record.created) == expected


def test_check_existence_before_submitting(store: EmbeddedStore, job_artifact: dict[str, Any]) -> None:
    # Best Practices: 2. Check existence before submitting if override is unintended
    # isArtifactExists(String resourceId)
    from tracelet_artifacts.errors import ArtifactStoreNotFoundError

    register(store, job_artifact)

    def exists(name: str, version: str) -> bool:
        try:
            store.get(name, version)
        except ArtifactStoreNotFoundError:
            return False
        return True

    assert exists("my-app", "1.0.0") and not exists("my-app", "1.0.1") and not exists("other", "1.0.0")


def test_artifacts_persist_and_every_version_stays_addressable(tmp_path: Path, job_artifact: dict[str, Any]) -> None:
    # "JobArtifacts persist indefinitely": here too, across processes (a reopened store)
    first = EmbeddedStore(tmp_path / "registry")
    register(first, job_artifact)
    first.close()
    reopened = EmbeddedStore(tmp_path / "registry")
    assert reopened.get("my-app", "v1.0.0").manifest.metadata["entrypoint"] == "com.example.MyApp"
    reopened.close()
