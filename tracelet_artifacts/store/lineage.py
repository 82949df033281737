"""Lineage: which run consumed which version (``uses``), and the graph that follows from it.

A version's producer is its run (``versions.run_id``); what a run consumed is recorded as a *use* (the run,
the version by name and number, how: ``use_artifact`` or the hook that saw it, and when). A version's
inputs are the uses its run recorded up to the moment the version was committed, so a dataset used after
a model was logged is not that model's input. Uses keep the name and number of a deleted version, so the
edge survives ``rm --force`` (the node shows as deleted).

It is the fourth small object over the catalog's database and ``transaction()``, beside the catalog, the
outbox and the stat cache::

    lineage = Lineage(database)
    lineage.record_use("3f2a…", dataset_version, how="use_artifact")
    graph = lineage.graph("vision/classifier", 2, direction="up", depth=3)
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tracelet_artifacts import digest
from tracelet_artifacts.errors import ArtifactStoreError
from tracelet_artifacts.procs import HOST
from tracelet_artifacts.store.catalog import Catalog
from tracelet_artifacts.store.sql import Database
from tracelet_artifacts.values import ArtifactVersion

Direction = Literal["up", "down", "both"]
DIRECTIONS: tuple[str, ...] = ("up", "down", "both")
#: How a use is recorded when the user calls ``use_artifact`` (hooks name themselves: ``torch.load``, …).
USE_ARTIFACT = "use_artifact"
PRODUCED = "produced"


@dataclass(frozen=True)
class Use:
    """One version consumed by one run: how, and when. ``present`` is False once the version was deleted."""

    run_id: str
    name: str
    version: int
    how: str
    used_at: float
    present: bool = True

    @property
    def ref(self) -> str:
        return f"{self.name}:v{self.version}"


@dataclass(frozen=True)
class LineageNode:
    """A version (``id`` = ``name:vN``) or a run (``id`` = ``run:<run id>``) in a lineage graph. ``depth`` is its
    column: steps from the root (0), negative towards what it was made from, positive towards what used it."""

    id: str
    kind: Literal["version", "run"]
    label: str
    detail: str = ""
    present: bool = True
    depth: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "label": self.label, "detail": self.detail,
                "present": self.present, "depth": self.depth}


@dataclass(frozen=True)
class LineageEdge:
    """Data flowing from ``source`` to ``target``: a version into the run that used it (``how``), or a run
    into the version it produced (``produced``)."""

    source: str
    target: str
    how: str

    def to_dict(self) -> dict[str, str]:
        return {"source": self.source, "target": self.target, "how": self.how}


@dataclass(frozen=True)
class LineageGraph:
    """The answer to one lineage query: the root version, nodes in the order found, and edges.

    ``truncated`` says the ``limit`` on nodes stopped the walk (deeper nodes exist).
    """

    root: str
    direction: str
    depth: int
    nodes: tuple[LineageNode, ...]
    edges: tuple[LineageEdge, ...]
    truncated: bool = False

    def node(self, node_id: str) -> LineageNode:
        return next(n for n in self.nodes if n.id == node_id)

    def parents(self, node_id: str) -> list[LineageEdge]:
        """Edges into ``node_id`` (where its data came from)."""
        return [e for e in self.edges if e.target == node_id]

    def children(self, node_id: str) -> list[LineageEdge]:
        """Edges out of ``node_id`` (where its data went)."""
        return [e for e in self.edges if e.source == node_id]

    def to_dict(self) -> dict[str, Any]:
        return {"root": self.root, "direction": self.direction, "depth": self.depth, "truncated": self.truncated,
                "nodes": [n.to_dict() for n in self.nodes], "edges": [e.to_dict() for e in self.edges]}


def version_id(name: str, version: int) -> str:
    return f"{name}:v{version}"


def run_node_id(run_id: str) -> str:
    return f"run:{run_id}"


def _use(row: Any) -> Use:
    return Use(row["run_id"], row["name"], int(row["version"]), row["how"], float(row["used_at"]),
               row["version_id"] is not None)


_CHUNK = 500


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start:start + _CHUNK]


class Lineage:
    """Uses of versions by runs, and lineage graphs over them; safe to share between threads."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- writing ----------------------------------------------------------------------------------
    def record_use(self, run_id: str, record: ArtifactVersion, *, how: str = USE_ARTIFACT,
                   when: float | None = None) -> bool:
        """Record that ``run_id`` consumed ``record``; False when that run had already recorded it."""
        if not run_id:
            raise ArtifactStoreError("A use needs the id of the run that consumed the version.")
        if not how or len(how) > 100:
            raise ArtifactStoreError(f"how={how!r}: name the way the version was used (at most 100 characters).")
        with self.db.transaction(f"run:{run_id}") as conn:
            row = conn.execute("SELECT v.id FROM versions v JOIN artifacts a ON a.id=v.artifact_id "
                               "WHERE a.name=? AND v.version=?", (record.name, record.version)).fetchone()
            if row is None:
                raise ArtifactStoreError(f"{record.ref} is no longer in the store; it cannot be used.")
            cursor = conn.execute(
                "INSERT INTO uses (run_id, name, version, version_id, how, used_at) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (run_id, name, version) DO NOTHING",
                (run_id, record.name, record.version, row["id"], how, time.time() if when is None else when))
            return bool(cursor.rowcount)

    # -- reading ----------------------------------------------------------------------------------
    _USE_SELECT = "SELECT run_id, name, version, version_id, how, used_at FROM uses"

    def uses_of_run(self, run_id: str) -> list[Use]:
        """Every version ``run_id`` consumed, in the order it did."""
        return [_use(r) for r in self.db.read(self._USE_SELECT + " WHERE run_id=? ORDER BY used_at, id", (run_id,))]

    def consumers_of(self, name: str, version: int) -> list[Use]:
        """Every run that consumed ``name:v<version>`` (first use first)."""
        return [_use(r) for r in self.db.read(self._USE_SELECT + " WHERE name=? AND version=? ORDER BY used_at, id",
                                              (name, version))]

    def inputs_of(self, record: ArtifactVersion) -> list[Use]:
        """What the run that produced ``record`` had consumed when it committed it (empty without a run)."""
        if not record.run_id:
            return []
        return [_use(r) for r in self.db.read(
            self._USE_SELECT + " WHERE run_id=? AND used_at<=? ORDER BY used_at, id",
            (record.run_id, record.created_at))]

    def outputs_of_run(self, run_id: str, *, since: float = 0.0) -> list[tuple[str, int, str]]:
        """(name, version, type) of the versions ``run_id`` produced at or after ``since``, oldest first."""
        rows = self.db.read("SELECT a.name, v.version, v.type FROM versions v JOIN artifacts a ON a.id=v.artifact_id "
                            "WHERE v.run_id=? AND v.created_at>=? ORDER BY v.created_at, v.id", (run_id, since))
        return [(r["name"], int(r["version"]), r["type"]) for r in rows]

    def _version_info(self, name: str, version: int) -> tuple[str, str | None, float] | None:
        """(type, producing run, created_at) of a version, or None when it is not in the store."""
        rows = self.db.read("SELECT v.type, v.run_id, v.created_at FROM versions v JOIN artifacts a "
                            "ON a.id=v.artifact_id WHERE a.name=? AND v.version=?", (name, version))
        return (rows[0]["type"], rows[0]["run_id"], float(rows[0]["created_at"])) if rows else None

    def _run_label(self, run_id: str) -> tuple[str, str]:
        rows = self.db.read("SELECT experiment, created_at FROM runs WHERE run_id=?", (run_id,))
        experiment = rows[0]["experiment"] if rows else "run"
        return f"{experiment} ({run_id[:8]})", run_id

    def graph(self, name: str, version: int, *, direction: str = "both", depth: int = 3,
              limit: int = 200) -> LineageGraph:
        """The lineage of ``name:v<version>``: ``up`` (what it was made from), ``down`` (what used it) or
        ``both``, ``depth`` runs away at most, at most ``limit`` nodes."""
        if direction not in DIRECTIONS:
            raise ArtifactStoreError(f"direction={direction!r} is not one of {', '.join(DIRECTIONS)}.")
        if depth < 1 or limit < 1:
            raise ArtifactStoreError(f"depth ({depth}) and limit ({limit}) must be at least 1.")
        info = self._version_info(name, version)
        root = version_id(name, version)
        walk = _Walk(limit)
        walk.add(LineageNode(root, "version", root, info[0] if info else "deleted", info is not None))
        if direction in ("up", "both"):
            self._walk_up(walk, name, version, depth)
        if direction in ("down", "both"):
            self._walk_down(walk, name, version, depth)
        return LineageGraph(root, direction, depth, tuple(walk.nodes.values()), tuple(walk.edges), walk.truncated)

    def _walk_up(self, walk: _Walk, name: str, version: int, depth: int) -> None:
        queue = deque([(name, version, 0)])
        while queue and not walk.full:
            current, number, level = queue.popleft()
            info = self._version_info(current, number)
            if info is None or level >= depth:
                continue
            _, run_id, created_at = info
            if not run_id:
                continue
            run = run_node_id(run_id)
            seen = run in walk.nodes
            walk.add(LineageNode(run, "run", *self._run_label(run_id), depth=-(2 * level + 1)))
            walk.edge(run, version_id(current, number), PRODUCED)
            if seen:
                continue
            for use in self.db.read(self._USE_SELECT + " WHERE run_id=? AND used_at<=? ORDER BY used_at, id",
                                    (run_id, created_at)):
                used = _use(use)
                node = version_id(used.name, used.version)
                found = self._version_info(used.name, used.version)
                added = walk.add(LineageNode(node, "version", node, found[0] if found else "deleted",
                                             found is not None, depth=-(2 * level + 2)))
                walk.edge(node, run, used.how)
                if added:
                    queue.append((used.name, used.version, level + 1))

    def _walk_down(self, walk: _Walk, name: str, version: int, depth: int) -> None:
        queue = deque([(name, version, 0)])
        while queue and not walk.full:
            current, number, level = queue.popleft()
            if level >= depth:
                continue
            node = version_id(current, number)
            for used in self.consumers_of(current, number):
                run = run_node_id(used.run_id)
                walk.add(LineageNode(run, "run", *self._run_label(used.run_id), depth=2 * level + 1))
                walk.edge(node, run, used.how)
                for out_name, out_version, kind in self.outputs_of_run(used.run_id, since=used.used_at):
                    out = version_id(out_name, out_version)
                    added = walk.add(LineageNode(out, "version", out, kind, depth=2 * level + 2))
                    walk.edge(run, out, PRODUCED)
                    if added:
                        queue.append((out_name, out_version, level + 1))

    # -- which version holds a file: what the hooks ask -------------------------------------------
    def version_holding(self, key: str) -> ArtifactVersion | None:
        """The newest version with an entry of this content key (None when the store holds it nowhere)."""
        rows = self.db.read("SELECT v.id FROM entries e JOIN versions v ON v.id=e.version_id WHERE e.sha256=? "
                            "ORDER BY v.created_at DESC, v.id DESC LIMIT 1", (key,))
        return Catalog(self.db).version_by_id(int(rows[0]["id"])) if rows else None

    def digest_of_file(self, path: Path) -> str:
        """The content key of a local file: from the stat cache when a stored file had the same identity
        (size, change time, inode, device: a hard link a hook staged counts), else by hashing it the way new
        blobs are named (BLAKE3)."""
        size, changed, inode, device = digest.file_signature(path)
        sql = "SELECT sha256 FROM stat_cache WHERE inode=? AND device=? AND size=? AND mtime_ns=?"
        params: list[Any] = [inode, device, size, changed]
        if self.db.dialect != "sqlite":  # a shared catalog: inode numbers mean something on this host only
            sql += " AND substr(path, 1, ?) = ?"
            params += [len(HOST) + 1, f"{HOST}:"]
        rows = self.db.read(sql + " LIMIT 1", params)
        return rows[0]["sha256"] if rows else digest.file_key(path)

    def holds_sha256_keys(self) -> bool:
        """Whether any entry is keyed by SHA-256 (content stored before BLAKE3: a mixed store). Keys that are
        not ``blake3:…`` sort below or above that prefix (byte order), so SQLite's index answers without a scan."""
        column = "sha256" if self.db.dialect == "sqlite" else 'sha256 COLLATE "C"'
        return bool(self.db.read(f"SELECT 1 FROM entries WHERE {column} < 'blake3:' OR {column} > 'blake3:~' LIMIT 1"))

    def version_of_file(self, path: Path) -> ArtifactVersion | None:
        """The version that holds this file's content, found by its identity or its key; in a store that still
        holds content stored before BLAKE3, by its SHA-256 key too."""
        key = self.digest_of_file(path)
        found = self.version_holding(key)
        if found is None and digest.algorithm_of(key) != digest.SHA256 and self.holds_sha256_keys():
            found = self.version_holding(digest.file_key(path, digest.SHA256))
        return found

    # -- what blocks a deletion -------------------------------------------------------------------
    def later_consumers(self, record: ArtifactVersion) -> list[Use]:
        """Runs other than its producer that consumed ``record``."""
        return [u for u in self.consumers_of(record.name, record.version) if u.run_id != record.run_id]


@dataclass
class _Walk:
    """Nodes and edges found so far by one query, bounded by ``limit`` nodes."""

    limit: int
    nodes: dict[str, LineageNode] = field(default_factory=dict)
    edges: list[LineageEdge] = field(default_factory=list)
    truncated: bool = False

    @property
    def full(self) -> bool:
        return len(self.nodes) >= self.limit

    def add(self, node: LineageNode) -> LineageNode | None:
        """Add a node; None when it was there already or the limit is reached (then ``truncated``)."""
        if node.id in self.nodes:
            return None
        if self.full:
            self.truncated = True
            return None
        self.nodes[node.id] = node
        return node

    def edge(self, source: str, target: str, how: str) -> None:
        if source in self.nodes and target in self.nodes:
            candidate = LineageEdge(source, target, how)
            if candidate not in self.edges:
                self.edges.append(candidate)

