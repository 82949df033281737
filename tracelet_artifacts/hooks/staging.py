"""Staging folders under the store root, where producers hard-link (or copy) a file the moment it is written,
so a later delete, eviction or rename-over cannot change what is ingested in the background.

A staged name starts with the owning pid; what a dead process left behind is removed when a producer
opens its staging folder again. A producer that stages a file also *claims* it (by size, mtime, inode and
device), so the file watcher does not catalogue the same write a second time under its own name.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import uuid
from collections import OrderedDict
from pathlib import Path

from tracelet_artifacts.hooks.filecheck import Signature, file_signature
from tracelet_artifacts.procs import pid_alive

log = logging.getLogger(__name__)
MAX_CLAIMS = 10_000
_claims: OrderedDict[Signature, str] = OrderedDict()
_claims_lock = threading.Lock()


def staging_folder(folder: Path) -> Path:
    """A producer's staging folder under the store root, created, and emptied of what dead processes left."""
    folder.mkdir(parents=True, exist_ok=True)
    for leftover in folder.iterdir():
        pid = leftover.name.split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            remove(leftover)
    return folder


def staged_name(source_name: str) -> str:
    """A unique name in a staging folder for a file called ``source_name``, owned by this process."""
    return f"{os.getpid()}-{uuid.uuid4().hex[:12]}-{source_name}"


def remove(path: Path) -> None:
    """Remove a staged file or folder; a failure is logged, never raised."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        log.warning("Could not remove the staged %s", path, exc_info=True)


def claim(path: str | os.PathLike[str], producer: str) -> None:
    """Record that ``producer`` captured this exact file (the most recent claims are kept)."""
    signature = file_signature(os.fspath(path))
    if signature is None:
        return
    with _claims_lock:
        _claims[signature] = producer
        _claims.move_to_end(signature)
        while len(_claims) > MAX_CLAIMS:
            _claims.popitem(last=False)


def claimed_by(signature: Signature) -> str | None:
    """The producer that captured the file with this signature in this process, if any."""
    with _claims_lock:
        return _claims.get(signature)
