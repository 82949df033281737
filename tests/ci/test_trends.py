"""Trend analysis: slope, direction, percent change, and change points by both detectors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from tracelet_artifacts.ci.cli import ci
from tracelet_artifacts.ci.errors import TrendAnalysisError
from tracelet_artifacts.ci.metadata import ArtifactMetadata
from tracelet_artifacts.ci.plot import plot_trend, write_html_report
from tracelet_artifacts.ci.trends import (
    T_CAP,
    analyze_metrics_trend,
    analyze_series,
    detect_changes_edivisive,
    detect_changes_ttest,
    linear_trend,
    percent_change,
    trend_direction,
)

DETECTORS = [detect_changes_ttest, detect_changes_edivisive]


def noisy(*levels: tuple[float, int], sd: float = 1.0, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(level, sd, count) for level, count in levels])


@pytest.mark.parametrize("detect", DETECTORS)
def test_a_single_step_is_found_where_it_happens(detect) -> None:  # type: ignore[no-untyped-def]
    changes = detect(noisy((100, 40), (110, 40)))
    assert [c.index for c in changes] == [40]
    assert changes[0].percent_change == pytest.approx(10, abs=1.5)


@pytest.mark.parametrize("detect", DETECTORS)
def test_two_steps_are_both_found(detect) -> None:  # type: ignore[no-untyped-def]
    changes = detect(noisy((100, 30), (90, 30), (105, 30), seed=3))
    assert [c.index for c in changes] == [30, 60]
    assert [c.kind for c in changes] == ["improvement", "regression"]  # lower is better by default


@pytest.mark.parametrize("detect", DETECTORS)
@pytest.mark.parametrize("seed", range(10))
def test_a_flat_noisy_series_has_no_change_points(detect, seed: int) -> None:  # type: ignore[no-untyped-def]
    assert detect(noisy((100, 80), sd=2.0, seed=seed)) == []


@pytest.mark.parametrize("detect", DETECTORS)
def test_higher_is_better_turns_a_drop_into_a_regression(detect) -> None:  # type: ignore[no-untyped-def]
    series = noisy((500, 30), (400, 30))  # e.g. throughput fell
    assert [c.kind for c in detect(series, lower_is_better=False)] == ["regression"]
    assert [c.kind for c in detect(series, lower_is_better=True)] == ["improvement"]


def test_ttest_caps_an_infinite_t_at_1000() -> None:
    changes = detect_changes_ttest([10.0] * 20 + [12.0] * 20)
    assert [(c.index, c.statistic) for c in changes] == [(20, T_CAP)]


def test_ttest_needs_full_windows_on_both_sides() -> None:
    series = noisy((100, 30), (120, 8))  # only 8 points after the step: fore window of 12 not full
    assert detect_changes_ttest(series) == []
    assert [c.index for c in detect_changes_ttest(series, fore_window=6)] == [30]


def test_small_shifts_below_the_minimum_percent_are_dropped() -> None:
    series = noisy((100, 30), (101, 30), sd=0.05)  # a very clear but 1 % shift
    assert detect_changes_ttest(series) == []
    assert detect_changes_edivisive(series) == []
    assert [c.index for c in detect_changes_ttest(series, min_percent_change=0.5)] == [30]
    assert [c.index for c in detect_changes_edivisive(series, min_percent_change=0.5)] == [30]


def test_edivisive_reports_the_permutation_p_value_and_is_deterministic() -> None:
    series = noisy((100, 25), (115, 25))
    first = detect_changes_edivisive(series, permutations=50, seed=11)
    assert first == detect_changes_edivisive(series, permutations=50, seed=11)
    assert first[0].p_value == pytest.approx(1 / 51)
    assert first[0].statistic > 0


def test_edivisive_on_a_constant_series_finds_nothing() -> None:
    assert detect_changes_edivisive([5.0] * 30) == []


def test_linear_trend_recovers_a_line() -> None:
    fit = linear_trend([3.0 + 2.0 * i for i in range(10)])
    assert (fit.slope, fit.intercept, fit.r_squared) == pytest.approx((2.0, 3.0, 1.0))
    assert linear_trend([1.0, 2.0, 4.0], x=[0.0, 1.0, 2.0]).slope == pytest.approx(1.5)


def test_direction_and_percent_change() -> None:
    assert trend_direction([100, 101, 102, 103]) == "increasing"
    assert trend_direction([100, 99.9, 100.1, 100]) == "stable"
    assert trend_direction([10, 8, 6]) == "decreasing"
    assert percent_change([50, 60, 75]) == pytest.approx(50.0)
    assert percent_change([0, 1]) is None


def test_analyze_series_combines_both_methods_and_judges_the_direction() -> None:
    result = analyze_series(noisy((100, 40), (110, 40)), lower_is_better=True)
    assert result.direction == "increasing" and result.assessment == "degrading"
    assert sorted(c.method for c in result.change_points) == ["edivisive", "ttest"]
    assert {c.index for c in result.change_points} == {40}
    assert result.to_dict()["change_points"][0]["kind"] == "regression"
    only = analyze_series(noisy((100, 40), (110, 40)), methods=["ttest"], lower_is_better=False)
    assert [c.method for c in only.change_points] == ["ttest"] and only.assessment == "improving"


@pytest.mark.parametrize("bad", [[1.0, float("nan"), 2.0], [1.0], [], [[1.0, 2.0]], ["x", "y"]])
def test_unusable_series_raise_a_trend_error(bad: list) -> None:
    with pytest.raises(TrendAnalysisError):
        analyze_series(bad)


def test_unknown_method_is_a_trend_error() -> None:
    with pytest.raises(TrendAnalysisError, match="unknown change-point method"):
        analyze_series([1.0, 2.0], methods=["magic"])


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(finite, min_size=2, max_size=60))
def test_any_finite_series_is_analysed_without_error(values: list[float]) -> None:
    result = analyze_series(values, edivisive_options={"permutations": 20})
    assert result.n == len(values)
    assert result.direction in {"increasing", "decreasing", "stable"}
    for change in result.change_points:
        assert 0 < change.index < len(values)
        assert change.kind in {"regression", "improvement"}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from([1.0, 2.0]), min_size=30, max_size=60))
def test_detectors_handle_series_of_few_distinct_values(values: list[float]) -> None:
    for detect in DETECTORS:
        assert all(0 < c.index < len(values) for c in detect(values))


# --- over stored metadata ---------------------------------------------------------------------

NOW = datetime(2024, 6, 1, tzinfo=timezone.utc)


def stored(day: int, value: float, provider: str = "github", kind: str = "perf_report") -> ArtifactMetadata:
    return ArtifactMetadata.from_dict(
        {
            "artifact_name": "perf",
            "artifact_path": f"/nowhere/perf-{day}.json",
            "test_run_id": str(day),
            "provider_name": provider,
            "artifact_type": kind,
            "size_bytes": 10,
            "sha256": "0" * 64,
            "created_at": (NOW - timedelta(days=60 - day)).isoformat(),
            "content": {"format": "json", "metrics": {"metrics.latency": value}},
        }
    )


def test_metrics_trend_reads_only_matching_recent_artifacts() -> None:
    values = noisy((50, 30), (60, 30))
    history = [stored(day, float(v)) for day, v in enumerate(values)]
    history += [stored(59, 999.0, provider="gitlab"), stored(58, 999.0, kind="log"), stored(-5, 999.0)]
    calls: list[int] = []

    def source() -> list[ArtifactMetadata]:
        calls.append(1)
        return history

    trend = analyze_metrics_trend("github", "perf_report", "metrics.latency", 60, source=source, now=NOW)
    assert calls == [1]
    assert len(trend.points) == 60 and max(p.value for p in trend.points) < 999
    assert {c.index for c in trend.analysis.change_points} == {30}
    assert all(c.kind == "regression" for c in trend.analysis.change_points)
    recent = analyze_metrics_trend(None, "perf_report", "metrics.latency", 10, source=history, now=NOW)
    assert len(recent.points) == 11  # days 50..59 from github and day 59 from gitlab
    assert trend.to_dict()["points"][0]["timestamp"].startswith("2024-")


def test_metrics_trend_without_enough_data_says_what_is_missing() -> None:
    with pytest.raises(TrendAnalysisError, match=r"0 perf_report artifact\(s\) from jenkins"):
        analyze_metrics_trend("jenkins", "perf_report", "metrics.latency", 30, source=[], now=NOW)


# --- pictures and the command line ------------------------------------------------------------


def test_plot_writes_a_png_without_touching_pyplot(tmp_path: Path) -> None:
    script = (
        "import sys, numpy as np\n"
        "from tracelet_artifacts.ci.plot import plot_trend\n"
        "rng = np.random.default_rng(1)\n"
        "plot_trend(np.r_[rng.normal(10, .1, 30), rng.normal(12, .1, 30)], sys.argv[1])\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    target = tmp_path / "plots" / "trend.png"
    subprocess.run([sys.executable, "-c", script, str(target)], check=True, env=_env())
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert target.stat().st_size > 10_000


def test_html_report_embeds_the_plot_and_escapes_text(tmp_path: Path) -> None:
    values = list(noisy((100, 30), (120, 30)))
    analysis = analyze_series(values)
    png = plot_trend(values, tmp_path / "t.png", analysis=analysis)
    page = write_html_report(
        tmp_path / "r.html", values, analysis, png=png, metric_name="<b>lat</b>", labels=[f"r{i}" for i in range(60)]
    ).read_text()
    assert "data:image/png;base64," in page
    assert "&lt;b&gt;lat&lt;/b&gt;" in page and "<b>lat</b>" not in page
    assert '<td class="regression">regression</td>' in page and "<td>r30</td>" in page


def test_importing_the_ci_package_loads_neither_numpy_nor_matplotlib() -> None:
    script = (
        "import sys, tracelet_artifacts.ci, tracelet_artifacts.ci.cli\n"
        "assert 'numpy' not in sys.modules and 'matplotlib' not in sys.modules, sorted(sys.modules)\n"
        "assert tracelet_artifacts.ci.analyze_series.__module__ == 'tracelet_artifacts.ci.trends'\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, env=_env())


def _env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[2])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}


@pytest.fixture
def perf_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "runs"
    folder.mkdir()
    for i, value in enumerate(noisy((200, 30), (170, 30), sd=2.0)):
        when = datetime(2024, 1, 1, tzinfo=timezone.utc) + timedelta(hours=i)
        report = {"metrics": {"throughput": float(value)}, "date": when.isoformat()}
        (folder / f"run-{i}.json").write_text(json.dumps(report))
    (folder / "broken.json").write_text("{")
    return folder


def test_cli_trend_over_a_folder_writes_plot_and_report(perf_folder: Path, tmp_path: Path) -> None:
    args = ["trend", str(perf_folder), "-m", "metrics.throughput", "--higher-is-better", "--json"]
    args += ["--plot", str(tmp_path / "trend.png"), "--html", str(tmp_path / "report.html")]
    result = CliRunner().invoke(ci, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["labels"][:3] == ["run-0", "run-1", "run-2"]  # natural order, not run-0, run-1, run-10
    assert {c["index"] for c in report["change_points"]} == {30}
    assert {c["kind"] for c in report["change_points"]} == {"regression"}
    assert (tmp_path / "trend.png").stat().st_size > 0 and (tmp_path / "report.html").stat().st_size > 0
    assert "skipping broken.json" in result.stderr


def test_cli_trend_orders_by_a_time_field_and_can_fail_on_regression(perf_folder: Path) -> None:
    args = ["trend", str(perf_folder), "-m", "metrics.throughput", "--higher-is-better", "--time-field", "date"]
    result = CliRunner().invoke(ci, [*args, "--fail-on-regression"])
    assert result.exit_code == 1
    assert "regression" in result.stdout


def test_cli_trend_reads_a_series_file(tmp_path: Path) -> None:
    series = tmp_path / "series.json"
    latency = [{"value": float(v), "label": f"build-{i}"} for i, v in enumerate(noisy((10, 30), (12, 30), sd=0.1))]
    series.write_text(json.dumps({"latency": latency, "memory": [1, 2, 3]}))
    result = CliRunner().invoke(ci, ["trend", str(series), "--metric", "latency", "--method", "ttest"])
    assert result.exit_code == 0, result.output
    assert "build-30" in result.stdout and "regression" in result.stdout
    missing = CliRunner().invoke(ci, ["trend", str(series)])
    assert missing.exit_code != 0 and "choose one with --metric" in missing.output


def test_cli_trend_with_too_little_data_fails_clearly(tmp_path: Path) -> None:
    (tmp_path / "one.json").write_text('{"x": 1}')
    result = CliRunner().invoke(ci, ["trend", str(tmp_path), "-m", "x"])
    assert result.exit_code != 0 and "a trend needs two" in result.output


def test_the_example_finds_the_regression_and_writes_its_plot(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "ci_trends.py"
    run = subprocess.run(
        [sys.executable, str(example), str(tmp_path)], check=True, capture_output=True, text=True, env=_env()
    )
    assert "ttest: regression at nightly-40" in run.stdout
    assert "edivisive: regression at nightly-40" in run.stdout
    assert (tmp_path / "ci_trend.png").read_bytes()[:4] == b"\x89PNG"
    assert "nightly-40" in (tmp_path / "ci_trend.html").read_text()


def test_cli_trend_over_a_folder_of_junit_reports(tmp_path: Path) -> None:
    for run in range(40):
        failures = 0 if run < 20 else 5
        suite = f'<testsuite tests="100" failures="{failures}" time="{30 + run % 3}"><testcase name="t"/></testsuite>'
        (tmp_path / f"junit-{run}.xml").write_text(suite)
    result = CliRunner().invoke(ci, ["trend", str(tmp_path), "-m", "failures", "--method", "ttest", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["labels"][20] == "junit-20"
    assert [(c["index"], c["kind"]) for c in report["change_points"]] == [(20, "regression")]
