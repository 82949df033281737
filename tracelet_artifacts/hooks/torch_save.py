"""The ``torch.save`` patch: every model, state dict or checkpoint a script saves to a file is versioned in
an Experiment, with no change to the script and no hashing or copying on the script's thread.

How a capture works (and why)
-----------------------------
1. The wrapper calls the original ``torch.save`` first, with the arguments untouched, and returns its
   result. If the original raises, nothing is captured and the exception is the user's, unchanged. Our own
   failures (store broken, staging impossible, ...) are logged, never raised into the caller.
2. Targets: a ``str``/``bytes``/``os.PathLike`` path, or a real file object, i.e. one whose ``.name`` is a
   path and whose ``fileno()`` is the same inode as that path. In-memory buffers (``BytesIO``) and other
   writers have no such file and are ignored. A file object whose file lies in the temp folder (and not
   under the working directory) is ignored too: that is a framework's temp file about to be moved.
3. As soon as the original returns, the file is hard-linked under ``<store>/staging/torch_save/`` (the
   same filesystem: one system call, no data copied). The artifact is built from that private link and
   handed to ``Experiment.submit_artifact``, which hashes and copies it on the experiment's ingest thread.
   Deleting the user's file, or renaming another file over it, cannot change the link's content. When
   linking fails (another filesystem, no hard links) the file is copied instead, on the caller's thread:
   slower, equally safe. The link is removed once the version is stored (or the ingest failed).
4. One thing a link does not protect against is writing into the same inode: ``torch.save(obj, path)``
   opens ``path`` with ``"wb"``, which truncates it in place. So before calling the original on a path
   whose previous capture is still being ingested, the wrapper waits for that ingestion (a per-path completion event,
   bounded by ``wait_limit_s``). In a training loop the previous save is stored long before the next one,
   so the wait does not happen; ``TorchSaveCapture.stats`` counts the waits (``waits``, ``wait_s``) so this
   can be checked (the P1 benchmark prints them). A save on one of our own ``tracelet-*`` worker threads
   never waits (it could be waiting for itself). Other writers that rewrite the file in place while it is
   being ingested are not covered; the capture logs a warning when the staged file changed meanwhile.
5. File objects: ``torch.save`` does not close them and Python buffers their last bytes, so the file is
   complete only once it is closed. The wrapper links the file at once (so a delete cannot lose it) and a
   small watcher thread hands it over when the file object is closed or garbage-collected (checked every
   50 ms, woken at once by a weakref callback on collection). A file object still open when the capture
   is disabled is not captured (logged).
6. Recursion and threads: a thread-local depth makes nested saves on the same thread (e.g. an object whose
   pickling calls ``torch.save`` itself) pass straight to the original; ``suppressed()`` does the same for a
   wrapper that reports the real file itself, such as the Lightning capture. All shared state is behind
   locks; many threads may save at once.
7. What is captured: the newest enabled capture whose include/exclude globs accept the path (matched
   against the path relative to the working directory, the absolute path and the file name), on global
   rank 0 only unless ``all_ranks``; never files inside the store itself. The artifact name is the path
   relative to the working directory (``a/model.pt`` and ``b/model.pt`` never collide); the file keeps its
   name inside the artifact, so saving the same bytes again makes no new version (the store de-duplicates
   by digest) and changed bytes make the next version. The type comes from the saved object: an
   ``nn.Module`` is MODEL, a mapping of tensors WEIGHTS, a dict holding optimizer state / epoch /
   ``state_dict`` keys CHECKPOINT; anything else falls back to the core's detection table.
8. ``disable()`` puts back exactly the functions that were there before (identity preserved); if someone
   replaced ``torch.save`` after us, their function is left in place and ours passes calls through.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import logging
import os
import shutil
import stat
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import torch

from tracelet_artifacts import detect
from tracelet_artifacts.artifact import ArtifactType, TraceletArtifact
from tracelet_artifacts.errors import TraceletError
from tracelet_artifacts.hooks.naming import artifact_name_for
from tracelet_artifacts.hooks.rank import global_rank
from tracelet_artifacts.hooks.staging import claim, remove, staged_name, staging_folder

if TYPE_CHECKING:
    from tracelet_artifacts.experiment import Experiment

log = logging.getLogger(__name__)

__all__ = ["CaptureStats", "TorchSaveCapture", "capture_torch_save", "disable", "enable", "is_enabled",
           "suppressed"]

STAGING_FOLDER = "staging/torch_save"  # under the store root: hard links need the same filesystem
DEFAULT_WAIT_LIMIT_S = 600.0
CLOSE_POLL_S = 0.05
_MARK = "__tracelet_torch_save__"
_CHECKPOINT_KEYS = frozenset({"epoch", "global_step", "step", "iteration", "optimizer", "optimizers",
                              "scheduler", "lr_scheduler", "lr_schedulers", "scaler"})
_TENSOR_SCAN_LIMIT = 100_000

_local = threading.local()  # .depth: patched saves running on this thread; .suppressed: suppressed() depth
_lock = threading.RLock()
_active: list[TorchSaveCapture] = []  # enabled captures, newest last
_replaced: dict[tuple[ModuleType, str], Any] = {}  # (module, attribute) -> the function our wrapper replaced
_wrappers: dict[int, Callable[..., Any]] = {}  # id(original) -> its wrapper, so identical originals share one


# -- public switches --------------------------------------------------------------------------------
@contextlib.contextmanager
def suppressed() -> Iterator[None]:
    """Inside this block, ``torch.save`` calls on this thread are not captured.

    For wrappers that report the real file themselves (the Lightning capture wraps its checkpoint writes)::

        with suppressed():
            checkpoint_io.save_checkpoint(checkpoint, path)
    """
    _local.suppressed = getattr(_local, "suppressed", 0) + 1
    try:
        yield
    finally:
        _local.suppressed -= 1


def capture_torch_save(
    experiment: Experiment,
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
    experiment: Experiment,
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
    with _lock:
        captures = list(_active)
    for capture in reversed(captures):
        capture.disable()


def is_enabled() -> bool:
    """True while at least one capture is on (``torch.save`` is wrapped)."""
    with _lock:
        return bool(_active)


# -- the patch itself -------------------------------------------------------------------------------
def _wrapper_for(original: Callable[..., Any]) -> Callable[..., Any]:
    if getattr(original, _MARK, False):
        return original
    wrapper = _wrappers.get(id(original))
    if wrapper is not None:
        return wrapper

    @functools.wraps(original)
    def save(*args: Any, **kwargs: Any) -> Any:
        if not _active or _local.__dict__.get("depth") or _local.__dict__.get("suppressed"):
            return original(*args, **kwargs)
        _local.depth = getattr(_local, "depth", 0) + 1
        try:
            job = _prepare(args, kwargs)
            result = original(*args, **kwargs)
        finally:
            _local.depth -= 1
        if job is not None:
            job.capture._finish(job)
        return result

    setattr(save, _MARK, True)
    _wrappers[id(original)] = save
    return save


def _install() -> None:
    """Wrap ``torch.save`` and ``torch.serialization.save`` (once; the caller holds ``_lock``)."""
    if _replaced:
        return
    for module in (torch, torch.serialization):
        current = module.save
        _replaced[(module, "save")] = current
        setattr(module, "save", _wrapper_for(current))  # noqa: B010 - torch.serialization.save is untyped here
    log.debug("torch.save capture installed")


def _uninstall() -> None:
    """Put back exactly what ``_install`` replaced (the caller holds ``_lock``)."""
    for (module, attribute), previous in _replaced.items():
        current = getattr(module, attribute)
        if getattr(current, _MARK, False) and current is not previous:
            setattr(module, attribute, previous)
        elif current is not previous:
            log.warning("%s.%s was replaced after the torch.save capture wrapped it; leaving it as it is "
                        "(our wrapper inside it passes calls straight through).", module.__name__, attribute)
    _replaced.clear()
    log.debug("torch.save capture removed")


# -- one save ---------------------------------------------------------------------------------------
@dataclass
class _Job:
    """One save being captured: where the file is, what was saved, and how to hand it over."""

    capture: TorchSaveCapture
    path: str  # absolute
    key: str  # the real path: the per-path lock/future key
    saved: Any  # the saved object until it is described (then dropped: we never keep it alive)
    file: weakref.ref[Any] | None = None  # a file-object target (captured once it is closed)
    inode: tuple[int, int] | None = None  # (st_dev, st_ino) of that file object's file
    artifact_type: ArtifactType = ArtifactType.CUSTOM
    metadata: dict[str, Any] | None = None
    description: str = ""

    def describe(self) -> None:
        """Type, metadata and description from the saved object, then let go of the object."""
        saved, self.saved = self.saved, None
        relative = os.path.relpath(self.path).replace(os.sep, "/")
        self.artifact_type = classify(saved, self.path)
        self.description = f"torch.save({type(saved).__name__}) to {relative}"
        self.metadata = {"source_path": relative, "captured_by": "torch.save",
                         "saved_object": f"{type(saved).__module__}.{type(saved).__qualname__}"}
        if isinstance(saved, Mapping):
            for key in ("epoch", "global_step", "step"):
                value = saved.get(key)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.metadata[key] = value


def _prepare(args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Job | None:
    """Before the original runs: resolve the target and the capture for it, and wait out a pending ingest."""
    try:
        saved = args[0] if args else kwargs.get("obj")
        target = args[1] if len(args) > 1 else kwargs.get("f")
        resolved = _resolve_target(target)
        if resolved is None:
            return None
        path, file, inode = resolved
        with _lock:
            candidates = list(reversed(_active))
        for capture in candidates:
            if capture._accepts(path):
                return capture._prepare(saved, path, file, inode)
        return None
    except Exception:
        log.warning("torch.save capture: preparing the capture failed; the save itself goes ahead.", exc_info=True)
        return None


def _resolve_target(target: Any) -> tuple[str, Any, tuple[int, int] | None] | None:
    """(absolute path, file object or None, inode of the file object) for a capturable target, else None."""
    if isinstance(target, (str, bytes, os.PathLike)):
        text = os.fsdecode(target)
        if not text or "://" in text:
            return None
        return os.path.abspath(text), None, None
    name = getattr(target, "name", None)
    fileno = getattr(target, "fileno", None)
    if not isinstance(name, str) or not name or not callable(fileno):
        return None  # BytesIO, a socket, an os.fdopen'ed descriptor: no file path to capture
    try:
        opened = os.fstat(fileno())
        on_disk = os.stat(name)
    except (OSError, ValueError):  # io.UnsupportedOperation is an OSError; a closed file a ValueError
        return None
    if not stat.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) != (on_disk.st_dev, on_disk.st_ino):
        return None
    absolute = os.path.abspath(name)
    temp, cwd = os.path.realpath(tempfile.gettempdir()), os.path.realpath(os.getcwd())
    real = os.path.realpath(absolute)
    if _inside(real, temp) and not _inside(real, cwd):
        log.debug("torch.save capture: %s is a temp file (left to the code that moves it)", name)
        return None
    return absolute, target, (opened.st_dev, opened.st_ino)


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def classify(saved: Any, path: str | os.PathLike[str]) -> ArtifactType:
    """The artifact type of a saved object: MODEL, WEIGHTS, CHECKPOINT, else by file name (core table)."""
    if isinstance(saved, torch.nn.Module):
        return ArtifactType.MODEL
    if isinstance(saved, Mapping) and saved:
        if len(saved) <= _TENSOR_SCAN_LIMIT and all(isinstance(v, torch.Tensor) for v in saved.values()):
            return ArtifactType.WEIGHTS
        keys = [k.lower() for k in saved if isinstance(k, str)]
        if any(k in _CHECKPOINT_KEYS or "state_dict" in k or "optimizer" in k for k in keys):
            return ArtifactType.CHECKPOINT
    by_name = detect.artifact_type_for(os.fspath(path))
    return ArtifactType.CUSTOM if by_name is ArtifactType.MODEL else by_name  # not a Module: name can't know


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
        experiment: Experiment,
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
        self._open: list[tuple[_Job, Path | None]] = []  # file objects not closed yet, with their staged link
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
        if not self.experiment.started:
            raise TraceletError(f"Start experiment {self.experiment.name!r} before capturing torch.save.")
        root = self.experiment.store.root
        self._store_root = os.path.realpath(root)
        self._staging = staging_folder(root / STAGING_FOLDER)
        with _lock:
            _install()
            _active.append(self)
            self.enabled = True
        return self

    def disable(self) -> None:
        """Stop capturing; the last capture off puts the original ``torch.save`` back. Idempotent."""
        with _lock:
            if not self.enabled:
                return
            self.enabled = False
            if self in _active:
                _active.remove(self)
            if not _active:
                _uninstall()
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
        if not self.enabled or _inside(os.path.realpath(path), self._store_root):
            return False
        if not self.experiment.started:
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

    def _prepare(self, saved: Any, path: str, file: Any, inode: tuple[int, int] | None) -> _Job | None:
        if not self.all_ranks and _rank() != 0:
            self._skip(path, "not global rank 0")
            return None
        key = os.path.realpath(path)
        if file is None:
            self._wait_for_previous(key)
        return _Job(self, path, key, saved, weakref.ref(file, self._on_collected) if file is not None else None,
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

    def _finish(self, job: _Job) -> None:
        """After the original returned: stage the file and hand it over (file objects: once closed)."""
        staged: Path | None = None
        try:
            job.describe()
            if job.file is None:
                info = os.stat(job.path)
                if not stat.S_ISREG(info.st_mode):
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
        target = self._staging / staged_name(os.path.basename(path)[-80:])
        try:
            os.link(path, target)
        except OSError as exc:
            if not copy_allowed:
                log.debug("torch.save capture: hard-linking %s failed (%s); copying once it is closed", path, exc)
                return None
            log.debug("torch.save capture: hard-linking %s failed (%s); copying it", path, exc)
            shutil.copyfile(path, target)
            with self._lock:
                self._stats.copies += 1
            claim(path, "torch.save")
            return target
        if inode is not None:
            linked = os.stat(target)
            if (linked.st_dev, linked.st_ino) != inode:  # the path was replaced while the file was written
                remove(target)
                raise FileNotFoundError(f"{path} is no longer the file torch.save wrote into")
        claim(path, "torch.save")
        return target

    def _submit(self, job: _Job, staged: Path) -> None:
        name, artifact_type = artifact_name_for(job.path, "torch_save"), job.artifact_type
        artifact = TraceletArtifact(name, artifact_type, job.description, metadata=dict(job.metadata or {}))
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

    def _stored(self, future: Future[Any], job: _Job, done: threading.Event, staged: Path,
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

    def _release(self, job: _Job, done: threading.Event, staged: Path) -> None:
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
            ready: list[tuple[_Job, Path | None]] = []
            still_open: list[tuple[_Job, Path | None]] = []
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
