"""The ``torch.save`` capture: every model, state dict or checkpoint a script saves to a file (or a folder
through ``torch.distributed.checkpoint.save`` or ``Fabric.save``) is versioned in an Experiment, with no
change to the script and no hashing or copying on the script's thread.

How it works, in short (docs/hooks/torch_save.md has the whole story): the original save runs first and
its result or exception is the caller's, untouched; the file is then hard-linked into the store folder
(``stage``) and handed to the experiment's ``submit_artifact``. A re-save of a path whose previous capture
is still being ingested waits for it (the original truncates the inode in place). File objects are
captured once closed. Captures happen on global rank 0 only unless ``all_ranks``; files inside the store,
in-memory buffers and temp files a framework is about to move are never captured. ``torch_patch`` holds
the wrappers themselves; this module the captures that receive what they see.
"""

from __future__ import annotations

import fnmatch
import os
import stat
import threading
import time
import weakref
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tracelet_artifacts.artifact import ArtifactType, TraceletArtifact
from tracelet_artifacts.errors import TraceletError
from tracelet_artifacts.hooks import bundles, capture_logger, torch_patch
from tracelet_artifacts.hooks.naming import artifact_name_for
from tracelet_artifacts.hooks.port import CapturePort
from tracelet_artifacts.hooks.rank import global_rank
from tracelet_artifacts.hooks.staging import remove, stage, staging_folder
from tracelet_artifacts.hooks.torch_patch import SaveJob, classify, inside, suppressed

log = capture_logger(__name__)

__all__ = ["CaptureStats", "TorchSaveCapture", "capture_torch_save", "classify", "disable", "enable",
           "is_enabled", "report_saved", "suppressed"]

STAGING_FOLDER = "staging/torch_save"  # under the store root: hard links need the same filesystem
DEFAULT_WAIT_LIMIT_S = 600.0
CLOSE_POLL_S = 0.05


# -- public switches --------------------------------------------------------------------------------
def capture_torch_save(
    experiment: CapturePort,
    include: Iterable[str] | None = None,
    exclude: Iterable[str] | None = None,
    *,
    all_ranks: bool | None = None,
    wait_limit_s: float = DEFAULT_WAIT_LIMIT_S,
) -> TorchSaveCapture:
    """A capture of every ``torch.save`` into ``experiment``; enabled by ``with`` (or ``.enable()``).

    ``include``/``exclude`` (globs) and ``all_ranks`` default to the experiment's settings
    (``capture_include``, ``capture_exclude``, ``capture_all_ranks``).

    Example::

        with Experiment("run-1") as exp, capture_torch_save(exp):
            torch.save(model.state_dict(), "out/weights.pt")   # -> artifact "out/weights.pt", WEIGHTS
    """
    return TorchSaveCapture(experiment, include, exclude, all_ranks=all_ranks, wait_limit_s=wait_limit_s)


def enable(
    experiment: CapturePort,
    include: Iterable[str] | None = None,
    exclude: Iterable[str] | None = None,
    *,
    all_ranks: bool | None = None,
    wait_limit_s: float = DEFAULT_WAIT_LIMIT_S,
) -> TorchSaveCapture:
    """Start capturing ``torch.save`` into ``experiment``; ``.disable()`` on the result stops it."""
    return capture_torch_save(experiment, include, exclude, all_ranks=all_ranks,
                              wait_limit_s=wait_limit_s).enable()


def disable() -> None:
    """Stop every capture and put the original ``torch.save`` back."""
    with torch_patch.lock:
        captures = list(torch_patch.active)
    for capture in reversed(captures):
        if isinstance(capture, TorchSaveCapture):
            capture.disable()


def is_enabled() -> bool:
    """True while at least one capture is on (``torch.save`` is wrapped)."""
    with torch_patch.lock:
        return bool(torch_patch.active)


def report_saved(saved: Any, path: str | os.PathLike[str], *, captured_by: str = "torch.save") -> None:
    """Capture a file or folder another writer put at ``path``, as ``torch.save``'s own saves are.

    Call it after the writer returned (every rank finished, for a collective save); it never raises.
    """
    torch_patch.report(saved, path, captured_by)


