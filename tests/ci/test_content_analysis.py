"""Content analysis of CI artifacts: metrics from JSON, test counts from JUnit XML, columns from CSV.

Property tests feed truncated and malformed input: every reader returns a result or raises a TraceletError.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracelet_artifacts.ci.content import (
    ContentAnalysis,
    ContentAnalysisError,
    ContentTooLargeError,
    analyze_content,
    analyze_csv,
    analyze_csv_text,
    analyze_json,
    analyze_json_bytes,
    analyze_junit,
    analyze_xml_bytes,
    flatten_json,
)
from tracelet_artifacts.ci.kinds import CIArtifactKind, classify_ci_artifact
from tracelet_artifacts.errors import TraceletError

JUNIT_SUITES = b"""<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="all">
  <testsuite name="unit" tests="3" failures="1" errors="0" skipped="1" time="1.25">
    <testcase classname="a" name="one" time="0.5"/>
    <testcase classname="a" name="two" time="0.5"><failure message="boom">trace</failure></testcase>
    <testcase classname="a" name="three" time="0.25"><skipped/></testcase>
  </testsuite>
  <testsuite name="integration">
    <testcase name="four" time="2.0"/>
    <testcase name="five" time="1.0"><error message="crash"/></testcase>
  </testsuite>
</testsuites>
"""
JUNIT_SUITE = b"""<testsuite name="pytest" errors="1" failures="2" skipped="3" tests="10" time="4.5">
<testcase name="t"/></testsuite>"""
PERF_JSON = {
    "metrics": {"throughput": 120.5, "latency": {"p50": 3, "p99": 9.5}},
    "ok": True,
    "commit": "abc123",
    "benches": [{"name": "sort", "value": 3.2, "unit": "ms"}, {"name": "hash", "value": 1.1, "unit": "ms"}],
    "runs": [1, 2],
}


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def test_json_numbers_flatten_to_dotted_paths(tmp_path: Path) -> None:
    result = analyze_json(write(tmp_path, "perf.json", json.dumps(PERF_JSON)))
    assert result.format == "json"
    assert result.metrics["metrics.throughput"] == 120.5
    assert result.metrics["metrics.latency.p50"] == 3.0
    assert result.metrics["benches.sort.value"] == 3.2  # list of named objects keyed by name
    assert result.metrics["runs.1"] == 2.0  # other lists keyed by index
    assert result.fields["commit"] == "abc123"
    assert result.fields["ok"] is True
    assert "ok" not in result.metrics  # booleans are not metrics


def test_json_non_finite_numbers_and_huge_integers_are_not_metrics() -> None:
    metrics, _fields, _cut = flatten_json({"nan": float("nan"), "inf": float("inf"), "big": 10**400, "x": 1})
    assert metrics == {"x": 1.0}


def test_json_flattening_stops_at_the_leaf_limit_and_says_so() -> None:
    metrics, _fields, truncated = flatten_json({f"k{i}": i for i in range(20_000)})
    assert truncated and len(metrics) == 10_000


def test_truncated_json_raises_a_content_error(tmp_path: Path) -> None:
    with pytest.raises(ContentAnalysisError, match="not valid JSON"):
        analyze_json(write(tmp_path, "cut.json", json.dumps(PERF_JSON)[:40]))


def test_deeply_nested_json_raises_a_content_error_not_recursion_error() -> None:
    with pytest.raises(ContentAnalysisError):
        analyze_json_bytes(b"[" * 200_000 + b"]" * 200_000)


def test_json_larger_than_the_limit_is_refused_before_reading(tmp_path: Path) -> None:
    path = write(tmp_path, "big.json", b"[" + b"1," * 1000 + b"1]")
    with pytest.raises(ContentTooLargeError, match="at most 100 bytes"):
        analyze_json(path, max_bytes=100)


def test_junit_testsuites_root_totals_declared_and_counted_suites(tmp_path: Path) -> None:
    counts = analyze_junit(write(tmp_path, "junit.xml", JUNIT_SUITES))
    # suite "unit" declares its totals; suite "integration" declares none, so its testcases are counted
    assert (counts.tests, counts.failures, counts.errors, counts.skipped) == (5, 1, 1, 1)
    assert counts.time == pytest.approx(4.25)
    assert counts.passed == 2
    assert counts.suites == 2


def test_junit_testsuite_root_uses_its_attributes(tmp_path: Path) -> None:
    result = analyze_content(write(tmp_path, "report.xml", JUNIT_SUITE))
    assert result.format == "junit"
    assert result.metrics == {
        "tests": 10.0,
        "failures": 2.0,
        "errors": 1.0,
        "skipped": 3.0,
        "time": 4.5,
        "passed": 4.0,
    }


@pytest.mark.parametrize(
    "document",
    [
        b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;">]>'
        b"<testsuite>&b;</testsuite>",
        b'<!DOCTYPE t SYSTEM "http://example.invalid/evil.dtd"><testsuite/>',
        b'<!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/passwd">]><testsuite>&x;</testsuite>',
    ],
)
def test_xml_with_doctype_or_entities_is_refused(document: bytes) -> None:
    with pytest.raises(ContentAnalysisError, match="refused"):
        analyze_xml_bytes(document)


def test_truncated_junit_raises_a_content_error(tmp_path: Path) -> None:
    with pytest.raises(ContentAnalysisError, match="truncated"):
        analyze_junit(write(tmp_path, "junit.xml", JUNIT_SUITES[:200]))


def test_non_junit_xml_is_reported_with_its_root() -> None:
    assert analyze_xml_bytes(b"<project><a/></project>") == ContentAnalysis("xml", root="project")


def test_cobertura_coverage_rates_become_metrics() -> None:
    result = analyze_xml_bytes(b'<coverage line-rate="0.85" branch-rate="0.5" version="1"><packages/></coverage>')
    assert result.format == "cobertura"
    assert result.metrics == {"coverage.line_rate": 0.85, "coverage.branch_rate": 0.5}


def test_csv_reports_columns_rows_and_numeric_column_summaries(tmp_path: Path) -> None:
    path = write(tmp_path, "history.csv", "\ufeffstep,loss,tag\n1,0.5,a\n2,0.3,b\n3,0.4,c\n")
    result = analyze_csv(path)
    assert result.columns == ("step", "loss", "tag")
    assert result.row_count == 3
    assert result.metrics["loss.min"] == 0.3
    assert result.metrics["loss.last"] == 0.4
    assert result.metrics["step.mean"] == 2.0
    assert not any(key.startswith("tag.") for key in result.metrics)


def test_tsv_uses_tabs(tmp_path: Path) -> None:
    result = analyze_csv(write(tmp_path, "t.tsv", "a\tb\n1\t2\n"))
    assert result.columns == ("a", "b")


def test_huge_csv_is_cut_at_the_limit_and_marked_truncated(tmp_path: Path) -> None:
    path = write(tmp_path, "big.csv", "a,b\n" + "1,2\n" * 10_000)
    result = analyze_csv(path, max_bytes=400)
    assert result.truncated
    assert 0 < (result.row_count or 0) < 10_000


def test_non_utf8_csv_raises_a_content_error(tmp_path: Path) -> None:
    with pytest.raises(ContentAnalysisError, match="UTF-8"):
        analyze_csv(write(tmp_path, "bad.csv", b"a,b\n\xff\xfe,\x80\n"))


def test_plain_files_are_text_binary_or_empty(tmp_path: Path) -> None:
    assert analyze_content(write(tmp_path, "build.log", "compiling\n")).format == "text"
    assert analyze_content(write(tmp_path, "blob.bin", b"\x00\x01\x02")).format == "binary"
    assert analyze_content(write(tmp_path, "empty.json", b"")).format == "empty"


def test_unknown_suffix_with_json_content_is_analysed_as_json(tmp_path: Path) -> None:
    assert analyze_content(write(tmp_path, "perfherder-data", b'{"a": 1}')).metrics == {"a": 1.0}


@pytest.mark.parametrize(
    ("name", "analysis", "kind"),
    [
        ("results.xml", ContentAnalysis("junit"), CIArtifactKind.TEST_RESULTS),
        ("anything.xml", ContentAnalysis("cobertura"), CIArtifactKind.COVERAGE),
        ("coverage.json", ContentAnalysis("json", {"totals.percent_covered": 81.0}), CIArtifactKind.COVERAGE),
        ("lcov.info", None, CIArtifactKind.COVERAGE),
        ("junit-report.xml", None, CIArtifactKind.TEST_RESULTS),
        ("perfherder-data.json", None, CIArtifactKind.PERF_REPORT),
        ("results.json", ContentAnalysis("json", {"benches.sort.value": 1.0}), CIArtifactKind.PERF_REPORT),
        ("live_backing.log", None, CIArtifactKind.LOG),
        ("screenshot-failure.png", None, CIArtifactKind.SCREENSHOT),
        ("dist.tar.gz", None, CIArtifactKind.ARCHIVE),
        ("settings.yaml", None, CIArtifactKind.CONFIG),
        ("mystery", ContentAnalysis("binary"), CIArtifactKind.BINARY),
        ("mystery", None, CIArtifactKind.OTHER),
    ],
)
def test_ci_artifact_kind_comes_from_content_then_name(
    name: str, analysis: ContentAnalysis | None, kind: CIArtifactKind
) -> None:
    assert classify_ci_artifact(name, analysis) is kind


def test_analysis_round_trips_through_a_dict(tmp_path: Path) -> None:
    result = analyze_content(write(tmp_path, "junit.xml", JUNIT_SUITES))
    assert ContentAnalysis.from_dict(json.loads(json.dumps(result.to_dict()))) == result


# --- property tests: truncated and malformed input never escapes as anything but TraceletError ---

VALID_JSON = json.dumps(PERF_JSON).encode()
VALID_CSV = b'step,loss,tag\n1,0.5,a\n2,0.3,"b,c"\n3,0.4,c\n'


def _mutations(valid: bytes) -> st.SearchStrategy[bytes]:
    truncated = st.integers(0, len(valid)).map(lambda n: valid[:n])
    spliced = st.tuples(st.integers(0, len(valid)), st.binary(max_size=20)).map(
        lambda t: valid[: t[0]] + t[1] + valid[t[0] :]
    )
    return st.one_of(truncated, spliced, st.binary(max_size=200))


def _result_or_tracelet_error(call: object, *args: object) -> None:
    try:
        result = call(*args)  # type: ignore[operator]
    except TraceletError:
        return
    assert isinstance(result, ContentAnalysis)


@given(_mutations(VALID_JSON))
def test_json_reader_survives_truncated_and_malformed_input(data: bytes) -> None:
    _result_or_tracelet_error(analyze_json_bytes, data)


@given(st.one_of(_mutations(JUNIT_SUITES), _mutations(JUNIT_SUITE)))
def test_junit_reader_survives_truncated_and_malformed_input(data: bytes) -> None:
    _result_or_tracelet_error(analyze_xml_bytes, data)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(_mutations(VALID_CSV))
def test_csv_reader_survives_truncated_and_malformed_input(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.csv"
        path.write_bytes(data)
        _result_or_tracelet_error(analyze_csv, path)
        _result_or_tracelet_error(analyze_content, path)


@given(st.text(max_size=300))
def test_csv_text_reader_survives_arbitrary_text(text: str) -> None:
    _result_or_tracelet_error(analyze_csv_text, iter(text.splitlines(keepends=True)))


@pytest.mark.parametrize("encoding", ["AUTF-8", "utf-16"])
def test_xml_declaring_an_unknown_or_mismatched_encoding_is_a_content_error(encoding: str) -> None:
    with pytest.raises(ContentAnalysisError):
        analyze_xml_bytes(f'<?xml version="1.0" encoding="{encoding}"?><testsuite/>'.encode())


def _zip_of(path: Path, files: dict[str, bytes]) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def test_a_zip_holding_one_file_is_analysed_as_that_file(tmp_path: Path) -> None:
    single = _zip_of(tmp_path / "a.zip", {"dir/results.json": b'{"metrics": {"fps": 60}}'})
    assert analyze_content(single).metrics == {"metrics.fps": 60.0}
    several = _zip_of(tmp_path / "b.zip", {"a.json": b"{}", "b.json": b"{}"})
    assert analyze_content(several).format == "binary"
    broken = _zip_of(tmp_path / "c.zip", {"r.json": b'{"cut": '})
    with pytest.raises(ContentAnalysisError, match="not valid JSON"):
        analyze_content(broken)


def test_the_file_inside_a_zip_is_read_only_up_to_the_limit(tmp_path: Path) -> None:
    from tracelet_artifacts.ci.content import unwrapped

    bomb = _zip_of(tmp_path / "bomb.zip", {"zeros.json": b"0" * 100_000})
    with pytest.raises(ContentTooLargeError, match="more than 1000 bytes"), unwrapped(bomb, max_bytes=1000):
        pass
    with unwrapped(tmp_path / "bomb.zip", max_bytes=200_000) as (inner, name):
        assert name == "zeros.json" and inner.stat().st_size == 100_000
    assert not inner.exists()  # the copy goes with the context
