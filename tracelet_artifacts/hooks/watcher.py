"""The file-stability watcher: ``ArtifactWatcher`` versions every file that appears or changes under some
folders, once the file is complete (closed, or quiet for a settle period, and two stats agree).

Events come from watchdog (inotify close-write where available, a polling observer elsewhere); the
observer thread only records them. Stability checks run on a timer thread, snapshots and hand-over on a
capture thread, so a slow or huge file never holds up the events of the others.
"""

from __future__ import annotations

import errno
import fnmatch
import heapq
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracelet_artifacts import detect, digest
from tracelet_artifacts.artifact import ArtifactType, TraceletArtifact
from tracelet_artifacts.errors import ConfigurationError
from tracelet_artifacts.hooks import capture_logger

try:
    from watchdog import events as fs_events
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ConfigurationError(
        "The file watcher needs watchdog: pip install 'tracelet-artifacts[watch]'"
    ) from exc
from tracelet_artifacts.hooks.filecheck import (
    Signature,
    file_signature,
    filesystem_type,
    format_problem,
    is_network_filesystem,
)
from tracelet_artifacts.hooks.naming import artifact_name_for
from tracelet_artifacts.hooks.rank import is_rank_zero
from tracelet_artifacts.hooks.staging import claimed_by, staged_name, staging_folder

if TYPE_CHECKING:
    from tracelet_artifacts.experiment import Experiment

log = capture_logger(__name__)

DEFAULT_IGNORE = ("*.tmp", "*.part", "*.incomplete", "*.lock", "*~", ".*")
DEFAULT_SETTLE_S = 1.0
CLOSE_CHECK_S = 0.05  # after a close-write (or a rename into place): the gap between the two stats
STAGING_FOLDER = "staging/watcher"  # under the store root
_ROOT_RETRY_S = 1.0  # how often a watched folder that does not exist yet is looked for
# watchdog >= 7 reports attribute changes apart from writes; older versions call both "modified"
_ATTRIB_EVENT: type[Any] | None = getattr(fs_events, "FileAttribEvent", None)

# phases of a file the watcher is waiting on
WRITING = "writing"    # written to and not closed yet (close-write folders only): wait for the close
CLOSED = "closed"      # closed after writing, or renamed into place: two stats must agree
QUIET = "quiet"        # no close signal: the stat must not change for the settle period
INVALID = "invalid"    # settled but its format check failed (a truncated zip): wait for it to change
CAPTURING = "capturing"


@dataclass(frozen=True)
class CapturedFile:
    """One complete file the watcher handed over: what it was, where, and the digest of what was taken."""

    path: Path
    name: str
    artifact_type: ArtifactType
    size: int
    sha256: str
    mtime_ns: int
    reason: str  # "closed", "moved", "settled" or "sweep"


@dataclass
class _FileState:
    phase: str
    reason: str
    generation: int = 0
    last: Signature | None = None
    stable_since: float = 0.0
    due: float = 0.0
    warned: bool = False


@dataclass
class _Root:
    path: Path
    closes: bool = False      # close-write events arrive for this folder
    mode: str = "waiting"     # "inotify", "native", "polling" or "waiting" (the folder does not exist yet)


@dataclass(order=True)
class _Timer:
    due: float
    path: str = field(compare=False)
    generation: int = field(compare=False)




def _native_observer() -> Any:
    """The platform's event observer; tests replace this to simulate inotify failing.

    On Linux, inotify with "full" events: a file renamed in from outside the watched folders (fsspec and
    Lightning write to a temp file, then move it into place) arrives as a move, not as a bare creation.
    """
    from watchdog.observers import Observer

    try:
        from watchdog.observers.inotify import InotifyObserver
    except ImportError:  # not Linux
        return Observer()
    return InotifyObserver(generate_full_events=True)


