"""The ``ci trend`` and ``ci compare`` commands: they work on local files (artifacts already downloaded);
heavy modules (numpy, matplotlib) load only when a command runs.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

# --- trend --------------------------------------------------------------------------------------


def _natural_key(path: Path) -> list[Any]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def _as_time(value: Any) -> datetime | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = value / 1000 if value > 1e11 else value  # epoch milliseconds or seconds
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return None


def _series_from_folder(
    folder: Path, metric: str, time_field: str | None
) -> tuple[list[float], list[str], list[datetime] | None]:
    """One point per file (JSON, JUnit XML, CSV, …) whose content holds ``metric``; ordered by
    ``time_field`` (a content value) or by file name."""
    from tracelet_artifacts.ci.content import ContentAnalysis, ContentAnalysisError, analyze_content
    from tracelet_artifacts.ci.discovery import leaf_metric

    analysed: list[tuple[Path, ContentAnalysis]] = []
    files = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    for path in sorted(files, key=_natural_key):
        try:
            analysed.append((path, analyze_content(path)))
        except ContentAnalysisError as exc:
            click.echo(f"skipping {path.name}: {exc}", err=True)
    if analysed and not any(metric in analysis.metrics for _, analysis in analysed):  # a leaf: throughput
        metric = leaf_metric(metric, (k for _, a in analysed for k in a.metrics), f"the files of {folder}")
    rows: list[tuple[Any, float, str, datetime | None]] = []
    for path, analysis in analysed:
        if metric not in analysis.metrics:
            continue
        when = None
        if time_field:
            when = _as_time(analysis.fields.get(time_field, analysis.metrics.get(time_field)))
            if when is None:
                raise click.ClickException(f"{path.name} has no time at {time_field!r}")
        rows.append((when or len(rows), analysis.metrics[metric], path.stem, when))
    if time_field:
        rows.sort(key=lambda row: row[0])
    times = [row[3] for row in rows if row[3] is not None] if time_field else None
    return [row[1] for row in rows], [row[2] for row in rows], times


def _series_from_file(path: Path, metric: str | None) -> tuple[list[float], list[str], list[datetime] | None]:
    """A series file: a list of numbers, a list of ``{"value", "label"?, "timestamp"?}`` objects, or an
    object mapping metric names to either (``--metric`` picks one)."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot read series file {path}: {exc}") from exc
    if isinstance(data, dict):
        if metric is None and len(data) == 1:
            metric = next(iter(data))
        if metric not in data:
            raise click.ClickException(f"{path} holds series {sorted(data)}; choose one with --metric")
        data = data[metric]
    if not isinstance(data, list):
        raise click.ClickException(f"{path}: a series must be a list of numbers or of {{'value': …}} objects")
    values, labels, times = [], [], []
    for position, item in enumerate(data, start=1):
        entry = item if isinstance(item, dict) else {"value": item}
        value = entry.get("value")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise click.ClickException(f"{path}: point {position} has no numeric value")
        values.append(float(value))
        labels.append(str(entry.get("label", entry.get("run", position))))
        times.append(_as_time(entry.get("timestamp")))
    known_times = [t for t in times if t is not None]
    return values, labels, known_times if len(known_times) == len(values) and values else None


@click.command()
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--metric", "-m", help="Dotted path of the metric (e.g. metrics.throughput), or a series name.")
@click.option("--lower-is-better/--higher-is-better", default=True, show_default=True, help="Which way is better.")
@click.option(
    "--method", type=click.Choice(["both", "ttest", "edivisive"]), default="both", show_default=True,
    help="Change-point detector(s).",
)  # fmt: skip
@click.option("--time-field", help="Dotted path of each artifact's time (ISO-8601 or epoch); default: file name order.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), help="Write a PNG here.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), help="Write an HTML report here.")
@click.option("--json", "as_json", is_flag=True, help="Print the analysis as JSON.")
@click.option("--fail-on-regression", is_flag=True, help="Exit with status 1 when a regression is found.")
def trend(
    source: Path,
    metric: str | None,
    lower_is_better: bool,
    method: str,
    time_field: str | None,
    plot_path: Path | None,
    html_path: Path | None,
    as_json: bool,
    fail_on_regression: bool,
) -> None:
    """Trend and change points of a metric across runs.

    SOURCE is a folder of artifacts, one run each (JSON, JUnit XML or CSV; --metric is the dotted path
    inside them, e.g. metrics.throughput or failures), or a JSON file of series: a list of numbers, or
    {"name": [numbers or {"value": …, "label": …}]}.
    """
    from tracelet_artifacts.ci.trends import METHODS, analyze_series

    if source.is_dir():
        if not metric:
            raise click.UsageError("--metric is required when SOURCE is a folder of artifacts")
        values, labels, times = _series_from_folder(source, metric, time_field)
    else:
        values, labels, times = _series_from_file(source, metric)
    name = metric or "value"
    if len(values) < 2:
        raise click.ClickException(f"found {len(values)} point(s) of {name!r} in {source}; a trend needs two")
    methods = METHODS if method == "both" else (method,)
    analysis = analyze_series(values, lower_is_better=lower_is_better, methods=methods)
    if as_json:
        click.echo(json.dumps({"metric": name, "labels": labels, "values": values, **analysis.to_dict()}, indent=2))
    else:
        _print_trend(name, labels, analysis)
    if plot_path or html_path:
        _write_pictures(values, labels, times, analysis, name, plot_path, html_path)
    if fail_on_regression and any(c.kind == "regression" for c in analysis.change_points):
        raise SystemExit(1)


