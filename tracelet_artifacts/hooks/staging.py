"""Staging folders under the store root, where producers hard-link (or copy) a file the moment it is written,
so a later delete, eviction or rename-over cannot change what is ingested in the background.

``stage`` is the one way every producer (Lightning, Hugging Face, ``torch.save``, the watcher) takes a file
or a folder. A staged name starts with the owning pid; what a dead process left behind is removed when a
producer opens its staging folder again. A producer that stages a file also *claims* it (by its
``file_signature``), so the file watcher does not catalogue the same write a second time under its own name.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tracelet_artifacts import digest
from tracelet_artifacts.hooks import capture_logger
from tracelet_artifacts.hooks.filecheck import Signature, file_signature
from tracelet_artifacts.procs import pid_alive

log = capture_logger(__name__)
MAX_CLAIMS = 10_000
_claims: OrderedDict[Signature, str] = OrderedDict()
_claims_lock = threading.Lock()


@dataclass(frozen=True)
class Staged:
    """A private snapshot of a file or folder: where it is, whether bytes were copied, the digest if known."""

    path: Path
    copied: bool = False
    sha256: str | None = None  # known when a single file was copied (hashed while copying)


class SourceChangedError(OSError):
    """The path no longer names the file that was written (replaced while it was being staged)."""


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
    return f"{os.getpid()}-{uuid.uuid4().hex[:12]}-{source_name[-80:]}"


def stage(
    source: str | os.PathLike[str],
    folder: Path,
    *,
    producer: str | None,
    link: bool = True,
    copy_allowed: bool = True,
    inode: tuple[int, int] | None = None,
    files: Iterable[Path] | None = None,
) -> Staged | None:
    """Snapshot ``source`` (a file, or a folder tree) into ``folder`` under a name of its own.

    ``link=True`` hard-links each file (one system call, nothing copied) and copies where linking is
    impossible, unless ``copy_allowed`` is False (then None is returned). ``link=False`` copies and hashes
    a file in one pass (for writers that may rewrite a file in place). ``inode`` (device, inode) refuses a
    path that no longer names the file written (SourceChangedError). A ``producer`` claims each file. Of a
    folder, the ``files`` given (inside it) are taken, by default all of them.
    """
    path = Path(source)
    target = folder / staged_name(path.name)
    if path.is_dir():
        chosen = list(files) if files is not None else [p for p in path.rglob("*") if p.is_file()]
        copied = False
        for file in chosen:
            inner = target / file.relative_to(path)
            inner.parent.mkdir(parents=True, exist_ok=True)
            copied = _link_or_copy(os.fspath(file), os.fspath(inner)) or copied
            if producer is not None:
                claim(file, producer)
        target.mkdir(parents=True, exist_ok=True)
        return Staged(target, copied=copied)
    if not link:
        with open(path, "rb") as src, open(target, "wb") as dst:
            sha, _ = digest.copy_and_hash(src, dst)
        return Staged(target, copied=True, sha256=sha)
    try:
        os.link(path, target)
        copied_file = False
    except OSError as exc:
        if not copy_allowed:
            log.debug("Staging %s: hard-linking failed (%s); it is copied once complete", path, exc)
            return None
        log.debug("Staging %s: hard-linking failed (%s); copying it", path, exc)
        shutil.copyfile(path, target)
        copied_file = True
    if inode is not None and not copied_file:
        linked = os.stat(target)
        if (linked.st_dev, linked.st_ino) != inode:
            remove(target)
            raise SourceChangedError(f"{path} is no longer the file that was written")
    if producer is not None:
        claim(path, producer)
    return Staged(target, copied=copied_file)


def _link_or_copy(src: str, dst: str) -> bool:
    """Hard-link ``src`` at ``dst``, or copy it; True when it was copied."""
    try:
        os.link(src, dst)
        return False
    except OSError:
        shutil.copy2(src, dst)
        return True


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
