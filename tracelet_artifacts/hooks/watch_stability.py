"""The watcher's stability tracking: per-file phases and timers. A file is complete when it was closed (or
renamed into place) and two stats agree, or, with no close signal, when it held still for the settle
period; then its format is checked and it is queued for submission. Also the state every part shares.
"""

from __future__ import annotations

import fnmatch
import heapq
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracelet_artifacts.artifact import ArtifactType
from tracelet_artifacts.hooks import capture_logger
from tracelet_artifacts.hooks.bundles import MARKER_DOTFILES
from tracelet_artifacts.hooks.filecheck import Signature, file_signature, format_problem
from tracelet_artifacts.hooks.port import CapturePort

log = capture_logger(__name__)

CLOSE_CHECK_S = 0.05  # after a close-write (or a rename into place): the gap between the two stats
ROOT_RETRY_S = 1.0  # how often a watched folder that does not exist yet is looked for

# phases of a file the watcher is waiting on
WRITING = "writing"    # written to and not closed yet (close-write folders only): wait for the close
CLOSED = "closed"      # closed after writing, or renamed into place: two stats must agree
QUIET = "quiet"        # no close signal: the stat must not change for the settle period
INVALID = "invalid"    # settled but its format check failed (a truncated zip): wait for it to change
CAPTURING = "capturing"


@dataclass(frozen=True)
class CapturedFile:
    """One complete file (or multi-file folder) the watcher handed over: what, where, and the digest taken."""

    path: Path
    name: str
    artifact_type: ArtifactType
    size: int
    sha256: str
    mtime_ns: int
    reason: str  # "closed", "moved", "settled", "sweep" or "folder"


@dataclass
class FileState:
    phase: str
    reason: str
    generation: int = 0
    last: Signature | None = None
    stable_since: float = 0.0
    due: float = 0.0
    warned: bool = False


@dataclass
class Root:
    path: Path
    closes: bool = False      # close-write events arrive for this folder
    mode: str = "waiting"     # "inotify", "native", "polling" or "waiting" (the folder does not exist yet)


@dataclass(order=True)
class Timer:
    due: float
    path: str = field(compare=False)
    generation: int = field(compare=False)


class WatcherCore:
    """The state the watcher's parts share (set up by ``ArtifactWatcher.__init__``) and the calls between them."""

    settle_s: float
    patterns: list[str]
    ignore: list[str]
    experiment: CapturePort | None
    callback: Callable[[CapturedFile], None] | None
    roots: list[Root]
    captured: list[CapturedFile]
    _lock: threading.Condition
    _states: dict[str, FileState]
    _known: dict[str, Any]  # last captured (or, at start, existing) signature per path or folder
    _digests: dict[str, str]
    _timers: list[Timer]
    _excluded: list[str]
    _capturer: ThreadPoolExecutor | None
    _pending: set[Future[Any]]
    _submitted: set[Future[Any]]
    _staging: Path | None
    _running: bool
    _quiet_poll_s: float

    def _root_of(self, path: str) -> Root | None:
        raise NotImplementedError

    def _excluded_path(self, path: str) -> bool:
        raise NotImplementedError

    def _schedule(self, root: Root) -> None:
        raise NotImplementedError

    def _take_stock(self, root: Root, *, new: bool) -> None:
        raise NotImplementedError

    def _walk(self, folder: Path) -> list[str]:
        raise NotImplementedError

    def _queue_capture(self, path: str, signature: Signature, generation: int, reason: str) -> None:
        raise NotImplementedError

    def _set_phase(self, path: str, phase: str, reason: str) -> None:
        raise NotImplementedError

    def _push(self, due: float, path: str, generation: int) -> None:
        raise NotImplementedError

    def _eligible(self, path: str) -> bool:
        raise NotImplementedError