def _write_pictures(
    values: list[float],
    labels: list[str],
    times: list[datetime] | None,
    analysis: Any,
    name: str,
    plot_path: Path | None,
    html_path: Path | None,
) -> None:
    import tempfile

    from tracelet_artifacts.ci.plot import plot_trend, write_html_report

    with tempfile.TemporaryDirectory() as scratch:
        png = plot_path or Path(scratch) / "trend.png"
        plot_trend(values, png, analysis=analysis, x=times, metric_name=name)
        if plot_path:
            click.echo(f"plot written to {plot_path}", err=True)
        if html_path:
            write_html_report(
                html_path, values, analysis, png=png, labels=labels, metric_name=name, title=f"Trend of {name}"
            )
            click.echo(f"report written to {html_path}", err=True)


def _print_trend(name: str, labels: list[str], analysis: Any) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    change = "n/a" if analysis.percent_change is None else f"{analysis.percent_change:+.2f}%"
    console.print(
        f"[bold]{escape(name)}[/]: {analysis.n} points, {analysis.direction} ({analysis.assessment}), "
        f"slope {analysis.slope:+.4g}/run, first→last {change}"
    )
    if not analysis.change_points:
        console.print("no change points")
        return
    table = Table("at", "method", "kind", "before", "after", "change", "statistic")
    for c in analysis.change_points:
        style = "red" if c.kind == "regression" else "green"
        table.add_row(
            escape(labels[c.index]), c.method, f"[{style}]{c.kind}[/]", f"{c.before:.4g}", f"{c.after:.4g}",
            f"{c.percent_change:+.2f}%", f"{c.statistic:.3g}",
        )  # fmt: skip
    console.print(table)


# --- compare ------------------------------------------------------------------------------------


@click.command()
@click.argument("left", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("right", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def compare(left: Path, right: Path, as_json: bool) -> None:
    """Compare two artifact files: JSON keys and metric deltas, a text diff, or size and digest."""
    from tracelet_artifacts.ci.compare import compare_artifacts

    result = compare_artifacts(left, right)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    verdict = "identical" if result.identical else "different"
    console.print(
        f"[bold]{result.kind}[/] artifacts are {verdict}; size {result.left_size} → {result.right_size} bytes"
    )
    if result.note:
        console.print(escape(result.note))
    if result.kind == "json" and not result.identical:
        table = Table("key", "before", "after", "delta", "%")
        for key, delta in result.metric_deltas.items():
            percent = "n/a" if delta.percent is None else f"{delta.percent:+.2f}%"
            table.add_row(escape(key), f"{delta.before:.6g}", f"{delta.after:.6g}", f"{delta.delta:+.6g}", percent)
        for key, change in result.changed.items():
            if key not in result.metric_deltas:
                table.add_row(escape(key), escape(repr(change["before"])), escape(repr(change["after"])), "", "")
        for key, value in result.added.items():
            table.add_row(f"[green]+ {escape(key)}[/]", "", escape(repr(value)), "", "")
        for key, value in result.removed.items():
            table.add_row(f"[red]- {escape(key)}[/]", escape(repr(value)), "", "", "")
        console.print(table)
    elif result.kind == "text":
        click.echo(result.diff, nl=False)
        if result.diff_truncated:
            click.echo("… diff cut after 2,000 lines", err=True)
    elif not result.identical:
        console.print(f"sha256 {result.left_sha256}\n    →  {result.right_sha256}")
