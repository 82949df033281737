"""Pictures of a metric trend: a PNG that marks change points, and a self-contained HTML report.

Drawn on a ``matplotlib.figure.Figure`` with its own Agg canvas: pyplot and the global backend are untouched.
"""

from __future__ import annotations

import base64
import html
import itertools
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from tracelet_artifacts.ci.trends import ChangePoint, TrendAnalysis, analyze_series

REGRESSION_COLOR = "#c62828"
IMPROVEMENT_COLOR = "#2e7d32"
SERIES_COLOR = "#1f5fa8"


def _merged(changes: Sequence[ChangePoint]) -> list[tuple[int, list[ChangePoint]]]:
    """Change points grouped by index, so two methods agreeing on a point draw one marker."""
    groups: dict[int, list[ChangePoint]] = {}
    for change in changes:
        groups.setdefault(change.index, []).append(change)
    return sorted(groups.items())


def _segment_means(values: Sequence[float], cuts: list[int]) -> list[tuple[int, int, float]]:
    bounds = [0, *cuts, len(values)]
    return [(a, b, sum(values[a:b]) / (b - a)) for a, b in itertools.pairwise(bounds) if b > a]


def plot_trend(
    values: Sequence[float],
    path: str | Path,
    *,
    analysis: TrendAnalysis | None = None,
    x: Sequence[datetime] | None = None,
    title: str | None = None,
    metric_name: str = "value",
    lower_is_better: bool = True,
) -> Path:
    """Write a PNG of the series with its least-squares line, segment means and change points.

    Regressions are red and improvements green, each labelled with its signed percent change and the
    method(s) that found it. ``x`` gives the points' times (default: run number). ``analysis`` defaults
    to ``analyze_series(values, lower_is_better=lower_is_better)``. Returns the written path.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    values = [float(v) for v in values]
    analysis = analysis or analyze_series(values, lower_is_better=lower_is_better)
    positions: list[Any] = list(x) if x is not None else list(range(1, len(values) + 1))
    figure = Figure(figsize=(11, 5.5), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot(positions, values, marker="o", markersize=3.5, linewidth=1.2, color=SERIES_COLOR, label=metric_name)
    fit = [analysis.intercept + analysis.slope * i for i in range(len(values))]
    axes.plot(positions, fit, linestyle="--", linewidth=1, color="#777777", label=f"trend ({analysis.direction})")
    groups = _merged(analysis.change_points)
    for start, end, mean in _segment_means(values, [index for index, _ in groups]):
        axes.hlines(mean, positions[start], positions[end - 1], colors="#ef8f00", linewidth=2, alpha=0.8)
    low, high = min(values), max(values)
    for rank, (index, found) in enumerate(groups):
        change = found[0]
        color = REGRESSION_COLOR if change.kind == "regression" else IMPROVEMENT_COLOR
        axes.axvline(positions[index], color=color, linestyle=":", linewidth=1.6)
        methods = "+".join(sorted({c.method for c in found}))
        label = f"{change.percent_change:+.1f}% {change.kind}\n({methods})"
        y = high - (high - low) * (0.05 + 0.14 * (rank % 3))
        axes.annotate(
            label, (positions[index], y), xytext=(6, 0), textcoords="offset points", color=color,
            fontsize=9, fontweight="bold", va="top",
            bbox={"boxstyle": "round,pad=0.25", "facecolor": "white", "edgecolor": color, "alpha": 0.9},
        )  # fmt: skip
    axes.plot([], [], color="#ef8f00", linewidth=2, label="segment mean")
    for kind, color in (("regression", REGRESSION_COLOR), ("improvement", IMPROVEMENT_COLOR)):
        if any(c.kind == kind for c in analysis.change_points):
            axes.plot([], [], color=color, linestyle=":", label=kind)
    better = "lower" if analysis.lower_is_better else "higher"
    axes.set_title(title or f"{metric_name}: {analysis.n} runs, {better} is better", fontsize=12)
    axes.set_xlabel("time" if x is not None else "run")
    axes.set_ylabel(metric_name)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="best", fontsize=8, framealpha=0.9)
    if x is not None:
        figure.autofmt_xdate()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, format="png")
    return target


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape("" if value is None else str(value))


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem;color:#222}table{border-collapse:collapse;"
    "margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}th{background:#f3f3f3}"
    ".regression{color:#c62828;font-weight:600}.improvement{color:#2e7d32;font-weight:600}img{max-width:100%}"
)


def write_html_report(
    path: str | Path,
    values: Sequence[float],
    analysis: TrendAnalysis,
    *,
    png: str | Path | None = None,
    labels: Sequence[str] | None = None,
    title: str = "Metric trend",
    metric_name: str = "value",
) -> Path:
    """Write one self-contained HTML page: summary, change points, the PNG (embedded) and the data.

    ``labels`` name the points (run ids or times; default 1, 2, …). All text is HTML-escaped.
    """
    names = list(labels) if labels is not None else [str(i) for i in range(1, len(values) + 1)]
    summary = _table(
        ["points", "direction", "assessment", "slope per run", "first→last %", "r²"],
        [[analysis.n, analysis.direction, analysis.assessment, analysis.slope, analysis.percent_change,
          analysis.r_squared]],
    )  # fmt: skip
    rows = [
        [names[c.index], c.method, c.kind, c.before, c.after, f"{c.percent_change:+.2f}%", c.statistic, c.p_value]
        for c in analysis.change_points
    ]
    changes = _table(["at", "method", "kind", "before", "after", "change", "statistic", "p"], rows)
    for kind in ("regression", "improvement"):
        changes = changes.replace(f"<td>{kind}</td>", f'<td class="{kind}">{kind}</td>')
    image = ""
    if png is not None:
        encoded = base64.b64encode(Path(png).read_bytes()).decode("ascii")
        image = f'<img alt="{html.escape(metric_name)} trend" src="data:image/png;base64,{encoded}">'
    better = "lower" if analysis.lower_is_better else "higher"
    page = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p>Metric <code>{html.escape(metric_name)}</code>; {better} is better.</p>{summary}"
        f"<h2>Change points</h2>{changes if rows else '<p>None detected.</p>'}{image}"
        f"<h2>Data</h2>{_table(['point', metric_name], list(zip(names, values, strict=False)))}</body></html>"
    )
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page, encoding="utf-8")
    return target
