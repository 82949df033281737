"""Lightning capture: ``TraceletCallback`` versions every checkpoint Lightning writes, the final model,
the hyper-parameters and (optionally) validation samples, for ``lightning.pytorch`` and ``pytorch_lightning``.

A checkpoint training resumes from (``trainer.fit(ckpt_path=…)``) is recorded as the run's input when
the store holds it. Checkpoints are seen one level above ``torch.save`` (the strategy's innermost
``CheckpointIO``), after the file is in place, and every ``ModelCheckpoint`` is scanned as a safety net.
Each file (or sharded folder, once complete) is hard-linked into the store folder before the hook returns
and handed to the experiment through its ``CapturePort``; a checkpoint on a remote filesystem is read back
on a thread of its own.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracelet_artifacts.artifact import ArtifactType, TraceletArtifact
from tracelet_artifacts.hooks import bundles, capture_logger, remote
from tracelet_artifacts.hooks.filecheck import file_signature
from tracelet_artifacts.hooks.naming import artifact_name_for
from tracelet_artifacts.hooks.port import CapturePort, local_version
from tracelet_artifacts.hooks.rank import is_rank_zero
from tracelet_artifacts.hooks.samples import SampleCollector, sample_artifact
from tracelet_artifacts.hooks.staging import remove, stage, staged_name, staging_folder
from tracelet_artifacts.hooks.values import json_safe, number

log = capture_logger(__name__)

NAMESPACES = ("lightning.pytorch", "pytorch_lightning")
SAMPLES_HOOK = "tracelet_validation_samples"
BEST, EVICTED = "best", "evicted"
RESUMED = "lightning ckpt_path"  # how a resumed-from checkpoint is recorded as consumed
STAGING_FOLDER = "staging/lightning"  # under the store root: hard links need the same filesystem
_MARK = "__tracelet_capture__"
_classes: dict[tuple[type, ...], type] = {}  # keyed by the Callback bases


# -- coordination with the torch.save patch -----------------------------------------------------------
def _torch_save_suppressed() -> contextlib.AbstractContextManager[Any]:
    """The torch.save patch's "a wrapper reports this save itself" context, when that patch is loaded."""
    module = sys.modules.get("tracelet_artifacts.hooks.torch_save")  # loaded only when the patch is in use
    suppressed = getattr(module, "suppressed", None)
    return suppressed() if callable(suppressed) else contextlib.nullcontext()


# -- small helpers ----------------------------------------------------------------------------------
def _same_file(a: str | os.PathLike[str] | None, b: str) -> bool:
    if not a:
        return False
    text = os.fspath(a)
    return (text if remote.is_remote(text) else os.path.abspath(text)) == b


def _known_paths(callback: Any) -> list[str]:
    """The files a ModelCheckpoint tracks: its top-k, its best and its last checkpoint."""
    return [*getattr(callback, "best_k_models", {}), callback.best_model_path, callback.last_model_path]


def _log_dir(trainer: Any) -> str:
    """``trainer.log_dir`` as this process sees it, without the collective broadcast Lightning's property makes.

    ``Trainer.log_dir`` broadcasts from rank 0, so every rank must call it; the callback runs on rank 0
    only, and calling it there would leave rank 0 waiting for ranks that never join (a hang under DDP).
    This reads the same values locally: the first logger's ``log_dir`` for TensorBoard and CSV loggers,
    its ``save_dir`` for any other logger, else the trainer's ``default_root_dir``.
    """
    loggers = list(getattr(trainer, "loggers", None) or [])
    if loggers:
        first = loggers[0]
        versioned = any(c.__name__ in ("TensorBoardLogger", "CSVLogger") for c in type(first).__mro__)
        folder = getattr(first, "log_dir" if versioned else "save_dir", None)
        if folder:
            return os.fspath(folder)
    return os.fspath(trainer.default_root_dir)


def _innermost_io(checkpoint_io: Any) -> Any:
    """The CheckpointIO that really writes: unwrap AsyncCheckpointIO and other wrappers."""
    seen = {id(checkpoint_io)}
    while True:
        inner = getattr(checkpoint_io, "checkpoint_io", None)
        if inner is None or id(inner) in seen or not callable(getattr(inner, "save_checkpoint", None)):
            return checkpoint_io
        seen.add(id(inner))
        checkpoint_io = inner


