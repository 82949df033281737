"""Digests of stored blobs in other algorithms than their key's, and content recognised across algorithms.

Blobs are named by BLAKE3; a backend or a user may still need a SHA-256 or an MD5 (ClearML checks the
SHA-256 it computed of an upload; a user compares a download with ``sha256sum``). ``BlobDigests.hexdigest``
computes one only when asked, verifying the blob against its key in the same pass, and caches it in the
catalog (``blob_digests``), so it is computed once per blob whoever asks.

``BlobDigests.earlier_same_content`` recognises an artifact logged again unchanged when its latest version
was logged with other keys (SHA-256, before BLAKE3): the versions stay as they are and logging the same
content again still finds the version it already has, as it always did.

    digests = BlobDigests(store.db, store.blobs)
    digests.hexdigest("blake3:9f…", "sha256")     # hashed once, then read from the catalog
"""

from __future__ import annotations

import dataclasses
import json

from tracelet_artifacts import digest
from tracelet_artifacts.errors import IntegrityError
from tracelet_artifacts.store.blobs import BlobStore
from tracelet_artifacts.store.sql import Database
from tracelet_artifacts.values import Manifest


class BlobDigests:
    """Digests of blobs on demand, cached in the catalog; safe to share between threads."""

    def __init__(self, db: Database, blobs: BlobStore) -> None:
        self.db = db
        self.blobs = blobs

    def hexdigest(self, key: str, algorithm: str) -> str:
        """The ``algorithm`` (blake3, sha256, md5) hex digest of the blob ``key``: read from the key itself, from
        the catalog, or computed now (the blob checked against its key in the same read) and remembered."""
        if algorithm == digest.algorithm_of(key):
            return digest.hex_of(key)
        rows = self.db.read("SELECT hexdigest FROM blob_digests WHERE blob=? AND algorithm=?", (key, algorithm))
        if rows:
            return str(rows[0]["hexdigest"])
        value = self._compute(key, algorithm)
        with self.db.transaction("blob-digests") as conn:
            conn.execute("INSERT INTO blob_digests VALUES (?, ?, ?) ON CONFLICT DO NOTHING", (key, algorithm, value))
        return value

    def _compute(self, key: str, algorithm: str) -> str:
        own, wanted = digest.new_hasher(digest.algorithm_of(key)), digest.new_hasher(algorithm)
        with self.blobs.local_path(key).open("rb") as handle:
            while chunk := handle.read(digest.CHUNK_SIZE):
                own.update(chunk)
                wanted.update(chunk)
        if digest.to_key(digest.algorithm_of(key), str(own.hexdigest())) != key:
            raise IntegrityError(f"Blob {key[:19]}… is corrupt (it no longer hashes to its key); its {algorithm} "
                                 "digest was not computed. Repair it with `tracelet-artifacts verify --repair`.")
        return str(wanted.hexdigest())

    def earlier_same_content(self, manifest: Manifest) -> Manifest | None:
        """The latest version of ``manifest.name`` when it holds the same content under other keys (a version
        logged before BLAKE3, or migrated), with ``manifest``'s labels; None when the content differs.

        Only a latest version with the same paths and sizes is compared, entry by entry, stopping at the first
        difference, each digest it needs computed once and cached."""
        rows = self.db.read(
            "SELECT v.id, v.digest, v.size_bytes, EXISTS (SELECT 1 FROM versions w WHERE w.artifact_id=v.artifact_id "
            "AND w.digest=?) AS known FROM versions v JOIN artifacts a ON a.id=v.artifact_id WHERE a.name=? "
            "AND v.durability<>'lost' ORDER BY v.version DESC LIMIT 1", (manifest.digest, manifest.name))
        if not rows or rows[0]["known"] or rows[0]["size_bytes"] != manifest.size_bytes:
            return None  # a version has this very content already, or the latest one differs anyway
        found = self.db.read("SELECT manifest FROM versions WHERE id=?", (rows[0]["id"],))
        latest = Manifest.from_dict(json.loads(found[0]["manifest"]))
        if (latest.digest == manifest.digest or latest.references != manifest.references
                or [(e.path, e.size) for e in latest.entries] != [(e.path, e.size) for e in manifest.entries]):
            return None
        for old, new in zip(latest.entries, manifest.entries, strict=True):
            if old.digest == new.digest:
                continue
            if old.algorithm == new.algorithm or self.hexdigest(new.digest, old.algorithm) != digest.hex_of(old.digest):
                return None
            if not self.blobs.exists(old.digest):  # the earlier blob was removed: keep the new one
                return None
        return dataclasses.replace(latest, labels=manifest.labels)
