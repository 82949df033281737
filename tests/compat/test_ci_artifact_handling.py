"""The "Enhanced Artifact Handling System" document of the CI artifact handling system, run as written.

Each test is one example of the published document, verbatim except for the package
(``distributed_testing.ci`` -> ``tracelet_artifacts.ci``) and the placeholder path ``/path/to/report.json``,
which is a file the fixture writes. What the document assumes exists (``all_artifacts``, ``perf_artifacts``,
``github_client``, ``gitlab_client``) is built by fixtures: the clients are the real providers, talking to a
loopback server that speaks GitHub's and GitLab's REST formats. Top-level ``await`` runs in ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from helpers_archives import make_zip
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tracelet_artifacts.ci import (
    ArtifactDiscovery,
    ArtifactMetadata,
    ArtifactRetriever,
    CIProviderInterface,
    GitHubActionsProvider,
    GitLabProvider,
    get_artifact_handler,
    get_artifact_retriever,
    initialize_artifact_systems,
)
from tracelet_artifacts.ci.retriever import RetrievalResult
from tracelet_artifacts.retry import RetryPolicy

NOW = datetime.now(timezone.utc)
FAST = RetryPolicy(max_attempts=2, backoff_s=0.0, jitter=0.0)

# What the fake CI systems hold: GitHub runs test-123 and test-456, GitLab pipeline test-456.
GITHUB = {
    ("test-123", "performance_report.json"): ({"metrics": {"throughput": 1250.5, "latency": 8.0}}, 3),
    ("test-123", "metrics.json"): ({"metrics": {"throughput": 1190.0, "latency": 9.5}}, 2),
    ("test-123", "logs.txt"): ("collected 10 items\n10 passed\n", 2),
    ("test-123", "report.json"): ({"summary": {"passed": 10, "failed": 0}, "duration": 12.5}, 2),
    ("test-456", "report.json"): ({"summary": {"passed": 9, "failed": 1}, "duration": 14.0}, 1),
}
GITLAB = {("test-456", "report.json"): {"summary": {"passed": 7, "failed": 0}, "duration": 30.0}}


def _zip(name: str, content: Any) -> bytes:
    return make_zip({name: (content if isinstance(content, str) else json.dumps(content)).encode()})


def _serve_github(server: HTTPServer) -> None:
    artifacts = {i: (run, name, _zip(name, content), NOW - timedelta(days=age))
                 for i, ((run, name), (content, age)) in enumerate(GITHUB.items(), start=1)}  # fmt: skip

    def listing(request: Request) -> Response:
        run = request.path.split("/runs/")[1].split("/")[0]
        items = [{"id": i, "name": name, "size_in_bytes": len(body), "expired": False,
                  "archive_download_url": server.url_for(f"/repos/owner/repo/actions/artifacts/{i}/zip"),
                  "created_at": when.isoformat().replace("+00:00", "Z")}
                 for i, (r, name, body, when) in artifacts.items()
                 if r == run and request.args.get("name") in (None, name)]  # fmt: skip
        return Response(json.dumps({"total_count": len(items), "artifacts": items}), content_type="application/json")

    def download(request: Request) -> Response:
        artifact_id = int(request.path.split("/")[-2])
        return Response(status=302, headers={"Location": server.url_for(f"/blobs/{artifact_id}")})

    def blob(request: Request) -> Response:
        return Response(artifacts[int(request.path.rsplit("/", 1)[1])][2], content_type="application/zip")

    server.expect_request(re.compile(r"/repos/owner/repo/actions/runs/[^/]+/artifacts$")).respond_with_handler(listing)
    server.expect_request(re.compile(r"/repos/owner/repo/actions/artifacts/\d+/zip")).respond_with_handler(download)
    server.expect_request(re.compile(r"/blobs/\d+")).respond_with_handler(blob)


def _serve_gitlab(server: HTTPServer) -> None:
    for job_id, ((pipeline, job), content) in enumerate(GITLAB.items(), start=70):
        body = _zip(job, content)
        server.expect_request(f"/api/v4/projects/group/project/pipelines/{pipeline}/jobs").respond_with_json(
            [{"id": job_id, "name": job, "stage": "test", "status": "success",
              "created_at": NOW.isoformat(), "finished_at": NOW.isoformat(),
              "artifacts_file": {"filename": "artifacts.zip", "size": len(body)},
              "artifacts_expire_at": (NOW + timedelta(days=30)).isoformat()}]
        )  # fmt: skip
        server.expect_request(f"/api/v4/projects/group/project/jobs/{job_id}/artifacts").respond_with_data(
            body, content_type="application/zip"
        )


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The document's relative folders (./artifacts, ./artifact_cache) land in an empty folder."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def github_client(httpserver: HTTPServer) -> Iterator[GitHubActionsProvider]:
    _serve_github(httpserver)
    with GitHubActionsProvider("owner/repo", token="gh-token", base_url=httpserver.url_for("/").rstrip("/"),
                               retry=FAST) as client:  # fmt: skip
        yield client


@pytest.fixture
def gitlab_client(httpserver: HTTPServer) -> Iterator[GitLabProvider]:
    _serve_gitlab(httpserver)
    with GitLabProvider("group/project", token="gl-token", base_url=httpserver.url_for("/api/v4"),
                        retry=FAST) as client:  # fmt: skip
        yield client


def _write(folder: Path, name: str, content: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


@pytest.fixture
def report_file(tmp_path: Path) -> str:
    """The file the document calls ``/path/to/report.json``."""
    return str(_write(tmp_path / "path" / "to", "report.json", {"tests": 12, "passed": 12, "duration": 3.5}))


@pytest.fixture
def all_artifacts(tmp_path: Path) -> list[ArtifactMetadata]:
    """Three nightly performance reports, a JUnit report and a log, labelled and annotated."""
    runs = [("nightly-1", 1250.5, "linux"), ("nightly-2", 1190.0, "linux"), ("nightly-3", 1250.5, "windows")]
    found = []
    for day, (run, throughput, platform) in enumerate(runs, start=1):
        content = {"metrics": {"throughput": throughput, "latency": 8.0 + day, "memory_usage": 500 + day}}
        meta = ArtifactMetadata(artifact_name=f"{run}_perf.json", artifact_path=_write(tmp_path / run, "perf.json",
                                content), test_run_id=run, provider_name="github",
                                created_at=datetime(2026, 3, day, tzinfo=timezone.utc))  # fmt: skip
        meta.add_label("performance")
        meta.add_label("regression-test")
        meta.add_metadata("platform", platform)
        found.append(meta)
    junit = _write(tmp_path / "nightly-3", "results.xml",
                   '<testsuite tests="3" failures="0" errors="0" skipped="0"><testcase name="a"/></testsuite>')
    found.append(ArtifactMetadata(artifact_name="junit.xml", artifact_path=junit, test_run_id="nightly-3",
                                  provider_name="github"))  # fmt: skip
    log = _write(tmp_path / "nightly-3", "build.log", "compiling\ndone\n")
    found.append(ArtifactMetadata(artifact_name="build.log", artifact_path=log, test_run_id="nightly-3",
                                  provider_name="github"))  # fmt: skip
    return found


@pytest.fixture
def perf_artifacts(all_artifacts: list[ArtifactMetadata]) -> list[ArtifactMetadata]:
    return [a for a in all_artifacts if a.artifact_type == "performance_report"]


def test_metadata_is_detected_labelled_annotated_and_validated(
    report_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Create artifact metadata with automatic type detection
    metadata = ArtifactMetadata(
        artifact_name="test_report.json",
        artifact_path=report_file,  # the document's "/path/to/report.json"
        test_run_id="test-123",
        provider_name="github"
    )

    # Add custom labels
    metadata.add_label("performance")
    metadata.add_label("regression-test")

    # Add custom metadata
    metadata.add_metadata("version", "1.0")
    metadata.add_metadata("platform", "linux")

    # Check if metadata is valid
    if metadata.validate():
        print("Artifact is valid!")

    assert capsys.readouterr().out == "Artifact is valid!\n"
    assert metadata.artifact_type == "test_report" and metadata.mime_type == "application/json"
    assert metadata.labels == {"performance", "regression-test"}
    assert metadata.metadata == {"version": "1.0", "platform": "linux"}
    assert metadata.content_value("passed") == 12


def test_discovery_is_called_on_the_class_with_the_documents_type_names(
    all_artifacts: list[ArtifactMetadata], perf_artifacts: list[ArtifactMetadata]
) -> None:
    # Discover artifacts matching criteria
    matching_artifacts = ArtifactDiscovery.discover_artifacts(
        artifacts=all_artifacts,
        artifact_type="performance_report",
        labels=["regression-test"],
        metadata_query={"platform": "linux"},
        content_query={"metrics.throughput": 1250.5}
    )

    # Group artifacts by type
    grouped_artifacts = ArtifactDiscovery.group_artifacts_by_type(all_artifacts)

    # Find latest artifact of a specific type
    latest_perf_report = ArtifactDiscovery.find_latest_artifact(
        artifacts=all_artifacts,
        artifact_type="performance_report"
    )

    # Extract metrics from multiple artifacts
    metrics = ArtifactDiscovery.extract_metrics_from_artifacts(
        artifacts=perf_artifacts,
        metric_names=["throughput", "latency", "memory_usage"]
    )

    assert [a.test_run_id for a in matching_artifacts] == ["nightly-1"]  # linux, and 1250.5
    assert {kind: len(items) for kind, items in grouped_artifacts.items()} == {
        "performance_report": 3, "test_report": 1, "test_log": 1}
    assert latest_perf_report is not None and latest_perf_report.test_run_id == "nightly-3"
    assert [p.value for p in metrics["throughput"]] == [1250.5, 1190.0, 1250.5]  # oldest first
    assert [p.value for p in metrics["latency"]] == [9.0, 10.0, 11.0]
    assert [p.value for p in metrics["memory_usage"]] == [501, 502, 503]


def test_retriever_retrieves_caches_batches_trends_and_compares(
    workdir: Path, github_client: GitHubActionsProvider, gitlab_client: GitLabProvider, httpserver: HTTPServer
) -> None:
    async def document() -> tuple[Any, ...]:
        # Create artifact retriever with custom settings
        retriever = ArtifactRetriever(
            cache_dir="./artifact_cache",
            max_cache_size_mb=1024,
            max_cache_age_days=7
        )

        # Register CI providers
        retriever.register_provider("github", github_client)
        retriever.register_provider("gitlab", gitlab_client)

        # Retrieve an artifact with caching
        artifact_path, artifact_metadata = await retriever.retrieve_artifact(
            test_run_id="test-123",
            artifact_name="performance_report.json",
            provider_name="github",
            use_cache=True
        )

        # Batch retrieve multiple artifacts in parallel
        artifacts_to_retrieve = [
            {"test_run_id": "test-123", "artifact_name": "logs.txt", "provider_name": "github"},
            {"test_run_id": "test-123", "artifact_name": "metrics.json", "provider_name": "github"},
            {"test_run_id": "test-456", "artifact_name": "report.json", "provider_name": "gitlab"}
        ]

        results = await retriever.retrieve_artifacts_batch(artifacts_to_retrieve)

        # Analyze performance metrics trend
        trend = await retriever.analyze_metrics_trend(
            provider_name="github",
            artifact_type="performance_report",
            metric_name="throughput",
            days=30
        )

        # Compare two versions of an artifact
        comparison = await retriever.compare_artifacts(
            artifact1={"test_run_id": "test-123", "artifact_name": "report.json", "provider_name": "github"},
            artifact2={"test_run_id": "test-456", "artifact_name": "report.json", "provider_name": "github"}
        )
        again = await retriever.retrieve_artifact(test_run_id="test-123", artifact_name="performance_report.json",
                                                  provider_name="github", use_cache=True)  # fmt: skip
        retriever.close()
        return artifact_path, artifact_metadata, results, trend, comparison, again

    artifact_path, artifact_metadata, results, trend, comparison, again = asyncio.run(document())

    assert artifact_path.resolve().is_relative_to(workdir.resolve() / "artifact_cache")
    assert artifact_metadata.artifact_type == "performance_report"
    assert artifact_metadata.content_value("metrics.throughput") == 1250.5
    assert [r.ok for r in results] == [True, True, True] and all(isinstance(r, RetrievalResult) for r in results)
    assert results[2].metadata is not None and results[2].metadata.content_value("duration") == 30.0
    assert trend.metric_name == "throughput" and [p.value for p in trend.points] == [1250.5, 1190.0]
    assert comparison.kind == "json" and comparison.metric_deltas["duration"].after == 14.0
    assert comparison.changed["summary.failed"] == {"before": 0, "after": 1}
    assert again[0] == artifact_path  # served from the cache: the blob was fetched once
    assert len([r for r, _ in httpserver.log if r.path.startswith("/blobs/")]) == 5


def test_initialize_all_components_together(workdir: Path) -> None:
    async def document() -> Any:
        # Define provider configurations
        provider_configs = {
            "github": {
                "token": "github_token",
                "repository": "owner/repo",
                "commit_sha": "abcdef123456"
            },
            "gitlab": {
                "token": "gitlab_token",
                "project": "group/project"
            }
        }

        # Initialize all systems with providers
        providers = await initialize_artifact_systems(
            provider_configs=provider_configs,
            artifact_handler_storage_dir="./artifacts",
            artifact_retriever_cache_dir="./artifact_cache"
        )

        # Now you can use the providers
        github_provider = providers["github"]
        gitlab_provider = providers["gitlab"]

        # And artifact systems are already set up with these providers
        artifact_handler = get_artifact_handler()
        artifact_retriever = get_artifact_retriever()
        return github_provider, gitlab_provider, artifact_handler, artifact_retriever

    github_provider, gitlab_provider, artifact_handler, artifact_retriever = asyncio.run(document())

    assert isinstance(github_provider, CIProviderInterface) and isinstance(github_provider, GitHubActionsProvider)
    assert github_provider.repo == "owner/repo" and github_provider.commit_sha == "abcdef123456"
    assert isinstance(gitlab_provider, GitLabProvider) and gitlab_provider.project == "group/project"
    assert artifact_handler.storage_dir == Path("./artifacts") and (workdir / "artifacts").is_dir()
    assert artifact_retriever.cache_dir == Path("./artifact_cache")
    assert dict(artifact_retriever.providers) == {"github": github_provider, "gitlab": gitlab_provider}
    assert dict(artifact_handler.providers) == dict(artifact_retriever.providers)
    artifact_retriever.close()
