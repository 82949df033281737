"""ArtifactDiscovery: filtering by type, labels, metadata and content queries; grouping; metric series."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tracelet_artifacts.ci.discovery import ArtifactDiscovery, ArtifactQuery, Condition, InMemoryIndex
from tracelet_artifacts.ci.errors import ArtifactQueryError
from tracelet_artifacts.ci.metadata import ArtifactMetadata


def perf(tmp_path: Path, run: int, throughput: float, branch: str = "main", day: int = 1) -> ArtifactMetadata:
    path = tmp_path / f"perf-{run}.json"
    path.write_text(json.dumps({"metrics": {"throughput": throughput, "latency": {"p50": 10 - run}}, "os": "linux"}))
    meta = ArtifactMetadata("perf", path, str(run), "github", created_at=f"2024-03-{day:02d}T00:00:00Z")
    return meta.add_metadata({"branch": branch, "ci": {"attempt": run % 2 + 1}})


@pytest.fixture
def artifacts(tmp_path: Path) -> list[ArtifactMetadata]:
    junit = tmp_path / "junit.xml"
    junit.write_text('<testsuite tests="5" failures="2"><testcase name="a"/></testsuite>')
    log = tmp_path / "build.log"
    log.write_text("ok\n")
    return [
        perf(tmp_path, 1, 90.0, day=1).add_label("nightly"),
        perf(tmp_path, 2, 120.0, day=3).add_label("nightly", "linux"),
        perf(tmp_path, 3, 150.0, branch="dev", day=2),
        ArtifactMetadata("tests", junit, "2", "gitlab", created_at="2024-03-05T00:00:00Z"),
        ArtifactMetadata("log", log, "2", "gitlab", created_at="2024-03-04T00:00:00Z"),
    ]


def runs(found: list[ArtifactMetadata]) -> list[str]:
    return [meta.test_run_id for meta in found]


def test_filter_by_type_and_labels(artifacts: list[ArtifactMetadata]) -> None:
    discovery = ArtifactDiscovery()
    assert runs(discovery.discover_artifacts(artifacts, artifact_type="perf_report")) == ["1", "2", "3"]
    assert runs(discovery.discover_artifacts(artifacts, labels=["nightly", "linux"])) == ["2"]
    assert len(discovery.discover_artifacts(artifacts, artifact_type="test_results")) == 1


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"metrics.throughput": ">100"}, ["2", "3"]),
        ({"metrics.throughput": ">=120"}, ["2", "3"]),
        ({"metrics.throughput": "<120"}, ["1"]),
        ({"metrics.throughput": "<= 120"}, ["1", "2"]),
        ({"metrics.throughput": "120"}, ["2"]),
        ({"metrics.throughput": 150}, ["3"]),
        ({"metrics.throughput": "!=90"}, ["2", "3"]),
        ({"metrics.latency.p50": [9, 7]}, ["1", "3"]),
        ({"os": "linux", "metrics.throughput": ">100"}, ["2", "3"]),
        ({"os": "~^lin"}, ["1", "2", "3"]),
        ({"metrics.throughput": lambda v: v % 60 == 0}, ["2"]),
        ({"no.such.path": ">0"}, []),
    ],
)
def test_content_query_operators(artifacts: list[ArtifactMetadata], query: dict, expected: list[str]) -> None:
    found = ArtifactDiscovery().discover_artifacts(artifacts, artifact_type="perf_report", content_query=query)
    assert runs(found) == expected


def test_content_query_reaches_junit_counts(artifacts: list[ArtifactMetadata]) -> None:
    found = ArtifactDiscovery().discover_artifacts(artifacts, content_query={"tests.failures": ">0"})
    assert [meta.artifact_name for meta in found] == ["tests"]


def test_metadata_query_uses_user_metadata_then_record_fields(artifacts: list[ArtifactMetadata]) -> None:
    discovery = ArtifactDiscovery()
    assert runs(discovery.discover_artifacts(artifacts, metadata_query={"branch": "main"})) == ["1", "2"]
    assert runs(discovery.discover_artifacts(artifacts, metadata_query={"ci.attempt": 2})) == ["1", "3"]
    since = discovery.discover_artifacts(artifacts, metadata_query={"created_at": ">=2024-03-03T00:00:00Z"})
    assert {meta.artifact_name for meta in since} == {"perf", "tests", "log"} and len(since) == 3
    assert runs(discovery.discover_artifacts(artifacts, metadata_query={"created_at": "<2024-03-02"})) == ["1"]
    gitlab = discovery.discover_artifacts(artifacts, metadata_query={"provider_name": "gitlab"})
    assert {meta.artifact_name for meta in gitlab} == {"tests", "log"}


@pytest.mark.parametrize("spec", [">fast", "<", "~(", ">=2024-13-45"])
def test_bad_query_operands_are_clear_errors(spec: str) -> None:
    with pytest.raises(ArtifactQueryError):
        Condition.parse("metrics.throughput", spec)


def test_discovery_without_artifacts_asks_its_index(artifacts: list[ArtifactMetadata]) -> None:
    discovery = ArtifactDiscovery(InMemoryIndex(artifacts))
    assert runs(discovery.discover_artifacts(content_query={"metrics.throughput": ">100"})) == ["2", "3"]
    with pytest.raises(ArtifactQueryError, match="no index"):
        ArtifactDiscovery().discover_artifacts()


def test_a_custom_index_receives_the_query_as_data(artifacts: list[ArtifactMetadata]) -> None:
    seen: list[ArtifactQuery] = []

    class RecordingIndex:
        def search(self, query: ArtifactQuery) -> list[ArtifactMetadata]:
            seen.append(query)
            return []

    ArtifactDiscovery(RecordingIndex()).discover_artifacts(artifact_type="log", labels=["x"])
    assert seen == [ArtifactQuery(artifact_type="test_log", labels=frozenset({"x"}))]


def test_group_by_type(artifacts: list[ArtifactMetadata]) -> None:
    groups = ArtifactDiscovery.group_artifacts_by_type(artifacts)
    counts = {kind: len(items) for kind, items in groups.items()}
    assert counts == {"performance_report": 3, "test_report": 1, "test_log": 1}


def test_find_latest(artifacts: list[ArtifactMetadata]) -> None:
    latest = ArtifactDiscovery.find_latest_artifact(artifacts, artifact_type="perf_report")
    assert latest is not None and latest.test_run_id == "2"
    assert ArtifactDiscovery.find_latest_artifact(artifacts).artifact_name == "tests"  # type: ignore[union-attr]
    assert ArtifactDiscovery.find_latest_artifact(artifacts, artifact_name="missing") is None


def test_extract_metrics_orders_points_by_time_and_skips_missing(artifacts: list[ArtifactMetadata]) -> None:
    series = ArtifactDiscovery.extract_metrics_from_artifacts(artifacts, ["metrics.throughput", "tests.tests"])
    assert [p.value for p in series["metrics.throughput"]] == [90.0, 150.0, 120.0]  # days 1, 2, 3
    assert [p.test_run_id for p in series["metrics.throughput"]] == ["1", "3", "2"]
    assert [p.value for p in series["tests.tests"]] == [5.0]


def test_a_bare_leaf_metric_name_resolves_to_its_one_dotted_path(artifacts: list[ArtifactMetadata]) -> None:
    series = ArtifactDiscovery.extract_metrics_from_artifacts(artifacts, ["throughput", "p50"])
    assert [p.value for p in series["throughput"]] == [90.0, 150.0, 120.0]
    assert [p.value for p in series["p50"]] == [9.0, 7.0, 8.0]  # metrics.latency.p50


def test_a_metric_no_artifact_holds_names_the_metrics_they_hold(artifacts: list[ArtifactMetadata]) -> None:
    with pytest.raises(ArtifactQueryError, match=r"no metric 'fps' in 5 artifact\(s\).*metrics\.throughput"):
        ArtifactDiscovery.extract_metrics_from_artifacts(artifacts, ["fps"])
    assert ArtifactDiscovery.extract_metrics_from_artifacts([], ["fps"]) == {"fps": []}


def test_a_leaf_name_that_ends_several_paths_is_refused_with_them(tmp_path: Path) -> None:
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"cold": {"time": 2.0}, "warm": {"time": 1.0}}))
    meta = ArtifactMetadata("bench", path, "1", "github")
    with pytest.raises(ArtifactQueryError, match=r"ambiguous: it ends cold\.time, warm\.time"):
        ArtifactDiscovery.extract_metrics_from_artifacts([meta], ["time"])


def test_discovery_on_the_class_needs_artifacts_and_says_so() -> None:
    with pytest.raises(ArtifactQueryError, match="pass artifacts="):
        ArtifactDiscovery.discover_artifacts(artifact_type="test_report")


def test_the_original_type_names_and_the_projects_short_ones_both_work(artifacts: list[ArtifactMetadata]) -> None:
    long = ArtifactDiscovery.discover_artifacts(artifacts=artifacts, artifact_type="performance_report")
    assert runs(long) == runs(ArtifactDiscovery.discover_artifacts(artifacts, artifact_type="perf_report"))
    assert runs(ArtifactDiscovery.discover_artifacts(artifacts, artifact_type="test_results")) == ["2"]
    with pytest.raises(ArtifactQueryError, match="unknown CI artifact type 'perf'; accepted: archive, binary"):
        ArtifactDiscovery.discover_artifacts(artifacts, artifact_type="perf")
