"""``VersionDiff`` as text for the terminal (rich tables); what ``tracelet-artifacts diff`` prints."""

from __future__ import annotations

import json
from typing import Any

from tracelet_artifacts.diff.model import ContentDiff, MetricChange, ValueChange, VersionDiff

_STYLES = {"added": "green", "removed": "red", "changed": "yellow", "shape": "magenta",
           "regression": "bold red", "improvement": "green", "stable": "dim"}


def size_text(num: float | None) -> str:
    """``1.5 MB``-style size; ``-`` for a missing side."""
    if num is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(num) < 1024 or unit == "TB":
            return f"{num:.0f} {unit}" if unit == "B" else f"{num:.1f} {unit}"
        num /= 1024
    return f"{num:.1f} TB"


def value_text(value: Any) -> str:
    """A metadata or config value as one short line of JSON."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:79] + "…"


def number_text(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    if value in (float("inf"), float("-inf")):
        return "∞" if value > 0 else "-∞"
    return f"{value:+.4g}" if signed else f"{value:.6g}"


def _styled(word: str) -> str:
    style = _STYLES.get(word)
    return f"[{style}]{word}[/]" if style else word


def _sides(change: ValueChange) -> tuple[str, str]:
    """The A and B cells of a key change (blank where the key is missing)."""
    from rich.markup import escape

    return (escape(value_text(change.before)) if change.status != "added" else "",
            escape(value_text(change.after)) if change.status != "removed" else "")


def _metrics_table(content: ContentDiff, metrics: tuple[MetricChange, ...]) -> Any:
    from rich.markup import escape
    from rich.table import Table

    table = Table("key", "A", "B", "delta", "%", "verdict", title=f"{escape(content.path)}: numbers")
    for m in metrics:
        percent = "n/a" if m.percent is None else f"{m.percent:+.2f}%"
        table.add_row(escape(m.key), number_text(m.before), number_text(m.after), number_text(m.delta, True),
                      percent, _styled(m.verdict) if m.verdict else "-")
    return table


def _content_tables(content: ContentDiff) -> list[Any]:
    from rich.markup import escape
    from rich.table import Table

    tables: list[Any] = []
    numeric = {m.key for m in content.metrics}
    keys = [k for k in content.keys if k.key not in numeric]
    if keys:
        table = Table("key", "change", "A", "B", title=f"{escape(content.path)}: keys")
        for k in keys:
            table.add_row(escape(k.key), _styled(k.status), *_sides(k))
        tables.append(table)
    if content.metrics:
        tables.append(_metrics_table(content, content.metrics))
    moved = [t for t in content.tensors if t.status != "unchanged"]
    if content.tensors:
        table = Table("tensor", "change", "shape A", "shape B", "‖B-A‖/‖A‖",
                      title=f"{escape(content.path)}: tensors ({len(content.tensors) - len(moved)} unchanged)")
        for t in moved:
            table.add_row(escape(t.key), _styled(t.status), str(list(t.shape_a)) if t.shape_a is not None else "-",
                          str(list(t.shape_b)) if t.shape_b is not None else "-", number_text(t.relative_change))
        tables.append(table)
    return tables


def print_diff(diff: VersionDiff, console: Any) -> None:
    """Print every part of ``diff`` that differs; a one-line verdict when nothing does."""
    from rich.markup import escape
    from rich.table import Table

    console.print(f"[bold]{escape(diff.ref_a)}[/] → [bold]{escape(diff.ref_b)}[/]  "
                  f"digest {diff.digest_a[:12]}… → {diff.digest_b[:12]}…")
    if diff.identical:
        console.print("identical: same content, metadata and labels")
    if diff.type_a != diff.type_b:
        console.print(f"type: {diff.type_a} → {diff.type_b}")
    if diff.description_a != diff.description_b:
        console.print(f"description: {escape(repr(diff.description_a))} → {escape(repr(diff.description_b))}")
    if set(diff.aliases_a) != set(diff.aliases_b):
        before, after = ", ".join(diff.aliases_a) or "-", ", ".join(diff.aliases_b) or "-"
        console.print(f"aliases: {escape(before)} → {escape(after)}")
    changed = diff.changed_entries
    if changed:
        table = Table("entry", "change", "size A", "size B", "digest A", "digest B", title="entries")
        for e in changed:
            table.add_row(escape(e.path), _styled(e.status), size_text(e.size_a), size_text(e.size_b),
                          (e.digest_a or "-")[:12], (e.digest_b or "-")[:12])
        console.print(table)
    console.print(f"{len(diff.entries) - len(changed)} entr(ies) unchanged")
    for title, changes in (("metadata", diff.metadata), ("labels", diff.labels)):
        if changes:
            table = Table("key", "change", "A", "B", title=title)
            for c in changes:
                table.add_row(escape(c.key), _styled(c.status), *_sides(c))
            console.print(table)
    for content in diff.contents:
        for table in _content_tables(content):
            console.print(table)
        if content.note:
            console.print(f"{escape(content.path)}: {escape(content.note)}")
    if diff.regressions:
        console.print(f"[bold red]{len(diff.regressions)} regression(s)[/]: "
                      + ", ".join(escape(m.key) for m in diff.regressions))
