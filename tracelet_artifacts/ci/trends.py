"""Trends of a metric across CI runs: direction, least-squares slope, percent change, change points.

Two change-point detectors, a Perfherder-style weighted t-test and E-Divisive means; both are pure.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import numpy.typing as npt

from tracelet_artifacts.ci.discovery import ArtifactDiscovery, MetricPoint
from tracelet_artifacts.ci.errors import ArtifactQueryError, TrendAnalysisError
from tracelet_artifacts.ci.kinds import CIArtifactKind
from tracelet_artifacts.ci.metadata import ArtifactMetadata

FloatArray = npt.NDArray[np.float64]
T_CAP = 1000.0  # an infinite t (both windows without variance) is reported as 1000, as Perfherder does
METHODS = ("ttest", "edivisive")


@dataclass(frozen=True)
class ChangePoint:
    """A shift in a series: ``index`` is the first point of the new level.

    ``percent_change`` is signed, ``100·(after-before)/|before|``; ``kind`` is ``regression`` or
    ``improvement`` given whether lower or higher is better; ``statistic`` is |t| (ttest) or q̂
    (edivisive) and ``p_value`` is the permutation p-value (edivisive only).
    """

    index: int
    method: str
    before: float
    after: float
    percent_change: float
    kind: str
    statistic: float
    p_value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def _series(values: Iterable[float]) -> FloatArray:
    try:
        array = np.asarray(list(values), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TrendAnalysisError(f"a metric series must hold numbers: {exc}") from exc
    if array.ndim != 1:
        raise TrendAnalysisError("a metric series must be one-dimensional")
    if not np.all(np.isfinite(array)):
        raise TrendAnalysisError("a metric series must not hold NaN or infinite values")
    return array


def _percent(before: float, after: float) -> float:
    if before == after:
        return 0.0
    if before == 0:
        return math.copysign(math.inf, after - before)
    return 100.0 * (after - before) / abs(before)


def _kind(before: float, after: float, lower_is_better: bool) -> str:
    worse = after > before if lower_is_better else after < before
    return "regression" if worse else "improvement"


def _change(index: int, method: str, before: float, after: float, lower_is_better: bool, **stats: Any) -> ChangePoint:
    return ChangePoint(
        index, method, before, after, _percent(before, after), _kind(before, after, lower_is_better), **stats
    )


# --- direction and slope ------------------------------------------------------------------------


@dataclass(frozen=True)
class LinearFit:
    """Least-squares line ``value ≈ slope·x + intercept`` and its coefficient of determination."""

    slope: float
    intercept: float
    r_squared: float


def linear_trend(values: Iterable[float], x: Iterable[float] | None = None) -> LinearFit:
    """Fit a least-squares line; ``x`` defaults to the point positions 0, 1, 2, …"""
    y = _series(values)
    if y.size < 2:
        raise TrendAnalysisError("a trend needs at least two points")
    xs = np.arange(y.size, dtype=np.float64) if x is None else _series(x)
    if xs.size != y.size:
        raise TrendAnalysisError(f"x has {xs.size} points but the series has {y.size}")
    dx = xs - xs.mean()
    spread = float(dx @ dx)
    if spread == 0:
        raise TrendAnalysisError("all x positions are equal; the slope is undefined")
    slope = float(dx @ (y - y.mean())) / spread
    intercept = float(y.mean() - slope * xs.mean())
    residual = y - (slope * xs + intercept)
    total = float(((y - y.mean()) ** 2).sum())
    r_squared = 1.0 - float(residual @ residual) / total if total > 0 else 1.0
    return LinearFit(slope, intercept, r_squared)


def percent_change(values: Iterable[float]) -> float | None:
    """Signed percent change from the first value to the last; None for fewer than two points or a 0 start."""
    y = _series(values)
    if y.size < 2 or y[0] == 0:
        return None
    return _percent(float(y[0]), float(y[-1]))


def trend_direction(values: Iterable[float], stable_percent: float = 1.0) -> str:
    """``increasing``, ``decreasing`` or ``stable``: stable when the fitted line moves less than
    ``stable_percent`` % of the series mean from the first point to the last."""
    y = _series(values)
    if y.size < 2:
        return "stable"
    fit = linear_trend(y)
    moved = fit.slope * (y.size - 1)
    scale = abs(float(y.mean())) or 1.0
    if abs(moved) / scale * 100.0 < stable_percent:
        return "stable"
    return "increasing" if moved > 0 else "decreasing"


# --- Perfherder-style weighted t-test -----------------------------------------------------------


def _weighted_stats(window: FloatArray) -> tuple[float, float]:
    """Linearly weighted mean (index 0, nearest the candidate point, weighs most) and the sample
    variance around it (N-1 denominator, 0 for one point)."""
    n = window.size
    weights = (n - np.arange(n)) / n
    mean = float(weights @ window / weights.sum())
    variance = float(((window - mean) ** 2).sum() / (n - 1)) if n > 1 else 0.0
    return mean, variance


def welch_t(back: FloatArray, fore: FloatArray) -> float:
    """Welch's t over linearly weighted means: 0 for an empty side or equal means, inf with no variance."""
    if back.size == 0 or fore.size == 0:
        return 0.0
    mean_b, var_b = _weighted_stats(back)
    mean_f, var_f = _weighted_stats(fore)
    if mean_b == mean_f:
        return 0.0
    if var_b == 0 and var_f == 0:
        return math.inf
    return (mean_f - mean_b) / math.sqrt(var_b / back.size + var_f / fore.size)


