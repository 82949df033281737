"""Reading W&B's offline run files (``<dir>/wandb/*-run-*/run-<id>.wandb``) without a server.

wandb 0.31 ships no Python reader of these files (the old ``wandb.sdk.internal.datastore`` moved into its Go
core) and its SDK cannot read artifacts offline, so the adapter parses them here: LevelDB-log framed
``wandb_internal_pb2.Record`` messages whose ``artifact`` records hold name, type, aliases, digest, metadata
and manifest entries (``local_path`` is the file W&B uploads at ``wandb sync``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import shutil
import struct
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from tracelet_artifacts.artifact import validate_artifact_path
from tracelet_artifacts.errors import BackendError

log = logging.getLogger(__name__)

META_KEY = "tracelet"
LATEST = "latest"
_BLOCK = 32 * 1024
_HEADER = 7  # ":W&B" + 2-byte magic + 1-byte version
_FULL, _FIRST, _LAST = 1, 2, 4  # 3 is a middle chunk


def read_run_file(path: Path) -> Iterator[bytes]:
    """Yield each serialised ``Record`` of a ``run-<id>.wandb`` file.

    The file is a 7-byte header (``:W&B``, magic, version) then the LevelDB log format: 32 KiB blocks of
    chunks, each with a 7-byte header (little-endian zlib CRC32 of type byte + data, length, type: 1 full,
    2 first, 3 middle, 4 last). Reading stops at a truncated or corrupt tail (a run killed mid-write).
    """
    data = path.read_bytes()
    if data[:4] != b":W&B":
        return
    pos, pending = _HEADER, b""
    while pos + 7 <= len(data):
        if _BLOCK - pos % _BLOCK < 7:  # block trailer too small for a chunk header: padding
            pos += _BLOCK - pos % _BLOCK
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0 and length == 0:  # zero fill: nothing more in this block
            pos += _BLOCK - pos % _BLOCK
            continue
        chunk = data[pos + 7:pos + 7 + length]
        if len(chunk) < length or zlib.crc32(bytes([kind]) + chunk) != crc:
            return
        pos += 7 + length
        pending = chunk if kind in (_FULL, _FIRST) else pending + chunk
        if kind in (_FULL, _LAST):
            yield pending


@dataclass(frozen=True)
class WandbEntry:
    """One manifest entry of a logged W&B artifact."""

    path: str
    digest: str
    ref: str = ""
    size: int = 0
    local_path: str = ""


@dataclass(frozen=True)
class WandbRecord:
    """One ``artifact`` record: a W&B artifact as a run logged it."""

    run_id: str
    project: str
    entity: str
    name: str
    type: str
    digest: str
    aliases: tuple[str, ...]
    metadata: Mapping[str, Any]
    entries: tuple[WandbEntry, ...]
    description: str = ""

    @property
    def tracelet(self) -> Mapping[str, Any]:
        value = self.metadata.get(META_KEY)
        return value if isinstance(value, Mapping) else {}


def artifact_records(run_file: Path) -> list[WandbRecord]:
    """The ``artifact`` records of one run file, in the order they were logged."""
    from wandb.proto import wandb_internal_pb2 as pb

    found: list[WandbRecord] = []
    for raw in read_run_file(run_file):
        record = pb.Record()  # type: ignore[attr-defined]
        try:
            record.ParseFromString(raw)
        except Exception:  # a damaged record: the rest of the file is not trustworthy either
            log.warning("Stopped reading %s at a record that does not parse.", run_file)
            break
        if record.WhichOneof("record_type") != "artifact":
            continue
        art = record.artifact
        entries = tuple(WandbEntry(c.path, c.digest, c.ref, c.size, c.local_path) for c in art.manifest.contents)
        metadata = json.loads(art.metadata) if art.metadata else {}
        found.append(WandbRecord(art.run_id, art.project, art.entity, art.name, art.type, art.digest,
                                 tuple(art.aliases), metadata, entries, art.description))
    return found


@dataclass
class Versions:
    """Every version of one W&B artifact name: distinct digests in order, their records and aliases.

    Aliases move the way W&B moves them (a later record holding an alias takes it), except ``latest``,
    which W&B manages itself: it names the newest version, whatever record last carried it.
    """

    digests: list[str] = field(default_factory=list)
    records: dict[str, WandbRecord] = field(default_factory=dict)  # W&B digest -> the record that logged it
    aliases: dict[str, str] = field(default_factory=dict)  # alias -> digest
    logged: list[WandbRecord] = field(default_factory=list)  # every record, in order (alias moves log again)

    def add(self, record: WandbRecord) -> None:
        self.logged.append(record)
        if record.digest not in self.records:
            self.digests.append(record.digest)
            self.records[record.digest] = record
        for alias in record.aliases:
            if alias != LATEST:
                self.aliases[alias] = record.digest

    def holding(self, tracelet_digest: str) -> WandbRecord | None:
        """The record of the version logged from our version with ``tracelet_digest`` (None: not held)."""
        return next((r for r in reversed(self.logged) if r.tracelet.get("digest") == tracelet_digest), None)

    def label(self, digest: str) -> str:
        return f"v{self.digests.index(digest)}"

    def aliases_of(self, digest: str) -> tuple[str, ...]:
        held = {a for a, d in self.aliases.items() if d == digest}
        if self.digests and digest == self.digests[-1]:
            held.add(LATEST)
        return tuple(sorted(held))

    def find(self, version: str) -> WandbRecord | None:
        """``vN`` is W&B's version; bare ``N`` is ours (alias ``tracelet-vN``); else an alias or a digest."""
        text = str(version)
        if text.isdigit():
            text = f"tracelet-v{text}"
        if text == LATEST and self.digests:
            return self.records[self.digests[-1]]
        if text in self.aliases:
            return self.records[self.aliases[text]]
        if text[:1] in "vV" and text[1:].isdigit() and int(text[1:]) < len(self.digests):
            return self.records[self.digests[int(text[1:])]]
        return next((r for r in self.records.values() if text in (r.digest, r.tracelet.get("digest"))), None)


