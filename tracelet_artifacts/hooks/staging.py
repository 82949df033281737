"""Staging folders under the store root, where producers hard-link (or copy) a file the moment it is written,
so a later delete, eviction or rename-over cannot change what is ingested in the background.

A staged name starts with the owning pid; what a dead process left behind is removed when a producer
opens its staging folder again.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path

from tracelet_artifacts.procs import pid_alive

log = logging.getLogger(__name__)


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
