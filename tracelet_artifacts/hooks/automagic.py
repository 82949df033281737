"""The automagic switch: ``enable(experiment)`` installs the producers the settings ask for (the
``torch.save`` patch and the ``torch.load`` report, a TraceletCallback on every Lightning Trainer, a
TraceletTrainerCallback on every ``transformers.Trainer``, the file watcher) and ``handle.disable()`` takes
every one of them out again.

``CapturePort.start()`` calls it when ``automagic_artifacts`` or ``watch_filesystem`` is on (the latter
alone starts only the watcher); ``stop()`` disables it first.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

from tracelet_artifacts.errors import ConfigurationError
from tracelet_artifacts.hooks import capture_logger
from tracelet_artifacts.hooks import lightning as lightning_hooks
from tracelet_artifacts.hooks.imports import after_import
from tracelet_artifacts.hooks.port import CapturePort

log = capture_logger(__name__)

_MARK = "__tracelet_automagic__"
_lock = threading.RLock()
_handles: list[AutomagicHandle] = []  # enabled handles, newest last: Trainers get the newest one's callback


class AutomagicHandle:
    """What ``enable`` installed for one experiment; ``disable()`` removes it (idempotent).

    Example::

        handle = enable(exp)        # torch.save patch, Lightning callback, watcher (per settings)
        ...
        handle.disable()
    """

    def __init__(self, experiment: CapturePort) -> None:
        self.experiment = experiment
        self.installed: list[str] = []
        self._undo: list[Callable[[], None]] = []
        self.enabled = False

    def __repr__(self) -> str:
        return f"AutomagicHandle({self.experiment.name!r}, installed={self.installed}, enabled={self.enabled})"

    def _add(self, what: str, undo: Callable[[], None]) -> None:
        self.installed.append(what)
        self._undo.append(undo)

    def disable(self) -> None:
        """Uninstall everything, newest first; a failure to uninstall one producer is logged, never raised."""
        with _lock:
            if self in _handles:
                _handles.remove(self)
            undo, self._undo = self._undo, []
            self.enabled = False
        for step in reversed(undo):
            try:
                step()
            except Exception:
                log.exception("Automagic: uninstalling a producer failed")
        self.installed.clear()


def enable(experiment: CapturePort, *, frameworks: bool = True) -> AutomagicHandle:
    """Install the producers ``experiment.settings`` asks for; return the handle that removes them.

    ``frameworks=False`` installs only the watcher (``watch_filesystem`` without automagic capture).
    """
    handle = AutomagicHandle(experiment)
    if frameworks:
        with _lock:
            _handles.append(handle)
            handle.enabled = True
        handle._add("lightning", _TRAINERS["lightning"].acquire())
        if importlib.util.find_spec("transformers") is not None:
            handle._add("transformers", _TRAINERS["transformers"].acquire())
        _install_torch_save(handle)
    if experiment.settings.watch_filesystem:
        _install_watcher(handle)
    log.info("Automagic capture on for %s: %s", experiment.name, ", ".join(handle.installed) or "nothing")
    return handle


def active_experiment() -> CapturePort | None:
    """The experiment whose automagic was enabled last and is still on (None when automagic is off)."""
    with _lock:
        return _handles[-1].experiment if _handles else None


# -- torch.save -------------------------------------------------------------------------------------
def _install_torch_save(handle: AutomagicHandle) -> None:
    if importlib.util.find_spec("torch") is None:
        return
    try:
        module = importlib.import_module("tracelet_artifacts.hooks.torch_save")
    except ImportError:
        log.debug("Automagic: no torch.save patch in this version")
        return
    try:
        capture = module.enable(handle.experiment)  # include/exclude/all_ranks come from the settings
    except Exception:
        log.exception("Automagic: installing the torch.save patch failed; torch.save is left as it is")
        return
    handle._add("torch.save", capture.disable)
    try:  # files the script loads that the store holds are recorded as this run's inputs (lineage)
        from tracelet_artifacts.hooks import torch_load

        handle._add("torch.load", torch_load.enable(handle.experiment))
    except Exception:
        log.exception("Automagic: reporting torch.load calls failed to install; torch.load is left as it is")


# -- watcher ----------------------------------------------------------------------------------------
def _install_watcher(handle: AutomagicHandle) -> None:
    settings = handle.experiment.settings
    try:
        module = importlib.import_module("tracelet_artifacts.hooks.watcher")
    except ConfigurationError as exc:  # watchdog is not installed: the message names the pip command
        log.warning("watch_filesystem is on, but the watcher cannot start: %s", exc)
        return
    try:
        watcher = module.ArtifactWatcher(list(settings.artifact_watch_dirs), experiment=handle.experiment)
        watcher.start()
    except Exception:
        log.exception("Automagic: starting the file watcher failed")
        return
    handle._add("watcher", watcher.stop)


# -- Trainers: Lightning's and Hugging Face's --------------------------------------------------------
def _wrap_trainer_init(trainer_class: type, namespace: str, *, after: bool) -> Callable[[], None]:
    """Make ``trainer_class.__init__`` add a Tracelet callback for the active experiment; return the undo.

    Lightning's callback goes into ``callbacks=`` before the Trainer is built (``after=False``); Hugging
    Face's is added with ``trainer.add_callback`` once it is built (``after=True``).
    """
    original = trainer_class.__dict__["__init__"]
    if getattr(original, _MARK, False):
        return lambda: None

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        experiment = active_experiment()
        wanted = experiment is not None and experiment.capturing
        if wanted and not after:
            given = kwargs.get("callbacks")
            callbacks = list(given) if isinstance(given, (list, tuple)) else [] if given is None else [given]
            if not any(lightning_hooks.is_tracelet_callback(c) for c in callbacks):
                try:
                    kwargs["callbacks"] = [lightning_hooks.callback_class(namespace)(experiment), *callbacks]
                except Exception:
                    log.exception("Automagic: adding TraceletCallback to the %s Trainer failed", namespace)
        original(self, *args, **kwargs)
        if wanted and after and experiment is not None:
            try:
                from tracelet_artifacts.hooks import hf

                if not any(isinstance(c, hf.TraceletTrainerCallback) for c in self.callback_handler.callbacks):
                    self.add_callback(hf.TraceletTrainerCallback(experiment))
            except Exception:
                log.exception("Automagic: adding TraceletTrainerCallback to the %s Trainer failed", namespace)

    setattr(__init__, _MARK, True)
    __init__.__wrapped__ = original  # type: ignore[attr-defined]
    __init__.__doc__ = original.__doc__
    trainer_class.__init__ = __init__  # type: ignore[misc]

    def undo() -> None:
        if trainer_class.__dict__.get("__init__") is __init__:
            trainer_class.__init__ = original  # type: ignore[misc]
        else:
            log.warning("%s.Trainer.__init__ was replaced after automagic wrapped it; leaving it as it is.",
                        namespace)

    return undo


class _TrainerPatch:
    """Wraps ``Trainer.__init__`` in some modules while at least one handle is enabled (shared, counted)."""

    def __init__(self, modules: dict[str, str], *, after: bool) -> None:
        self.modules = modules  # module that defines Trainer -> the namespace named in messages
        self.after = after
        self.users = 0
        self.undo: list[Callable[[], None]] = []

    def acquire(self) -> Callable[[], None]:
        with _lock:
            self.users += 1
            if self.users == 1:
                self._install()
        released = False

        def release() -> None:
            nonlocal released
            with _lock:
                if released:
                    return
                released = True
                self.users -= 1
                if self.users == 0:
                    undo, self.undo = self.undo, []
                    for step in reversed(undo):
                        step()

        return release

    def _patch_module(self, namespace: str, module: ModuleType) -> None:
        with _lock:
            trainer = vars(module).get("Trainer")
            if isinstance(trainer, type) and self.users > 0:
                self.undo.append(_wrap_trainer_init(trainer, namespace, after=self.after))
                log.debug("Automagic: %s.Trainer adds a Tracelet callback", namespace)

    def _install(self) -> None:
        targets = {name: functools.partial(self._patch_module, namespace) for name, namespace in self.modules.items()}
        self.undo.append(after_import(targets))


_TRAINERS = {
    "lightning": _TrainerPatch({ns: ns for ns in lightning_hooks.NAMESPACES}, after=False),
    "transformers": _TrainerPatch({"transformers.trainer": "transformers"}, after=True),
}