# -- the capture ------------------------------------------------------------------------------------
@dataclass
class CaptureStats:
    """What a capture did so far (a snapshot; see ``TorchSaveCapture.stats``)."""

    captured: int = 0  # saves handed to the experiment
    stored: int = 0  # of those, logged in the store
    failed: int = 0  # our own failures (each logged); the user's save was never affected
    skipped: int = 0  # saves not captured: filtered out, not rank 0, not a regular file, the store's own
    copies: int = 0  # staged by copying because hard-linking was impossible
    waits: int = 0  # re-saves that waited for the previous capture of their file to be stored
    wait_s: float = 0.0  # total time spent in those waits


@dataclass(frozen=True)
class CapturedFile:
    """One capture that reached the store: the file, the artifact it became and its version."""

    path: str
    name: str
    artifact_type: ArtifactType
    version: int


class TorchSaveCapture:
    """Versions every file ``torch.save`` writes (while enabled) in ``experiment``; see the module docstring.

    Example::

        capture = TorchSaveCapture(exp, include=["*.pt"]).enable()
        torch.save(model, "models/net.pt")        # artifact "models/net.pt", type MODEL
        capture.flush()                           # wait until it is in the store (optional)
        capture.disable()
    """

    def __init__(
        self,
        experiment: CapturePort,
        include: Iterable[str] | None = None,
        exclude: Iterable[str] | None = None,
        *,
        all_ranks: bool | None = None,
        wait_limit_s: float = DEFAULT_WAIT_LIMIT_S,
    ) -> None:
        settings = experiment.settings
        self.experiment = experiment
        self.include = list(settings.capture_include if include is None else include)
        self.exclude = list(settings.capture_exclude if exclude is None else exclude)
        self.all_ranks = settings.capture_all_ranks if all_ranks is None else all_ranks
        self.wait_limit_s = wait_limit_s
        self.captured: list[CapturedFile] = []
        self._stats = CaptureStats()
        self._lock = threading.Lock()
        self._pending: dict[str, threading.Event] = {}  # real path -> set once its latest capture is done
        self._in_flight = 0  # captures handed over (or about to be) and not done yet
        self._idle = threading.Condition(self._lock)
        self._open: list[tuple[SaveJob, Path | None]] = []  # file objects not closed yet, with their staged link
        self._wake = threading.Event()
        self._watcher: threading.Thread | None = None
        self._staging = Path()
        self._store_root = ""
        self.enabled = False

    def __repr__(self) -> str:
        return f"TorchSaveCapture({self.experiment.name!r}, enabled={self.enabled}, {self.stats})"

    @property
    def stats(self) -> CaptureStats:
        with self._lock:
            return CaptureStats(**vars(self._stats))

    # -- lifecycle --------------------------------------------------------------------------------
    def enable(self) -> TorchSaveCapture:
        """Start capturing (the experiment must be started); returns self."""
        if self.enabled:
            return self
        if not self.experiment.capturing:
            raise TraceletError(f"Start experiment {self.experiment.name!r} before capturing torch.save "
                                "(on global rank 0, or with capture_all_ranks).")
        root = self.experiment.capture_root
        self._store_root = os.path.realpath(root)
        self._staging = staging_folder(root / STAGING_FOLDER)
        with torch_patch.lock:
            torch_patch.install()
            torch_patch.active.append(self)
            self.enabled = True
        return self

    def disable(self) -> None:
        """Stop capturing; the last capture off puts the original ``torch.save`` back. Idempotent."""
        with torch_patch.lock:
            if not self.enabled:
                return
            self.enabled = False
            if self in torch_patch.active:
                torch_patch.active.remove(self)
            if not torch_patch.active:
                torch_patch.uninstall()
        self._wake.set()
        watcher = self._watcher
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join(timeout=5.0)
        self._hand_over_closed_files(final=True)

    def __enter__(self) -> TorchSaveCapture:
        return self.enable()

    def __exit__(self, *exc: object) -> None:
        self.disable()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every capture so far is stored (or failed); True when nothing is left pending.

        File objects still open are waited for too (they are captured when closed).
        """
        with self._idle:
            return self._idle.wait_for(lambda: not self._open and not self._in_flight, timeout)

    # -- before and after the original save -------------------------------------------------------
    def _accepts(self, path: str) -> bool:
        if not self.enabled or inside(os.path.realpath(path), self._store_root):
            return False
        if not self.experiment.capturing:
            return self._skip(path, "the experiment is stopped")
        relative = os.path.relpath(path).replace(os.sep, "/")
        names = (relative, path.replace(os.sep, "/"), os.path.basename(path))
        if self.include and not any(fnmatch.fnmatch(n, p) for n in names for p in self.include):
            return self._skip(path, "not matched by capture_include")
        if any(fnmatch.fnmatch(n, p) for n in names for p in self.exclude):
            return self._skip(path, "matched by capture_exclude")
        return True

    def _skip(self, path: str, why: str) -> bool:
        with self._lock:
            self._stats.skipped += 1
        log.debug("torch.save capture: %s skipped (%s)", path, why)
        return False

    def _prepare(self, saved: Any, path: str, file: Any, inode: tuple[int, int] | None, *,
                 wait: bool = True) -> SaveJob | None:
        if not self.all_ranks and _rank() != 0:
            self._skip(path, "not global rank 0")
            return None
        if not os.path.isdir(path) and bundles.bundle_for(path) is not None:
            self._skip(path, "a file of a multi-file checkpoint (the folder is captured whole)")
            return None
        key = os.path.realpath(path)
        if file is None and wait:
            self._wait_for_previous(key)
        return SaveJob(self, path, key, saved, weakref.ref(file, self._on_collected) if file is not None else None,
                    inode)

    def _wait_for_previous(self, key: str) -> None:
        """Let the previous capture of this file finish: the original ``torch.save`` truncates its inode."""
        with self._lock:
            previous = self._pending.get(key)
        if previous is None or previous.is_set():
            return
        if threading.current_thread().name.startswith("tracelet-"):  # e.g. the ingest thread: it would wait for itself
            log.warning("torch.save capture: %s is saved again from %s while its previous capture is pending; not "
                        "waiting (that version may hold the new bytes).", key, threading.current_thread().name)
            return
        started = time.perf_counter()
        done = previous.wait(self.wait_limit_s)
        waited = time.perf_counter() - started
        with self._lock:
            self._stats.waits += 1
            self._stats.wait_s += waited
        if not done:
            log.warning("torch.save capture: the previous capture of %s is still not stored after %.0f s; saving "
                        "over it anyway (that version may hold the new bytes).", key, waited)
        else:
            log.debug("torch.save capture: waited %.3f s for the previous capture of %s", waited, key)

    def _finish(self, job: SaveJob) -> None:
        """After the original returned: stage the file and hand it over (file objects: once closed)."""
        staged: Path | None = None
        try:
            job.describe((job.metadata or {}).get("captured_by", "torch.save"))
            if job.file is None:
                info = os.stat(job.path)
                if stat.S_ISDIR(info.st_mode):
                    problem = bundles.problem(Path(job.path))
                    if problem is not None:
                        self._skip(job.path, f"an incomplete folder: {problem}")
                        return
                    job.artifact_type = bundles.TYPES.get(bundles.kind_of(Path(job.path)) or "", job.artifact_type)
                elif not stat.S_ISREG(info.st_mode):
                    self._skip(job.path, "not a regular file")
                    return
                staged = self._stage(job.path, copy_allowed=True)
                assert staged is not None
                self._submit(job, staged)
                return
            staged = self._stage(job.path, copy_allowed=False, inode=job.inode)
            with self._lock:
                if any(j.file is not None and j.file() is job.file() for j, _ in self._open):
                    if staged is not None:
                        remove(staged)
                    return  # another save into the same open file: the capture at close covers both
                self._open.append((job, staged))
            self._watch_open_files()
        except Exception:
            if staged is not None:
                remove(staged)
            self._failed(f"capturing {job.path}")

    def _stage(self, path: str, *, copy_allowed: bool, inode: tuple[int, int] | None = None) -> Path | None:
        """A private hard link to ``path`` in the staging folder (a copy when linking is impossible)."""
        staged = stage(path, self._staging, producer="torch.save", copy_allowed=copy_allowed, inode=inode)
        if staged is not None and staged.copied:
            with self._lock:
                self._stats.copies += 1
        return staged.path if staged is not None else None

    def _submit(self, job: SaveJob, staged: Path) -> None:
        name, artifact_type = artifact_name_for(job.path, "torch_save"), job.artifact_type
        artifact = TraceletArtifact(name, artifact_type, job.description, metadata=dict(job.metadata or {}))
        if staged.is_dir():
            artifact.add_dir(staged)
        else:
            artifact.add_file(staged, os.path.basename(job.path))
        info = staged.stat()
        before = info.st_size, info.st_mtime_ns
        done = threading.Event()
        with self._lock:
            self._in_flight += 1
            self._pending[job.key] = done
        try:
            future = self.experiment.submit_artifact(artifact)
        except Exception:
            self._release(job, done, staged)  # the caller counts the failure
            raise
        with self._lock:
            self._stats.captured += 1
        future.add_done_callback(lambda f: self._stored(f, job, done, staged, before, name))

    def _stored(self, future: Future[Any], job: SaveJob, done: threading.Event, staged: Path,
                before: tuple[int, int], name: str) -> None:
        """The ingest is over: check the staged file held still, count the outcome, release the capture."""
        try:
            after = staged.stat()
            if (after.st_size, after.st_mtime_ns) != before:
                log.warning("torch.save capture: %s changed while it was being stored (written in place by "
                            "something other than torch.save); the stored version may not match either save.",
                            job.path)
        except OSError:
            pass
        failed = future.cancelled() or future.exception() is not None  # submit_artifact logged the failure
        version = None if failed else getattr(future.result().get("local"), "version", None)
        with self._lock:
            if failed:
                self._stats.failed += 1
            else:
                self._stats.stored += 1
                if version is not None:
                    self.captured.append(CapturedFile(job.path, name, job.artifact_type, version))
        self._release(job, done, staged)

    def _release(self, job: SaveJob, done: threading.Event, staged: Path) -> None:
        """Drop the staged link, and wake a re-save of the same file and ``flush()``."""
        remove(staged)
        with self._idle:
            self._in_flight -= 1
            if self._pending.get(job.key) is done:
                del self._pending[job.key]
            self._idle.notify_all()
        done.set()

    def _failed(self, what: str) -> None:
        with self._idle:
            self._stats.failed += 1
            self._idle.notify_all()
        log.warning("torch.save capture: %s failed; the save itself is unaffected.", what, exc_info=True)

    # -- file objects: hand over once closed ------------------------------------------------------
    def _on_collected(self, _ref: weakref.ref[Any]) -> None:
        self._wake.set()

    def _watch_open_files(self) -> None:
        with self._lock:
            if self._watcher is not None:
                self._wake.set()
                return
            self._watcher = threading.Thread(target=self._watch_loop, name="tracelet-torch-save-close",
                                             daemon=True)
        self._watcher.start()

    def _watch_loop(self) -> None:
        while True:
            self._wake.wait(CLOSE_POLL_S)
            self._wake.clear()
            self._hand_over_closed_files(final=False)
            with self._lock:
                if not self._open or not self.enabled:
                    self._watcher = None
                    return

    def _hand_over_closed_files(self, *, final: bool) -> None:
        with self._lock:
            ready: list[tuple[SaveJob, Path | None]] = []
            still_open: list[tuple[SaveJob, Path | None]] = []
            for job, staged in self._open:
                file = job.file() if job.file is not None else None
                (ready if file is None or file.closed else still_open).append((job, staged))
            self._open = [] if final else still_open
            self._in_flight += len(ready)  # handed over below; keeps flush() waiting in between
        for job, staged in ready:
            try:
                staged = staged or self._stage(job.path, copy_allowed=True, inode=job.inode)
                assert staged is not None
                self._submit(job, staged)
            except Exception:
                if staged is not None:
                    remove(staged)
                self._failed(f"capturing {job.path}")
            finally:
                with self._idle:
                    self._in_flight -= 1
                    self._idle.notify_all()
        if final:
            for job, staged in still_open:
                log.warning("torch.save capture: %s was still open when the capture stopped; not captured.",
                            job.path)
                if staged is not None:
                    remove(staged)


# -- small helpers ----------------------------------------------------------------------------------
def _rank() -> int:
    """The global rank: torch.distributed's when a process group is up, else the launcher's variables."""
    distributed = torch.distributed
    if distributed.is_available() and distributed.is_initialized():
        return int(distributed.get_rank())
    return global_rank()