@dataclass
class _Capture:
    """One file handed to the CapturePort: where its staged copy is, and (once logged) its version."""

    name: str
    staged: Path | None
    version: int | None = None
    when_logged: list[Callable[[int], None]] = field(default_factory=list)


class _CaptureLogic:
    """The namespace-independent body of TraceletCallback (the Callback base comes from Lightning)."""

    def __init__(
        self,
        experiment: CapturePort,
        *,
        log_checkpoints: bool = True,
        log_model: bool = True,
        log_hparams: bool = True,
        samples_every_n_epochs: int = 1,
        flush_on_exception_s: float = 120.0,
    ) -> None:
        self.experiment = experiment
        self.log_checkpoints = log_checkpoints
        self.log_model = log_model
        self.log_hparams = log_hparams
        self.samples_every_n_epochs = samples_every_n_epochs
        self.flush_on_exception_s = flush_on_exception_s
        self._lock = threading.Lock()
        self._seen: dict[str, Any] = {}  # path -> its file (or folder) signature when last captured
        self._captures: dict[str, _Capture] = {}
        self._best: dict[str, str] = {}
        self._pending: set[Future[Any]] = set()
        self._restore: list[Callable[[], None]] = []
        self._trainer: Any = None
        self._active = False
        self._staging = Path()
        self._samples = SampleCollector()
        self._remote: ThreadPoolExecutor | None = None

    # -- lifecycle hooks --------------------------------------------------------------------------
    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self._trainer = trainer
        self._active = bool(trainer.is_global_zero) and is_rank_zero() and self.experiment.capturing
        if not self._active:
            log.debug("TraceletCallback idle: not global rank 0, or the experiment is not started.")
            return
        self._staging = staging_folder(self.experiment.capture_root / STAGING_FOLDER)
        if self.log_checkpoints and not self._restore:
            self._wrap_checkpoint_io(trainer)

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        while self._restore:
            self._restore.pop()()
        self._trainer = None
        if self._remote is not None:
            self._remote.shutdown(wait=True)
            self._remote = None

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        if self._active and self.log_hparams:
            self._guarded("logging hyper-parameters", self._log_hparams, trainer, pl_module)

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if self._active:
            self._guarded("recording the checkpoint training resumed from", self._record_resume, trainer)

    def _record_resume(self, trainer: Any) -> None:
        """``trainer.fit(ckpt_path=…)``: the checkpoint is this run's input when the store holds it (lineage)."""
        path = getattr(trainer, "ckpt_path", None)
        if path and not remote.is_remote(os.fspath(path)) and os.path.isfile(path):
            self.experiment.use_file(Path(path), how=RESUMED)

    def _samples_due(self, trainer: Any) -> bool:
        every = self.samples_every_n_epochs
        return self._active and not trainer.sanity_checking and every > 0 and trainer.current_epoch % every == 0

    def on_validation_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int,
                                dataloader_idx: int = 0) -> None:
        if self._samples_due(trainer) and not callable(getattr(pl_module, SAMPLES_HOOK, None)):
            self._guarded("keeping validation outputs", self._samples.add, batch_idx, dataloader_idx, outputs)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if not self._active or trainer.sanity_checking:
            return
        self._guarded("scanning checkpoints", self._scan, trainer)
        if self._samples_due(trainer):
            self._guarded("logging validation samples", self._log_samples, trainer, pl_module)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if self._active:
            self._guarded("scanning checkpoints", self._scan, trainer)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        if not self._active:
            return
        self._guarded("scanning checkpoints", self._scan, trainer)
        if self.log_model:
            self._guarded("logging the final model", self._log_final_model, trainer, pl_module)

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        if not self._active:
            return
        self._guarded("scanning checkpoints", self._scan, trainer)
        self.flush(self.flush_on_exception_s)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until what this callback handed over is in the store; True when nothing is left pending."""
        if self._remote is not None:  # remote checkpoints being read back are handed over from there
            self._remote.submit(lambda: None).result(timeout)
        with self._lock:
            pending = set(self._pending)
        _, not_done = wait_futures(pending, timeout=timeout)
        return not not_done

    def _guarded(self, what: str, func: Callable[..., None], *args: Any) -> None:
        try:
            func(*args)
        except Exception:  # a capture problem never breaks training
            log.exception("TraceletCallback: %s failed", what)

    # -- the CheckpointIO wrapper -----------------------------------------------------------------
    def _wrap_checkpoint_io(self, trainer: Any) -> None:
        io = _innermost_io(trainer.strategy.checkpoint_io)
        save, remove = getattr(io, "save_checkpoint", None), getattr(io, "remove_checkpoint", None)
        if save is None or getattr(save, _MARK, None) is not None:
            return

        def save_checkpoint(checkpoint: Any, path: Any, *args: Any, **kwargs: Any) -> Any:
            with _torch_save_suppressed():
                result = save(checkpoint, path, *args, **kwargs)
            self._guarded("capturing a checkpoint", self._on_saved, path, checkpoint)
            return result

        def remove_checkpoint(path: Any, *args: Any, **kwargs: Any) -> Any:
            self._guarded("marking an evicted checkpoint", self._on_removed, path)
            assert remove is not None
            return remove(path, *args, **kwargs)

        setattr(save_checkpoint, _MARK, self)
        self._patch(io, "save_checkpoint", save_checkpoint)
        if remove is not None:
            self._patch(io, "remove_checkpoint", remove_checkpoint)
        self._wrap_strategy_save(trainer.strategy)

    def _wrap_strategy_save(self, strategy: Any) -> None:
        """Sharded strategies (FSDP's ``state_dict_type="sharded"``) write a folder without the CheckpointIO:
        capture it when the strategy's save returns on rank 0, after its collective write, meta file included."""
        save = getattr(strategy, "save_checkpoint", None)
        if save is None or getattr(save, _MARK, None) is not None:
            return

        def save_checkpoint(checkpoint: Any, filepath: Any, *args: Any, **kwargs: Any) -> Any:
            info = {k: checkpoint.get(k) for k in ("epoch", "global_step")} if isinstance(checkpoint, Mapping) else {}
            with _torch_save_suppressed():
                result = save(checkpoint, filepath, *args, **kwargs)
            if isinstance(filepath, (str, os.PathLike)) and os.path.isdir(filepath):
                self._guarded("capturing a sharded checkpoint", self._on_saved, filepath, info)
            return result

        setattr(save_checkpoint, _MARK, self)
        self._patch(strategy, "save_checkpoint", save_checkpoint)

    def _patch(self, target: Any, attr: str, value: Any) -> None:
        had_own = attr in vars(target)
        previous = vars(target).get(attr)
        setattr(target, attr, value)

        def restore() -> None:
            if vars(target).get(attr) is not value:
                log.warning("%s.%s was replaced after TraceletCallback wrapped it; leaving it as it is.",
                            type(target).__name__, attr)
            elif had_own:
                setattr(target, attr, previous)
            else:
                delattr(target, attr)

        self._restore.append(restore)

    def _on_saved(self, path: Any, checkpoint: Any) -> None:
        if not self._active or not isinstance(path, (str, os.PathLike)):
            return
        text = os.fspath(path)
        info = checkpoint if isinstance(checkpoint, Mapping) else {}
        if remote.is_remote(text):
            if self._remote is None:
                self._remote = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tracelet-remote-ckpt")
            self._remote.submit(self._guarded, "reading a remote checkpoint back", self._capture_remote, text,
                                info.get("epoch"), info.get("global_step"))
            return
        self._capture(text.removeprefix("file://"), info.get("epoch"), info.get("global_step"), "checkpoint_io")

    def _on_removed(self, path: Any) -> None:
        if not self._active or not isinstance(path, (str, os.PathLike)):
            return
        with self._lock:
            capture = self._captures.get(os.path.abspath(os.fspath(path)))
            if capture is None:
                return
            version = capture.version
            if version is None:
                capture.when_logged.append(lambda v: self._label_evicted(capture.name, v))
        if version is not None:
            self._label_evicted(capture.name, version)

    def _label_evicted(self, name: str, version: int) -> None:
        self.experiment.tag_version(name, version, labels=[EVICTED])
        log.debug("Marked %s:v%d evicted", name, version)

    # -- capturing one checkpoint -----------------------------------------------------------------
    def _scan(self, trainer: Any) -> None:
        """Capture every file a ModelCheckpoint knows about that was not captured as it is now."""
        if not self.log_checkpoints:
            return
        for callback in self._model_checkpoints(trainer):
            for path in dict.fromkeys(p for p in _known_paths(callback) if p):
                if os.path.exists(path):
                    self._capture(os.fspath(path), trainer.current_epoch, trainer.global_step, "scan")
            best = callback.best_model_path
            if best and remote.is_remote(best) and self._remote is not None:  # after its read-back, in order
                self._remote.submit(self._guarded, "moving best", self._point_best, best)
            elif best and os.path.exists(best):
                self._point_best(os.path.abspath(best))

    @staticmethod
    def _model_checkpoints(trainer: Any) -> list[Any]:
        return [c for c in getattr(trainer, "checkpoint_callbacks", []) if hasattr(c, "best_model_path")]

    def _owner(self, absolute: str) -> Any:
        """The ModelCheckpoint that wrote ``absolute`` (None for a manual ``trainer.save_checkpoint``)."""
        trainer = self._trainer
        callbacks = self._model_checkpoints(trainer) if trainer is not None else []
        for callback in callbacks:
            if any(_same_file(p, absolute) for p in _known_paths(callback)):
                return callback
        for callback in callbacks:
            if _same_file(getattr(callback, "dirpath", None), os.path.dirname(absolute)):
                return callback
        return None

    def _capture(self, path: str, epoch: Any, step: Any, source: str) -> None:
        absolute = os.path.abspath(path)
        folder = os.path.isdir(absolute)  # a sharded checkpoint (FSDP, DCP): one version once every rank wrote
        if folder:
            problem = bundles.problem(Path(absolute), bundles.DCP)
            if problem is not None:
                log.debug("TraceletCallback: %s is not complete yet (%s); the next scan takes it", absolute, problem)
                return
        key = bundles.signature(Path(absolute)) if folder else file_signature(absolute)
        with self._lock:
            if key is None or self._seen.get(absolute) == key:
                return
            self._seen[absolute] = key
        self._capture_file(absolute, os.path.basename(path), epoch, step, source)

    def _capture_remote(self, url: str, epoch: Any, step: Any) -> None:
        """Read a remote checkpoint back (chunked, into the staging folder) and hand it over."""
        staged, size = remote.read_back(url, self._staging)
        with self._lock:
            if self._seen.get(url) == size:
                remove(staged)
                return
            self._seen[url] = size
        self._capture_file(url, os.path.basename(url), epoch, step, "checkpoint_io", staged=staged)

    def _capture_file(self, absolute: str, file_name: str, epoch: Any, step: Any, source: str, *,
                      staged: Path | None = None) -> None:
        is_url = remote.is_remote(absolute)
        where = remote.local_name(absolute) if is_url else absolute
        name = artifact_name_for(os.path.dirname(where), "checkpoints")
        owner = self._owner(absolute)
        metadata: dict[str, Any] = {"source_path": absolute if is_url else os.path.relpath(absolute),
                                    "file_name": file_name, "epoch": epoch, "global_step": step,
                                    "captured_by": source}
        is_best = False
        if owner is not None:
            monitor = getattr(owner, "monitor", None)
            metrics = getattr(self._trainer, "callback_metrics", {}) or {}
            scores = getattr(owner, "best_k_models", {})
            score = next((v for k, v in scores.items() if _same_file(k, absolute)), None)
            metadata.update(monitor=monitor, mode=getattr(owner, "mode", None),
                            monitor_value=number(score if score is not None else metrics.get(monitor)))
            is_best = _same_file(owner.best_model_path, absolute)
            metadata["is_best"] = is_best
        artifact = TraceletArtifact(name, ArtifactType.CHECKPOINT, f"Lightning checkpoint {metadata['source_path']}",
                                    metadata={k: v for k, v in metadata.items() if v is not None})
        staged = staged or self._stage(Path(absolute))
        inside = f"checkpoint{Path(file_name).suffix}"  # one path for all versions: same bytes, same version
        if staged.is_dir():
            artifact.add_dir(staged, inside)
        else:
            artifact.add_file(staged, inside)
        capture = _Capture(name, staged)
        with self._lock:
            self._captures[absolute] = capture
            if is_best:
                self._best[name] = absolute
        self._submit(artifact, capture, [BEST] if is_best else [])

    def _stage(self, source: Path) -> Path:
        """Hard-link (or, across filesystems, copy) ``source`` into the store folder, so it outlives eviction."""
        files = bundles.members(source) if source.is_dir() else None
        staged = stage(source, self._staging, producer="lightning", files=files)
        assert staged is not None  # copying is allowed, so staging either worked or raised
        return staged.path

    def _submit(self, artifact: TraceletArtifact, capture: _Capture | None, aliases: list[str]) -> None:
        try:
            if not self.experiment.capturing:
                raise RuntimeError(f"the experiment {self.experiment.name!r} is stopped")
            future = self.experiment.submit_artifact(artifact, aliases=aliases)
        except Exception:
            if capture is not None and capture.staged is not None:
                remove(capture.staged)
            raise
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(lambda f: self._logged(f, capture))

    def _logged(self, future: Future[Any], capture: _Capture | None) -> None:
        with self._lock:
            self._pending.discard(future)
        if capture is None:
            return
        if capture.staged is not None:
            remove(capture.staged)
        if future.cancelled() or future.exception() is not None:
            return  # submit_artifact logged the failure
        version = local_version(future.result())
        if version is None:
            return
        with self._lock:
            capture.version = version
            todo, capture.when_logged = capture.when_logged, []
        for action in todo:
            self._guarded("updating a captured checkpoint", action, version)

    def _point_best(self, absolute: str) -> None:
        """Move ``best`` onto the version of ``absolute`` if it points elsewhere (e.g. after a resume)."""
        with self._lock:
            capture = self._captures.get(absolute)
            if capture is None or self._best.get(capture.name) == absolute:
                return
            self._best[capture.name] = absolute
            version = capture.version
            if version is None:
                capture.when_logged.append(lambda v: self._set_best(capture.name, v))
        if version is not None:
            self._set_best(capture.name, version)

    def _set_best(self, name: str, version: int) -> None:
        self.experiment.tag_version(name, version, alias=BEST)

    # -- model, hyper-parameters, samples ---------------------------------------------------------
    def _run_name(self, trainer: Any, leaf: str) -> str:
        base = artifact_name_for(_log_dir(trainer), "")
        return f"{base}/{leaf}" if base else leaf

    def _log_hparams(self, trainer: Any, pl_module: Any) -> None:
        values = dict(getattr(pl_module, "hparams", {}) or {})
        datamodule = getattr(trainer, "datamodule", None)
        values.update(dict(getattr(datamodule, "hparams", {}) or {}))
        if not values:
            return
        artifact = TraceletArtifact(self._run_name(trainer, "hparams"), ArtifactType.CONFIG,
                                    f"Hyper-parameters of {type(pl_module).__name__}")
        artifact.add_object(json_safe(values), "hparams", "json")
        self._submit(artifact, None, [])

    def _log_final_model(self, trainer: Any, pl_module: Any) -> None:
        metadata = {"epochs_completed": trainer.current_epoch, "global_step": trainer.global_step,
                    "class_name": f"{type(pl_module).__module__}.{type(pl_module).__qualname__}"}
        artifact = TraceletArtifact(self._run_name(trainer, "model"), ArtifactType.MODEL,
                                    f"Final {type(pl_module).__name__} after fit", metadata=metadata)
        with _torch_save_suppressed():
            try:
                artifact.add_model(pl_module, framework="pytorch")
            except Exception as exc:  # e.g. a module class pickle cannot reach: keep its weights instead
                log.info("Saving the whole %s failed (%s); logging its state dict.", type(pl_module).__name__, exc)
                artifact.metadata["saved_as"] = "state_dict"
                artifact.add_object(pl_module.state_dict(), "model/state_dict", "torch")
        self._submit(artifact, None, [])

    def _log_samples(self, trainer: Any, pl_module: Any) -> None:
        hook = getattr(pl_module, SAMPLES_HOOK, None)
        if not callable(hook):  # no user choice: what validation_step returned for the first batches
            self._log_outputs(trainer)
            return
        samples = hook()
        if not samples:
            return
        artifact = TraceletArtifact(self._run_name(trainer, "samples"), ArtifactType.SAMPLE,
                                    f"Validation samples at epoch {trainer.current_epoch}",
                                    metadata={"epoch": trainer.current_epoch, "global_step": trainer.global_step})
        staged: list[Path] = []
        for key, value in dict(samples).items():
            if isinstance(value, (str, os.PathLike)) and os.path.isfile(value):
                copy = self._stage(Path(value))
                staged.append(copy)
                suffix = Path(os.fspath(value)).suffix
                artifact.add_file(copy, key if Path(key).suffix or not suffix else f"{key}{suffix}")
            else:
                artifact.add_object(json_safe(value), str(key), "json")
        capture = _Capture(artifact.name, None)

        def clean_up(_version: int) -> None:
            for path in staged:
                remove(path)

        capture.when_logged.append(clean_up)
        self._submit(artifact, capture, [])

    def _log_outputs(self, trainer: Any) -> None:
        batches, skipped = self._samples.take()
        if not batches:
            return
        folder = self._staging / staged_name("samples")
        artifact = sample_artifact(self._run_name(trainer, "samples"), batches, skipped, trainer.current_epoch,
                                   trainer.global_step, folder)
        if artifact is None:
            remove(folder)
            return
        capture = _Capture(artifact.name, folder)  # the PNG files written there go once it is stored
        self._submit(artifact, capture, [])


def installed_namespaces() -> list[str]:
    """The Lightning namespaces importable here (``lightning.pytorch``, ``pytorch_lightning``)."""
    found = []
    for namespace in NAMESPACES:
        with contextlib.suppress(ImportError, ValueError):
            if importlib.util.find_spec(namespace.split(".")[0]) is not None and (
                    namespace in sys.modules or importlib.util.find_spec(namespace) is not None):
                found.append(namespace)
    return found


def callback_class(*namespaces: str) -> type:
    """The TraceletCallback class deriving from the ``Callback`` of each namespace given (built once)."""
    if not namespaces:
        raise ValueError("Name at least one Lightning namespace: 'lightning.pytorch' or 'pytorch_lightning'.")
    bases = tuple(dict.fromkeys(importlib.import_module(ns).Callback for ns in namespaces))
    if bases not in _classes:
        doc = _CaptureLogic.__doc__
        _classes[bases] = type("TraceletCallback", (_CaptureLogic, *bases),
                               {"__doc__": doc, "__module__": __name__, "__qualname__": "TraceletCallback"})
    return _classes[bases]


class _CallbackMeta(type):
    def __instancecheck__(cls, instance: Any) -> bool:
        return isinstance(instance, _CaptureLogic)

    def __subclasscheck__(cls, subclass: type) -> bool:
        return issubclass(subclass, _CaptureLogic)


class TraceletCallback(metaclass=_CallbackMeta):
    """A Lightning callback that versions checkpoints, the final model, hparams and samples in ``experiment``.

    ``TraceletCallback(exp)`` builds an instance of the class for ``namespace`` (``"lightning.pytorch"`` or
    ``"pytorch_lightning"``); by default it fits every namespace already imported (else the first installed),
    so either Trainer accepts it, and ``isinstance(cb, TraceletCallback)`` holds for all of them. Options:
    ``log_checkpoints``, ``log_model``, ``log_hparams``, ``samples_every_n_epochs`` (0 turns samples off),
    ``flush_on_exception_s``.

    Example::

        with CapturePort("run-1") as exp:
            ckpt = ModelCheckpoint(monitor="val_loss", save_top_k=2, save_last=True)
            trainer = L.Trainer(max_epochs=3, callbacks=[TraceletCallback(exp), ckpt])
            trainer.fit(model, data)
        # exp.get_artifact("lightning_logs/version_0/checkpoints", "best")
    """

    def __new__(cls, experiment: CapturePort, *, namespace: str | None = None, **options: Any) -> Any:
        if namespace is not None:
            chosen = [namespace]
        else:
            chosen = [ns for ns in NAMESPACES if ns in sys.modules] or installed_namespaces()[:1]
        if not chosen:
            raise ImportError("TraceletCallback needs Lightning: pip install 'tracelet-artifacts[lightning]'.")
        return callback_class(*chosen)(experiment, **options)


def is_tracelet_callback(callback: Any) -> bool:
    """True for a TraceletCallback of any namespace."""
    return isinstance(callback, _CaptureLogic)
