"""The file-stability watcher: ``ArtifactWatcher`` versions every file that appears or changes under some
folders, once the file is complete (closed, or quiet for a settle period, and two stats agree), and every
multi-file folder (a DCP checkpoint with its ``.metadata``, a Hugging Face model) once the folder is complete.

Three parts, one module each: event intake (``watch_events``: the observer thread only records events),
stability tracking (``watch_stability``: checks on a timer thread) and submission (``watch_submit``:
snapshots and hand-over on a capture thread, so a slow or huge file never holds up the others). This
module starts and stops them and the observers.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from pathlib import Path
from typing import Any

from tracelet_artifacts.errors import ConfigurationError

try:
    import watchdog  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ConfigurationError(
        "The file watcher needs watchdog: pip install 'tracelet-artifacts[watch]'"
    ) from exc
from tracelet_artifacts.hooks import capture_logger
from tracelet_artifacts.hooks.filecheck import file_signature, filesystem_type, is_network_filesystem
from tracelet_artifacts.hooks.inputs import record_inputs
from tracelet_artifacts.hooks.port import CapturePort
from tracelet_artifacts.hooks.rank import is_rank_zero
from tracelet_artifacts.hooks.staging import staging_folder
from tracelet_artifacts.hooks.watch_events import ATTRIB_EVENT, EventIntake, EventSink, event_filter
from tracelet_artifacts.hooks.watch_stability import QUIET, CapturedFile, Root, StabilityTracker
from tracelet_artifacts.hooks.watch_submit import Submission

log = capture_logger(__name__)

__all__ = ["DEFAULT_IGNORE", "STAGING_FOLDER", "ArtifactWatcher", "CapturedFile"]

DEFAULT_IGNORE = ("*.tmp", "*.part", "*.incomplete", "*.lock", "*~", ".*")
DEFAULT_SETTLE_S = 1.0
STAGING_FOLDER = "staging/watcher"  # under the store root


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


class ArtifactWatcher(EventIntake, StabilityTracker, Submission):
    """Watch folders and version every complete file that appears or changes in them.

    A file counts as complete when it was closed after writing (inotify), renamed into place, or left
    unchanged for ``settle_s`` where no close signal exists, and two stats agree on its size and mtime;
    zip-based torch files and safetensors files must also pass a cheap format check. Files already in
    the folders at start are taken as they are (not captured) unless ``include_existing=True``. ``inputs``
    (default: the ``watch_inputs`` setting) names what the outputs are made from, as stored versions
    (``data/train:v3``, ``data/train@prod``) or files the store holds: each is recorded as consumed.

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
        experiment: CapturePort | None = None,
        settle_s: float | None = None,
        *,
        callback: Callable[[CapturedFile], None] | None = None,
        polling: bool | None = None,
        poll_interval_s: float | None = None,
        include_existing: bool = False,
        inputs: Sequence[str | os.PathLike[str]] | None = None,
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
        #: What the captured files are made from (lineage): stored versions or files; recorded at start.
        self.inputs = list(inputs) if inputs is not None else list(getattr(settings, "watch_inputs", []))
        self.roots = self._distinct_roots(dirs)
        self.captured: list[CapturedFile] = []  # everything handed over, oldest first
        self._lock = threading.Condition(threading.RLock())
        self._states: dict[str, Any] = {}
        self._known: dict[str, Any] = {}  # last captured (or, at start, existing) signature per path
        self._digests: dict[str, str] = {}      # last captured digest per path
        self._timers: list[Any] = []
        self._excluded: list[str] = []          # folders whose events are dropped (the store's own)
        self._observers: dict[str, Any] = {}
        self._worker: threading.Thread | None = None
        self._capturer: ThreadPoolExecutor | None = None
        self._pending = set()    # captures queued on the capture thread
        self._submitted = set()  # artifacts the experiment is still logging
        self._staging: Path | None = None
        self._running = False

    def __repr__(self) -> str:
        folders = ", ".join(f"{r.path} ({r.mode})" for r in self.roots)
        return f"ArtifactWatcher([{folders}], settle_s={self.settle_s}, running={self._running})"

    @staticmethod
    def _distinct_roots(dirs: Iterable[str | os.PathLike[str]]) -> list[Root]:
        paths = sorted({Path(os.path.abspath(d)) for d in dirs}, key=lambda p: len(p.parts))
        kept: list[Path] = []
        for path in paths:  # a folder inside another watched folder would report every event twice
            if not any(path == k or k in path.parents for k in kept):
                kept.append(path)
        if not kept:
            raise ConfigurationError("ArtifactWatcher needs at least one folder to watch.")
        return [Root(p) for p in kept]

    def start(self) -> ArtifactWatcher:
        """Take stock of the folders, start the observers and the checking threads (idempotent)."""
        if self._running:
            return self
        if self.experiment is not None:
            settings = self.experiment.settings
            if not is_rank_zero() and not settings.capture_all_ranks:
                log.info("File watcher not started: this is not global rank 0 (capture_all_ranks is off).")
                return self
            store_root = self.experiment.capture_root  # raises a clear error when the experiment is not started
            self._excluded.append(str(store_root))
            self._staging = staging_folder(store_root / STAGING_FOLDER)
            record_inputs(self.experiment, self.inputs)  # an unknown version raises here, before watching
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
        with self._lock:  # once stop returns, every captured file is in the store and its staged copy gone
            self._lock.wait_for(lambda: not self._submitted)
        return list(self.captured)

    def __enter__(self) -> ArtifactWatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _drain(self) -> None:
        with self._lock:
            pending = list(self._pending)
        wait_futures(pending)

    def _schedule(self, root: Root) -> None:
        """Watch ``root`` with inotify (or the platform's observer), or poll it where that cannot work."""
        reason = "polling was asked for" if self.polling else None
        kind = filesystem_type(root.path)
        if reason is None and is_network_filesystem(kind):
            reason = f"it is on a {kind} filesystem, where inotify misses writes made by other machines"
        if reason is None:
            try:
                observer = self._observers.get("native") or _native_observer()
                observer.schedule(EventSink(self), str(root.path), recursive=True, event_filter=event_filter())
                if "native" not in self._observers:
                    observer.start()
                    self._observers["native"] = observer
                root.mode = "inotify" if type(observer).__name__ == "InotifyObserver" else "native"
                root.closes = root.mode == "inotify" and ATTRIB_EVENT is not None
                return
            except Exception as exc:  # ENOSPC / EMFILE (watch limits), no inotify on this platform, ...
                hint = " (raise fs.inotify.max_user_watches / max_user_instances)" \
                    if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EMFILE) else ""
                reason = f"inotify is unavailable ({type(exc).__name__}: {exc}){hint}"
        from watchdog.observers.polling import PollingObserver

        observer = self._observers.get("polling")
        if observer is None:
            observer = PollingObserver(timeout=self.poll_interval_s)
        observer.schedule(EventSink(self), str(root.path), recursive=True)
        if "polling" not in self._observers:
            observer.start()
            self._observers["polling"] = observer
        root.mode, root.closes = "polling", False
        log.log(logging.INFO if self.polling else logging.WARNING,
                "File watcher: polling %s every %.2fs because %s; a file counts as complete after %.2fs "
                "without change.", root.path, self.poll_interval_s, reason, self.settle_s)

    def _take_stock(self, root: Root, *, new: bool) -> None:
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

    def _excluded_path(self, path: str) -> bool:
        return any(path == e or path.startswith(e + os.sep) for e in self._excluded)

    def _root_of(self, path: str) -> Root | None:
        for root in self.roots:
            base = str(root.path)
            if path.startswith(base + os.sep):
                return root
        return None
