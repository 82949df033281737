"""A metric's trend across CI runs as an inline SVG drawn by the server: the series, its least-squares line,
change points marked (red regression, green improvement), and on hover each point's run and value.

The SVG is built from numbers and escaped text only; it needs no script (hover is CSS).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tracelet_artifacts.ci.plot import IMPROVEMENT_COLOR, REGRESSION_COLOR, SERIES_COLOR
from tracelet_artifacts.ci.trends import TrendAnalysis

WIDTH, HEIGHT = 880, 320
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 40


@dataclass(frozen=True)
class ChartPoint:
    """One point: its value, the run it came from and when."""

    value: float
    run: str
    when: datetime | None = None


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def trend_svg(points: Sequence[ChartPoint], analysis: TrendAnalysis, *, metric: str) -> str:
    """The chart as an ``<svg>`` element (a string safe to embed: every text in it is escaped)."""
    values = [p.value for p in points]
    fit = [analysis.intercept + analysis.slope * i for i in (0, len(values) - 1)]
    low, high = min(*values, *fit), max(*values, *fit)  # the trend line stays inside the frame
    if high == low:
        low, high = low - 1, high + 1
    span_x = max(len(values) - 1, 1)

    def x(i: float) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * i / span_x

    def y(v: float) -> float:
        return TOP + (HEIGHT - TOP - BOTTOM) * (high - v) / (high - low)

    out = [f'<svg class="trend" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
           f'aria-label="{html.escape(metric)} across {len(values)} runs" xmlns="http://www.w3.org/2000/svg">']
    for v in (low, (low + high) / 2, high):
        out.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}"/>'
                   f'<text class="axis" x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{_fmt(v)}</text>')
    out.append(f'<text class="axis" x="{LEFT}" y="{HEIGHT - 8}">run 1</text>'
               f'<text class="axis" x="{WIDTH - RIGHT}" y="{HEIGHT - 8}" text-anchor="end">run {len(values)}</text>')
    out.append(f'<line class="fit" x1="{x(0):.1f}" y1="{y(fit[0]):.1f}" x2="{x(len(values) - 1):.1f}" '
               f'y2="{y(fit[1]):.1f}"><title>trend: {html.escape(analysis.direction)}</title></line>')
    seen: set[int] = set()
    for change in analysis.change_points:
        if change.index in seen:
            continue
        seen.add(change.index)
        color = REGRESSION_COLOR if change.kind == "regression" else IMPROVEMENT_COLOR
        label = (f"{change.kind} at {points[change.index].run}: {_fmt(change.before)} → {_fmt(change.after)} "
                 f"({change.percent_change:+.1f}%, {change.method})")
        out.append(f'<g class="change {change.kind}"><line x1="{x(change.index):.1f}" x2="{x(change.index):.1f}" '
                   f'y1="{TOP}" y2="{HEIGHT - BOTTOM}" stroke="{color}"/><text x="{x(change.index) + 4:.1f}" '
                   f'y="{TOP + 12}" fill="{color}">{change.percent_change:+.1f}%</text>'
                   f"<title>{html.escape(label)}</title></g>")
    path = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
    out.append(f'<polyline class="series" points="{path}" stroke="{SERIES_COLOR}"/>')
    for i, point in enumerate(points):
        when = f" · {point.when:%Y-%m-%d %H:%M}" if point.when else ""
        tip = f"run {point.run}: {_fmt(point.value)}{when}"
        anchor = "end" if x(i) > WIDTH * 0.7 else "start"
        out.append(f'<g class="point" data-run="{html.escape(point.run)}" data-value="{_fmt(point.value)}">'
                   f'<circle cx="{x(i):.1f}" cy="{y(point.value):.1f}" r="4" fill="{SERIES_COLOR}"/>'
                   f'<text class="tip" x="{x(i) + (-8 if anchor == "end" else 8):.1f}" y="{y(point.value) - 8:.1f}" '
                   f'text-anchor="{anchor}">{html.escape(tip)}</text><title>{html.escape(tip)}</title></g>')
    out.append("</svg>")
    return "".join(out)
