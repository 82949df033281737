"""The outbox: every delivery of a version to a backend for a run, from the moment the version is committed
until the backend's receipt is in; the receipts themselves; and the runs that own deliveries.

It shares the catalog's database and ``transaction()``: ``enqueue`` and ``redeliver`` take the connection of
a transaction the store already holds (so a version never appears without its deliveries, and a moved
alias re-queues them atomically); every other write takes the ``outbox`` lock key itself.

    outbox = Outbox(database)
    [item] = outbox.claim("host:1234:ab12", lease_s=600, backend="mlflow", limit=1)
    outbox.complete(item.id, receipt.to_dict())
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tracelet_artifacts.errors import ArtifactStoreNotFoundError
from tracelet_artifacts.store.sql import Connection, Database

OUTBOX = "outbox"  # the lock key of every write that claims or settles deliveries
#: The outbox rows of one commit: backend → its plan, as JSON data (``RoutePlan.deliveries()``).
Deliveries = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class OutboxItem:
    """A delivery recorded in the outbox: version ``version_id`` of an artifact to ``backend`` for a run."""

    id: int
    version_id: int
    backend: str
    run_id: str
    plan: Mapping[str, Any]
    status: str
    attempts: int
    next_attempt_at: float
    last_error: str | None


@dataclass(frozen=True)
class DeliveryState:
    """Where one version stands with one backend for one run: its outbox row and the latest receipt."""

    name: str
    version: int
    backend: str
    run_id: str
    status: str  # pending, inflight, done, failed
    attempts: int
    last_error: str | None
    next_attempt_at: float
    receipt: Mapping[str, Any] | None = None


def _item(row: Any) -> OutboxItem:
    return OutboxItem(row["id"], row["version_id"], row["backend"], row["run_id"], json.loads(row["plan"]),
                      row["status"], row["attempts"], row["next_attempt_at"], row["last_error"])


class Outbox:
    """Deliveries, receipts and runs in the catalog database; safe to share between threads."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self.db.read(sql, params)

    def _version_id(self, name: str, version: int) -> int:
        rows = self._read("SELECT v.id FROM versions v JOIN artifacts a ON a.id=v.artifact_id "
                          "WHERE a.name=? AND v.version=?", (name, version))
        if not rows:
            raise ArtifactStoreNotFoundError(f"No version v{version} of {name!r}.")
        return int(rows[0]["id"])

    # -- inside a transaction the store holds ----------------------------------------------------
    @staticmethod
    def enqueue(conn: Connection, version_id: int, run_id: str | None, deliveries: Deliveries, now: float) -> None:
        """Record a committed version's deliveries (one row per backend; a row already there stays as it is)."""
        for backend, plan in deliveries.items():
            conn.execute("INSERT INTO outbox (version_id, backend, run_id, plan, created_at, updated_at) "
                         "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                         (version_id, backend, run_id or "", json.dumps(dict(plan)), now, now))

    @staticmethod
    def redeliver(conn: Connection, version_id: int, now: float) -> None:
        """Send a version again to every backend that already has it (an alias of it moved)."""
        conn.execute("UPDATE outbox SET status='pending', attempts=0, next_attempt_at=0, updated_at=? "
                     "WHERE version_id=? AND status='done'", (now, version_id))

    # -- the delivery workers' calls ---------------------------------------------------------------
    @staticmethod
    def abandon(conn: Connection, version_id: int, reason: str, now: float) -> None:
        """Give up a version's unfinished deliveries (its content is lost): failed, with ``reason``."""
        conn.execute("UPDATE outbox SET status='failed', last_error=?, lease_owner=NULL, updated_at=? "
                     "WHERE version_id=? AND status IN ('pending', 'inflight')", (reason, now, version_id))

    def claim(self, owner: str, lease_s: float, *, run_id: str | None = None, backend: str | None = None,
              due_only: bool = True, limit: int = 100) -> list[OutboxItem]:
        """Take pending (or lease-expired in-flight) deliveries for ``owner``; each is taken by one owner only."""
        now = time.time()
        sql = ("SELECT * FROM outbox WHERE (status='pending' OR (status='inflight' AND lease_until < ?))")
        params: list[Any] = [now]
        if due_only:
            sql += " AND next_attempt_at <= ?"
            params.append(now)
        if run_id is not None:
            sql += " AND run_id=?"
            params.append(run_id)
        if backend is not None:
            sql += " AND backend=?"
            params.append(backend)
        with self.db.transaction(OUTBOX) as db:
            rows = db.execute(sql + f" ORDER BY id LIMIT {int(limit)}", params).fetchall()
            db.executemany("UPDATE outbox SET status='inflight', lease_owner=?, lease_until=?, "
                           "attempts=attempts+1, updated_at=? WHERE id=?",
                           [(owner, now + lease_s, now, r["id"]) for r in rows])
            return [_item(db.execute("SELECT * FROM outbox WHERE id=?", (r["id"],)).fetchone()) for r in rows]

    def complete(self, item_id: int, receipt: Mapping[str, Any]) -> None:
        """Mark a delivery done and keep the backend's receipt, in one transaction."""
        now = time.time()
        with self.db.transaction(OUTBOX) as db:
            row = db.execute("SELECT version_id, backend, run_id FROM outbox WHERE id=?", (item_id,)).fetchone()
            db.execute("UPDATE outbox SET status='done', last_error=NULL, lease_owner=NULL, updated_at=? "
                       "WHERE id=?", (now, item_id))
            db.execute("INSERT INTO receipts (version_id, backend, run_id, payload, created_at) VALUES (?, ?, ?, ?, ?)",
                       (row["version_id"], row["backend"], row["run_id"], json.dumps(dict(receipt)), now))

    def retry_later(self, item_id: int, error: str, delay_s: float, *, give_up: bool = False) -> None:
        """Return a failed delivery to the queue (or mark it failed for good: ``sync`` still retries it)."""
        now = time.time()
        with self.db.transaction(OUTBOX) as db:
            db.execute("UPDATE outbox SET status=?, last_error=?, next_attempt_at=?, lease_owner=NULL, "
                       "lease_until=0, updated_at=? WHERE id=?",
                       ("failed" if give_up else "pending", error[:2000], now + delay_s, now, item_id))

    def requeue_failed(self, run_id: str | None = None) -> int:
        """Put deliveries that gave up back to pending (what ``sync`` does first); return how many."""
        with self.db.transaction(OUTBOX) as db:
            sql = "UPDATE outbox SET status='pending', attempts=0, next_attempt_at=0 WHERE status='failed'"
            cursor = db.execute(sql + (" AND run_id=?" if run_id else ""), (run_id,) if run_id else ())
            return cursor.rowcount

    def release_orphans(self, is_dead: Callable[[str], bool]) -> int:
        """Return in-flight deliveries whose owner process is dead to pending; return how many."""
        rows = self._read("SELECT id, lease_owner FROM outbox WHERE status='inflight'")
        dead = [r["id"] for r in rows if r["lease_owner"] and is_dead(r["lease_owner"])]
        if dead:
            with self.db.transaction(OUTBOX) as db:
                db.executemany("UPDATE outbox SET status='pending', lease_owner=NULL, lease_until=0 "
                               "WHERE id=? AND status='inflight'", [(i,) for i in dead])
        return len(dead)

    # -- reading -----------------------------------------------------------------------------------
    def items(self, status: str | None = None) -> list[OutboxItem]:
        """Outbox rows, optionally only those with ``status`` (pending, inflight, done, failed)."""
        sql = "SELECT * FROM outbox" + (" WHERE status=?" if status else "") + " ORDER BY id"
        return [_item(r) for r in self._read(sql, (status,) if status else ())]

    def item(self, item_id: int) -> OutboxItem:
        rows = self._read("SELECT * FROM outbox WHERE id=?", (item_id,))
        if not rows:
            raise ArtifactStoreNotFoundError(f"No outbox item {item_id}.")
        return _item(rows[0])

    def counts(self, run_id: str | None = None, backends: Sequence[str] | None = None) -> dict[str, int]:
        """How many deliveries are in each status (for one run, or all; for some backends, or all)."""
        return self._by_status("COUNT(*)", run_id, backends)

    def bytes_by_status(self, run_id: str | None = None, backends: Sequence[str] | None = None) -> dict[str, int]:
        """The bytes of the versions the deliveries in each status carry (a version to two backends counts
        twice): what a progress bar shows while a run's deliveries finish."""
        return self._by_status("COALESCE(SUM(v.size_bytes), 0)", run_id, backends)

    def _by_status(self, measure: str, run_id: str | None, backends: Sequence[str] | None) -> dict[str, int]:
        sql = f"SELECT o.status, {measure} AS n FROM outbox o JOIN versions v ON v.id=o.version_id WHERE 1=1"
        params: list[Any] = []
        if run_id:
            sql, params = sql + " AND o.run_id=?", [run_id]
        if backends is not None:
            sql += f" AND o.backend IN ({','.join('?' * len(backends)) or 'NULL'})"
            params += list(backends)
        return {r["status"]: int(r["n"]) for r in self._read(sql + " GROUP BY o.status", params)}

    def deliveries(self, name: str | None = None, version: int | None = None, *, backend: str | None = None,
                   run_id: str | None = None) -> list[DeliveryState]:
        """Deliveries of an artifact (or of all), narrowed to a version, backend or run; oldest first."""
        sql = ("SELECT o.*, v.version, a.name FROM outbox o JOIN versions v ON v.id=o.version_id "
               "JOIN artifacts a ON a.id=v.artifact_id WHERE 1=1")
        params: list[Any] = []
        for column, value in (("a.name", name), ("v.version", version), ("o.backend", backend),
                              ("o.run_id", run_id)):
            if value is not None:
                sql += f" AND {column}=?"
                params.append(value)
        rows = self._read(sql + " ORDER BY o.id", params)
        receipts: dict[tuple[int, str, str], Mapping[str, Any]] = {}
        for version_id in {r["version_id"] for r in rows}:
            for r in self._read("SELECT backend, run_id, payload FROM receipts WHERE version_id=? ORDER BY id",
                                (version_id,)):
                receipts[version_id, r["backend"], r["run_id"]] = json.loads(r["payload"])
        return [DeliveryState(r["name"], r["version"], r["backend"], r["run_id"], r["status"], r["attempts"],
                              r["last_error"], r["next_attempt_at"],
                              receipts.get((r["version_id"], r["backend"], r["run_id"])))
                for r in rows]

    # -- receipts ----------------------------------------------------------------------------------
    def delivered(self, version_id: int, run_id: str) -> dict[str, dict[str, Any]]:
        """Receipts already given for a version in a run, by backend (the latest one wins)."""
        rows = self._read("SELECT backend, payload FROM receipts WHERE version_id=? AND run_id=? ORDER BY id",
                          (version_id, run_id))
        return {r["backend"]: json.loads(r["payload"]) for r in rows}

    def receipts(self, name: str, version: int) -> list[dict[str, Any]]:
        """Receipts backends gave for a version, oldest first."""
        return [json.loads(r["payload"]) for r in self._read(
            "SELECT payload FROM receipts WHERE version_id=? ORDER BY id", (self._version_id(name, version),))]

    def receipts_with_runs(self, name: str, version: int) -> list[tuple[str, dict[str, Any]]]:
        """(run id, receipt) of every delivery of a version, oldest first: who holds a copy, for which run."""
        return [(r["run_id"], json.loads(r["payload"])) for r in self._read(
            "SELECT run_id, payload FROM receipts WHERE version_id=? ORDER BY id", (self._version_id(name, version),))]

    # -- runs: who owns the deliveries ----------------------------------------------------------------
    def add_run(self, run_id: str, experiment: str, owner: str) -> None:
        """Record a run and the process (``host:pid``) that owns it."""
        with self.db.transaction(f"run:{run_id}") as db:
            db.execute("INSERT INTO runs (run_id, experiment, created_at, owner) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT (run_id) DO UPDATE SET owner=excluded.owner, ended_at=NULL",
                       (run_id, experiment, time.time(), owner))

    def end_run(self, run_id: str) -> None:
        with self.db.transaction(f"run:{run_id}") as db:
            db.execute("UPDATE runs SET ended_at=?, owner=NULL WHERE run_id=?", (time.time(), run_id))

    def runs_with_outstanding(self) -> list[tuple[str, str | None, float | None]]:
        """(run_id, owner, ended_at) of runs that still have deliveries not done."""
        return [(r["run_id"], r["owner"], r["ended_at"]) for r in self._read(
            "SELECT r.run_id, r.owner, r.ended_at FROM runs r WHERE EXISTS "
            "(SELECT 1 FROM outbox o WHERE o.run_id=r.run_id AND o.status != 'done') ORDER BY r.created_at")]

    def backends_of_run(self, run_id: str) -> list[str]:
        """Backends that have deliveries (of any status) for a run."""
        return [r["backend"] for r in self._read(
            "SELECT DISTINCT backend FROM outbox WHERE run_id=? ORDER BY backend", (run_id,))]

    def run_state(self, run_id: str) -> tuple[str, dict[str, Any]]:
        """(experiment name, backend state) saved for a run, so a later process can resume it."""
        rows = self._read("SELECT experiment, backend_state FROM runs WHERE run_id=?", (run_id,))
        if not rows:
            raise ArtifactStoreNotFoundError(f"No run {run_id!r} in this store.")
        return rows[0]["experiment"], json.loads(rows[0]["backend_state"])

    def save_backend_state(self, run_id: str, backend: str, state: Mapping[str, Any]) -> None:
        with self.db.transaction(f"run:{run_id}") as db:
            row = db.execute("SELECT backend_state FROM runs WHERE run_id=?", (run_id,)).fetchone()
            current = json.loads(row["backend_state"]) if row else {}
            current[backend] = dict(state)
            db.execute("UPDATE runs SET backend_state=? WHERE run_id=?", (json.dumps(current), run_id))
