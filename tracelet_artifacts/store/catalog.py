"""The catalog: artifacts, immutable versions, entries, labels, metadata, aliases, backend receipts, runs,
the delivery outbox and the file stat cache; in SQLite (WAL mode, the default) or PostgreSQL (a team's).

Every write that must be all-or-nothing happens in one write transaction, and writers take turns across
every process and machine sharing the catalog (``store/sql.py``), so concurrent writers get consecutive
versions and aliases move atomically.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from tracelet_artifacts.artifact import ArtifactType, Manifest
from tracelet_artifacts.errors import ArtifactStoreError, ArtifactStoreNotFoundError, VersionConflictError
from tracelet_artifacts.store import listing
from tracelet_artifacts.store.listing import ArtifactFilter, ArtifactSummary
from tracelet_artifacts.store.migrations import migrate
from tracelet_artifacts.store.sql import Connection, Database, open_database

LATEST = "latest"
OUTBOX = "outbox"  # the lock key of every write that claims or settles deliveries



def metadata_text(value: Any) -> str:
    """How a metadata value is stored for equality queries: strings as-is, the rest as JSON (2.0 as 2)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # equal numbers match: 2.0 == 2, and `--meta epochs=2` finds either
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


@dataclass(frozen=True)
class ArtifactVersion:
    """One immutable version of an artifact as the catalog holds it."""

    name: str
    version: int
    digest: str
    artifact_type: ArtifactType
    size_bytes: int
    created_at: float
    aliases: tuple[str, ...]
    description: str | None = None
    run_id: str | None = None
    created: bool = True
    manifest_json: str = field(default="", repr=False, compare=False)
    row_id: int = field(default=0, repr=False, compare=False)

    @property
    def label(self) -> str:
        """``v3``-style version label."""
        return f"v{self.version}"

    @property
    def ref(self) -> str:
        """``name:v3``."""
        return f"{self.name}:{self.label}"

    @cached_property
    def manifest(self) -> Manifest:
        """The frozen manifest of this version (parsed on first use)."""
        return Manifest.from_dict(json.loads(self.manifest_json))


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


def parse_version(text: str | int) -> int:
    """``3``, ``"3"`` or ``"v3"`` → 3; anything else raises ArtifactStoreError."""
    if isinstance(text, int) and text > 0:
        return text
    raw = str(text).strip()
    digits = raw[1:] if raw[:1] in ("v", "V") else raw
    if not digits.isdigit() or int(digits) < 1:
        raise ArtifactStoreError(f"{text!r} is not a version; use v1, v2, … or an alias such as 'latest'.")
    return int(digits)


