"""What a process wrote to a blob folder and has not synced yet, and the marker that lets a later process
find it if this one dies (or the machine goes down) first.

With group-committed durability nothing is fsynced on the writer's path, so after a crash of the machine a
blob written shortly before may be torn: named, but with lost or partial content. Before its first unsynced
write, a process leaves a marker in ``blobs/unsynced/`` (``<host>-<pid>-<token>``, synced once) holding its
*safe point*: every blob whose write started before it has been synced. Each group sync moves the safe point
forward (``store/durability.py``); a clean close removes the marker. A process opening the store later finds
the markers of processes that are gone and checks every blob modified since their safe point
(``store/durability.py``'s ``recover``), so no version is ever recorded over a torn blob.

    journal = WriteJournal(Path(".tracelet/blobs"))
    token = journal.begin()                   # before writing a blob
    journal.written(token, final_path)        # after renaming it into place
    paths, safe_ns = journal.take()           # the syncer: what to sync, and the safe point once it is
    journal.synced(safe_ns)
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from tracelet_artifacts.procs import HOST, pid_alive

FOLDER = "unsynced"
#: Modification times are taken from a coarse clock: a blob written just after a safe point may carry a
#: time slightly before it. Recovery looks this far further back.
CLOCK_SLACK_NS = 2_000_000_000


def boot_id() -> str:
    """This boot of the machine (Linux), so a marker left before a reboot counts as dead whatever its pid."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


BOOT_ID = boot_id()
_PID = [os.getpid()]
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _PID.__setitem__(0, os.getpid()))


def current_pid() -> int:
    """This process's id, without a system call each time (kept right across ``fork``)."""
    return _PID[0]


def fsync_path(path: str | Path, *, folder: bool = False) -> None:
    """fsync a file or a folder by path (a folder that cannot be opened, e.g. on Windows, is skipped)."""
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if folder else 0))
    except OSError:
        if folder:
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not folder:
            raise
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Marker:
    """A marker file left by some process: whose it is and its safe point."""

    path: Path
    host: str
    pid: int
    boot: str
    safe_ns: int

    @property
    def dead(self) -> bool:
        """True when its process is gone: this host, and a dead pid or an earlier boot."""
        return self.host == HOST and (self.boot != BOOT_ID or not pid_alive(self.pid))


def read_markers(blob_root: Path) -> list[Marker]:
    """Every marker under ``blob_root`` (an unreadable or torn one reads as safe point 0: check everything)."""
    folder = blob_root / FOLDER
    found = []
    for path in sorted(folder.glob("*-*-*")) if folder.is_dir() else ():
        if path.name.endswith(".tmp"):
            continue
        host, pid, _ = path.name.rsplit("-", 2)
        try:
            data = json.loads(path.read_text() or "{}")
        except (OSError, ValueError):
            data = {}
        found.append(Marker(path, host, int(pid) if pid.isdigit() else -1, str(data.get("boot", "")),
                            int(data.get("safe_ns", 0))))
    return found


#: Journals whose marker is on disk, kept alive until they remove it, so a process exiting without closing its
#: stores (a store handle dropped before the end) still syncs and removes its markers at exit (durability.py).
MARKED: set[WriteJournal] = set()


class WriteJournal:
    """One store handle's unsynced writes and its marker; safe to share between threads."""

    def __init__(self, blob_root: Path) -> None:
        self.folder = blob_root / FOLDER
        self.marker = self.folder / f"{HOST}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._lock = threading.Lock()
        self._tokens = itertools.count()
        self._inflight: dict[int, int] = {}  # token -> when its write started (ns)
        self._pending: list[str] = []
        self._marked = False

    def begin(self) -> int:
        """A write is about to start; the first one leaves the marker (synced) before any byte is written."""
        with self._lock:
            if not self._marked or self._owner_pid != current_pid():
                self._leave_marker()
            token = next(self._tokens)
            self._inflight[token] = time.time_ns()
            return token

    def written(self, token: int, path: str | None) -> None:
        """The write ``token`` finished: ``path`` (None: nothing new was named) is to be synced."""
        with self._lock:
            self._inflight.pop(token, None)
            if path is not None:
                self._pending.append(path)

    def take(self) -> tuple[list[str], int]:
        """(blobs to sync, the safe point they make true): called as a sync starts."""
        with self._lock:
            paths, self._pending = self._pending, []
            safe = min([time.time_ns(), *self._inflight.values()])
            return paths, safe

    @property
    def owned_here(self) -> bool:
        """Whether it has a marker, and the marker is this process's (not a forked child's copy of its parent's)."""
        return self._marked and self._owner_pid == current_pid()

    @property
    def idle(self) -> bool:
        with self._lock:
            return not self._pending and not self._inflight

    def synced(self, safe_ns: int) -> None:
        """Everything written before ``safe_ns`` is on disk: move the marker's safe point (not synced: an older
        or unreadable marker only makes a recovery check more blobs)."""
        with self._lock:
            if not self._marked:
                return
            temp = self.marker.with_name(self.marker.name + ".tmp")
            with suppress(OSError):
                temp.write_text(json.dumps({"boot": BOOT_ID, "safe_ns": safe_ns}))
                os.replace(temp, self.marker)

    def close(self) -> None:
        """Remove the marker when nothing is left unsynced (a clean stop: nothing to recover)."""
        with self._lock:
            if self._marked and not self._pending and not self._inflight:
                self.marker.unlink(missing_ok=True)
                self._marked = False
                MARKED.discard(self)

    def _leave_marker(self) -> None:
        if self._marked:  # a forked child: its own marker, not the parent's
            self.marker = self.folder / f"{HOST}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
            self._pending.clear()
            self._inflight.clear()
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.marker, "w") as handle:
            handle.write(json.dumps({"boot": BOOT_ID, "safe_ns": time.time_ns()}))
            handle.flush()
            os.fsync(handle.fileno())
        fsync_path(self.folder, folder=True)
        fsync_path(self.folder.parent, folder=True)
        self._marked, self._owner_pid = True, os.getpid()
        MARKED.add(self)

    _owner_pid = -1
