"""Comparing the content of one entry in two versions: configs key by key, metric files number by number.

Configs (JSON, YAML, TOML) are parsed and compared with the CI half's ``compare_documents``; metric files
(JUnit XML, Cobertura, CSV logs) are read with ``content.analyze_content``. Every changed number gets the
trend code's verdict (``analyze_series`` on the two points) when its name says which way is better.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tracelet_artifacts.ci.compare import MAX_COMPARE_BYTES, compare_documents, metric_delta
from tracelet_artifacts.ci.content import analyze_content
from tracelet_artifacts.diff.model import ADDED, CHANGED, REMOVED, ContentDiff, MetricChange, ValueChange
from tracelet_artifacts.errors import ContentAnalysisError

CONFIG_SUFFIXES = (".json", ".yaml", ".yml", ".toml")
METRIC_SUFFIXES = (".xml", ".csv", ".tsv")
# Words in a metric's name that say which way is better; matched against the name's words (``val_loss``).
LOWER_IS_BETTER = frozenset({"loss", "error", "errors", "err", "latency", "time", "duration", "seconds", "ms",
                             "mse", "mae", "rmse", "perplexity", "ppl", "failures", "failed", "wer", "cer",
                             "memory", "mem", "bytes"})
HIGHER_IS_BETTER = frozenset({"acc", "accuracy", "precision", "recall", "f1", "auc", "auroc", "score", "throughput",
                              "fps", "iou", "map", "bleu", "rouge", "passed", "rate", "coverage", "reward", "r2",
                              "covered", "ops", "qps"})


def lower_is_better(key: str) -> bool | None:
    """Which way a metric named ``key`` improves, from the words in its name; None when they do not say.

    >>> lower_is_better("val/loss"), lower_is_better("metrics.accuracy"), lower_is_better("lr")
    (True, False, None)
    """
    words = {w for w in re.split(r"[^a-z0-9]+", key.lower()) if w}
    if words & LOWER_IS_BETTER:  # "error_rate", "val_loss": a cost, even next to a word like "rate"
        return True
    return False if words & HIGHER_IS_BETTER else None


def verdict(before: float, after: float, lower: bool | None) -> str | None:
    """The trend code's assessment of the two-point series, as ``regression``/``improvement``/``stable``."""
    if lower is None:
        return None
    try:
        from tracelet_artifacts.ci.trends import analyze_series
    except ImportError:  # numpy is in the ci extra
        return None
    assessment = analyze_series([before, after], lower_is_better=lower, methods=()).assessment
    return {"degrading": "regression", "improving": "improvement"}.get(assessment, "stable")


def metric_change(key: str, before: float, after: float) -> MetricChange:
    """A MetricChange with its delta (``ci.compare.metric_delta``) and verdict."""
    delta, lower = metric_delta(before, after), lower_is_better(key)
    return MetricChange(key, before, after, delta.delta, delta.percent, lower, verdict(before, after, lower))


def _parse_config(path: Path, name: str) -> Any:
    data = path.read_bytes()
    suffix = name.lower().rsplit(".", 1)[-1]
    if suffix == "json":
        return json.loads(data)
    if suffix in ("yaml", "yml"):
        import yaml

        return yaml.safe_load(data)
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    return tomllib.loads(data.decode("utf-8"))


def diff_config(name: str, left: Path, right: Path) -> ContentDiff:
    """Key-level changes of a JSON/YAML/TOML file; changed numbers also as MetricChanges."""
    if max(left.stat().st_size, right.stat().st_size) > MAX_COMPARE_BYTES:
        return ContentDiff(name, "config", note=f"larger than {MAX_COMPARE_BYTES} bytes: compared by digest only")
    try:
        documents = _parse_config(left, name), _parse_config(right, name)
    except Exception as exc:  # any parser's error: the file is reported as unreadable, not the diff as failed
        return ContentDiff(name, "config", note=f"not readable as {name.rsplit('.', 1)[-1]}: {exc}"[:300])
    found = compare_documents(*(_plain(d) for d in documents))
    keys = [ValueChange(k, ADDED, after=v) for k, v in found["added"].items()]
    keys += [ValueChange(k, REMOVED, before=v) for k, v in found["removed"].items()]
    keys += [ValueChange(k, CHANGED, c["before"], c["after"]) for k, c in found["changed"].items()]
    metrics = [metric_change(k, d.before, d.after) for k, d in found["metric_deltas"].items()]
    return ContentDiff(name, "config", keys=tuple(sorted(keys, key=lambda c: c.key)), metrics=tuple(metrics),
                       note=found.get("note", ""))


def _plain(document: Any) -> Any:
    """TOML/YAML dates and other scalars as text, so the comparison sees JSON-like values."""
    if isinstance(document, Mapping):
        return {str(k): _plain(v) for k, v in document.items()}
    if isinstance(document, (list, tuple)):
        return [_plain(v) for v in document]
    if document is None or isinstance(document, (str, int, float, bool)):
        return document
    return str(document)


def diff_metrics(name: str, left: Path, right: Path) -> ContentDiff | None:
    """Numeric deltas of a metric file (JUnit, Cobertura, CSV); None when neither side holds metrics."""
    try:
        before, after = analyze_content(left, name).metrics, analyze_content(right, name).metrics
    except ContentAnalysisError as exc:
        return ContentDiff(name, "metrics", note=str(exc)[:300])
    if not before and not after:
        return None
    metrics = [metric_change(k, before[k], after[k]) for k in sorted(before.keys() & after.keys())
               if before[k] != after[k]]
    keys = [ValueChange(k, ADDED, after=after[k]) for k in sorted(after.keys() - before.keys())]
    keys += [ValueChange(k, REMOVED, before=before[k]) for k in sorted(before.keys() - after.keys())]
    return ContentDiff(name, "metrics", keys=tuple(keys), metrics=tuple(metrics))
