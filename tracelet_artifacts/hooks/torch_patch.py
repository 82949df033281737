"""The ``torch.save`` patch itself: the wrappers put on ``torch.save`` (and on the two internals every save
goes through, so a ``save`` imported before the patch is caught too), the job describing one save, and
which capture a save belongs to. ``torch_save`` holds the captures that receive the jobs.

- ``torch.save`` / ``torch.serialization.save``: replaced by a wrapper that calls the original first.
- ``torch.serialization._open_zipfile_writer``: the first thing the original ``save`` calls with the
  target; wrapped so that ``from torch import save`` (bound before the patch) is captured once its
  writer closes. ``torch.serialization._save`` is wrapped only to learn the saved object there.
- Writers of whole files or folders that do not hand ``torch.save`` the real path:
  ``torch.distributed.checkpoint.save``, ``Fabric.save`` and ``PreTrainedModel.save_pretrained``; their
  path is reported once they returned (wrapped now if imported, else the moment they are imported).
"""

from __future__ import annotations

import contextlib
import functools
import os
import stat
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol

import torch

from tracelet_artifacts import detect
from tracelet_artifacts.artifact import ArtifactType
from tracelet_artifacts.hooks import capture_logger
from tracelet_artifacts.hooks.imports import after_import

log = capture_logger(__name__)

_MARK = "__tracelet_torch_save__"
_CHECKPOINT_KEYS = frozenset({"epoch", "global_step", "step", "iteration", "optimizer", "optimizers",
                              "scheduler", "lr_scheduler", "lr_schedulers", "scaler"})
_TENSOR_SCAN_LIMIT = 100_000
UNKNOWN = object()  # the saved object of a job opened by the writer wrapper, until ``_save`` names it

_local = threading.local()  # .depth: patched saves on this thread; .suppressed; .job: the writer's job
lock = threading.RLock()
active: list[Receiver] = []  # enabled captures, newest last
_replaced: dict[tuple[Any, str], Any] = {}  # (module, attribute) -> the function our wrapper replaced
_wrappers: dict[tuple[str, int], Callable[..., Any]] = {}  # (kind, id(original)) -> its wrapper


class Receiver(Protocol):
    """What the patch hands a save to (``TorchSaveCapture``)."""

    def _accepts(self, path: str) -> bool: ...

    def _prepare(self, saved: Any, path: str, file: Any, inode: tuple[int, int] | None, *,
                 wait: bool = True) -> SaveJob | None: ...

    def _finish(self, job: SaveJob) -> None: ...


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


def _passing_through() -> bool:
    return not active or bool(_local.__dict__.get("depth")) or bool(_local.__dict__.get("suppressed"))


# -- the wrappers -----------------------------------------------------------------------------------
def _save_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def save(*args: Any, **kwargs: Any) -> Any:
        if _passing_through():
            return original(*args, **kwargs)
        _local.depth = getattr(_local, "depth", 0) + 1
        try:
            job = prepare(args[0] if args else kwargs.get("obj"), args[1] if len(args) > 1 else kwargs.get("f"))
            result = original(*args, **kwargs)
        finally:
            _local.depth -= 1
        if job is not None:
            job.capture._finish(job)
        return result

    return save


class _CapturingWriter:
    """The zip writer ``torch.save`` opened, finishing the job once it is closed (the file is complete)."""

    def __init__(self, writer: Any, job: SaveJob) -> None:
        self._writer, self._job = writer, job

    def __getattr__(self, name: str) -> Any:
        return getattr(self._writer, name)

    def __enter__(self) -> Any:
        _local.depth = getattr(_local, "depth", 0) + 1  # saves nested in pickling pass straight through
        _local.job = self._job
        return self._writer.__enter__()

    def __exit__(self, *exc: Any) -> Any:
        try:
            result = self._writer.__exit__(*exc)
        finally:
            _local.depth -= 1
            _local.job = None
        if exc[0] is None:
            self._job.capture._finish(self._job)
        return result


def _opener_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def _open_zipfile_writer(name_or_buffer: Any, *args: Any, **kwargs: Any) -> Any:
        if _passing_through():
            return original(name_or_buffer, *args, **kwargs)
        job = prepare(UNKNOWN, name_or_buffer)  # a save that bypassed torch.save's wrapper (bound early)
        writer = original(name_or_buffer, *args, **kwargs)
        return writer if job is None else _CapturingWriter(writer, job)

    return _open_zipfile_writer


def _object_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def _save(obj: Any, *args: Any, **kwargs: Any) -> Any:
        job = _local.__dict__.get("job")
        if job is not None and job.saved is UNKNOWN:
            job.saved = obj
        return original(obj, *args, **kwargs)

    return _save


