"""The catalog's version names: finding a version by its name, and the rules when one is logged under a name.

A version name (``1.2.0``) is immutable like the number it sits beside: logging other content (other files,
or the same files with other metadata) under a name that exists is a VersionConflictError that says how to
publish the change instead; the same content under it again returns that version. A new name goes on the
version with identical content when that version has no name yet, else on a new version. Names and
aliases of one artifact never share a spelling, so ``NAME:X`` always means one thing.
"""

from __future__ import annotations

import json
from typing import Any

from tracelet_artifacts.errors import ArtifactStoreError, InvalidVersionError, VersionConflictError
from tracelet_artifacts.store.sql import Connection, Database
from tracelet_artifacts.values import Manifest
from tracelet_artifacts.version_names import next_version_name, normalize_version_name

__all__ = ["existing", "find", "label_of_name", "refuse_alias_clash"]


def find(db: Connection, select: str, artifact_id: int, text: str) -> Any:
    """The version row named ``text`` (``1.2.0`` or ``v1.2.0``), or None (also when ``text`` cannot be a name)."""
    try:
        name = normalize_version_name(text)
    except InvalidVersionError:
        return None
    return db.execute(select + " WHERE v.artifact_id=? AND v.version_name=?", (artifact_id, name)).fetchone()


def _held_metadata(row: Any) -> Any:
    return json.loads(row["manifest"]).get("metadata") or {}


def existing(db: Connection, artifact_id: int, manifest: Manifest, name: str) -> int | None:
    """The id of the version that ``manifest`` logged under version name ``name`` is, or None for a new one."""
    clash = db.execute("SELECT 1 FROM aliases WHERE artifact_id=? AND alias=?", (artifact_id, name)).fetchone()
    if clash is not None:
        raise ArtifactStoreError(f"{manifest.name!r} has an alias {name!r}; a version name cannot take an alias's "
                                 "spelling (NAME:X must mean one thing). Pick another version name.")
    row = db.execute("SELECT id, version, digest, manifest FROM versions WHERE artifact_id=? AND version_name=?",
                     (artifact_id, name)).fetchone()
    if row is not None:
        if row["digest"] != manifest.digest:
            differs = f"different content (digest {row['digest'][:12]}… vs {manifest.digest[:12]}…)"
        elif _held_metadata(row) != json.loads(json.dumps(manifest.to_dict()))["metadata"]:
            differs = "the same files with different metadata"
        else:
            return int(row["id"])
        after = db.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM versions WHERE artifact_id=?",
                           (artifact_id,)).fetchone()[0]
        raise VersionConflictError(
            f"{manifest.name} {name} (v{row['version']}) already holds {differs}; a version name is immutable and "
            f"is never overwritten. To publish the change, log it under a new version name (e.g. "
            f"version='{next_version_name(name)}'), or without version= to make it v{after}."
        )
    same = db.execute("SELECT id, version_name FROM versions WHERE artifact_id=? AND digest=? "
                      "ORDER BY version DESC LIMIT 1", (artifact_id, manifest.digest)).fetchone()
    if same is None or same["version_name"] is not None:
        return None  # new content, or identical content already released under another name: a new version
    db.execute("UPDATE versions SET version_name=? WHERE id=? AND version_name IS NULL", (name, same["id"]))
    return int(same["id"])


def refuse_alias_clash(db: Connection, artifact_id: int, artifact: str, alias: str) -> None:
    """ArtifactStoreError when ``alias`` is spelt like a version name of the artifact."""
    try:
        name = normalize_version_name(alias)
    except InvalidVersionError:
        return
    row = db.execute("SELECT version FROM versions WHERE artifact_id=? AND version_name=?",
                     (artifact_id, name)).fetchone()
    if row is not None:
        raise ArtifactStoreError(f"{alias!r} is the version name of {artifact}:v{row['version']}; an alias cannot "
                                 "take a version name's spelling (NAME:X must mean one thing). Pick another alias.")


def label_of_name(db: Database, artifact: str, text: str) -> str | None:
    """``v3`` when ``text`` is the version name of ``artifact``'s version 3, else None."""
    try:
        name = normalize_version_name(text)
    except InvalidVersionError:
        return None
    rows = db.read("SELECT v.version FROM versions v JOIN artifacts a ON a.id=v.artifact_id "
                           "WHERE a.name=? AND v.version_name=?", (artifact, name))
    return f"v{rows[0]['version']}" if rows else None
