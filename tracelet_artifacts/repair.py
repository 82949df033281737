"""Find and repair stored versions whose blobs are missing or corrupt, from a backend that holds a copy.

The catalog's receipts say which backend holds which entries of a version (those it *uploaded*; a
reference holds no bytes). ``repair_version`` fetches the version back through that backend's adapter,
checks each file against the entry's digest and only then replaces the bad blob. A corrupt blob that no
backend can restore is moved to ``blobs/corrupt/`` so it is never served and logging the artifact again
from its source files stores it anew. ``fetch_verified`` is ``EmbeddedStore.fetch`` with that repair on
the way: it never writes bad bytes, and serves the right ones whenever some backend still has them.

It sits one floor above the store and the adapters, beside ``delivery.py``: it repairs the store's blobs
from the copies adapters hold, so the store package itself never reaches up to a backend.
(``tracelet_artifacts.store.repair`` re-exports it for older imports.)
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tracelet_artifacts import digest
from tracelet_artifacts.backends.base import BackendAdapter
from tracelet_artifacts.delivery import start_adapter
from tracelet_artifacts.errors import ArtifactStoreNotFoundError, IntegrityError
from tracelet_artifacts.names import validate_artifact_path
from tracelet_artifacts.store.embedded import EmbeddedStore
from tracelet_artifacts.values import ArtifactVersion

log = logging.getLogger(__name__)

BlobState = Literal["missing", "corrupt"]
QUARANTINE = "corrupt"  # blobs/corrupt/<digest>: bad bytes kept for inspection, never served


@dataclass(frozen=True)
class BlobProblem:
    """One entry of a version whose blob is missing or does not hash to its key (``digest``)."""

    path: str
    digest: str
    state: BlobState

    @property
    def sha256(self) -> str:
        """The blob's key, under the field's name before blobs were named by BLAKE3 (use ``digest``)."""
        return self.digest


@dataclass(frozen=True)
class RepairReport:
    """What checking (and repairing) one version found: its bad entries and where each repair came from."""

    ref: str
    problems: tuple[BlobProblem, ...] = ()
    repaired: Mapping[str, str] = field(default_factory=dict)  # entry path -> backend it was fetched from
    quarantined: tuple[str, ...] = ()  # entry paths whose corrupt blob was moved to blobs/corrupt/

    @property
    def unrepaired(self) -> tuple[BlobProblem, ...]:
        return tuple(p for p in self.problems if p.path not in self.repaired)

    @property
    def ok(self) -> bool:
        """True when every blob of the version is sound now."""
        return not self.unrepaired


def check_version(
    store: EmbeddedStore, record: ArtifactVersion, seen: dict[str, BlobState | None] | None = None
) -> tuple[BlobProblem, ...]:
    """The entries of ``record`` whose blob is missing or corrupt (each blob hashed once per ``seen`` memo)."""
    seen = {} if seen is None else seen
    problems = []
    for entry in record.manifest.entries:
        if entry.digest not in seen:
            seen[entry.digest] = _blob_state(store, entry.digest)
        state = seen[entry.digest]
        if state is not None:
            problems.append(BlobProblem(entry.path, entry.digest, state))
    return tuple(problems)


def _blob_state(store: EmbeddedStore, key: str) -> BlobState | None:
    if not store.blobs.exists(key):
        return "missing"
    return None if store.blobs.verify(key) else "corrupt"


class BackendCopies:
    """The adapters a repair fetches through: the caller's running ones first, else one opened (and later
    closed) for the run that delivered the version, with ``options`` as in settings."""

    def __init__(self, store: EmbeddedStore, running: Mapping[str, BackendAdapter] | None = None,
                 options: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.store = store
        self.running = dict(running or {})
        self.options = dict(options or {})
        self._opened: dict[tuple[str, str], BackendAdapter] = {}

    def adapter(self, backend: str, run_id: str) -> BackendAdapter:
        if backend in self.running:
            return self.running[backend]
        if (backend, run_id) not in self._opened:
            experiment, _ = self.store.outbox.run_state(run_id)
            self._opened[backend, run_id] = start_adapter(self.store, run_id, experiment, backend,
                                                          self.options.get(backend))
        return self._opened[backend, run_id]

    def close(self) -> None:
        for adapter in self._opened.values():
            try:
                adapter.end_run()
            except Exception as exc:  # closing a run we only read from must not hide the repair's outcome
                log.warning("Closing the %s run opened for a repair failed: %s", adapter.name, exc)
        self._opened.clear()


def repair_version(
    store: EmbeddedStore,
    name: str,
    version: str | int,
    adapters: Mapping[str, BackendAdapter] | None = None,
    *,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    problems: Iterable[BlobProblem] | None = None,
    quarantine: bool = True,
) -> RepairReport:
    """Check a version and restore each missing or corrupt blob from a backend whose receipt holds it.

    ``adapters`` are running adapters to fetch through (an Experiment's); a backend not among them is
    opened for the run that delivered the version, with ``options[backend]``. What no backend can restore
    is left in the report's ``unrepaired`` (a corrupt blob is moved to ``blobs/corrupt/`` first, unless
    ``quarantine`` is False).
    """
    record = store.get(name, version)
    found = tuple(problems) if problems is not None else check_version(store, record)
    if not found:
        return RepairReport(record.ref)
    remaining = {p.path: p for p in found}
    repaired: dict[str, str] = {}
    copies = BackendCopies(store, adapters, options)
    tried: set[tuple[str, str]] = set()
    try:
        for run_id, receipt in store.outbox.receipts_with_runs(record.name, record.version):
            backend = str(receipt.get("backend"))
            held = [remaining[p] for p in receipt.get("uploaded") or () if p in remaining]
            source = (backend, "" if backend in copies.running else run_id)
            if receipt.get("status") != "done" or not held or source in tried:
                continue
            tried.add(source)
            for path in _restore_from(store, record, backend, functools.partial(copies.adapter, backend, run_id), held):
                repaired[path] = backend
                del remaining[path]
    finally:
        copies.close()
    moved = tuple(p.path for p in remaining.values() if quarantine and p.state == "corrupt" and _quarantine(store, p))
    return RepairReport(record.ref, found, repaired, moved)


def _restore_from(store: EmbeddedStore, record: ArtifactVersion, backend: str,
                  open_adapter: Callable[[], BackendAdapter], problems: list[BlobProblem]) -> list[str]:
    """Fetch ``record`` through one backend and put back each bad blob its copy holds; the paths restored."""
    restored: list[str] = []
    with tempfile.TemporaryDirectory(prefix=".repair-", dir=store.root) as folder:
        try:
            open_adapter().fetch(record.name, record.label, Path(folder))
        except Exception as exc:  # one backend failing must not stop the others being asked
            log.warning("Could not re-fetch %s from %s to repair it: %s", record.ref, backend, exc)
            return restored
        for problem in problems:
            copy = Path(folder) / validate_artifact_path(problem.path)
            if not digest.matches(copy, problem.digest):
                log.warning("%s's copy of %s/%s does not match its digest; not used for the repair.",
                            backend, record.ref, problem.path)
                continue
            store.blobs.delete(problem.digest)  # the bad bytes; storing keeps an existing blob as it is
            if _restore_blob(store, copy, problem.digest):
                restored.append(problem.path)
                log.warning("%s: the blob of %r was %s; re-fetched it from %s, checked its digest (%s…) and "
                            "repaired the store.", record.ref, problem.path, problem.state, backend,
                            problem.digest[:19])
    return restored


def _restore_blob(store: EmbeddedStore, copy: Path, key: str) -> bool:
    """Store a checked copy of a blob under its key: by content for a BLAKE3 key; a blob named by SHA-256 (stored
    before BLAKE3) is written under its old name, so the versions naming it read it again."""
    if digest.algorithm_of(key) == digest.BLAKE3:
        return store.blobs.put_file(copy)[0] == key
    with copy.open("rb") as source:
        return store.blobs.put_named(key, source)


def _quarantine(store: EmbeddedStore, problem: BlobProblem) -> bool:
    """Move a corrupt blob to blobs/corrupt/ (so logging its source again stores it anew); True if moved."""
    target = store.blobs.set_aside(problem.digest)  # the local file (an S3 store's cached copy)
    if target is None:
        return False
    log.warning("The blob of %r (%s…) is corrupt and no backend holds a copy; moved it to %s.",
                problem.path, problem.digest[:19], target)
    return True


def fetch_verified(
    store: EmbeddedStore,
    name: str,
    version: str | int,
    dest: str | os.PathLike[str],
    adapters: Mapping[str, BackendAdapter] | None = None,
    *,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[Path]:
    """``store.fetch`` that repairs a missing or corrupt blob from a backend holding a copy, then serves it.

    Raises IntegrityError, naming the bad entries and what to do, when no backend can restore them;
    bad bytes are never written under ``dest``.
    """
    record = store.get(name, version)  # an unknown name or version fails here, before any repair
    try:
        return store.fetch(record.name, record.version, dest, progress=progress)
    except (IntegrityError, ArtifactStoreNotFoundError) as exc:
        log.warning("%s has missing or corrupt content (%s); trying to repair it from a backend.", record.ref, exc)
    report = repair_version(store, record.name, record.version, adapters, options=options)
    if not report.ok:
        raise IntegrityError(unrepaired_message(report))
    return store.fetch(record.name, record.version, dest, progress=progress)


def unrepaired_message(report: RepairReport) -> str:
    """What is wrong with a version no backend could repair, and what the user can do."""
    bad = ", ".join(f"{p.path!r} ({p.state})" for p in report.unrepaired[:5])
    more = f" and {len(report.unrepaired) - 5} more" if len(report.unrepaired) > 5 else ""
    return (f"{report.ref} cannot be served: the stored content of {bad}{more} is lost and no backend that "
            "received this version holds a sound copy. Log the artifact again from its source files (a corrupt "
            "blob was moved to blobs/corrupt/ so it is stored anew), or fetch it from another backend with "
            "`backend=`.")

