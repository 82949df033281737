"""Read-only catalog queries for browsing: one page of artifact names with their version counts, sizes and
aliases, filtered by name, type, label, alias and date; and one page of a name's versions, newest first.

Each page costs a handful of indexed queries whatever the catalog's size: the page's names are chosen
first (by name order, ``LIMIT``/``OFFSET``), then only their versions are aggregated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tracelet_artifacts.store.sql import Database
from tracelet_artifacts.values import ArtifactType

LATEST = "latest"


@dataclass(frozen=True)
class ArtifactFilter:
    """Which names a listing shows. Version-level conditions (type, label, dates) hold when one version of
    the name matches all of them; ``since``/``until`` are epoch seconds (``until`` exclusive)."""

    prefix: str | None = None
    contains: str | None = None
    artifact_type: str | None = None
    label: str | None = None
    alias: str | None = None
    since: float | None = None
    until: float | None = None

    def where(self, dialect: str = "sqlite") -> tuple[str, list[Any]]:
        """The WHERE clause over ``artifacts a`` and its parameters, for ``dialect`` (sqlite or postgresql)."""
        clauses, params = ["1=1"], list[Any]()
        if self.prefix:
            clauses.append("substr(a.name, 1, ?) = ?")
            params += [len(self.prefix), self.prefix]
        if self.contains:
            clauses.append("instr(a.name, ?) > 0")
            params.append(self.contains)
        if self.alias:
            clauses.append("EXISTS (SELECT 1 FROM aliases x WHERE x.artifact_id=a.id AND x.alias=?)")
            params.append(self.alias)
        # Version-level conditions select the matching versions once (by the type, label or time index) and
        # keep their names: one pass over what matches, never one probe of every name's versions.
        inner, inner_params = [], list[Any]()
        if self.artifact_type:
            inner.append("v.type=?")
            inner_params.append(ArtifactType.parse(self.artifact_type).value)
        if self.since is not None:
            inner.append("v.created_at >= ?")
            inner_params.append(float(self.since))
        if self.until is not None:
            inner.append("v.created_at < ?")
            inner_params.append(float(self.until))
        if self.label:
            inner.append("v.id IN (SELECT l.version_id FROM labels l WHERE l.label=?)")
            inner_params.append(self.label)
        if inner:
            # A label alone: SQLite would look each version up in the wide table unless told to use the narrow
            # (id, artifact_id) index (PostgreSQL's planner finds the index-only scan by itself).
            hint = " INDEXED BY versions_id_artifact" if dialect == "sqlite" and inner_params == [self.label] else ""
            clauses.append(f"a.id IN (SELECT v.artifact_id FROM versions v{hint} WHERE {' AND '.join(inner)})")
            params += inner_params
        return " AND ".join(clauses), params


@dataclass(frozen=True)
class ArtifactSummary:
    """One artifact name as a listing shows it: its latest version and totals over all its versions."""

    name: str
    versions: int
    latest: int
    artifact_type: str
    latest_size: int
    total_size: int
    updated_at: float
    description: str | None
    aliases: tuple[tuple[str, int], ...]  # (alias, version number), by alias


def _marks(count: int) -> str:
    return ",".join("?" * count)


def summaries(db: Database, where: ArtifactFilter, *, offset: int = 0, limit: int = 50) -> list[ArtifactSummary]:
    """One page of artifact names matching ``where``, in name order."""
    clause, params = where.where(db.dialect)
    rows = db.read(f"SELECT a.id, a.name FROM artifacts a WHERE {clause} ORDER BY a.name "
                   f"LIMIT {int(limit)} OFFSET {int(offset)}", params)
    if not rows:
        return []
    ids = [int(r["id"]) for r in rows]
    marks = _marks(len(ids))
    totals = {r["artifact_id"]: r for r in db.read(
        "SELECT artifact_id, COUNT(*) AS n, SUM(size_bytes) AS total, MAX(created_at) AS updated FROM versions "
        f"WHERE artifact_id IN ({marks}) GROUP BY artifact_id", ids)}
    latest = {r["artifact_id"]: r for r in db.read(
        "SELECT x.artifact_id, v.version, v.type, v.size_bytes, v.description FROM aliases x "
        f"JOIN versions v ON v.id=x.version_id WHERE x.alias='{LATEST}' AND x.artifact_id IN ({marks})", ids)}
    aliases: dict[int, list[tuple[str, int]]] = {}
    for r in db.read("SELECT x.artifact_id, x.alias, v.version FROM aliases x JOIN versions v ON v.id=x.version_id "
                     f"WHERE x.artifact_id IN ({marks}) ORDER BY x.alias", ids):
        aliases.setdefault(r["artifact_id"], []).append((r["alias"], int(r["version"])))
    found = []
    for r in rows:
        total, head = totals.get(r["id"]), latest.get(r["id"])
        if total is None or head is None:  # a name whose last version is being written right now
            continue
        found.append(ArtifactSummary(
            r["name"], int(total["n"]), int(head["version"]), head["type"], int(head["size_bytes"]),
            int(total["total"]), float(total["updated"]), head["description"], tuple(aliases.get(r["id"], ()))))
    return found


def count(db: Database, where: ArtifactFilter) -> int:
    """How many artifact names match ``where``."""
    clause, params = where.where(db.dialect)
    return int(db.read(f"SELECT COUNT(*) FROM artifacts a WHERE {clause}", params)[0][0])


def version_numbers(db: Database, name: str, *, offset: int = 0, limit: int = 50) -> tuple[int, list[int]]:
    """(how many versions ``name`` has, one page of their numbers, newest first)."""
    total = db.read("SELECT COUNT(*) FROM versions v JOIN artifacts a ON a.id=v.artifact_id WHERE a.name=?", (name,))
    rows = db.read("SELECT v.version FROM versions v JOIN artifacts a ON a.id=v.artifact_id WHERE a.name=? "
                   f"ORDER BY v.version DESC LIMIT {int(limit)} OFFSET {int(offset)}", (name,))
    return int(total[0][0]), [int(r["version"]) for r in rows]


def by_numbers(select: str, name: str, numbers: Sequence[int]) -> tuple[str, list[Any]]:
    """The SQL (over the catalog's version SELECT) for versions ``numbers`` of ``name``, newest first."""
    return (f"{select} WHERE a.name=? AND v.version IN ({_marks(len(numbers))}) ORDER BY v.version DESC",
            [name, *numbers])