def detect_changes_ttest(
    values: Iterable[float],
    *,
    lower_is_better: bool = True,
    back_window: int = 12,
    max_back_window: int = 24,
    fore_window: int = 12,
    t_threshold: float = 7.0,
    min_percent_change: float = 2.0,
) -> list[ChangePoint]:
    """Change points by the Perfherder method.

    For every point i the back window holds the points before i, nearest first: ``back_window`` of them,
    growing by one per quiet point (t ≤ threshold) up to ``max_back_window`` and shrinking back after a
    peak; the fore window holds i and the ``fore_window - 1`` points after it. Both are linearly weighted
    (nearest weighs most) and compared with Welch's t. Point i is a change when both windows are full,
    |t| > ``t_threshold``, |t| is a local maximum, and the unweighted means differ by at least
    ``min_percent_change`` %. Each point holds one value (one value per run).
    """
    x = _series(values)
    if min(back_window, fore_window) < 1 or max_back_window < back_window:
        raise TrendAnalysisError("windows must be positive and max_back_window >= back_window")
    n = x.size
    t_values = np.zeros(n)
    sizes = np.zeros(n, dtype=int)  # back-window length used at each point
    quiet = 0
    for i in range(1, n):
        sizes[i] = min(max(quiet, back_window), max_back_window, i)
        back, fore = x[i - sizes[i] : i][::-1], x[i : i + fore_window]
        t_values[i] = min(abs(welch_t(back, fore)), T_CAP)
        quiet = 0 if t_values[i] > t_threshold else quiet + 1
    changes: list[ChangePoint] = []
    for i in range(1, n):
        full = sizes[i] >= back_window and n - i >= fore_window
        t = t_values[i]
        if not full or t <= t_threshold or t < t_values[i - 1]:
            continue
        if (i + 1 < n and t < t_values[i + 1]) or (changes and changes[-1].index == i - 1):
            continue
        before, after = float(x[i - sizes[i] : i].mean()), float(x[i : i + fore_window].mean())
        if abs(_percent(before, after)) < min_percent_change:
            continue
        changes.append(_change(i, "ttest", before, after, lower_is_better, statistic=float(t)))
    return changes


# --- E-Divisive means ---------------------------------------------------------------------------


def _split_scores(window: FloatArray, min_size: int) -> tuple[int, float]:
    """Best split of one window by the E-statistic (Matteson & James 2014, alpha = 1).

    q̂(τ) = m·n/(m+n) · (2/(m·n)·Σ|Xi-Yj| - Σ_{i<k}|Xi-Xk|/C(m,2) - Σ_{j<k}|Yj-Yk|/C(n,2)) for
    X = window[:τ] (m points) and Y = window[τ:] (n points), evaluated for every τ at once from 2-D
    prefix sums of the distance matrix. Returns (τ, q̂), or (-1, -inf) when the window is too short.
    """
    size = window.size
    if size < 2 * min_size:
        return -1, -math.inf
    distances = np.abs(window[:, None] - window[None, :])
    prefix = np.zeros((size + 1, size + 1))
    prefix[1:, 1:] = distances.cumsum(0).cumsum(1)
    tau = np.arange(min_size, size - min_size + 1)
    m, n = tau.astype(np.float64), (size - tau).astype(np.float64)
    inside_x = prefix[tau, tau] / 2
    to_end = prefix[tau, size]
    cross = to_end - prefix[tau, tau]
    inside_y = (prefix[size, size] - 2 * to_end + prefix[tau, tau]) / 2
    energy = 2 * cross / (m * n) - inside_x / (m * (m - 1) / 2) - inside_y / (n * (n - 1) / 2)
    scores = m * n / (m + n) * energy
    best = int(np.argmax(scores))
    return int(tau[best]), float(scores[best])


