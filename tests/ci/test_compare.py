"""compare_artifacts: JSON key and metric changes, unified diffs for text, size and digest for binary."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tracelet_artifacts.ci.compare import compare_artifacts
from tracelet_artifacts.ci.errors import ComparisonError
from tracelet_artifacts.ci.metadata import ArtifactMetadata


def write(folder: Path, name: str, data: bytes | str | dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if isinstance(data, dict):
        data = json.dumps(data)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def test_json_reports_added_removed_changed_and_metric_deltas(tmp_path: Path) -> None:
    old = write(tmp_path / "a", "perf.json", {"metrics": {"throughput": 100, "latency": 8.0}, "os": "linux", "gone": 1})
    new = write(tmp_path / "b", "perf.json", {"metrics": {"throughput": 120, "latency": 8.0}, "os": "mac", "new": [1]})
    result = compare_artifacts(old, new)
    assert result.kind == "json" and not result.identical
    assert result.added == {"new.0": 1}
    assert result.removed == {"gone": 1}
    assert result.changed == {
        "metrics.throughput": {"before": 100, "after": 120},
        "os": {"before": "linux", "after": "mac"},
    }
    delta = result.metric_deltas["metrics.throughput"]
    assert (delta.before, delta.after, delta.delta, delta.percent) == (100.0, 120.0, 20.0, 20.0)
    assert list(result.metric_deltas) == ["metrics.throughput"]


def test_json_delta_from_zero_has_no_percent(tmp_path: Path) -> None:
    result = compare_artifacts(write(tmp_path, "a.json", {"x": 0}), write(tmp_path, "b.json", {"x": 3}))
    assert result.metric_deltas["x"].percent is None


def test_json_type_change_counts_as_changed(tmp_path: Path) -> None:
    result = compare_artifacts(write(tmp_path, "a.json", {"x": 1}), write(tmp_path, "b.json", {"x": True}))
    assert result.changed == {"x": {"before": 1, "after": True}} and result.metric_deltas == {}


def test_identical_json_has_no_changes(tmp_path: Path) -> None:
    a = write(tmp_path, "a.json", {"x": 1})
    result = compare_artifacts(a, write(tmp_path, "b.json", {"x": 1}))
    assert result.identical and not (result.added or result.removed or result.changed)


def test_text_gets_a_unified_diff(tmp_path: Path) -> None:
    old = write(tmp_path, "old.log", "start\nstep 1 ok\ndone\n")
    new = write(tmp_path, "new.log", "start\nstep 1 FAILED\ndone\n")
    result = compare_artifacts(old, new)
    assert result.kind == "text"
    assert "-step 1 ok\n" in result.diff and "+step 1 FAILED\n" in result.diff
    assert result.diff.startswith(f"--- {old}\n+++ {new}\n")


def test_malformed_json_falls_back_to_a_text_diff(tmp_path: Path) -> None:
    result = compare_artifacts(write(tmp_path, "a.json", '{"x": 1'), write(tmp_path, "b.json", '{"x": 2'))
    assert result.kind == "text" and '+{"x": 2' in result.diff


def test_long_diffs_are_cut(tmp_path: Path) -> None:
    old = write(tmp_path, "a.txt", "".join(f"line {i}\n" for i in range(3000)))
    new = write(tmp_path, "b.txt", "".join(f"LINE {i}\n" for i in range(3000)))
    result = compare_artifacts(old, new)
    assert result.diff_truncated and result.diff.count("\n") == 2000


def test_binary_compares_size_and_digest(tmp_path: Path) -> None:
    old = write(tmp_path, "model.bin", b"\x00\x01\x02")
    new = write(tmp_path, "model2.bin", b"\x00\x01\x02\x03")
    result = compare_artifacts(old, new)
    assert result.kind == "binary" and not result.identical
    assert (result.left_size, result.right_size, result.size_delta) == (3, 4, 1)
    assert result.right_sha256 == hashlib.sha256(b"\x00\x01\x02\x03").hexdigest()
    assert result.diff == "" and result.to_dict()["size_delta"] == 1


def test_files_over_the_limit_are_compared_by_digest_only(tmp_path: Path) -> None:
    old = write(tmp_path, "a.json", {"x": 1})
    result = compare_artifacts(old, write(tmp_path, "b.json", {"x": 2}), max_bytes=4)
    assert result.kind == "binary" and "SHA-256 only" in result.note


def test_metadata_objects_can_be_compared(tmp_path: Path) -> None:
    a = ArtifactMetadata("perf", write(tmp_path / "1", "perf.json", {"v": 1.0}), "1", "github")
    b = ArtifactMetadata("perf", write(tmp_path / "2", "perf.json", {"v": 1.5}), "2", "github")
    assert compare_artifacts(a, b).metric_deltas["v"].percent == pytest.approx(50.0)


def test_missing_side_is_a_comparison_error(tmp_path: Path) -> None:
    with pytest.raises(ComparisonError, match="does not exist"):
        compare_artifacts(write(tmp_path, "a.json", {}), tmp_path / "missing.json")


def test_cli_compare_prints_metric_deltas_and_json(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from tracelet_artifacts.ci.cli import ci

    old = write(tmp_path, "a.json", {"metrics": {"throughput": 100}, "tag[x]": "a"})
    new = write(tmp_path, "b.json", {"metrics": {"throughput": 80}, "tag[x]": "b"})
    shown = CliRunner().invoke(ci, ["compare", str(old), str(new)])
    assert shown.exit_code == 0, shown.output
    assert "-20.00%" in shown.stdout and "tag[x]" in shown.stdout
    as_json = CliRunner().invoke(ci, ["compare", str(old), str(new), "--json"])
    assert json.loads(as_json.stdout)["metric_deltas"]["metrics.throughput"]["percent"] == -20.0
    text = CliRunner().invoke(
        ci, ["compare", str(write(tmp_path, "a.txt", "x\n")), str(write(tmp_path, "b.txt", "y\n"))]
    )
    assert "-x\n+y\n" in text.stdout
