"""Content analysis: what is inside a CI artifact. Numbers from JSON (flattened to dotted paths), test counts
from JUnit XML, coverage rates from Cobertura XML, columns and rows from CSV.
What a CI artifact is for lives in ``kinds``.

Every reader is bounded: it reads at most ``max_bytes``, never expands XML entities (any DOCTYPE or ENTITY
declaration is refused), and either returns a ContentAnalysis or raises ContentAnalysisError.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import tempfile
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from xml.parsers import expat

from tracelet_artifacts.detect import is_text, kind_for_name, read_head
from tracelet_artifacts.errors import ContentAnalysisError, ContentTooLargeError

MAX_JSON_BYTES = 32 * 1024 * 1024
MAX_XML_BYTES = 256 * 1024 * 1024
MAX_CSV_BYTES = 64 * 1024 * 1024
MAX_FLAT_KEYS = 10_000
MAX_FLAT_DEPTH = 32
MAX_FIELD_CHARS = 256
_READ_CHUNK = 1024 * 1024




@dataclass(frozen=True)
class TestCounts:
    """Totals of a JUnit XML report; ``time`` is in seconds."""

    __test__ = False  # not a pytest test class

    tests: int
    failures: int
    errors: int
    skipped: int
    time: float
    suites: int = 0

    @property
    def passed(self) -> int:
        """Tests that neither failed, errored nor were skipped."""
        return max(0, self.tests - self.failures - self.errors - self.skipped)


@dataclass(frozen=True)
class ContentAnalysis:
    """What a file holds. ``format`` is one of json, junit, cobertura, xml, csv, text, binary, empty.

    ``metrics`` maps dotted paths to finite numbers (``{"metrics.throughput": 120.0}``); ``fields`` holds
    the non-numeric scalar leaves of a JSON document (strings cut to 256 chars, booleans, null).
    """

    format: str
    metrics: Mapping[str, float] = field(default_factory=dict)
    fields: Mapping[str, str | bool | None] = field(default_factory=dict)
    tests: TestCounts | None = None
    columns: tuple[str, ...] = ()
    row_count: int | None = None
    root: str | None = None
    truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``from_dict`` reads it back."""
        data = asdict(self)
        data["metrics"] = dict(self.metrics)
        data["fields"] = dict(self.fields)
        data["columns"] = list(self.columns)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ContentAnalysis:
        """Rebuild an analysis written by ``to_dict``."""
        tests = data.get("tests")
        return cls(
            format=str(data["format"]),
            metrics={str(k): float(v) for k, v in dict(data.get("metrics") or {}).items()},
            fields=dict(data.get("fields") or {}),
            tests=TestCounts(**tests) if tests else None,
            columns=tuple(data.get("columns") or ()),
            row_count=data.get("row_count"),
            root=data.get("root"),
            truncated=bool(data.get("truncated", False)),
        )


