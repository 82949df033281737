"""ArtifactMetadata: detection, hashing, content analysis, labels, validation and dict round trips."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tracelet_artifacts.ci.errors import ArtifactMetadataError
from tracelet_artifacts.ci.metadata import ArtifactMetadata, describe, load_metadata
from tracelet_artifacts.errors import CIError

PERF = {"metrics": {"throughput": 120.5, "latency_ms": 8.25}, "commit": "abc"}


@pytest.fixture
def perf_file(tmp_path: Path) -> Path:
    path = tmp_path / "perf.json"
    path.write_text(json.dumps(PERF))
    return path


def test_metadata_describes_a_json_perf_report(perf_file: Path) -> None:
    meta = ArtifactMetadata("perf-report", perf_file, "run-1", "github")
    assert meta.artifact_type == "performance_report"
    assert meta.mime_type == "application/json"
    assert meta.is_text is True
    assert meta.size_bytes == perf_file.stat().st_size
    assert meta.sha256 == hashlib.sha256(perf_file.read_bytes()).hexdigest()
    assert meta.metrics["metrics.throughput"] == 120.5
    assert meta.content_value("commit") == "abc"
    assert meta.created_at.tzinfo is not None


def test_junit_file_is_test_results_whatever_its_artifact_name(tmp_path: Path) -> None:
    path = tmp_path / "out.xml"
    path.write_text('<testsuite tests="4" failures="1" errors="0" skipped="0"><testcase name="a"/></testsuite>')
    meta = ArtifactMetadata("build-output", path, "17", "jenkins")
    assert meta.artifact_type == "test_report"
    assert meta.content_value("tests.failures") == 1
    assert meta.content_value("format") == "junit"


def test_name_of_the_file_classifies_when_the_artifact_name_says_nothing(tmp_path: Path) -> None:
    path = tmp_path / "live_backing.log"
    path.write_text("INFO started\n")
    assert ArtifactMetadata("public", path, "t1", "taskcluster").artifact_type == "test_log"


def test_explicit_created_at_and_artifact_type_win(perf_file: Path) -> None:
    meta = ArtifactMetadata("x", perf_file, "r", "gitlab", created_at="2024-05-01T10:00:00Z", artifact_type="coverage")
    assert meta.created_at == datetime(2024, 5, 1, 10, tzinfo=timezone.utc)
    assert meta.artifact_type == "coverage_report"


def test_malformed_content_still_yields_metadata_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "perf.json"
    path.write_text('{"metrics": {"throughput": 1')
    meta = ArtifactMetadata("perf", path, "r", "github")
    assert meta.content is None
    assert meta.analysis_error and "not valid JSON" in meta.analysis_error
    assert meta.metrics == {}


def test_missing_file_is_a_ci_error(tmp_path: Path) -> None:
    with pytest.raises(ArtifactMetadataError, match="does not exist"):
        ArtifactMetadata("perf", tmp_path / "nope.json", "r", "github")
    assert issubclass(ArtifactMetadataError, CIError)


def test_labels_and_metadata_chain(perf_file: Path) -> None:
    meta = ArtifactMetadata("perf", perf_file, "r", "github")
    meta.add_label("nightly", "linux").add_metadata("branch", "main").add_metadata({"attempt": 2})
    assert meta.labels == {"nightly", "linux"}
    assert meta.metadata == {"branch": "main", "attempt": 2}
    with pytest.raises(TypeError):
        meta.add_metadata("only-a-key")


def test_validate_detects_missing_and_changed_files(perf_file: Path) -> None:
    meta = ArtifactMetadata("perf", perf_file, "r", "github")
    assert meta.validate()
    perf_file.write_text(json.dumps({**PERF, "commit": "xyz"}))  # same size, different content
    assert not meta.validate()
    perf_file.write_text("{}")
    assert not meta.validate()
    perf_file.unlink()
    assert not meta.validate()


def test_dict_round_trip_keeps_everything(perf_file: Path) -> None:
    meta = ArtifactMetadata("perf", perf_file, "r", "github").add_label("a").add_metadata("k", [1, 2])
    data = json.loads(json.dumps(meta.to_dict()))
    back = ArtifactMetadata.from_dict(data)
    assert back == meta
    assert back.validate()
    assert load_metadata([data]) == [meta]


def test_from_dict_with_missing_fields_is_a_clear_error() -> None:
    with pytest.raises(ArtifactMetadataError, match="artifact_path"):
        ArtifactMetadata.from_dict({"artifact_name": "x"})


def test_what_was_read_from_the_file_cannot_be_reassigned(perf_file: Path) -> None:
    import dataclasses

    meta = describe(perf_file, "perf", test_run_id="r", provider_name="github")
    with pytest.raises(dataclasses.FrozenInstanceError):
        meta.sha256 = "0" * 64  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        meta.labels = {"x"}  # type: ignore[misc]


def test_describe_and_the_original_constructor_build_the_same_record(perf_file: Path) -> None:
    described = describe(perf_file, "perf", test_run_id="r", provider_name="github", labels=["a"])
    constructed = ArtifactMetadata("perf", perf_file, "r", "github").add_label("a")
    assert described == constructed and hash(described) == hash(constructed)
    assert describe(perf_file).artifact_name == "perf.json"


def test_a_copy_has_annotations_of_its_own(perf_file: Path) -> None:
    meta = describe(perf_file, "perf").add_label("kept")
    copy = meta.copy().add_label("only-on-the-copy").add_metadata("k", 1)
    assert meta.labels == {"kept"} and meta.metadata == {}
    assert copy.labels == {"kept", "only-on-the-copy"} and copy.sha256 == meta.sha256


def test_a_record_stored_under_an_earlier_type_name_reads_back_under_todays(perf_file: Path) -> None:
    data = describe(perf_file, "perf").to_dict()
    assert ArtifactMetadata.from_dict({**data, "artifact_type": "perf_report"}).artifact_type == "performance_report"


def test_a_zip_holding_one_file_is_described_by_that_file(tmp_path: Path) -> None:
    import zipfile

    archive = tmp_path / "perf.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("perf.json", json.dumps(PERF))
    meta = describe(archive, "perf")
    assert meta.mime_type == "application/zip" and meta.metrics["metrics.throughput"] == 120.5
    assert meta.artifact_type == "performance_report"
