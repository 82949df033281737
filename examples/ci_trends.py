"""Example: find a regression in CI perf reports and draw it.

Writes 60 nightly JSON perf reports (throughput drops by ~12 % at night 40) to a temp folder, describes
them with ``describe``, finds the performance reports with ArtifactDiscovery, runs both change-point
detectors through analyze_metrics_trend, and writes a PNG plot and an HTML report.

    python examples/ci_trends.py [output-folder]
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tracelet_artifacts.ci.discovery import ArtifactDiscovery
from tracelet_artifacts.ci.metadata import ArtifactMetadata, describe
from tracelet_artifacts.ci.plot import plot_trend, write_html_report
from tracelet_artifacts.ci.trends import analyze_metrics_trend

NIGHTS = 60
START = datetime(2024, 3, 1, 2, 0, tzinfo=timezone.utc)


def write_perf_reports(folder: Path) -> list[ArtifactMetadata]:
    """One JSON perf report per nightly run, as a CI job would upload it."""
    rng = random.Random(42)
    artifacts = []
    for night in range(NIGHTS):
        throughput = rng.gauss(1200 if night < 40 else 1060, 15)  # requests/s; a regression lands at 40
        report = {"metrics": {"throughput": round(throughput, 1), "p99_ms": round(rng.gauss(48, 1), 2)}}
        path = folder / f"nightly-{night}" / "perf.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(report))
        artifacts.append(describe(path, "perf", test_run_id=f"nightly-{night}", provider_name="github",
                                  created_at=START + timedelta(days=night), labels=["nightly"],
                                  metadata={"branch": "main"}))
    return artifacts


def main(output: Path) -> None:
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        artifacts = write_perf_reports(Path(scratch))
        perf = ArtifactDiscovery.discover_artifacts(
            artifacts=artifacts, artifact_type="performance_report", labels=["nightly"],
            metadata_query={"branch": "main"},
        )
        trend = analyze_metrics_trend(
            "github",
            "performance_report",
            "throughput",  # stands for metrics.throughput, the one metric path ending in it
            days=90,
            source=perf,
            now=START + timedelta(days=NIGHTS),
            lower_is_better=False,  # throughput: higher is better
        )
    values = [point.value for point in trend.points]
    for change in trend.analysis.change_points:
        run = trend.points[change.index].test_run_id
        moved = f"{change.before:.0f} -> {change.after:.0f} req/s ({change.percent_change:+.1f} %)"
        print(f"{change.method:>9}: {change.kind} at {run}: {moved}")
    png = plot_trend(
        values,
        output / "ci_trend.png",
        analysis=trend.analysis,
        x=[point.timestamp for point in trend.points],
        metric_name="metrics.throughput",
        title="Nightly throughput (higher is better)",
    )
    labels = [point.test_run_id for point in trend.points]
    html = write_html_report(
        output / "ci_trend.html", values, trend.analysis, png=png, labels=labels, metric_name="metrics.throughput"
    )
    print(f"plot: {png}\nreport: {html}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("ci_trends_output"))