def _segment_changes(x: FloatArray, cuts: list[int], lower_is_better: bool) -> list[ChangePoint]:
    bounds = [0, *cuts, x.size]
    return [
        _change(
            bounds[k], "edivisive", float(x[bounds[k - 1] : bounds[k]].mean()),
            float(x[bounds[k] : bounds[k + 1]].mean()), lower_is_better, statistic=0.0,
        )
        for k in range(1, len(bounds) - 1)
    ]  # fmt: skip


def detect_changes_edivisive(
    values: Iterable[float],
    *,
    lower_is_better: bool = True,
    pvalue: float = 0.05,
    permutations: int = 100,
    min_size: int = 3,
    min_percent_change: float = 2.0,
    seed: int = 1234,
) -> list[ChangePoint]:
    """Change points by E-Divisive means with a permutation test (hierarchical, deterministic).

    Repeatedly: in every segment between the change points found so far, find the split with the largest
    q̂ (see ``_split_scores``; both sides hold at least ``min_size`` points); the best over all segments is
    the candidate. ``permutations`` times, shuffle every segment independently (numpy Generator seeded
    with ``seed``) and take the largest q̂ again; the p-value is (#shuffles scoring ≥ the candidate + 1) /
    (permutations + 1). Accept the candidate when p ≤ ``pvalue`` and search again; stop otherwise. Last,
    change points whose segment means differ by less than ``min_percent_change`` % are merged away,
    smallest first. Cost: O(n²) time and memory per pass.
    """
    x = _series(values)
    if min_size < 2 or permutations < 1 or not 0 < pvalue < 1:
        raise TrendAnalysisError("need min_size >= 2, permutations >= 1 and 0 < pvalue < 1")
    rng = np.random.default_rng(seed)
    cuts: list[int] = []
    found: dict[int, tuple[float, float]] = {}  # index -> (q̂, p)
    memo: dict[tuple[int, int], tuple[int, float]] = {}
    while True:
        bounds = [0, *cuts, x.size]
        best_tau, best_q = -1, -math.inf
        for start, end in itertools.pairwise(bounds):
            if (start, end) not in memo:
                memo[start, end] = _split_scores(x[start:end], min_size)
            tau, q = memo[start, end]
            if tau >= 0 and q > best_q:
                best_tau, best_q = start + tau, q
        if best_tau < 0:
            break
        exceed = 0
        for _ in range(permutations):
            shuffled = max(_split_scores(rng.permutation(x[s:e]), min_size)[1] for s, e in itertools.pairwise(bounds))
            exceed += shuffled >= best_q
        p = (exceed + 1) / (permutations + 1)
        if p > pvalue:
            break
        cuts = sorted([*cuts, best_tau])
        found[best_tau] = (best_q, p)
    changes = _segment_changes(x, cuts, lower_is_better)
    while changes:
        weakest = min(changes, key=lambda c: abs(c.percent_change))
        if abs(weakest.percent_change) >= min_percent_change:
            break
        cuts.remove(weakest.index)
        changes = _segment_changes(x, cuts, lower_is_better)
    return [
        ChangePoint(**{**c.to_dict(), "statistic": found[c.index][0], "p_value": found[c.index][1]}) for c in changes
    ]


# --- whole-series analysis ----------------------------------------------------------------------


