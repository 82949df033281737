"""The CI page: a metric's trend across CI runs, from the CI artifacts the store holds (``CatalogIndex``),
analysed by the CI half's trend code and drawn as an inline SVG with its change points.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from tracelet_artifacts.errors import TraceletError

DEFAULT_DAYS = 365.0
INSTALL_HINT = "pip install 'tracelet-artifacts[ci]'"


def _series_counts(metas: list[Any]) -> Counter[tuple[str, str]]:
    """(CI kind, metric path) → how many artifacts hold that metric."""
    counts: Counter[tuple[str, str]] = Counter()
    for meta in metas:
        if meta.content is not None:
            counts.update((meta.artifact_type, metric) for metric in meta.content.metrics)
    return counts


def _days(text: str | None) -> float:
    try:
        days = float(text) if text else DEFAULT_DAYS
    except ValueError:
        raise TraceletError(f"days={text!r} is not a number of days.") from None
    if not 0 < days <= 36500:
        raise TraceletError(f"days={text!r} must be between 0 and 36500.")
    return days


def ci_trends(request: Request) -> Response:
    site = request.app.state.site
    try:
        from tracelet_artifacts.ci.catalog_index import CatalogIndex
        from tracelet_artifacts.ci.discovery import ArtifactQuery
        from tracelet_artifacts.ci.errors import TrendAnalysisError
        from tracelet_artifacts.ci.trends import analyze_metrics_trend
        from tracelet_artifacts.ui.charts import ChartPoint, trend_svg
    except ImportError as exc:
        return site.render(request, "ci.html", {"missing": f"{exc.name} is not installed: {INSTALL_HINT}"})
    query = request.query_params
    metas = CatalogIndex(site.store).search(ArtifactQuery())
    counts = _series_counts(metas)
    context: dict[str, Any] = {"series": sorted(counts.items()), "query": dict(query), "artifacts": len(metas),
                               "providers": sorted({m.provider_name for m in metas})}
    if not counts:
        return site.render(request, "ci.html", context)
    best = max(counts.items(), key=lambda item: (item[1], item[0]))[0]
    kind, metric = query.get("kind") or best[0], query.get("metric") or best[1]
    provider = query.get("provider") or None
    days = _days(query.get("days"))
    lower = query.get("better", "lower") != "higher"
    context.update(kind=kind, metric=metric, provider=provider or "", days=f"{days:g}", lower=lower)
    try:
        trend = analyze_metrics_trend(provider, kind, metric, days, source=metas, lower_is_better=lower)
    except (TrendAnalysisError, ValueError) as exc:  # ValueError: an unknown CI kind
        context["problem"] = str(exc)
        return site.render(request, "ci.html", context)
    points = [ChartPoint(p.value, p.test_run_id, p.timestamp) for p in trend.points]
    context.update(trend=trend, analysis=trend.analysis, points=trend.points,
                   chart=Markup(trend_svg(points, trend.analysis, metric=metric)))
    return site.render(request, "ci.html", context)