class RunFiles:
    """The artifact records of the run files under a ``wandb`` folder, each file parsed once per change."""

    def __init__(self) -> None:
        self._parsed: dict[Path, tuple[tuple[int, int], list[WandbRecord]]] = {}

    def parse(self, run_file: Path) -> list[WandbRecord]:
        info = run_file.stat()
        key = (info.st_size, info.st_mtime_ns)
        cached = self._parsed.get(run_file)
        if cached is None or cached[0] != key:
            cached = (key, artifact_records(run_file))
            self._parsed[run_file] = cached
        return cached[1]

    def scan(self, folder: Path, skip: Path | None = None) -> list[WandbRecord]:
        """Every record of the run folders under ``folder``, oldest run first (``skip``: a run folder left out)."""
        runs = [p for p in folder.glob("*run-*") if p.is_dir() and not p.is_symlink()] if folder.is_dir() else []
        found: list[WandbRecord] = []
        for run_dir in sorted(runs, key=lambda p: p.name.split("run-", 1)[1]):
            for run_file in run_dir.glob("run-*.wandb") if run_dir != skip else ():
                found += self.parse(run_file)
        return found


def file_path(uri: str) -> Path | None:
    """The local path of a ``file://`` URI (None for any other scheme)."""
    parsed = urlparse(uri)
    return Path(url2pathname(parsed.path)) if parsed.scheme == "file" else None


def copy_record(record: WandbRecord, dest: Path, what: str) -> Path:
    """Copy a logged version's files (the files W&B uploads from, and ``file://`` references) under ``dest``,
    checking each W&B digest; references to remote URIs are not downloaded (said in the log)."""
    for entry in record.entries:
        source = _entry_source(entry)
        if source is None:
            log.info("Not fetching %s of %s: it refers to %s.", entry.path, what, entry.ref)
            continue
        path = dest / validate_artifact_path(entry.path)  # never outside dest
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, path)
        if entry.digest != entry.ref and md5_b64(path) != entry.digest:
            raise BackendError(f"{what} entry {entry.path} does not match its W&B digest.")
    return dest


def _entry_source(entry: WandbEntry) -> Path | None:
    if entry.local_path and Path(entry.local_path).is_file():
        return Path(entry.local_path)
    if not entry.ref:
        raise BackendError(f"W&B entry {entry.path} has no file at {entry.local_path!r} (a staged copy is "
                           "removed once its run is synced; a store blob by `tracelet-artifacts gc`).")
    source = file_path(entry.ref)
    if source is not None and not source.is_file():
        raise BackendError(f"W&B entry {entry.path} refers to {entry.ref}, which no longer exists.")
    return source


def wait_for_exit_record(run_file: Path, timeout: float) -> None:
    """Wait until a finished run's file holds its ``exit`` record (everything before it is then written)."""
    from wandb.proto import wandb_internal_pb2 as pb

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if run_file.is_file():
            for raw in list(read_run_file(run_file))[-3:]:
                record = pb.Record()  # type: ignore[attr-defined]
                record.ParseFromString(raw)
                if record.WhichOneof("record_type") == "exit":
                    return
        time.sleep(0.05)
    log.warning("W&B run file %s has no exit record after %.0f s.", run_file, timeout)


def md5_b64(path: Path) -> str:
    """W&B's digest of a file: the base64 of its MD5 (read in chunks)."""
    digest = hashlib.md5()
    with path.open("rb") as handle:
        while chunk := handle.read(4 * 1024 * 1024):
            digest.update(chunk)
    return base64.b64encode(digest.digest()).decode()