@dataclass(frozen=True)
class TrendAnalysis:
    """Everything ``analyze_series`` says about a series."""

    n: int
    direction: str
    assessment: str
    slope: float
    intercept: float
    r_squared: float
    percent_change: float | None
    lower_is_better: bool
    change_points: tuple[ChangePoint, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        data = asdict(self)
        data["change_points"] = [c.to_dict() for c in self.change_points]
        return data


def analyze_series(
    values: Iterable[float],
    *,
    lower_is_better: bool = True,
    methods: Sequence[str] = METHODS,
    stable_percent: float = 1.0,
    ttest_options: dict[str, Any] | None = None,
    edivisive_options: dict[str, Any] | None = None,
) -> TrendAnalysis:
    """Direction, least-squares slope per point, first-to-last percent change and change points.

    ``assessment`` turns the direction into ``improving``/``degrading``/``stable`` given
    ``lower_is_better``. ``methods`` picks detectors (``ttest``, ``edivisive``); their keyword
    options pass through ``ttest_options`` / ``edivisive_options``.
    """
    y = _series(values)
    if y.size < 2:
        raise TrendAnalysisError(f"a trend needs at least two points, got {y.size}")
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise TrendAnalysisError(f"unknown change-point method(s) {sorted(unknown)}; use {list(METHODS)}")
    fit = linear_trend(y)
    direction = trend_direction(y, stable_percent)
    better = "decreasing" if lower_is_better else "increasing"
    assessment = "stable" if direction == "stable" else ("improving" if direction == better else "degrading")
    changes: list[ChangePoint] = []
    if "ttest" in methods:
        changes += detect_changes_ttest(y, lower_is_better=lower_is_better, **(ttest_options or {}))
    if "edivisive" in methods:
        changes += detect_changes_edivisive(y, lower_is_better=lower_is_better, **(edivisive_options or {}))
    return TrendAnalysis(
        n=int(y.size),
        direction=direction,
        assessment=assessment,
        slope=fit.slope,
        intercept=fit.intercept,
        r_squared=fit.r_squared,
        percent_change=percent_change(y),
        lower_is_better=lower_is_better,
        change_points=tuple(sorted(changes, key=lambda c: (c.index, c.method))),
    )


MetadataSource = Iterable[ArtifactMetadata] | Callable[[], Iterable[ArtifactMetadata]]


@dataclass(frozen=True)
class MetricTrend:
    """A metric's points over a time range and their analysis."""

    provider_name: str | None
    artifact_type: str
    metric_name: str
    points: tuple[MetricPoint, ...]
    analysis: TrendAnalysis

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (timestamps as ISO-8601)."""
        return {
            "provider_name": self.provider_name,
            "artifact_type": self.artifact_type,
            "metric_name": self.metric_name,
            "points": [{**asdict(p), "timestamp": p.timestamp.isoformat()} for p in self.points],
            "analysis": self.analysis.to_dict(),
        }


def analyze_metrics_trend(
    provider_name: str | None,
    artifact_type: CIArtifactKind | str,
    metric_name: str,
    days: float,
    *,
    source: MetadataSource,
    now: datetime | None = None,
    lower_is_better: bool = True,
    methods: Sequence[str] = METHODS,
) -> MetricTrend:
    """Trend of ``metric_name`` (a dotted content path, or an unambiguous leaf such as ``throughput``)
    over stored artifact metadata.

    ``source`` is the stored metadata (a list, or a callable returning one, e.g. a catalog query); only
    artifacts of ``artifact_type`` from ``provider_name`` (None for any) created in the last ``days``
    days before ``now`` (default: the current UTC time) count, oldest first.
    """
    kind = CIArtifactKind.parse(artifact_type).value
    items = source() if callable(source) else source
    since = (now or datetime.now(timezone.utc)) - timedelta(days=days)
    chosen = [
        meta
        for meta in items
        if meta.artifact_type == kind
        and (provider_name is None or meta.provider_name == provider_name)
        and meta.created_at >= since
    ]
    try:
        points = ArtifactDiscovery.extract_metrics_from_artifacts(chosen, [metric_name])[metric_name]
    except ArtifactQueryError as exc:  # the metric is in none of them, or the leaf name is ambiguous
        raise TrendAnalysisError(str(exc)) from exc
    if len(points) < 2:
        where = f"from {provider_name} " if provider_name else ""
        given = getattr(artifact_type, "value", artifact_type)
        raise TrendAnalysisError(
            f"{len(points)} {given} artifact(s) {where}in the last {days:g} days hold {metric_name!r}; "
            "a trend needs at least two"
        )
    analysis = analyze_series([p.value for p in points], lower_is_better=lower_is_better, methods=methods)
    return MetricTrend(provider_name, kind, metric_name, tuple(points), analysis)