def _read_bounded(path: Path, max_bytes: int, what: str) -> bytes:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ContentTooLargeError(
                f"{path} is {size} bytes; {what} analysis reads at most {max_bytes} bytes "
                "(raise max_bytes to analyse it)"
            )
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise ContentAnalysisError(f"cannot read {path}: {exc}") from exc
    if len(data) > max_bytes:  # the file grew while we read it
        raise ContentTooLargeError(f"{path} grew past {max_bytes} bytes while being read")
    return data


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except (OverflowError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _list_keys(items: list[Any]) -> list[str]:
    """Keys for list items: their ``name`` when every item is an object with a distinct string name."""
    names = [item.get("name") if isinstance(item, dict) else None for item in items]
    if items and all(isinstance(n, str) and n for n in names) and len(set(names)) == len(names):
        return [str(n) for n in names]
    return [str(i) for i in range(len(items))]


def _walk(value: Any, prefix: str, depth: int) -> Iterator[tuple[str, Any]]:
    if depth > MAX_FLAT_DEPTH:
        return
    if isinstance(value, dict):
        children: Iterator[tuple[str, Any]] = ((str(k), v) for k, v in value.items())
    elif isinstance(value, list):
        children = zip(_list_keys(value), value, strict=True)
    else:
        yield prefix, value
        return
    for key, child in children:
        if isinstance(value, list) and isinstance(child, dict) and key == child.get("name"):
            child = {k: v for k, v in child.items() if k != "name"}
        yield from _walk(child, f"{prefix}.{key}" if prefix else key, depth + 1)


def json_leaves(document: Any, max_leaves: int = MAX_FLAT_KEYS) -> tuple[dict[str, Any], bool]:
    """Every scalar leaf of a parsed JSON document by dotted path, unchanged, and whether the walk
    stopped at ``max_leaves``. Paths are built as ``flatten_json`` describes."""
    leaves: dict[str, Any] = {}
    for count, (path, leaf) in enumerate(_walk(document, "", 0)):
        if count >= max_leaves:
            return leaves, True
        leaves[path] = leaf
    return leaves, False


def flatten_json(document: Any) -> tuple[dict[str, float], dict[str, str | bool | None], bool]:
    """Split a parsed JSON document into (numbers, other scalars, truncated) keyed by dotted paths.

    Objects nest as ``a.b``; list items are keyed by their index (``runs.0.value``), or by their
    ``name`` when every item is an object with a distinct string ``name`` (``benches.sort.value``), the
    shape benchmark and Perfherder reports use. Booleans and non-finite numbers are not metrics. At most
    10,000 leaves and 32 levels are read; ``truncated`` says the limit was hit.
    """
    metrics: dict[str, float] = {}
    fields: dict[str, str | bool | None] = {}
    leaves, truncated = json_leaves(document)
    for raw_path, leaf in leaves.items():
        path, number = _storable(raw_path), _number(leaf)
        if number is not None:
            metrics[path] = number
        elif isinstance(leaf, str):
            fields[path] = _storable(leaf[:MAX_FIELD_CHARS])
        elif leaf is None or isinstance(leaf, bool):
            fields[path] = leaf
    return metrics, fields, truncated


def _storable(text: str) -> str:
    """``text`` with lone surrogates (JSON ``"\\ud800"`` escapes) replaced by ``?``, so any catalog can store it."""
    return text.encode("utf-8", "replace").decode("utf-8")


def analyze_json_bytes(data: bytes) -> ContentAnalysis:
    """Analyse a JSON document held in memory; raises ContentAnalysisError when it is not valid JSON."""
    if not data.strip():
        raise ContentAnalysisError("empty JSON document")
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ContentAnalysisError(f"not valid JSON: {exc}") from exc
    metrics, fields, truncated = flatten_json(document)
    return ContentAnalysis("json", metrics, fields, truncated=truncated)


def analyze_json(path: Path, max_bytes: int = MAX_JSON_BYTES) -> ContentAnalysis:
    """Metrics and scalar fields of a JSON file, read whole but never past ``max_bytes``."""
    return analyze_json_bytes(_read_bounded(Path(path), max_bytes, "JSON"))


class _StopParsing(Exception):
    """Raised from an expat handler once the document's root says all we need."""


def _int_attr(attrs: Mapping[str, str], name: str) -> int | None:
    try:
        return int(float(attrs[name]))
    except (KeyError, ValueError, OverflowError):
        return None


def _float_attr(attrs: Mapping[str, str], name: str) -> float | None:
    try:
        value = float(attrs[name])
    except (KeyError, ValueError):
        return None
    return value if math.isfinite(value) else None


class _XmlReport:
    """Expat handlers that total JUnit suites and read a Cobertura root, keeping O(1) state."""

    def __init__(self) -> None:
        self.root: str | None = None
        self.attrs: dict[str, str] = {}
        self.suites: list[dict[str, float]] = []
        self.suite_depth = 0
        self.case: dict[str, bool] | None = None
        self.case_time = 0.0

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        tag = tag.rsplit(":", 1)[-1]
        if self.root is None:
            self.root, self.attrs = tag, attrs
            if tag not in ("testsuites", "testsuite"):
                raise _StopParsing
        if tag == "testsuite":
            if self.suite_depth == 0:
                self.suites.append(self._declared(attrs))
            self.suite_depth += 1
        elif tag == "testcase":
            if not self.suites:  # testcases straight under <testsuites>
                self.suites.append(self._declared({}))
            self.case = {"failure": False, "error": False, "skipped": False}
            self.case_time = _float_attr(attrs, "time") or 0.0
        elif self.case is not None and tag in self.case:
            self.case[tag] = True

    def end(self, tag: str) -> None:
        tag = tag.rsplit(":", 1)[-1]
        if tag == "testsuite":
            self.suite_depth = max(0, self.suite_depth - 1)
        elif tag == "testcase" and self.case is not None:
            suite = self.suites[-1]
            suite["n_tests"] += 1
            suite["n_failures"] += self.case["failure"]
            suite["n_errors"] += self.case["error"] and not self.case["failure"]
            suite["n_skipped"] += self.case["skipped"]
            suite["n_time"] += self.case_time
            self.case = None

    @staticmethod
    def _declared(attrs: Mapping[str, str]) -> dict[str, float]:
        suite: dict[str, float] = {f"n_{k}": 0 for k in ("tests", "failures", "errors", "skipped", "time")}
        for key in ("tests", "failures", "errors", "skipped"):
            value = _int_attr(attrs, key)
            if value is not None and value >= 0:
                suite[key] = value
        if "skipped" not in suite and (disabled := _int_attr(attrs, "disabled")) is not None:
            suite["skipped"] = disabled
        time = _float_attr(attrs, "time")
        if time is not None:
            suite["time"] = time
        return suite

    def counts(self) -> TestCounts:
        """Totals: a suite's declared attributes where present, otherwise what its testcases show."""
        totals = dict.fromkeys(("tests", "failures", "errors", "skipped", "time"), 0.0)
        for suite in self.suites:
            for key in totals:
                totals[key] += suite.get(key, suite[f"n_{key}"])
        if not self.suites and self.root == "testsuites":
            for key in totals:
                totals[key] = float(_float_attr(self.attrs, key) or 0.0)
        return TestCounts(
            tests=int(totals["tests"]),
            failures=int(totals["failures"]),
            errors=int(totals["errors"]),
            skipped=int(totals["skipped"]),
            time=round(totals["time"], 6),
            suites=len(self.suites),
        )


def _refuse(kind: str) -> Any:
    def handler(*_args: Any) -> None:
        raise ContentAnalysisError(f"XML with a {kind} declaration is refused (entity expansion risk)")

    return handler


def _safe_parser(report: _XmlReport) -> Any:
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse("DOCTYPE")
    parser.EntityDeclHandler = _refuse("ENTITY")
    parser.ExternalEntityRefHandler = _refuse("external entity")
    parser.StartElementHandler = report.start
    parser.EndElementHandler = report.end
    return parser


def _feed_xml(chunks: Iterator[bytes]) -> _XmlReport:
    report = _XmlReport()
    parser = _safe_parser(report)
    try:
        for chunk in chunks:
            parser.Parse(chunk, False)
        parser.Parse(b"", True)
    except _StopParsing:
        pass
    except expat.ExpatError as exc:
        raise ContentAnalysisError(f"malformed or truncated XML: {exc}") from exc
    except (LookupError, ValueError) as exc:  # an unknown or unsupported declared encoding
        raise ContentAnalysisError(f"XML in an unreadable encoding: {exc}") from exc
    except RecursionError as exc:
        raise ContentAnalysisError("XML nested too deeply") from exc
    return report


def _xml_result(report: _XmlReport) -> ContentAnalysis:
    if report.root in ("testsuites", "testsuite"):
        counts = report.counts()
        metrics = {k: float(getattr(counts, k)) for k in ("tests", "failures", "errors", "skipped", "time")}
        metrics["passed"] = float(counts.passed)
        return ContentAnalysis("junit", metrics, tests=counts, root=report.root)
    if report.root == "coverage":
        metrics = {}
        for attr in ("line-rate", "branch-rate", "lines-valid", "lines-covered"):
            value = _float_attr(report.attrs, attr)
            if value is not None:
                metrics[f"coverage.{attr.replace('-', '_')}"] = value
        return ContentAnalysis("cobertura", metrics, root=report.root)
    return ContentAnalysis("xml", root=report.root)


def analyze_xml_bytes(data: bytes) -> ContentAnalysis:
    """Analyse an XML document in memory (JUnit, Cobertura or other); DOCTYPE/ENTITY are refused."""
    return _xml_result(_feed_xml(iter([data])))


def analyze_xml(path: Path, max_bytes: int = MAX_XML_BYTES) -> ContentAnalysis:
    """Stream an XML file through a non-expanding parser, reading at most ``max_bytes``."""
    path = Path(path)

    def chunks() -> Iterator[bytes]:
        read = 0
        with path.open("rb") as handle:
            while chunk := handle.read(_READ_CHUNK):
                read += len(chunk)
                if read > max_bytes:
                    raise ContentTooLargeError(f"{path} is larger than the XML limit of {max_bytes} bytes")
                yield chunk

    try:
        return _xml_result(_feed_xml(chunks()))
    except OSError as exc:
        raise ContentAnalysisError(f"cannot read {path}: {exc}") from exc


def analyze_junit(path: Path, max_bytes: int = MAX_XML_BYTES) -> TestCounts:
    """Test counts of a JUnit XML report (``<testsuites>`` or ``<testsuite>`` root)."""
    result = analyze_xml(path, max_bytes)
    if result.tests is None:
        raise ContentAnalysisError(f"{path} is not a JUnit report (root element <{result.root}>)")
    return result.tests


def analyze_csv_text(lines: Iterator[str], delimiter: str = ",", max_bytes: int = MAX_CSV_BYTES) -> ContentAnalysis:
    """Columns, row count and per-column mean/min/max/last of numeric columns of CSV lines.

    Reading stops after ``max_bytes`` characters; the result then says ``truncated`` and ``row_count``
    counts the rows read so far.
    """
    budget = {"left": max_bytes, "cut": False}

    def bounded() -> Iterator[str]:
        for line in lines:
            budget["left"] -= len(line)
            if budget["left"] < 0:
                budget["cut"] = True
                return
            yield line

    reader = csv.reader(bounded(), delimiter=delimiter, strict=False)
    try:
        header = next(reader, None)
        if header is None:
            return ContentAnalysis("csv", columns=(), row_count=0, truncated=bool(budget["cut"]))
        columns = tuple(name.strip() for name in header)
        stats: dict[int, list[float]] = {}  # column -> [count, sum, min, max, last]
        non_numeric: set[int] = set()
        rows = 0
        for row in reader:
            if not row:
                continue
            rows += 1
            for index, cell in enumerate(row[: len(columns)]):
                _add_cell(stats, non_numeric, index, cell)
    except csv.Error as exc:
        raise ContentAnalysisError(f"malformed CSV: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ContentAnalysisError(f"CSV is not UTF-8 text: {exc}") from exc
    metrics: dict[str, float] = {}
    for index, (count, total, low, high, last) in stats.items():
        if index in non_numeric or not count:
            continue
        name = columns[index] or f"column_{index}"
        metrics.update({f"{name}.mean": total / count, f"{name}.min": low, f"{name}.max": high})
        metrics[f"{name}.last"] = last
    return ContentAnalysis("csv", metrics, columns=columns, row_count=rows, truncated=bool(budget["cut"]))


def _add_cell(stats: dict[int, list[float]], non_numeric: set[int], index: int, cell: str) -> None:
    if index in non_numeric or not cell.strip():
        return
    try:
        value = float(cell)
    except ValueError:
        non_numeric.add(index)
        return
    if not math.isfinite(value):
        return
    entry = stats.setdefault(index, [0.0, 0.0, value, value, value])
    entry[0] += 1
    entry[1] += value
    entry[2] = min(entry[2], value)
    entry[3] = max(entry[3], value)
    entry[4] = value


def analyze_csv(path: Path, max_bytes: int = MAX_CSV_BYTES) -> ContentAnalysis:
    """Columns and rows of a CSV (or, for ``*.tsv``, tab-separated) file; see ``analyze_csv_text``."""
    path = Path(path)
    delimiter = "\t" if path.name.lower().endswith(".tsv") else ","
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as handle:
            # readline with a limit: a file with no line break is never read whole into memory
            return analyze_csv_text(iter(lambda: handle.readline(max_bytes + 1), ""), delimiter, max_bytes)
    except OSError as exc:
        raise ContentAnalysisError(f"cannot read {path}: {exc}") from exc


def _only_member(path: Path) -> zipfile.ZipInfo | None:
    """The one regular file of a zip (GitHub and GitLab wrap every artifact in a zip), or None."""
    try:
        with zipfile.ZipFile(path) as archive:
            files = [info for info in archive.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    return files[0] if len(files) == 1 and not files[0].filename.lower().endswith(".zip") else None


@contextlib.contextmanager
def unwrapped(path: Path, max_bytes: int = MAX_XML_BYTES) -> Iterator[tuple[Path, str]]:
    """``(file, name)`` to read for ``path``: the only file of a zip that holds one (copied out to a
    temporary folder, at most ``max_bytes`` whatever its header claims), else ``path`` itself."""
    path = Path(path)
    try:
        is_zip = read_head(path, 4) == b"PK\x03\x04"
    except OSError as exc:
        raise ContentAnalysisError(f"cannot read {path}: {exc}") from exc
    member = _only_member(path) if is_zip else None
    if member is None:
        yield path, path.name
        return
    with tempfile.TemporaryDirectory(prefix="tracelet-content-") as scratch:
        copy = Path(scratch) / "member"
        written = 0
        try:
            with zipfile.ZipFile(path) as archive, archive.open(member) as source, copy.open("wb") as out:
                while chunk := source.read(_READ_CHUNK):
                    written += len(chunk)
                    if written > max_bytes:
                        raise ContentTooLargeError(
                            f"{path} holds {member.filename}, more than {max_bytes} bytes; not analysed"
                        )
                    out.write(chunk)
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
            raise ContentAnalysisError(f"cannot read {member.filename} inside {path}: {exc}") from exc
        yield copy, PurePosixPath(member.filename).name or "member"


def analyze_content(path: Path, name: str | None = None) -> ContentAnalysis:
    """Analyse a file by its name (``name`` overrides the path's) and, for unknown suffixes, its first bytes.
    A zip that holds exactly one file (how GitHub and GitLab deliver an artifact) is analysed as that file.

    Returns ``format="text"``/``"binary"``/``"empty"`` for files that hold no structured content;
    raises ContentAnalysisError when a JSON, XML or CSV file is malformed, truncated or too large.
    """
    path = Path(path)
    label = (name or path.name).lower()
    try:
        head = read_head(path, 512)
    except OSError as exc:
        raise ContentAnalysisError(f"cannot read {path}: {exc}") from exc
    if not head:
        return ContentAnalysis("empty")
    if head.startswith(b"PK\x03\x04") and _only_member(path) is not None:
        with unwrapped(path) as (inner, inner_name):
            return analyze_content(inner, name=inner_name)
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if label.endswith(".json") or (kind_for_name(label) is None and stripped[:1] in (b"{", b"[")):
        return analyze_json(path)
    if label.endswith(".xml") or (kind_for_name(label) is None and stripped[:1] == b"<"):
        return analyze_xml(path)
    if label.endswith((".csv", ".tsv")):
        return analyze_csv(path)
    return ContentAnalysis("text" if is_text(label, head) else "binary")