def _reporter(path_of: Callable[[tuple[Any, ...], dict[str, Any]], Any],
              saved_of: Callable[[tuple[Any, ...], dict[str, Any]], Any], captured_by: str
              ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A wrapper kind for a writer of whole files or folders: report its path once it returned."""

    def kind(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def write(*args: Any, **kwargs: Any) -> Any:
            if _passing_through():
                return original(*args, **kwargs)
            _local.depth = getattr(_local, "depth", 0) + 1  # what it writes with torch.save is part of it
            try:
                result = original(*args, **kwargs)
            finally:
                _local.depth -= 1
            try:
                target = path_of(args, kwargs)
                if target is not None:
                    report(saved_of(args, kwargs), target, captured_by)
            except Exception:
                log.warning("%s capture failed; the save itself went through.", captured_by, exc_info=True)
            return result

        write.__name__ = f"{captured_by}_reporter"
        return write

    return kind


def _arg(position: int, name: str) -> Callable[[tuple[Any, ...], dict[str, Any]], Any]:
    return lambda args, kwargs: args[position] if len(args) > position else kwargs.get(name)


def _dcp_path(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return kwargs.get("checkpoint_id") or getattr(kwargs.get("storage_writer"), "path", None)


_dcp = _reporter(_dcp_path, _arg(0, "state_dict"), "torch.distributed.checkpoint.save")
_fabric = _reporter(_arg(1, "path"), _arg(2, "state"), "Fabric.save")
_pretrained = _reporter(_arg(1, "save_directory"), _arg(0, "self"), "save_pretrained")
# module -> (attribute path inside it, wrapper kind): patched when (and if) the module is imported
_LATER: dict[str, list[tuple[str, Callable[[Callable[..., Any]], Callable[..., Any]]]]] = {
    "torch.distributed.checkpoint.state_dict_saver": [("save", _dcp)],
    "torch.distributed.checkpoint": [("save", _dcp)],
    "lightning.fabric.fabric": [("Fabric.save", _fabric)],
    "lightning_fabric.fabric": [("Fabric.save", _fabric)],
    "transformers.modeling_utils": [("PreTrainedModel.save_pretrained", _pretrained)],
}
_undo_hooks: list[Callable[[], None]] = []


def _patch_later(module: ModuleType) -> None:
    with lock:
        for dotted, kind in _LATER.get(module.__name__, []):
            *owners, attribute = dotted.split(".")
            owner: Any = module
            for part in owners:
                owner = getattr(owner, part, None)
            current = getattr(owner, attribute, None) if owner is not None else None
            if current is not None and (owner, attribute) not in _replaced:
                _replaced[(owner, attribute)] = current
                setattr(owner, attribute, _wrapped(kind, current))


_WRAPPERS: dict[tuple[ModuleType, str], Callable[[Callable[..., Any]], Callable[..., Any]]] = {
    (torch, "save"): _save_wrapper,
    (torch.serialization, "save"): _save_wrapper,
    (torch.serialization, "_open_zipfile_writer"): _opener_wrapper,
    (torch.serialization, "_save"): _object_wrapper,
}


def _wrapped(kind: Callable[..., Any], original: Callable[..., Any]) -> Callable[..., Any]:
    if getattr(original, _MARK, False):
        return original
    key = (getattr(kind, "__qualname__", "") + str(id(kind)), id(original))
    if key not in _wrappers:  # identical originals (torch.save is torch.serialization.save) share one
        wrapper = kind(original)
        setattr(wrapper, _MARK, True)
        _wrappers[key] = wrapper
    return _wrappers[key]


def install() -> None:
    """Wrap the functions above, once (the caller holds ``lock``); internals missing in this torch are skipped."""
    if _replaced:
        return
    for (module, attribute), kind in _WRAPPERS.items():
        current = getattr(module, attribute, None)
        if current is None:
            log.debug("torch.save capture: torch has no %s.%s here", module.__name__, attribute)
            continue
        _replaced[(module, attribute)] = current
        setattr(module, attribute, _wrapped(kind, current))
    _undo_hooks.append(after_import({name: _patch_later for name in _LATER}))
    log.debug("torch.save capture installed")


def uninstall() -> None:
    """Put back exactly what ``install`` replaced (the caller holds ``lock``)."""
    while _undo_hooks:
        _undo_hooks.pop()()
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
class SaveJob:
    """One save being captured: where the file is, what was saved, and how to hand it over."""

    capture: Receiver
    path: str  # absolute
    key: str  # the real path: the per-path lock/future key
    saved: Any  # the saved object until it is described (then dropped: we never keep it alive)
    file: weakref.ref[Any] | None = None  # a file-object target (captured once it is closed)
    inode: tuple[int, int] | None = None  # (st_dev, st_ino) of that file object's file
    artifact_type: ArtifactType = ArtifactType.CUSTOM
    metadata: dict[str, Any] | None = None
    description: str = ""

    def describe(self, captured_by: str = "torch.save") -> None:
        """Type, metadata and description from the saved object, then let go of the object."""
        saved, self.saved = self.saved, None
        relative = os.path.relpath(self.path).replace(os.sep, "/")
        self.artifact_type = classify(saved, self.path)
        self.description = f"{captured_by}({type(saved).__name__}) to {relative}"
        self.metadata = {"source_path": relative, "captured_by": captured_by,
                         "saved_object": f"{type(saved).__module__}.{type(saved).__qualname__}"}
        if isinstance(saved, Mapping):
            for key in ("epoch", "global_step", "step"):
                value = saved.get(key)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.metadata[key] = value


def prepare(saved: Any, target: Any, *, wait: bool = True) -> SaveJob | None:
    """Resolve the target and the capture for it (before the original runs), waiting out a pending ingest."""
    try:
        resolved = resolve_target(target)
        if resolved is None:
            return None
        path, file, inode = resolved
        with lock:
            candidates = list(reversed(active))
        for capture in candidates:
            if capture._accepts(path):
                return capture._prepare(saved, path, file, inode, wait=wait)
        return None
    except Exception:
        log.warning("torch.save capture: preparing the capture failed; the save itself goes ahead.", exc_info=True)
        return None


def report(saved: Any, path: Any, captured_by: str) -> None:
    """Capture what a writer put at ``path`` (a file or a folder), after it returned; never raises."""
    job = prepare(saved, path, wait=False)
    if job is not None:
        job.metadata = {"captured_by": captured_by}
        job.capture._finish(job)


def resolve_target(target: Any) -> tuple[str, Any, tuple[int, int] | None] | None:
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
    if inside(real, temp) and not inside(real, cwd):
        log.debug("torch.save capture: %s is a temp file (left to the code that moves it)", name)
        return None
    return absolute, target, (opened.st_dev, opened.st_ino)


def inside(path: str, folder: str) -> bool:
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