class ArtifactWatcher:
    """Watch folders and version every complete file that appears or changes in them.

    A file counts as complete when it was closed after writing (inotify), renamed into place, or left
    unchanged for ``settle_s`` where no close signal exists, and two stats agree on its size and mtime;
    zip-based torch files and safetensors files must also pass a cheap format check. Files already in
    the folders at start are taken as they are (not captured) unless ``include_existing=True``.

    Example::

        with Experiment("run-1") as exp, ArtifactWatcher(["outputs"], patterns=["*.pt", "*.png"], experiment=exp):
            train()          # every checkpoint / image written under outputs/ is versioned once complete

        ArtifactWatcher(["outputs"], callback=print).start()   # just the events, nothing stored
    """

    def __init__(
        self,
        dirs: Iterable[str | os.PathLike[str]],
        patterns: Sequence[str] | None = None,
        ignore: Sequence[str] = (),
        experiment: Experiment | None = None,
        settle_s: float | None = None,
        *,
        callback: Callable[[CapturedFile], None] | None = None,
        polling: bool | None = None,
        poll_interval_s: float | None = None,
        include_existing: bool = False,
    ) -> None:
        if experiment is None and callback is None:
            raise ConfigurationError("ArtifactWatcher needs an experiment to log into or a callback to call.")
        settings = experiment.settings if experiment is not None else None
        if settle_s is None:
            settle_s = getattr(settings, "watch_settle_s", DEFAULT_SETTLE_S)
        if settle_s <= 0:
            raise ConfigurationError(f"settle_s must be positive, not {settle_s}.")
        self.settle_s = float(settle_s)
        self.poll_interval_s = poll_interval_s or min(1.0, self.settle_s / 2)
        self._quiet_poll_s = min(0.25, self.settle_s / 4)
        self.polling = bool(polling if polling is not None else getattr(settings, "watch_polling", False))
        self.patterns = list(patterns) if patterns is not None else list(getattr(settings, "capture_include", []))
        self.ignore = [*DEFAULT_IGNORE, *ignore, *getattr(settings, "capture_exclude", [])]
        self.experiment = experiment
        self.callback = callback
        self.include_existing = include_existing
        self.roots = self._distinct_roots(dirs)
        self.captured: list[CapturedFile] = []  # everything handed over, oldest first
        self._lock = threading.Condition(threading.RLock())
        self._states: dict[str, _FileState] = {}
        self._known: dict[str, Signature] = {}  # last captured (or, at start, existing) signature per path
        self._digests: dict[str, str] = {}      # last captured digest per path
        self._timers: list[_Timer] = []
        self._excluded: list[str] = []          # folders whose events are dropped (the store's own)
        self._observers: dict[str, Any] = {}
        self._worker: threading.Thread | None = None
        self._capturer: ThreadPoolExecutor | None = None
        self._pending: set[Future[Any]] = set()    # captures queued on the capture thread
        self._submitted: set[Future[Any]] = set()  # artifacts the experiment is still logging
        self._staging: Path | None = None
        self._running = False

    def __repr__(self) -> str:
        folders = ", ".join(f"{r.path} ({r.mode})" for r in self.roots)
        return f"ArtifactWatcher([{folders}], settle_s={self.settle_s}, running={self._running})"

    @staticmethod
    def _distinct_roots(dirs: Iterable[str | os.PathLike[str]]) -> list[_Root]:
        paths = sorted({Path(os.path.abspath(d)) for d in dirs}, key=lambda p: len(p.parts))
        kept: list[Path] = []
        for path in paths:  # a folder inside another watched folder would report every event twice
            if not any(path == k or k in path.parents for k in kept):
                kept.append(path)
        if not kept:
            raise ConfigurationError("ArtifactWatcher needs at least one folder to watch.")
        return [_Root(p) for p in kept]

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> ArtifactWatcher:
        """Take stock of the folders, start the observers and the checking threads (idempotent)."""
        if self._running:
            return self
        if self.experiment is not None:
            settings = self.experiment.settings
            if not is_rank_zero() and not settings.capture_all_ranks:
                log.info("File watcher not started: this is not global rank 0 (capture_all_ranks is off).")
                return self
            store = self.experiment.store  # raises a clear error when the experiment is not started
            self._excluded.append(str(store.root))
            self._staging = staging_folder(store.root / STAGING_FOLDER)
        for root in self.roots:
            if root.path.exists() and not root.path.is_dir():
                raise ConfigurationError(f"Cannot watch {str(root.path)!r}: it is a file, not a folder.")
        self._running = True
        self._capturer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tracelet-watch-capture")
        self._worker = threading.Thread(target=self._run_timers, name="tracelet-watch", daemon=True)
        try:
            for root in self.roots:
                if root.path.is_dir():
                    self._take_stock(root, new=self.include_existing)
                    self._schedule(root)
        except BaseException:
            self.stop(sweep=False)  # no observer left running behind a failed start
            raise
        self._worker.start()
        log.info("Watching %s for complete files (settle %.2fs)", ", ".join(f"{r.path} [{r.mode}]" for r in self.roots),
                 self.settle_s)
        return self

    def stop(self, sweep: bool = True) -> list[CapturedFile]:
        """Stop watching, sweep the folders once more (files written just before stop) and wait until every
        captured file is logged; return every file captured. A file still changing at the end of the sweep
        is named in a warning, not captured half-written.
        """
        if not self._running:
            return list(self.captured)
        with self._lock:
            self._running = False  # events from here on are left to the sweep
            self._lock.notify_all()
        if self._worker is not None and self._worker.is_alive():
            self._worker.join(timeout=30)
        for observer in self._observers.values():
            observer.stop()
        for observer in self._observers.values():
            observer.join(timeout=10)
        self._observers.clear()
        self._drain()
        if sweep:
            try:
                self._final_sweep()
            except Exception:
                log.exception("The file watcher's final sweep failed")
        self._drain()
        assert self._capturer is not None
        self._capturer.shutdown(wait=True)
        with self._lock:
            submitted = list(self._submitted)
        wait_futures(submitted)  # so that, once stop returns, every captured file is in the store
        return list(self.captured)

    def __enter__(self) -> ArtifactWatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _drain(self) -> None:
        with self._lock:
            pending = list(self._pending)
        wait_futures(pending)

    # -- observers --------------------------------------------------------------------------------
    def _schedule(self, root: _Root) -> None:
        """Watch ``root`` with inotify (or the platform's observer), or poll it where that cannot work."""
        reason = "polling was asked for" if self.polling else None
        kind = filesystem_type(root.path)
        if reason is None and is_network_filesystem(kind):
            reason = f"it is on a {kind} filesystem, where inotify misses writes made by other machines"
        if reason is None:
            try:
                observer = self._observers.get("native") or _native_observer()
                observer.schedule(_EventSink(self), str(root.path), recursive=True, event_filter=_event_filter())
                if "native" not in self._observers:
                    observer.start()
                    self._observers["native"] = observer
                root.mode = "inotify" if type(observer).__name__ == "InotifyObserver" else "native"
                root.closes = root.mode == "inotify" and _ATTRIB_EVENT is not None
                return
            except Exception as exc:  # ENOSPC / EMFILE (watch limits), no inotify on this platform, ...
                hint = " (raise fs.inotify.max_user_watches / max_user_instances)" \
                    if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EMFILE) else ""
                reason = f"inotify is unavailable ({type(exc).__name__}: {exc}){hint}"
        from watchdog.observers.polling import PollingObserver

        observer = self._observers.get("polling")
        if observer is None:
            observer = PollingObserver(timeout=self.poll_interval_s)
        observer.schedule(_EventSink(self), str(root.path), recursive=True)
        if "polling" not in self._observers:
            observer.start()
            self._observers["polling"] = observer
        root.mode, root.closes = "polling", False
        log.log(logging.INFO if self.polling else logging.WARNING,
                "File watcher: polling %s every %.2fs because %s; a file counts as complete after %.2fs "
                "without change.", root.path, self.poll_interval_s, reason, self.settle_s)

    def _take_stock(self, root: _Root, *, new: bool) -> None:
        """Record the files already under ``root``: as known (new=False) or as candidates to capture."""
        for path in self._walk(root.path):
            signature = file_signature(path)
            if signature is None:
                continue
            if new:
                with self._lock:
                    self._set_phase(path, QUIET, "settled")
            else:
                self._known[path] = signature

    def _walk(self, folder: Path) -> list[str]:
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(folder):
            if self._excluded_path(dirpath):
                dirnames.clear()
                continue
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            found.extend(os.path.join(dirpath, f) for f in filenames)
        return found

    # -- events (observer threads: bookkeeping only, never I/O) ---------------------------------
    def _excluded_path(self, path: str) -> bool:
        return any(path == e or path.startswith(e + os.sep) for e in self._excluded)

    def _root_of(self, path: str) -> _Root | None:
        for root in self.roots:
            base = str(root.path)
            if path.startswith(base + os.sep):
                return root
        return None

    def _on_event(self, event: Any) -> None:
        kind = event.event_type
        src = os.fsdecode(event.src_path)
        dest = os.fsdecode(getattr(event, "dest_path", "") or "")
        with self._lock:
            if not self._running:
                return
            if event.is_directory:
                if kind == "deleted" or (kind == "moved" and src and not dest):  # gone from the folders
                    for path in [p for p in self._states if p.startswith(src + os.sep)]:
                        del self._states[path]
                arrived = src if kind == "created" else dest if kind == "moved" else ""
                if arrived:
                    self._push(time.monotonic(), arrived, -1)  # scan it: its files may predate its watch
                return
            if kind == "moved":
                self._on_moved(src, dest)
                return
            if self._excluded_path(src) or (root := self._root_of(src)) is None:
                return
            state = self._states.get(src)
            if kind == "deleted":
                self._states.pop(src, None)
                self._known.pop(src, None)
                self._digests.pop(src, None)
            elif kind == "closed":
                self._set_phase(src, CLOSED, "closed")
            elif kind == "modified":
                self._set_phase(src, WRITING if root.closes else QUIET, "closed" if root.closes else "settled")
            elif kind == "created":
                if state is None or state.phase != WRITING:
                    self._set_phase(src, QUIET, "settled")
            elif kind == "attrib" and state is not None and state.phase not in (WRITING, CAPTURING):
                self._set_phase(src, state.phase, state.reason)  # e.g. copystat after a copy: stat again

    def _on_moved(self, src: str, dest: str) -> None:
        state = self._states.pop(src, None)
        self._known.pop(src, None)
        self._digests.pop(src, None)
        if not dest or self._excluded_path(dest) or (root := self._root_of(dest)) is None:
            return
        if state is not None and state.phase == WRITING:
            self._set_phase(dest, WRITING, "closed")  # renamed while still open: its close will come
        elif root.closes:
            self._set_phase(dest, CLOSED, "moved")     # the atomic-write pattern: complete on arrival
        else:
            self._set_phase(dest, QUIET, "settled")

    def _set_phase(self, path: str, phase: str, reason: str) -> None:
        """(lock held) Enter ``phase`` and schedule the first check: a new event restarts the checks."""
        state = self._states.get(path)
        if state is None:
            state = self._states[path] = _FileState(phase, reason)
        state.phase, state.reason, state.last = phase, reason, None
        state.generation += 1
        if phase == WRITING or not self._eligible(path):
            return  # nothing to do until the close-write; an ignored file is only followed (a temp name)
        state.due = time.monotonic() if phase == CLOSED else time.monotonic() + self._quiet_poll_s
        self._push(state.due, path, state.generation)

    def _push(self, due: float, path: str, generation: int) -> None:
        heapq.heappush(self._timers, _Timer(due, path, generation))
        self._lock.notify_all()

    # -- stability checks (timer thread) --------------------------------------------------------
    def _run_timers(self) -> None:
        next_root_check = time.monotonic() + _ROOT_RETRY_S
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
                due: list[_Timer] = []
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
                next_root_check = time.monotonic() + _ROOT_RETRY_S
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
        if any(p.startswith(".") for p in parts):
            return False

        def matches(pattern: str) -> bool:
            return fnmatch.fnmatch(relative if "/" in pattern else parts[-1], pattern)

        if any(matches(p) for p in self.ignore):
            return False
        return not self.patterns or any(matches(p) for p in self.patterns)

    # -- capture (capture thread; the final sweep calls it directly) ------------------------------
    def _queue_capture(self, path: str, signature: Signature, generation: int, reason: str) -> None:
        assert self._capturer is not None
        with self._lock:
            future = self._capturer.submit(self._capture, path, signature, generation, reason)
            self._pending.add(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)
        if not future.cancelled() and future.exception() is not None:
            log.error("File watcher: capturing a file failed", exc_info=future.exception())

    def _capture(self, path: str, signature: Signature, generation: int, reason: str) -> CapturedFile | None:
        """Snapshot the file (copy into the store folder, or hash in place), verify it did not change
        meanwhile, and hand it over; a file that changed goes back to waiting. A file another producer
        (the Lightning callback, the torch.save capture) already captured is left to it."""
        owner = claimed_by(signature)
        if owner is not None:
            log.debug("File watcher: %s was captured by the %s producer; not catalogued again", path, owner)
            with self._lock:
                state = self._states.get(path)
                if state is not None and state.generation == generation:
                    del self._states[path]
                self._known[path] = signature
            return None
        staged = self._staging / staged_name(Path(path).name) \
            if self._staging is not None else None
        try:
            if staged is not None:
                with open(path, "rb") as source, open(staged, "wb") as target:
                    sha, size = digest.copy_and_hash(source, target)
            else:
                sha, size = digest.sha256_file(path), signature[0]
        except OSError as exc:
            log.info("File watcher: %s vanished or became unreadable before capture (%s)", path, exc)
            self._unstage(staged)
            self._settle_again(path, generation)
            return None
        if file_signature(path) != signature or size != signature[0]:
            log.debug("File watcher: %s changed while being captured; waiting for it to settle again", path)
            self._unstage(staged)
            self._settle_again(path, generation)
            return None
        with self._lock:
            state = self._states.get(path)
            if state is not None and state.generation == generation:
                del self._states[path]
            self._known[path] = signature
            if self._digests.get(path) == sha:  # same content as last time (e.g. touched): nothing new
                self._unstage(staged)
                return None
            self._digests[path] = sha
        captured = CapturedFile(Path(path), artifact_name_for(path, Path(path).name),
                                detect.artifact_type_for(path), size, sha, signature[1], reason)
        self._hand_over(captured, staged)
        return captured

    def _settle_again(self, path: str, generation: int) -> None:
        with self._lock:
            state = self._states.get(path)
            if state is not None and state.generation == generation and self._running:
                self._set_phase(path, QUIET, "settled")
            elif state is not None and state.generation == generation:
                del self._states[path]

    @staticmethod
    def _unstage(staged: Path | None) -> None:
        if staged is not None:
            try:
                staged.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("File watcher: could not remove its staged copy %s (%s)", staged, exc)

    def _logged(self, future: Future[Any], staged: Path) -> None:
        with self._lock:
            self._submitted.discard(future)
        self._unstage(staged)

    def _hand_over(self, captured: CapturedFile, staged: Path | None) -> None:
        with self._lock:
            self.captured.append(captured)
        log.info("File watcher: captured %s as %s (%s, %d bytes, %s)", captured.path, captured.name,
                 captured.artifact_type.value, captured.size, captured.reason)
        if self.experiment is not None and staged is not None:
            artifact = TraceletArtifact(
                captured.name, captured.artifact_type,
                description=f"Captured by the file watcher from {captured.path}",
                metadata={"source_path": str(captured.path), "captured_by": "watcher", "reason": captured.reason},
            ).add_file(staged, captured.path.name)
            try:
                future = self.experiment.submit_artifact(artifact)
            except Exception:
                self._unstage(staged)
                log.exception("File watcher: handing %s to the experiment failed", captured.path)
            else:
                with self._lock:
                    self._submitted.add(future)
                future.add_done_callback(lambda f: self._logged(f, staged))
        if self.callback is not None:
            try:
                self.callback(captured)
            except Exception:
                log.exception("File watcher: the callback failed for %s", captured.path)

    # -- final sweep ------------------------------------------------------------------------------
    def _final_sweep(self) -> None:
        """Capture what changed since it was last seen complete, once it holds still (bounded wait)."""
        candidates: dict[str, str] = {}  # path -> reason
        with self._lock:
            for path, state in self._states.items():
                candidates[path] = state.reason if state.phase in (CLOSED, INVALID) else "sweep"
        for root in self.roots:
            if root.path.is_dir():
                for path in self._walk(root.path):
                    signature = file_signature(path)
                    if signature is not None and signature[0] > 0 and self._known.get(path) != signature:
                        candidates.setdefault(path, "sweep")
        todo = {p: r for p, r in candidates.items() if self._eligible(p)}
        seen: dict[str, tuple[Signature, float]] = {}
        deadline = time.monotonic() + self.settle_s + 1.0
        while todo:
            now = time.monotonic()
            for path in sorted(todo):
                signature = file_signature(path)
                if signature is None or signature[0] == 0 or self._known.get(path) == signature:
                    del todo[path]
                    continue
                last = seen.get(path)
                if last is None or last[0] != signature:
                    seen[path] = (signature, now)
                    continue
                closed = todo[path] in ("closed", "moved")
                quiet_for = max(now - last[1], time.time() - signature[1] / 1e9)
                if not closed and quiet_for < self.settle_s:
                    continue
                problem = format_problem(path, signature[0])
                if problem is not None:
                    log.warning("File watcher: not capturing %s at stop: it looks incomplete (%s).", path, problem)
                elif self._capture(path, signature, -1, todo[path]) is None and self._known.get(path) != signature:
                    log.warning("File watcher: not capturing %s at stop: it changed while being copied.", path)
                del todo[path]
            if not todo:
                break
            if time.monotonic() >= deadline:
                for path in todo:
                    log.warning("File watcher: not capturing %s at stop: it was still changing.", path)
                break
            time.sleep(CLOSE_CHECK_S)


def _event_filter() -> list[type[Any]]:
    wanted: list[type[Any]] = [
        fs_events.FileCreatedEvent, fs_events.FileModifiedEvent, fs_events.FileMovedEvent,
        fs_events.FileDeletedEvent, fs_events.FileClosedEvent, fs_events.DirCreatedEvent,
        fs_events.DirMovedEvent, fs_events.DirDeletedEvent,
    ]
    return wanted + ([_ATTRIB_EVENT] if _ATTRIB_EVENT is not None else [])


class _EventSink(fs_events.FileSystemEventHandler):
    """What the observers call: forwards each event to the watcher's bookkeeping (never blocks on I/O)."""

    def __init__(self, watcher: ArtifactWatcher) -> None:
        self.watcher = watcher

    def dispatch(self, event: fs_events.FileSystemEvent) -> None:
        try:
            self.watcher._on_event(event)
        except Exception:
            log.exception("File watcher: handling %r failed", event)
