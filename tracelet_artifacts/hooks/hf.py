"""Hugging Face capture: ``TraceletTrainerCallback`` versions every ``checkpoint-N`` folder a
``transformers.Trainer`` writes (one CHECKPOINT version per folder, once complete), moves ``best`` onto the
checkpoint ``metric_for_best_model`` chose, and logs the training arguments and the final model.

It acts on the world's process 0 only (``state.is_world_process_zero``), like the Trainer's own saving;
``automagic_artifacts=True`` adds it to every Trainer built while the experiment runs.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from tracelet_artifacts.artifact import ArtifactType, TraceletArtifact
from tracelet_artifacts.hooks import bundles, capture_logger
from tracelet_artifacts.hooks.naming import artifact_name_for
from tracelet_artifacts.hooks.port import CapturePort, local_version
from tracelet_artifacts.hooks.staging import remove, stage, staged_name, staging_folder
from tracelet_artifacts.hooks.values import json_safe, number

log = capture_logger(__name__)

STAGING_FOLDER = "staging/hf"  # under the store root: hard links need the same filesystem
BEST = "best"
CHECKPOINT_PREFIX = "checkpoint-"


class TraceletTrainerCallback(TrainerCallback):
    """A ``transformers.TrainerCallback`` that versions checkpoints, the final model and the training arguments.

    Names follow ``args.output_dir``: ``<output_dir>/checkpoints`` (a version per ``checkpoint-N``, alias
    ``best``), ``<output_dir>/model`` and ``<output_dir>/training_args``.

    Example::

        with Experiment("run-1") as exp:
            trainer = Trainer(model, args, train_dataset=ds, callbacks=[TraceletTrainerCallback(exp)])
            trainer.train()
        # exp.get_artifact("out/checkpoints", "best")
    """

    def __init__(self, experiment: CapturePort, *, log_checkpoints: bool = True, log_model: bool = True,
                 log_args: bool = True) -> None:
        self.experiment = experiment
        self.log_checkpoints = log_checkpoints
        self.log_model = log_model
        self.log_args = log_args
        self._lock = threading.Lock()
        self._seen: dict[str, Any] = {}  # folder -> its signature when captured
        self._versions: dict[str, int] = {}  # folder -> its stored version
        self._waiting: set[str] = set()  # folders saved but not complete yet
        self._best: str | None = None  # the folder ``best`` points at in the store
        self._wanted_best: str | None = None  # the folder the Trainer's state names best
        self._checkpoints = "checkpoints"  # the artifact name of the checkpoints
        self._pending: set[Future[Any]] = set()

    def _active(self, state: Any) -> bool:
        return bool(getattr(state, "is_world_process_zero", True)) and self.experiment.capturing

    def _guarded(self, what: str, func: Callable[..., None], *args: Any) -> None:
        try:
            func(*args)
        except Exception:  # a capture problem never breaks training
            log.exception("TraceletTrainerCallback: %s failed", what)

    def _name(self, args: Any, leaf: str) -> str:
        base = artifact_name_for(args.output_dir, "")
        return f"{base}/{leaf}" if base else leaf

    # -- Trainer events ---------------------------------------------------------------------------
    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._active(state) and self.log_args:
            self._guarded("logging the training arguments", self._log_args, args)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._active(state) and self.log_checkpoints:
            folder = os.path.join(args.output_dir, f"{CHECKPOINT_PREFIX}{state.global_step}")
            with self._lock:
                self._waiting.add(os.path.abspath(folder))
            self._guarded("capturing a checkpoint", self._capture_waiting, args, state)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._waiting and self._active(state):  # a folder another rank was still writing at on_save
            self._guarded("capturing a checkpoint", self._capture_waiting, args, state)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not self._active(state):
            return
        if self.log_checkpoints:
            self._guarded("capturing a checkpoint", self._capture_waiting, args, state, True)
        model = kwargs.get("model")
        if self.log_model and model is not None:
            self._guarded("logging the final model", self._log_model, args, state, model)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until what this callback handed over is stored; True when nothing is left pending."""
        with self._lock:
            pending = set(self._pending)
        return not wait_futures(pending, timeout=timeout).not_done

    # -- capturing --------------------------------------------------------------------------------
    def _capture_waiting(self, args: Any, state: Any, final: bool = False) -> None:
        with self._lock:
            waiting = sorted(self._waiting)
        for folder in waiting:
            path = Path(folder)
            if not path.is_dir():  # rotated away (save_total_limit) before it could be taken
                with self._lock:
                    self._waiting.discard(folder)
                continue
            problem = bundles.problem(path, bundles.HF_CHECKPOINT)
            if problem is not None:
                (log.warning if final else log.debug)("TraceletTrainerCallback: %s is not complete (%s)", folder,
                                                      problem)
                continue
            with self._lock:
                self._waiting.discard(folder)
            self._capture(args, state, path)
        best = getattr(state, "best_model_checkpoint", None)
        if best:
            with self._lock:
                self._wanted_best = os.path.abspath(best)
            self._apply_best()

    def _capture(self, args: Any, state: Any, folder: Path) -> None:
        key = bundles.signature(folder)
        with self._lock:
            if self._seen.get(str(folder)) == key:
                return
            self._seen[str(folder)] = key
        metric = getattr(args, "metric_for_best_model", None)
        metadata = {"source_path": os.path.relpath(folder), "checkpoint": folder.name,
                    "global_step": state.global_step, "epoch": number(state.epoch),
                    "captured_by": "transformers.Trainer", "metric_for_best_model": metric,
                    "best_metric": number(getattr(state, "best_metric", None))}
        self._checkpoints = self._name(args, "checkpoints")
        artifact = TraceletArtifact(self._checkpoints, ArtifactType.CHECKPOINT,
                                    f"Trainer checkpoint {metadata['source_path']}",
                                    metadata={k: v for k, v in metadata.items() if v is not None})
        staged = stage(folder, self._staging(), producer="transformers", files=bundles.members(folder))
        assert staged is not None
        artifact.add_dir(staged.path, "checkpoint")
        self._submit(artifact, staged.path, str(folder))

    def _apply_best(self) -> None:
        """Point ``best`` at the version of the folder the Trainer calls best, once that folder is stored."""
        with self._lock:
            wanted = self._wanted_best
            version = self._versions.get(wanted) if wanted else None
            if version is None or self._best == wanted:
                return
            self._best = wanted
        self.experiment.tag_version(self._checkpoints, version, alias=BEST)

    def _log_args(self, args: Any) -> None:
        values = args.to_dict() if hasattr(args, "to_dict") else vars(args)
        artifact = TraceletArtifact(self._name(args, "training_args"), ArtifactType.CONFIG,
                                    "transformers TrainingArguments")
        artifact.add_object(json_safe(values), "training_args", "json")
        self._submit(artifact, None, None)

    def _log_model(self, args: Any, state: Any, model: Any) -> None:
        folder = self._staging() / staged_name("model")
        model.save_pretrained(folder)  # a folder under the store: no capture of its own
        artifact = TraceletArtifact(self._name(args, "model"), ArtifactType.MODEL,
                                    f"Final {type(model).__name__} after training",
                                    metadata={"global_step": state.global_step, "epoch": number(state.epoch),
                                              "class_name": f"{type(model).__module__}.{type(model).__qualname__}",
                                              "saved_as": "save_pretrained"})
        artifact.add_dir(folder)
        self._submit(artifact, folder, None)

    def _staging(self) -> Path:
        return staging_folder(self.experiment.capture_root / STAGING_FOLDER)

    def _submit(self, artifact: TraceletArtifact, staged: Path | None, folder: str | None) -> None:
        try:
            future = self.experiment.submit_artifact(artifact)
        except Exception:
            if staged is not None:
                remove(staged)
            raise
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(lambda f: self._stored(f, staged, folder))

    def _stored(self, future: Future[Any], staged: Path | None, folder: str | None) -> None:
        with self._lock:
            self._pending.discard(future)
        if staged is not None:
            remove(staged)
        if folder is None or future.cancelled() or future.exception() is not None:
            return
        version = local_version(future.result())
        if version is not None:
            with self._lock:
                self._versions[folder] = version
            self._guarded("moving best", self._apply_best)
