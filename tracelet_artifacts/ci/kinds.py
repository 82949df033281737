"""What a CI artifact is for (``CIArtifactKind``: performance report, test report, coverage, log, …) and
``classify_ci_artifact``, which decides it from the content analysis first and the file name second.
"""

from __future__ import annotations

import re
from enum import Enum
from pathlib import PurePath

from tracelet_artifacts.ci.content import ContentAnalysis
from tracelet_artifacts.ci.errors import ArtifactQueryError


class CIArtifactKind(str, Enum):
    """What a CI artifact is for, as decided by ``classify_ci_artifact``.

    The values are the names of the CI artifact handling system this bridge grew from
    (``performance_report``, ``test_report``, ``coverage_report``, ``test_log``, …); the project's
    shorter names (``perf_report``, ``test_results``, ``coverage``, ``log``, ``profile``, ``screenshot``,
    ``other``) are accepted wherever a kind is given, as values and as member names.

    >>> CIArtifactKind("perf_report") is CIArtifactKind.PERFORMANCE_REPORT is CIArtifactKind.PERF_REPORT
    True
    """

    PERFORMANCE_REPORT = "performance_report"
    TEST_REPORT = "test_report"
    TEST_SUMMARY = "test_summary"
    COVERAGE_REPORT = "coverage_report"
    TEST_LOG = "test_log"
    PROFILING = "profiling"
    TRACE = "trace"
    CRASH_DUMP = "crash_dump"
    IMAGE = "image"
    ARCHIVE = "archive"
    MODEL = "model"
    METRICS = "metrics"
    REPORT = "report"
    DATA = "data"
    CONFIG = "config"
    BINARY = "binary"
    GENERIC = "generic"
    # the project's earlier names: aliases of the members above
    PERF_REPORT = "performance_report"
    TEST_RESULTS = "test_report"
    COVERAGE = "coverage_report"
    LOG = "test_log"
    PROFILE = "profiling"
    SCREENSHOT = "image"
    OTHER = "generic"

    @classmethod
    def _missing_(cls, value: object) -> CIArtifactKind | None:
        if isinstance(value, str):
            name = value.strip().lower()
            alias = _SHORT_NAMES.get(name)
            if alias is not None:
                return cls(alias)
            if name != value:
                return cls(name)
        return None

    @property
    def spellings(self) -> tuple[str, ...]:
        """Every name of this kind: its value first, then the project's earlier name, if it had one."""
        return (self.value, *(short for short, value in _SHORT_NAMES.items() if value == self.value))

    @classmethod
    def parse(cls, value: CIArtifactKind | str) -> CIArtifactKind:
        """The kind named ``value``; an unknown name raises ArtifactQueryError listing the accepted ones."""
        try:
            return cls(value)
        except ValueError:
            accepted = ", ".join(sorted({*(k.value for k in cls), *_SHORT_NAMES}))
            raise ArtifactQueryError(f"unknown CI artifact type {value!r}; accepted: {accepted}") from None


# The project's shorter names, accepted as values (``CIArtifactKind("perf_report")``).
_SHORT_NAMES = {
    "perf_report": "performance_report",
    "test_results": "test_report",
    "coverage": "coverage_report",
    "log": "test_log",
    "profile": "profiling",
    "screenshot": "image",
    "other": "generic",
}


# Name patterns, tried in order after the content rules; matched against the lower-cased file name.
_CI_NAME_RULES: tuple[tuple[CIArtifactKind, re.Pattern[str]], ...] = (
    (
        CIArtifactKind.COVERAGE_REPORT,
        re.compile(r"(^|[^a-z])(coverage|cobertura|lcov|jacoco|clover)|\.lcov$|^\.coverage"),
    ),
    (CIArtifactKind.TEST_REPORT, re.compile(r"junit|test[-_ ]?(results?|report)|xunit|nunit|surefire")),
    (CIArtifactKind.PERFORMANCE_REPORT, re.compile(r"perf|bench|talos|raptor|browsertime|throughput|latency")),
    (CIArtifactKind.TEST_SUMMARY, re.compile(r"[-_.]summary\.(json|txt|md)$")),
    (CIArtifactKind.CRASH_DUMP, re.compile(r"\.(dmp|dump)$|[-_.]crash\.txt$|minidump")),
    (CIArtifactKind.PROFILING, re.compile(r"profil|\.prof$|\.pstats$|flamegraph")),
    (CIArtifactKind.TRACE, re.compile(r"(^|[-_.])trace\.json$|\.trace$")),
    (CIArtifactKind.METRICS, re.compile(r"[-_.]metrics\.(json|csv)$")),
    (CIArtifactKind.TEST_LOG, re.compile(r"\.log(\.gz)?$|(^|[^a-z])logs?([^a-z]|$)|stdout|stderr")),
    (CIArtifactKind.IMAGE, re.compile(r"\.(png|jpe?g|gif|webp|bmp|svg)$")),
    (CIArtifactKind.ARCHIVE, re.compile(r"\.(zip|tar|tgz|tar\.gz|tar\.bz2|tar\.xz|7z)$")),
    (CIArtifactKind.MODEL, re.compile(r"\.(onnx|pt|pth|h5|pb|safetensors|ckpt)$")),
    (CIArtifactKind.REPORT, re.compile(r"\.(html?|md|pdf)$|report")),
    (CIArtifactKind.DATA, re.compile(r"\.(csv|tsv|jsonl|parquet|arrow|feather|npy|npz)$")),
    (CIArtifactKind.CONFIG, re.compile(r"\.(ya?ml|toml|ini|cfg|conf|env)$")),
)
_PERF_JSON_KEYS = ("benches", "suites", "metrics", "benchmarks", "throughput", "latency")


def classify_ci_artifact(name: str, analysis: ContentAnalysis | None = None) -> CIArtifactKind:
    """The kind of a CI artifact, from its content first (JUnit, Cobertura, coverage.py and
    benchmark/Perfherder JSON shapes) and its name second (``perf``, ``junit``, ``*.log``, …).

    >>> classify_ci_artifact("results.xml", ContentAnalysis("junit")).value
    'test_report'
    """
    if analysis is not None:
        if analysis.format == "junit":
            return CIArtifactKind.TEST_REPORT
        if analysis.format == "cobertura" or "totals.percent_covered" in analysis.metrics:
            return CIArtifactKind.COVERAGE_REPORT
    label = PurePath(name).name.lower()
    for kind, pattern in _CI_NAME_RULES:
        if pattern.search(label):
            return kind
    if analysis is not None and analysis.format == "json":
        if any(str(path).split(".", 1)[0] in _PERF_JSON_KEYS for path in analysis.metrics):
            return CIArtifactKind.PERFORMANCE_REPORT
        return CIArtifactKind.CONFIG if not analysis.metrics else CIArtifactKind.DATA
    if analysis is not None and analysis.format in ("text", "empty"):
        return CIArtifactKind.GENERIC
    if analysis is not None and analysis.format == "binary":
        return CIArtifactKind.BINARY
    return CIArtifactKind.GENERIC
