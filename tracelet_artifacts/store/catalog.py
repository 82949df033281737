"""The catalog: artifacts, their immutable versions (entries, labels, metadata) and aliases, and the searches
over them; in SQLite (WAL mode, the default) or PostgreSQL (a team's).

It is one of three small objects over one database and its ``transaction()``: the catalog (here), the
outbox (deliveries, receipts and the runs that own them: ``store/outbox.py``) and the stat cache (the
re-log shortcut: ``store/stat_cache.py``). ``EmbeddedStore.commit`` writes a version, its aliases, its
outbox rows and its stat-cache rows in one transaction. Writers take turns across every process and
machine sharing the catalog (``store/sql.py``), so concurrent writers get consecutive versions and
aliases move atomically.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tracelet_artifacts.errors import ArtifactStoreError, ArtifactStoreNotFoundError, VersionConflictError
from tracelet_artifacts.store import listing, version_names
from tracelet_artifacts.store.listing import ArtifactFilter, ArtifactSummary
from tracelet_artifacts.store.migrations import migrate
from tracelet_artifacts.store.outbox import OUTBOX, DeliveryState, Outbox, OutboxItem
from tracelet_artifacts.store.sql import Connection, Database, open_database
from tracelet_artifacts.values import ArtifactType, ArtifactVersion, Manifest
from tracelet_artifacts.version_names import could_be_version_name

# ArtifactVersion is a value of the ground floor; OutboxItem, DeliveryState and OUTBOX moved to the outbox.
# All stay importable from here.
__all__ = ["LATEST", "OUTBOX", "ArtifactVersion", "Catalog", "DeliveryState", "OutboxItem", "metadata_text",
           "open_catalog_database", "parse_version", "validate_alias"]

LATEST = "latest"


def metadata_text(value: Any) -> str:
    """How a metadata value is stored for equality queries: strings as-is, the rest as JSON (2.0 as 2)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # equal numbers match: 2.0 == 2, and `--meta epochs=2` finds either
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def parse_version(text: str | int) -> int:
    """``3``, ``"3"`` or ``"v3"`` → 3; anything else raises ArtifactStoreError."""
    if isinstance(text, int) and text > 0:
        return text
    raw = str(text).strip()
    digits = raw[1:] if raw[:1] in ("v", "V") else raw
    if not digits.isdigit() or int(digits) < 1:
        raise ArtifactStoreError(f"{text!r} is not a version; use v1, v2, … or an alias such as 'latest'.")
    return int(digits)


def _moved_to_outbox(name: str) -> Any:
    """A Catalog attribute that is now the outbox's ``name`` (for code written against the one-object catalog)."""

    def moved(self: Catalog) -> Any:
        return getattr(self._outbox, name)

    return property(moved, doc=f"Moved to ``Outbox.{name}`` (``store.outbox.{name}``); kept for older callers.")