class Catalog:
    """The catalog database; safe to share between threads (one connection per thread).

    Example::

        catalog = Catalog(Path(".tracelet/catalog.db"))
        record = catalog.add_version(manifest)
        catalog.get("classifier", "latest").label   # "v1"
    """

    def __init__(self, location: str | Path) -> None:
        self.db: Database = open_database(location)
        migrate(self.db)  # driver errors arrive as ArtifactStoreError, naming the catalog

    @property
    def location(self) -> str:
        """Where the catalog is (a file path, or a PostgreSQL URL without its password)."""
        return self.db.location

    @property
    def shared(self) -> bool:
        """True for a catalog several machines share (PostgreSQL), where file paths are per host."""
        return self.db.dialect != "sqlite"

    # -- connections ------------------------------------------------------------------------------
    @contextmanager
    def transaction(self, *keys: str) -> Iterator[Connection]:
        """A write transaction; writers with a key in common (or without keys) take turns across every
        process sharing the catalog. Keys: ``artifact:<name>``, ``run:<id>``, ``outbox``."""
        with self.db.transaction(*keys) as db:
            yield db

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self.db.read(sql, params)

    def close(self) -> None:
        """Close every connection this catalog opened."""
        self.db.close()

    # -- versions ---------------------------------------------------------------------------------
    def add_version(
        self,
        manifest: Manifest,
        *,
        version: int | None = None,
        aliases: Iterable[str] = (),
        run_id: str | None = None,
        deliveries: Mapping[str, Mapping[str, Any]] | None = None,
        stat_rows: Iterable[tuple[str, int, int, int, int, str]] = (),
    ) -> ArtifactVersion:
        """Record ``manifest`` as a new version, or return the existing version with the same digest.

        ``deliveries`` (backend → plan) are written to the outbox in the same transaction, so a stored
        version is never without its pending deliveries.
        """
        now = time.time()
        aliases = [validate_alias(a) for a in aliases]
        with self.transaction(f"artifact:{manifest.name}") as db:
            artifact_id = self._artifact_id(db, manifest.name, create=True, now=now)
            existing = self._existing(db, artifact_id, manifest, version)
            if existing is None:
                number = version or (db.execute(
                    "SELECT COALESCE(MAX(version), 0) + 1 FROM versions WHERE artifact_id=?",
                    (artifact_id,)).fetchone()[0])
                version_id = self._insert_version(db, artifact_id, number, manifest, run_id, now)
                created = True
            else:
                version_id, created = existing, False
                # Identical content: the version stays as it is, but labels given now are added to it.
                self._add_labels(db, version_id, manifest.labels)
            for alias in (LATEST, *aliases):
                self._set_alias(db, artifact_id, alias, version_id, now)
            for backend, plan in (deliveries or {}).items():
                db.execute("INSERT INTO outbox (version_id, backend, run_id, plan, created_at, updated_at) "
                           "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                           (version_id, backend, run_id or "", json.dumps(plan), now, now))
            db.executemany("INSERT INTO stat_cache VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET "
                           "size=excluded.size, mtime_ns=excluded.mtime_ns, inode=excluded.inode, "
                           "device=excluded.device, sha256=excluded.sha256, recorded_ns=excluded.recorded_ns",
                           [(*row, time.time_ns()) for row in sorted(stat_rows)])  # one order: no deadlock
            return self._version_by_id(db, version_id, created=created)

    def _existing(
        self, db: Connection, artifact_id: int, manifest: Manifest, version: int | None
    ) -> int | None:
        if version is not None:
            row = db.execute("SELECT id, digest FROM versions WHERE artifact_id=? AND version=?",
                             (artifact_id, version)).fetchone()
            if row is None:
                return None
            if row["digest"] != manifest.digest:
                raise VersionConflictError(
                    f"{manifest.name}:v{version} already exists with different content "
                    f"(digest {row['digest'][:12]}… vs {manifest.digest[:12]}…); versions are immutable: "
                    "log without version= to get the next one."
                )
            return int(row["id"])
        row = db.execute("SELECT id FROM versions WHERE artifact_id=? AND digest=? ORDER BY version DESC LIMIT 1",
                         (artifact_id, manifest.digest)).fetchone()
        return int(row["id"]) if row else None

    @staticmethod
    def _insert_version(db: Connection, artifact_id: int, number: int, manifest: Manifest,
                        run_id: str | None, now: float) -> int:
        cursor = db.execute(
            "INSERT INTO versions (artifact_id, version, digest, type, description, size_bytes, created_at, "
            "run_id, manifest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (artifact_id, number, manifest.digest, manifest.artifact_type.value, manifest.description,
             manifest.size_bytes, now, run_id, json.dumps(manifest.to_dict(), sort_keys=True)))
        version_id = int(cursor.fetchone()[0])
        db.executemany("INSERT INTO entries VALUES (?, ?, ?, ?)",
                       [(version_id, e.path, e.sha256, e.size) for e in manifest.entries])
        Catalog._add_labels(db, version_id, manifest.labels)
        db.executemany("INSERT INTO metadata VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                       [(version_id, k, metadata_text(v)) for k, v in manifest.metadata.items()
                        if not isinstance(v, (Mapping, tuple))])
        return version_id

    @staticmethod
    def _add_labels(db: Connection, version_id: int, labels: Iterable[str]) -> None:
        db.executemany("INSERT INTO labels VALUES (?, ?) ON CONFLICT DO NOTHING", [(version_id, lb) for lb in labels])

    @staticmethod
    def _artifact_id(db: Connection, name: str, *, create: bool = False, now: float = 0.0) -> int:
        row = db.execute("SELECT id FROM artifacts WHERE name=?", (name,)).fetchone()
        if row:
            return int(row["id"])
        if not create:
            raise ArtifactStoreNotFoundError(
                f"No artifact named {name!r}; `tracelet-artifacts ls` lists the names in this store."
            )
        return int(db.execute("INSERT INTO artifacts (name, created_at) VALUES (?, ?) RETURNING id",
                              (name, now)).fetchone()[0])

    _VERSION_SELECT = (
        "SELECT v.id, a.name, v.version, v.digest, v.type, v.description, v.size_bytes, v.created_at, "
        "v.run_id, v.manifest, (SELECT group_concat(alias, ',') FROM aliases al WHERE al.version_id=v.id) "
        "AS alias_list FROM versions v JOIN artifacts a ON a.id=v.artifact_id"
    )

    @staticmethod
    def _record(row: Any, created: bool = True) -> ArtifactVersion:
        aliases = tuple(sorted(row["alias_list"].split(","))) if row["alias_list"] else ()
        return ArtifactVersion(
            name=row["name"], version=row["version"], digest=row["digest"],
            artifact_type=ArtifactType(row["type"]), size_bytes=row["size_bytes"],
            created_at=row["created_at"], aliases=aliases, description=row["description"],
            run_id=row["run_id"], created=created, manifest_json=row["manifest"], row_id=row["id"])

    def _version_by_id(self, db: Connection, version_id: int, created: bool = True) -> ArtifactVersion:
        row = db.execute(self._VERSION_SELECT + " WHERE v.id=?", (version_id,)).fetchone()
        return self._record(row, created)

    def version_id(self, name: str, version: int) -> int:
        """The row id of ``name:v<version>``."""
        rows = self._read("SELECT v.id FROM versions v JOIN artifacts a ON a.id=v.artifact_id "
                          "WHERE a.name=? AND v.version=?", (name, version))
        if not rows:
            raise ArtifactStoreNotFoundError(f"No version v{version} of {name!r}.")
        return int(rows[0]["id"])

    def get(self, name: str, version: str | int = LATEST) -> ArtifactVersion:
        """A version by number (``3``, ``"v3"``) or alias (``"latest"``, ``"best"``)."""
        text = str(version)
        with self.db.reading() as db:
            artifact_id = self._artifact_id(db, name)
            if isinstance(version, int) or _looks_like_version(text):
                row = db.execute(self._VERSION_SELECT + " WHERE v.artifact_id=? AND v.version=?",
                                 (artifact_id, int(text.lstrip("vV")))).fetchone()  # v0 and -1: not found
                what = f"version {text}"
            else:
                row = db.execute(self._VERSION_SELECT + " JOIN aliases x ON x.version_id=v.id "
                                 "WHERE x.artifact_id=? AND x.alias=?", (artifact_id, text)).fetchone()
                what = f"alias {text!r}"
        if row is None:
            known = ", ".join(v.label for v in self.versions(name)) or "none"
            raise ArtifactStoreNotFoundError(f"{name!r} has no {what}; its versions are: {known}.")
        return self._record(row)

    def versions(self, name: str) -> list[ArtifactVersion]:
        """Every version of ``name``, oldest first."""
        return [self._record(r) for r in self._read(
            self._VERSION_SELECT + " WHERE a.name=? ORDER BY v.version", (name,))]

    def names(self, prefix: str | None = None, contains: str | None = None) -> list[str]:
        """Artifact names, optionally those starting with ``prefix`` and/or containing ``contains``."""
        sql, params = "SELECT name FROM artifacts WHERE 1=1", []
        if prefix:
            sql += " AND substr(name, 1, ?) = ?"
            params += [len(prefix), prefix]
        if contains:
            sql += " AND instr(name, ?) > 0"
            params.append(contains)
        return [r["name"] for r in self._read(sql + " ORDER BY name", params)]

    def search(
        self,
        *,
        artifact_type: ArtifactType | str | None = None,
        labels: Iterable[str] = (),
        metadata: Mapping[str, Any] | None = None,
        prefix: str | None = None,
        contains: str | None = None,
        latest_only: bool = False,
        limit: int | None = None,
    ) -> list[ArtifactVersion]:
        """Versions matching every filter given (type, all labels, metadata key=value, name)."""
        clauses: list[str] = []
        params: list[Any] = []
        if artifact_type is not None:
            clauses.append("v.type=?")
            params.append(ArtifactType.parse(artifact_type).value)
        # One INTERSECT of the label and metadata id lists: cheaper than one IN list per filter at 100k rows.
        wanted_labels = list(labels)
        id_lists = ["SELECT version_id FROM labels WHERE label=?" for _ in wanted_labels]
        params += wanted_labels
        for key, value in (metadata or {}).items():
            id_lists.append("SELECT version_id FROM metadata WHERE key=? AND value=?")
            params += [key, metadata_text(value)]
        if id_lists:
            clauses.append(f"v.id IN ({' INTERSECT '.join(id_lists)})")
        if prefix:
            clauses.append("substr(a.name, 1, ?) = ?")
            params += [len(prefix), prefix]
        if contains:
            clauses.append("instr(a.name, ?) > 0")
            params.append(contains)
        if latest_only:
            clauses.append(f"v.id IN (SELECT version_id FROM aliases WHERE alias='{LATEST}')")
        sql = self._VERSION_SELECT + (" WHERE " + " AND ".join(clauses) if clauses else "")
        sql += " ORDER BY a.name, v.version"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [self._record(r) for r in self._read(sql, params)]

    # -- browsing: one page at a time, for the web view (queries in store/listing.py) ---------------
    def artifact_page(self, where: ArtifactFilter, *, offset: int = 0, limit: int = 50) -> list[ArtifactSummary]:
        """One page of artifact names matching ``where`` (name order) with version counts, sizes, aliases."""
        return listing.summaries(self.db, where, offset=offset, limit=limit)

    def count_artifacts(self, where: ArtifactFilter) -> int:
        """How many artifact names match ``where``."""
        return listing.count(self.db, where)

    def version_page(self, name: str, *, offset: int = 0, limit: int = 50) -> tuple[int, list[ArtifactVersion]]:
        """(how many versions ``name`` has, one page of them newest first)."""
        total, numbers = listing.version_numbers(self.db, name, offset=offset, limit=limit)
        if not numbers:
            return total, []
        sql, params = listing.by_numbers(self._VERSION_SELECT, name, numbers)
        return total, [self._record(r) for r in self._read(sql, params)]

    # -- aliases ----------------------------------------------------------------------------------
    @staticmethod
    def _set_alias(db: Connection, artifact_id: int, alias: str, version_id: int, now: float) -> None:
        db.execute("INSERT INTO aliases VALUES (?, ?, ?, ?) ON CONFLICT (artifact_id, alias) "
                   "DO UPDATE SET version_id=excluded.version_id, updated_at=excluded.updated_at",
                   (artifact_id, alias, version_id, now))

    def set_alias(self, name: str, alias: str, version: str | int) -> ArtifactVersion:
        """Point ``alias`` at a version (moving it atomically if it pointed elsewhere).

        Backends that already received the version get it again (their delivery goes back to pending;
        re-delivering known content only sets aliases), so an alias moved here moves there too.
        """
        validate_alias(alias)
        target = self.get(name, version)
        now = time.time()
        with self.transaction(f"artifact:{name}", OUTBOX) as db:
            artifact_id = self._artifact_id(db, name)
            version_id = self._version_row(db, artifact_id, target.version)
            previous = db.execute("SELECT version_id FROM aliases WHERE artifact_id=? AND alias=?",
                                  (artifact_id, alias)).fetchone()
            self._set_alias(db, artifact_id, alias, version_id, now)
            if previous is None or previous["version_id"] != version_id:
                db.execute("UPDATE outbox SET status='pending', attempts=0, next_attempt_at=0, updated_at=? "
                           "WHERE version_id=? AND status='done'", (now, version_id))
        return self.get(name, target.version)

    def remove_alias(self, name: str, alias: str) -> None:
        """Remove an alias (``latest`` cannot be removed while versions exist)."""
        if alias == LATEST:
            raise ArtifactStoreError("'latest' moves by itself and cannot be removed.")
        with self.transaction(f"artifact:{name}") as db:
            db.execute("DELETE FROM aliases WHERE artifact_id=? AND alias=?", (self._artifact_id(db, name), alias))

    @staticmethod
    def _version_row(db: Connection, artifact_id: int, version: int) -> int:
        return int(db.execute("SELECT id FROM versions WHERE artifact_id=? AND version=?",
                              (artifact_id, version)).fetchone()["id"])

    def add_labels(self, name: str, version: str | int, labels: Iterable[str]) -> ArtifactVersion:
        """Attach labels to an existing version (e.g. ``evicted``); the logged manifest stays as it was."""
        target = self.get(name, version)
        with self.transaction(f"artifact:{name}") as db:
            version_id = self._version_row(db, self._artifact_id(db, name), target.version)
            self._add_labels(db, version_id, labels)
        return target

    def labels(self, name: str, version: str | int) -> list[str]:
        """Every label of a version: those logged with it and those added later."""
        version_id = self.get(name, version).row_id
        return [r["label"] for r in self._read("SELECT label FROM labels WHERE version_id=? ORDER BY label",
                                                (version_id,))]

    # -- deletion ---------------------------------------------------------------------------------
    def delete(self, name: str) -> None:
        """Remove an artifact and all its versions (blobs stay until ``gc``)."""
        with self.transaction(f"artifact:{name}") as db:
            db.execute("DELETE FROM artifacts WHERE id=?", (self._artifact_id(db, name),))

    def clear(self) -> None:
        """Remove every artifact (blobs stay until ``gc``)."""
        with self.transaction() as db:
            db.execute("DELETE FROM artifacts")

    def referenced_digests(self) -> set[str]:
        """Every blob digest some version still uses."""
        return {r["sha256"] for r in self._read("SELECT DISTINCT sha256 FROM entries")}

    # -- stat cache -------------------------------------------------------------------------------
    def cached_digest(self, path: str, signature: tuple[int, int, int, int], margin_ns: int) -> str | None:
        """The digest recorded for a file whose (size, mtime, inode, device) still match.

        A file modified within ``margin_ns`` before the record was written is not trusted (its
        mtime may not have changed on a later write in the same clock tick).
        """
        rows = self._read("SELECT * FROM stat_cache WHERE path=?", (path,))
        if not rows:
            return None
        row = rows[0]
        size, mtime_ns, inode, device = signature
        same = (row["size"], row["mtime_ns"], row["inode"], row["device"]) == (size, mtime_ns, inode, device)
        return row["sha256"] if same and mtime_ns + margin_ns < row["recorded_ns"] else None

    # -- runs, receipts ---------------------------------------------------------------------------
    def add_run(self, run_id: str, experiment: str, owner: str) -> None:
        """Record a run and the process (``host:pid``) that owns it."""
        with self.transaction(f"run:{run_id}") as db:
            db.execute("INSERT INTO runs (run_id, experiment, created_at, owner) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT (run_id) DO UPDATE SET owner=excluded.owner, ended_at=NULL",
                       (run_id, experiment, time.time(), owner))

    def end_run(self, run_id: str) -> None:
        with self.transaction(f"run:{run_id}") as db:
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

    def release_orphans(self, is_dead: Callable[[str], bool]) -> int:
        """Return in-flight deliveries whose owner process is dead to pending; return how many."""
        rows = self._read("SELECT id, lease_owner FROM outbox WHERE status='inflight'")
        dead = [r["id"] for r in rows if r["lease_owner"] and is_dead(r["lease_owner"])]
        if dead:
            with self.transaction(OUTBOX) as db:
                db.executemany("UPDATE outbox SET status='pending', lease_owner=NULL, lease_until=0 "
                               "WHERE id=? AND status='inflight'", [(i,) for i in dead])
        return len(dead)

    def run_state(self, run_id: str) -> tuple[str, dict[str, Any]]:
        """(experiment name, backend state) saved for a run, so a later process can resume it."""
        rows = self._read("SELECT experiment, backend_state FROM runs WHERE run_id=?", (run_id,))
        if not rows:
            raise ArtifactStoreNotFoundError(f"No run {run_id!r} in this store.")
        return rows[0]["experiment"], json.loads(rows[0]["backend_state"])

    def save_backend_state(self, run_id: str, backend: str, state: Mapping[str, Any]) -> None:
        with self.transaction(f"run:{run_id}") as db:
            row = db.execute("SELECT backend_state FROM runs WHERE run_id=?", (run_id,)).fetchone()
            current = json.loads(row["backend_state"]) if row else {}
            current[backend] = dict(state)
            db.execute("UPDATE runs SET backend_state=? WHERE run_id=?", (json.dumps(current), run_id))

    def receipts(self, name: str, version: int) -> list[dict[str, Any]]:
        """Receipts backends gave for a version, oldest first."""
        version_id = self.version_id(name, version)
        return [json.loads(r["payload"]) for r in self._read(
            "SELECT payload FROM receipts WHERE version_id=? ORDER BY id", (version_id,))]

    def receipts_with_runs(self, name: str, version: int) -> list[tuple[str, dict[str, Any]]]:
        """(run id, receipt) of every delivery of a version, oldest first: who holds a copy, for which run."""
        return [(r["run_id"], json.loads(r["payload"])) for r in self._read(
            "SELECT run_id, payload FROM receipts WHERE version_id=? ORDER BY id", (self.version_id(name, version),))]

    # -- outbox -----------------------------------------------------------------------------------
    @staticmethod
    def _outbox_item(row: Any) -> OutboxItem:
        return OutboxItem(row["id"], row["version_id"], row["backend"], row["run_id"], json.loads(row["plan"]),
                          row["status"], row["attempts"], row["next_attempt_at"], row["last_error"])

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
        with self.transaction(OUTBOX) as db:
            rows = db.execute(sql + f" ORDER BY id LIMIT {int(limit)}", params).fetchall()
            db.executemany("UPDATE outbox SET status='inflight', lease_owner=?, lease_until=?, "
                           "attempts=attempts+1, updated_at=? WHERE id=?",
                           [(owner, now + lease_s, now, r["id"]) for r in rows])
            return [self._outbox_item(db.execute("SELECT * FROM outbox WHERE id=?", (r["id"],)).fetchone())
                    for r in rows]

    def complete(self, item_id: int, receipt: Mapping[str, Any]) -> None:
        """Mark a delivery done and keep the backend's receipt, in one transaction."""
        now = time.time()
        with self.transaction(OUTBOX) as db:
            row = db.execute("SELECT version_id, backend, run_id FROM outbox WHERE id=?", (item_id,)).fetchone()
            db.execute("UPDATE outbox SET status='done', last_error=NULL, lease_owner=NULL, updated_at=? "
                       "WHERE id=?", (now, item_id))
            db.execute("INSERT INTO receipts (version_id, backend, run_id, payload, created_at) VALUES (?, ?, ?, ?, ?)",
                       (row["version_id"], row["backend"], row["run_id"], json.dumps(dict(receipt)), now))

    def retry_later(self, item_id: int, error: str, delay_s: float, *, give_up: bool = False) -> None:
        """Return a failed delivery to the queue (or mark it failed for good: ``sync`` still retries it)."""
        now = time.time()
        with self.transaction(OUTBOX) as db:
            db.execute("UPDATE outbox SET status=?, last_error=?, next_attempt_at=?, lease_owner=NULL, "
                       "lease_until=0, updated_at=? WHERE id=?",
                       ("failed" if give_up else "pending", error[:2000], now + delay_s, now, item_id))

    def requeue_failed(self, run_id: str | None = None) -> int:
        """Put deliveries that gave up back to pending (what ``sync`` does first); return how many."""
        with self.transaction(OUTBOX) as db:
            sql = "UPDATE outbox SET status='pending', attempts=0, next_attempt_at=0 WHERE status='failed'"
            cursor = db.execute(sql + (" AND run_id=?" if run_id else ""), (run_id,) if run_id else ())
            return cursor.rowcount

    def outbox(self, status: str | None = None) -> list[OutboxItem]:
        """Outbox rows, optionally only those with ``status`` (pending, inflight, done, failed)."""
        sql = "SELECT * FROM outbox" + (" WHERE status=?" if status else "") + " ORDER BY id"
        return [self._outbox_item(r) for r in self._read(sql, (status,) if status else ())]

    def delivered(self, version_id: int, run_id: str) -> dict[str, dict[str, Any]]:
        """Receipts already given for a version in a run, by backend (the latest one wins)."""
        rows = self._read("SELECT backend, payload FROM receipts WHERE version_id=? AND run_id=? ORDER BY id",
                          (version_id, run_id))
        return {r["backend"]: json.loads(r["payload"]) for r in rows}

    def outbox_counts(self, run_id: str | None = None, backends: Sequence[str] | None = None) -> dict[str, int]:
        """How many deliveries are in each status (for one run, or all; for some backends, or all)."""
        sql, params = "SELECT status, COUNT(*) AS n FROM outbox WHERE 1=1", list[Any]()
        if run_id:
            sql, params = sql + " AND run_id=?", [run_id]
        if backends is not None:
            sql += f" AND backend IN ({','.join('?' * len(backends)) or 'NULL'})"
            params += list(backends)
        return {r["status"]: r["n"] for r in self._read(sql + " GROUP BY status", params)}

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

    def outbox_item(self, item_id: int) -> OutboxItem:
        rows = self._read("SELECT * FROM outbox WHERE id=?", (item_id,))
        if not rows:
            raise ArtifactStoreNotFoundError(f"No outbox item {item_id}.")
        return self._outbox_item(rows[0])

    def version_by_id(self, version_id: int) -> ArtifactVersion:
        with self.db.reading() as db:
            return self._version_by_id(db, version_id)


def _looks_like_version(text: str) -> bool:
    digits = text[1:] if text[:1] in ("v", "V") else text
    return digits.isdigit()


def validate_alias(alias: str) -> str:
    """An alias is a short name that is not a version number (``best``, ``prod``, ``candidate-2``)."""
    if (not isinstance(alias, str) or not alias.strip() or len(alias) > 100 or "," in alias
            or not alias.isprintable() or _looks_like_version(alias)):
        raise ArtifactStoreError(
            f"Invalid alias {str(alias)[:80]!r}: use a short printable name (no commas, at most 100 characters) "
            "that is not a version like 'v3'."
        )
    return alias
