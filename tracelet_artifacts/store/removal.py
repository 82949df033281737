"""Deleting versions: ``rm NAME:VER`` and what retention prunes.

A version is refused (``VersionInUseError``, naming what holds it) while an alias other than ``latest`` points
at it or a run other than its producer consumed it, unless forced. Deleting removes the version's row and
with it its entries, labels, metadata, aliases, receipts and outbox rows, in one transaction; ``latest``
moves to the newest version left, and a name with no version left is removed. Uses of the version keep its
name and number, so lineage still shows where a model came from. Blobs stay until ``gc``.
"""

from __future__ import annotations

from tracelet_artifacts.errors import VersionInUseError
from tracelet_artifacts.store.catalog import LATEST, Catalog
from tracelet_artifacts.store.outbox import OUTBOX
from tracelet_artifacts.store.sql import Connection
from tracelet_artifacts.values import ArtifactVersion


def blockers(conn: Connection, record: ArtifactVersion) -> list[str]:
    """Why ``record`` should not be deleted: the aliases pointing at it (``latest`` aside) and the runs
    other than its producer that consumed it, as short phrases."""
    aliases = [r["alias"] for r in conn.execute("SELECT alias FROM aliases WHERE version_id=? ORDER BY alias",
                                                 (record.row_id,)).fetchall() if r["alias"] != LATEST]
    runs = [r["run_id"] for r in conn.execute(
        "SELECT DISTINCT run_id FROM uses WHERE name=? AND version=? ORDER BY run_id",
        (record.name, record.version)).fetchall() if r["run_id"] != record.run_id]
    found = [f"alias {a!r} points at it" for a in aliases]
    if runs:
        shown = ", ".join(r[:8] for r in runs[:3]) + (f" and {len(runs) - 3} more" if len(runs) > 3 else "")
        found.append(f"{'a later run' if len(runs) == 1 else f'{len(runs)} later runs'} consumed it ({shown})")
    return found


def remove_version(catalog: Catalog, name: str, version: str | int, *, force: bool = False) -> ArtifactVersion:
    """Delete ``name:version`` (see the module docstring); return the version as it was."""
    record = catalog.get(name, version)
    with catalog.transaction(f"artifact:{name}", OUTBOX) as conn:
        reasons = blockers(conn, record)  # read again under the lock: an alias set meanwhile counts
        if reasons and not force:
            hint = "point the alias elsewhere (`tracelet-artifacts alias`), or " if "alias" in reasons[0] else ""
            raise VersionInUseError(f"{record.ref} is in use: {'; '.join(reasons)}; {hint}pass --force to delete it "
                                    "anyway (lineage keeps its name).")
        conn.execute("DELETE FROM versions WHERE id=?", (record.row_id,))
        newest = conn.execute("SELECT id FROM versions WHERE artifact_id=(SELECT id FROM artifacts WHERE name=?) "
                              "ORDER BY version DESC LIMIT 1", (name,)).fetchone()
        if newest is None:
            conn.execute("DELETE FROM artifacts WHERE name=?", (name,))
        else:
            conn.execute("INSERT INTO aliases (artifact_id, alias, version_id, updated_at) SELECT artifact_id, ?, id, "
                         "created_at FROM versions WHERE id=? ON CONFLICT (artifact_id, alias) DO NOTHING",
                         (LATEST, newest["id"]))
    return record
