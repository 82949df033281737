"""``tracelet-artifacts migrate``: name the blobs stored before BLAKE3 by their BLAKE3 keys (optional).

A store written with SHA-256 keys keeps working as it is, mixed with BLAKE3 blobs; nothing forces this.
Migrating, step by step (safe to interrupt at any point: a version always names blobs that are there):

1. every blob named by SHA-256 is hashed with BLAKE3 and given its BLAKE3 name too: a hard link, so the bytes
   are not copied (a copy where links are impossible; a server-side copy in a team's bucket), then synced;
2. in one catalog transaction, every version's entries (manifest and ``entries`` rows) and the stat cache
   name the new keys, and each blob's SHA-256 goes to ``blob_digests`` (asked for later, it costs nothing).
   A version's artifact digest stays as it was logged: it is the version's identity, which backends recorded;
3. the SHA-256 names no version uses any more are removed.

    report = rekey(store)            # or rekey(store, dry_run=True) to count only
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from tracelet_artifacts import digest
from tracelet_artifacts.store.durability import sync_files
from tracelet_artifacts.store.embedded import EmbeddedStore
from tracelet_artifacts.values import ManifestEntry


@dataclass
class RekeyReport:
    """What ``rekey`` did (or, with ``dry_run``, would do)."""

    blobs: int = 0  # SHA-256 blobs given a BLAKE3 name
    bytes: int = 0
    versions: int = 0  # versions whose entries now name BLAKE3 keys
    removed: int = 0  # SHA-256 names removed
    missing: list[str] = field(default_factory=list)  # SHA-256 keys some version names but no blob holds


def rekey(store: EmbeddedStore, *, dry_run: bool = False) -> RekeyReport:
    """Rename every SHA-256 blob that versions use to its BLAKE3 key (see the module doc)."""
    report = RekeyReport()
    old_keys = sorted(k for k in store.catalog.referenced_digests() if digest.algorithm_of(k) == digest.SHA256)
    mapping: dict[str, str] = {}
    for old in old_keys:
        if not store.blobs.exists(old):
            report.missing.append(old)
            continue
        path = store.blobs.local_path(old)  # a bucket's blob is read into this machine's cache
        report.blobs += 1
        report.bytes += path.stat().st_size
        if dry_run:
            continue
        new = digest.file_key(path)
        if digest.file_key(path, digest.SHA256) != old:
            report.missing.append(old)  # corrupt: left for `verify --repair`
            continue
        _link(store, old, new)
        mapping[old] = new
    versions = [v for v in store.catalog.search() if any(e.digest in mapping for e in v.manifest.entries)]
    report.versions = len(versions) if mapping else sum(
        1 for v in store.catalog.search() if any(e.algorithm == digest.SHA256 for e in v.manifest.entries))
    if dry_run or not mapping:
        return report
    sync_files([store.blobs.where(k) for k in mapping.values()], store.blobs.root)
    with store.catalog.transaction() as conn:
        for record in versions:
            manifest = record.manifest
            entries = tuple(_renamed(e, mapping) for e in manifest.entries)
            data = dataclasses.replace(manifest, entries=entries).to_dict()  # its artifact digest kept
            conn.execute("UPDATE versions SET manifest=? WHERE id=?", (json.dumps(data, sort_keys=True), record.row_id))
        conn.executemany("UPDATE entries SET sha256=? WHERE sha256=?", [(n, o) for o, n in mapping.items()])
        conn.executemany("UPDATE stat_cache SET sha256=? WHERE sha256=?", [(n, o) for o, n in mapping.items()])
        conn.executemany("INSERT INTO blob_digests VALUES (?, 'sha256', ?) ON CONFLICT DO NOTHING",
                         [(n, o) for o, n in mapping.items()])
    still_used = store.catalog.referenced_digests()
    for old in mapping:
        if old not in still_used:
            store.blobs.delete(old)
            report.removed += 1
    return report


def _renamed(entry: ManifestEntry, mapping: dict[str, str]) -> ManifestEntry:
    return ManifestEntry(entry.path, entry.size, mapping.get(entry.digest, entry.digest), entry.mime,
                         entry.is_text, entry.kind, entry.description)


def _link(store: EmbeddedStore, old: str, new: str) -> None:
    """Give blob ``old`` the name ``new`` as well (same bytes): a hard link, else a copy; in a bucket, a copy there."""
    source, target = store.blobs.path(old), Path(store.blobs.where(new))
    if not store.blobs.exists(new):  # (a file, or packed: store/packs.py)
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(target.name + ".rekey")
        try:
            os.link(source, temp)
        except OSError:
            shutil.copyfile(source, temp)
        os.replace(temp, target)
    store.blobs.copy_within(old, new)