class Catalog:
    """Artifacts, versions, labels, metadata and aliases, and the searches over them; safe to share between
    threads (one connection per thread). Opened on a location it opens that database; the store hands the
    one it shares with its outbox and stat cache.

    Example::

        catalog = Catalog(Path(".tracelet/catalog.db"))
        record = catalog.add_version(manifest)
        catalog.get("classifier", "latest").label   # "v1"
    """

    def __init__(self, location: str | Path | Database) -> None:
        self.db: Database = location if isinstance(location, Database) else open_catalog_database(location)
        self._outbox = Outbox(self.db)  # a moved alias re-queues the version's deliveries

    @property
    def location(self) -> str:
        """Where the catalog is (a file path, or a PostgreSQL URL without its password)."""
        return self.db.location

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
        version_name: str | None = None,
    ) -> ArtifactVersion:
        """Record ``manifest`` as a new version, or return the existing version with the same digest.

        Its content must already be in the blob store; ``EmbeddedStore.commit`` does this together with
        the version's deliveries and stat-cache rows.
        """
        with self.transaction(f"artifact:{manifest.name}") as db:
            return self.record_version(db, manifest, version=version, aliases=aliases, run_id=run_id,
                                       version_name=version_name)

    def record_version(
        self,
        db: Connection,
        manifest: Manifest,
        *,
        version: int | None = None,
        aliases: Iterable[str] = (),
        run_id: str | None = None,
        now: float | None = None,
        version_name: str | None = None,
        durability: str = "durable",
        durability_detail: str | None = None,
    ) -> ArtifactVersion:
        """``add_version`` inside the caller's transaction (which holds the ``artifact:<name>`` key).

        With ``version_name`` (``1.2.0``): the version of that name when it holds the same content, else a
        VersionConflictError; a new name goes on the identical version if it has none yet, else on a new one.
        ``durability`` is the new version's state (``committed`` while its blobs await their group sync, whose
        owner ``durability_detail`` names); a version that was ``lost`` comes back with it, its content stored anew.
        """
        now = time.time() if now is None else now
        aliases = [validate_alias(a) for a in aliases]
        artifact_id = self._artifact_id(db, manifest.name, create=True, now=now)
        if version_name is not None:
            existing = version_names.existing(db, artifact_id, manifest, version_name)
        else:
            existing = self._existing(db, artifact_id, manifest, version)
        if existing is None:
            number = version or (db.execute(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM versions WHERE artifact_id=?",
                (artifact_id,)).fetchone()[0])
            version_id = self._insert_version(db, artifact_id, number, manifest, run_id, now, version_name,
                                              (durability, durability_detail))
            created = True
        else:
            version_id, created = existing, False
            db.execute("UPDATE versions SET durability=?, durability_detail=? WHERE id=? AND durability='lost'",
                       (durability, durability_detail, version_id))
            # Identical content: the version stays as it is, but labels given now are added to it.
            self._add_labels(db, version_id, manifest.labels)
        for alias in (LATEST, *aliases):
            self._set_alias(db, artifact_id, alias, version_id, now)
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
    def _insert_version(db: Connection, artifact_id: int, number: int, manifest: Manifest, run_id: str | None,
                        now: float, version_name: str | None = None,
                        durability: tuple[str, str | None] = ("durable", None)) -> int:
        # The durability goes in with the row: a later UPDATE would write a large manifest to the journal twice.
        cursor = db.execute(
            "INSERT INTO versions (artifact_id, version, digest, type, description, size_bytes, created_at, "
            "run_id, manifest, version_name, durability, durability_detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (artifact_id, number, manifest.digest, manifest.artifact_type.value, manifest.description,
             manifest.size_bytes, now, run_id, json.dumps(manifest.to_dict(), sort_keys=True), version_name,
             *durability))
        version_id = int(cursor.fetchone()[0])
        db.executemany("INSERT INTO entries VALUES (?, ?, ?, ?)",
                       [(version_id, e.path, e.digest, e.size) for e in manifest.entries])
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
        "v.run_id, v.manifest, v.version_name, v.durability, v.durability_detail, "
        "(SELECT group_concat(alias, ',') FROM aliases al WHERE al.version_id=v.id) "
        "AS alias_list FROM versions v JOIN artifacts a ON a.id=v.artifact_id"
    )

    @staticmethod
    def _record(row: Any, created: bool = True) -> ArtifactVersion:
        aliases = tuple(sorted(row["alias_list"].split(","))) if row["alias_list"] else ()
        return ArtifactVersion(
            name=row["name"], version=row["version"], digest=row["digest"],
            artifact_type=ArtifactType(row["type"]), size_bytes=row["size_bytes"],
            created_at=row["created_at"], aliases=aliases, description=row["description"],
            run_id=row["run_id"], created=created, manifest_json=row["manifest"], row_id=row["id"],
            version_name=row["version_name"], durability=row["durability"],
            durability_detail=row["durability_detail"])

    def _version_by_id(self, db: Connection, version_id: int, created: bool = True) -> ArtifactVersion:
        row = db.execute(self._VERSION_SELECT + " WHERE v.id=?", (version_id,)).fetchone()
        return self._record(row, created)

    def get(self, name: str, version: str | int = LATEST) -> ArtifactVersion:
        """A version by number (``3``, ``"v3"``), version name (``"1.2.0"``, ``"v1.2.0"``) or alias
        (``"latest"``, ``"best"``)."""
        text = str(version)
        with self.db.reading() as db:
            artifact_id = self._artifact_id(db, name)
            if isinstance(version, int) or _looks_like_version(text):
                row = db.execute(self._VERSION_SELECT + " WHERE v.artifact_id=? AND v.version=?",
                                 (artifact_id, int(text.lstrip("vV")))).fetchone()  # v0 and -1: not found
                what = f"version {text}"
            else:
                row = version_names.find(db, self._VERSION_SELECT, artifact_id, text)
                if row is None:
                    row = db.execute(self._VERSION_SELECT + " JOIN aliases x ON x.version_id=v.id "
                                     "WHERE x.artifact_id=? AND x.alias=?", (artifact_id, text)).fetchone()
                what = f"version name or alias {text!r}" if could_be_version_name(text) else f"alias {text!r}"
        if row is None:
            known = ", ".join(v.named_label for v in self.versions(name)) or "none"
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
        if alias == LATEST:
            raise ArtifactStoreError(f"'{LATEST}' is the store's own alias: it always points at the newest version "
                                     "and cannot be moved by hand; use another alias (e.g. best, prod).")
        target = self.get(name, version)
        now = time.time()
        with self.transaction(f"artifact:{name}", OUTBOX) as db:
            artifact_id = self._artifact_id(db, name)
            version_names.refuse_alias_clash(db, artifact_id, name, alias)
            version_id = self._version_row(db, artifact_id, target.version)
            previous = db.execute("SELECT version_id FROM aliases WHERE artifact_id=? AND alias=?",
                                  (artifact_id, alias)).fetchone()
            self._set_alias(db, artifact_id, alias, version_id, now)
            if previous is None or previous["version_id"] != version_id:
                self._outbox.redeliver(db, version_id, now)
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

    def version_by_id(self, version_id: int) -> ArtifactVersion:
        with self.db.reading() as db:
            return self._version_by_id(db, version_id)

    # -- durability (store/durability.py drives these) -------------------------------------------------
    def not_durable(self) -> list[ArtifactVersion]:
        """Versions committed but not yet durable (their blobs await a group sync), oldest first."""
        return [self._record(r) for r in self._read(
            self._VERSION_SELECT + " WHERE v.durability='committed' ORDER BY v.id")]

    @staticmethod
    def mark_durable(db: Connection, version_ids: Iterable[int]) -> None:
        """Record versions as durable (their blobs are synced), inside the caller's transaction."""
        db.executemany("UPDATE versions SET durability='durable', durability_detail=NULL "
                       "WHERE id=? AND durability='committed'", [(i,) for i in sorted(set(version_ids))])

    def mark_lost(self, db: Connection, record: ArtifactVersion, detail: str, now: float) -> None:
        """Record a version as lost (kept, so its number is never given again, and ``show`` says why): its
        unfinished deliveries fail, and ``latest`` moves back to the newest version not lost."""
        db.execute("UPDATE versions SET durability='lost', durability_detail=? WHERE id=?", (detail, record.row_id))
        self._outbox.abandon(db, record.row_id, f"not delivered: {detail}", now)
        artifact_id = self._artifact_id(db, record.name)
        newest = db.execute("SELECT id FROM versions WHERE artifact_id=? AND durability<>'lost' "
                            "ORDER BY version DESC LIMIT 1", (artifact_id,)).fetchone()
        if newest is None:
            db.execute("DELETE FROM aliases WHERE artifact_id=? AND alias=? AND version_id=?",
                       (artifact_id, LATEST, record.row_id))
        else:
            db.execute("UPDATE aliases SET version_id=?, updated_at=? WHERE artifact_id=? AND alias=? "
                       "AND version_id=?", (newest["id"], now, artifact_id, LATEST, record.row_id))

    # -- moved to the outbox: what callers asked of the one-object catalog before it split --------
    outbox = _moved_to_outbox("items")
    outbox_item = _moved_to_outbox("item")
    outbox_counts = _moved_to_outbox("counts")
    claim = _moved_to_outbox("claim")
    retry_later = _moved_to_outbox("retry_later")
    deliveries = _moved_to_outbox("deliveries")
    receipts = _moved_to_outbox("receipts")
    complete = _moved_to_outbox("complete")
    requeue_failed = _moved_to_outbox("requeue_failed")
    release_orphans = _moved_to_outbox("release_orphans")
    delivered = _moved_to_outbox("delivered")
    receipts_with_runs = _moved_to_outbox("receipts_with_runs")
    add_run = _moved_to_outbox("add_run")
    end_run = _moved_to_outbox("end_run")
    run_state = _moved_to_outbox("run_state")
    save_backend_state = _moved_to_outbox("save_backend_state")
    runs_with_outstanding = _moved_to_outbox("runs_with_outstanding")
    backends_of_run = _moved_to_outbox("backends_of_run")


def open_catalog_database(location: str | Path) -> Database:
    """The catalog database at ``location`` (a SQLite path or a PostgreSQL URL), its schema up to date.

    The catalog, the outbox and the stat cache are built over the one database this returns.
    """
    db = open_database(location)
    migrate(db)  # driver errors arrive as ArtifactStoreError, naming the catalog
    return db


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
