"""Previews of a version's entries: images inline, the first lines of text, JSON pretty-printed, the first
rows of a CSV, and the metrics inside JSON, CSV and JUnit/Cobertura XML files.

Content is read from the blob the catalog names by digest (never from a path a request gave), and only
its first bytes are read; everything shown goes through the templates' escaping.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from tracelet_artifacts.artifact import ManifestEntry
from tracelet_artifacts.ci.content import analyze_content
from tracelet_artifacts.errors import ContentAnalysisError

# Shown inline by the browser (<img>); anything else is downloaded, never rendered.
INLINE_IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/svg+xml"})
TEXT_BYTES = 64 * 1024
JSON_PARSE_BYTES = 1024 * 1024
CSV_ROWS = 20
METRIC_ROWS = 50
MAX_PREVIEW_BYTES = 64 * 1024 * 1024  # larger entries (e.g. in a team's bucket) are not fetched to preview


@dataclass(frozen=True)
class Preview:
    """What the page shows for one entry; ``kind`` is image, json, csv, text or none (``note`` says why)."""

    path: str
    kind: str
    text: str = ""
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    metrics: tuple[tuple[str, float], ...] = ()
    truncated: bool = False
    note: str = ""


def _head(path: Path, size: int) -> tuple[bytes, bool]:
    with path.open("rb") as handle:
        data = handle.read(size + 1)
    return data[:size], len(data) > size


def _metrics(blob: Path, name: str) -> tuple[tuple[str, float], ...]:
    try:
        found = analyze_content(blob, name).metrics
    except ContentAnalysisError:
        return ()
    return tuple(list(found.items())[:METRIC_ROWS])


def _csv(blob: Path, entry: ManifestEntry) -> Preview:
    data, cut = _head(blob, TEXT_BYTES)
    delimiter = "\t" if entry.path.lower().endswith(".tsv") else ","
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig", errors="replace")), delimiter=delimiter, strict=False)
    try:
        table = [tuple(row) for _, row in zip(range(CSV_ROWS + 1), reader, strict=False)]
    except csv.Error as exc:
        return Preview(entry.path, "text", data.decode("utf-8", errors="replace"), truncated=cut, note=str(exc))
    columns, rows = (table[0], tuple(table[1:])) if table else ((), ())
    return Preview(entry.path, "csv", columns=columns, rows=rows, metrics=_metrics(blob, entry.path),
                   truncated=cut or len(table) > CSV_ROWS)


def _json(blob: Path, entry: ManifestEntry) -> Preview:
    data, cut = _head(blob, JSON_PARSE_BYTES)
    if not cut:
        try:
            text = json.dumps(json.loads(data), indent=2, ensure_ascii=False, sort_keys=False)
        except (ValueError, RecursionError):
            text = data.decode("utf-8", errors="replace")
    else:
        text = data.decode("utf-8", errors="replace")
    long = len(text) > TEXT_BYTES
    return Preview(entry.path, "json", text[:TEXT_BYTES], metrics=_metrics(blob, entry.path), truncated=cut or long)


def preview_entry(blob_path: Path | None, entry: ManifestEntry) -> Preview:
    """The preview of ``entry`` whose content is the local file ``blob_path`` (None when ``needs_blob`` is False)."""
    name = entry.path.lower()
    if entry.mime in INLINE_IMAGES:
        return Preview(entry.path, "image")
    if entry.size > MAX_PREVIEW_BYTES or blob_path is None:
        return Preview(entry.path, "none", note=f"larger than {MAX_PREVIEW_BYTES // 2**20} MB: download it to look")
    if name.endswith(".json") or entry.mime == "application/json":
        return _json(blob_path, entry)
    if name.endswith((".csv", ".tsv")):
        return _csv(blob_path, entry)
    if entry.is_text:
        data, cut = _head(blob_path, TEXT_BYTES)
        metrics = _metrics(blob_path, entry.path) if name.endswith(".xml") else ()
        return Preview(entry.path, "text", data.decode("utf-8", errors="replace"), metrics=metrics, truncated=cut)
    return Preview(entry.path, "none", note=f"binary ({entry.mime}): download it to look")


def needs_blob(entry: ManifestEntry) -> bool:
    """Whether previewing ``entry`` reads its content here: text, JSON and CSV up to the size limit (images are
    fetched by the browser, binaries are not previewed, so neither is read nor fetched from a bucket)."""
    return (entry.mime not in INLINE_IMAGES and entry.size <= MAX_PREVIEW_BYTES
            and (entry.is_text or entry.path.lower().endswith((".json", ".csv", ".tsv"))))


def has_preview(entry: ManifestEntry) -> bool:
    """Whether the version page previews ``entry`` inline (images, and content ``needs_blob`` reads)."""
    return entry.mime in INLINE_IMAGES or needs_blob(entry)