class StabilityTracker(WatcherCore):
    """Phases and timers: decides when a file is complete (the watcher's second part)."""

    def _set_phase(self, path: str, phase: str, reason: str) -> None:
        """(lock held) Enter ``phase`` and schedule the first check: a new event restarts the checks."""
        state = self._states.get(path)
        if state is None:
            state = self._states[path] = FileState(phase, reason)
        state.phase, state.reason, state.last = phase, reason, None
        state.generation += 1
        if phase == WRITING or not self._eligible(path):
            return  # nothing to do until the close-write; an ignored file is only followed (a temp name)
        state.due = time.monotonic() if phase == CLOSED else time.monotonic() + self._quiet_poll_s
        self._push(state.due, path, state.generation)

    def _push(self, due: float, path: str, generation: int) -> None:
        heapq.heappush(self._timers, Timer(due, path, generation))
        self._lock.notify_all()

    def _run_timers(self) -> None:
        next_root_check = time.monotonic() + ROOT_RETRY_S
        while True:
            with self._lock:
                while self._running:
                    now = time.monotonic()
                    wake = min(next_root_check, self._timers[0].due if self._timers else next_root_check)
                    if wake <= now:
                        break
                    self._lock.wait(wake - now)
                if not self._running:
                    return
                due: list[Timer] = []
                while self._timers and self._timers[0].due <= now:
                    due.append(heapq.heappop(self._timers))
            for timer in due:
                try:
                    if timer.generation < 0:
                        self._scan_new_folder(timer.path)
                    else:
                        self._check(timer.path, timer.generation)
                except Exception:
                    log.exception("File watcher: checking %s failed", timer.path)
            if time.monotonic() >= next_root_check:
                next_root_check = time.monotonic() + ROOT_RETRY_S
                self._look_for_missing_roots()

    def _look_for_missing_roots(self) -> None:
        for root in self.roots:
            if root.mode == "waiting" and root.path.is_dir():
                try:
                    self._schedule(root)
                except Exception:
                    log.exception("File watcher: cannot watch %s", root.path)
                    continue
                self._take_stock(root, new=True)  # everything in it appeared after we started
                log.info("File watcher: %s appeared; watching it [%s]", root.path, root.mode)

    def _scan_new_folder(self, folder: str) -> None:
        if self._excluded_path(folder) or self._root_of(folder) is None:
            return
        for path in self._walk(Path(folder)):
            with self._lock:
                if path not in self._states and path not in self._known:
                    self._set_phase(path, QUIET, "settled")

    def _check(self, path: str, generation: int) -> None:
        """One timer: stat the file; when two stats agree (and, without a close, for the settle period),
        check its format and queue the capture."""
        signature = file_signature(path)
        now = time.monotonic()
        with self._lock:
            state = self._states.get(path)
            if state is None or state.generation != generation or state.phase in (WRITING, CAPTURING, INVALID):
                return  # a newer event rescheduled it, or nothing is due
            if signature is None:
                del self._states[path]
                return
            if signature != state.last:
                state.last, state.stable_since = signature, now
                self._push(now + (CLOSE_CHECK_S if state.phase == CLOSED else self._quiet_poll_s), path, generation)
                return
            needed = 0.0 if state.phase == CLOSED else self.settle_s
            if now - state.stable_since < needed:
                self._push(min(now + self._quiet_poll_s, state.stable_since + needed), path, generation)
                return
            if signature[0] == 0 or self._known.get(path) == signature:
                del self._states[path]  # empty, or exactly what was already captured / present at start
                return
            state.phase = CAPTURING
        problem = format_problem(path, signature[0])
        with self._lock:
            if state.generation != generation:
                return
            if problem is not None:
                state.phase = INVALID
                if not state.warned:
                    log.warning("File watcher: %s looks incomplete (%s); waiting for it to change.", path, problem)
                    state.warned = True
                return
        self._queue_capture(path, signature, generation, state.reason)

    def _eligible(self, path: str) -> bool:
        """Whether ``path`` is to be captured: not ignored, and matching the patterns when there are any."""
        root = self._root_of(path)
        if root is None or self._excluded_path(path):
            return False
        relative = Path(path).relative_to(root.path).as_posix()
        parts = relative.split("/")
        if parts[-1] in MARKER_DOTFILES:  # e.g. DCP's .metadata: it completes its folder's version
            return not any(p.startswith(".") for p in parts[:-1])
        if any(p.startswith(".") for p in parts):
            return False

        def matches(pattern: str) -> bool:
            return fnmatch.fnmatch(relative if "/" in pattern else parts[-1], pattern)

        if any(matches(p) for p in self.ignore):
            return False
        return not self.patterns or any(matches(p) for p in self.patterns)
