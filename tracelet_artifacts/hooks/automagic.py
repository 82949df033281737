"""The automagic switch: ``enable(experiment)`` installs the producers the settings ask for (the
``torch.save`` patch, a TraceletCallback on every Lightning Trainer, the file watcher) and
``handle.disable()`` takes every one of them out again.

``Experiment.start()`` calls it when ``automagic_artifacts`` is on; ``stop()`` disables it first.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
import threading
from collections.abc import Callable
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import TYPE_CHECKING, Any

from tracelet_artifacts.errors import ConfigurationError
from tracelet_artifacts.hooks import lightning as lightning_hooks

if TYPE_CHECKING:
    from tracelet_artifacts.experiment import Experiment

log = logging.getLogger(__name__)

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

    def __init__(self, experiment: Experiment) -> None:
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


def enable(experiment: Experiment) -> AutomagicHandle:
    """Install the producers ``experiment.settings`` asks for; return the handle that removes them."""
    handle = AutomagicHandle(experiment)
    with _lock:
        _handles.append(handle)
        handle.enabled = True
    handle._add("lightning", _LightningPatch.acquire())
    _install_torch_save(handle)
    if experiment.settings.watch_filesystem:
        _install_watcher(handle)
    log.info("Automagic capture on for %s: %s", experiment.name, ", ".join(handle.installed) or "nothing")
    return handle


def active_experiment() -> Experiment | None:
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


# -- Lightning --------------------------------------------------------------------------------------
def _wrap_trainer_init(namespace: str, trainer_class: type) -> Callable[[], None]:
    """Make ``trainer_class.__init__`` add a TraceletCallback for the active experiment; return the undo."""
    original = trainer_class.__dict__["__init__"]
    if getattr(original, _MARK, False):
        return lambda: None

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        experiment, given = active_experiment(), kwargs.get("callbacks")
        callbacks = list(given) if isinstance(given, (list, tuple)) else [] if given is None else [given]
        if (experiment is not None and experiment.started
                and not any(lightning_hooks.is_tracelet_callback(c) for c in callbacks)):
            try:
                kwargs["callbacks"] = [lightning_hooks.callback_class(namespace)(experiment), *callbacks]
            except Exception:
                log.exception("Automagic: adding TraceletCallback to the %s Trainer failed", namespace)
        original(self, *args, **kwargs)

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


class _PostImportHook:
    """A meta-path finder that runs a callback once a module has executed (so enabling never imports it)."""

    def __init__(self, targets: dict[str, Callable[[ModuleType], None]]) -> None:
        self.targets = targets
        self._busy: set[str] = set()

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        callback = self.targets.get(fullname)
        if callback is None or fullname in self._busy:
            return None
        self._busy.add(fullname)
        try:
            spec = next((s for f in sys.meta_path if f is not self and hasattr(f, "find_spec")
                         for s in [f.find_spec(fullname, path, target)] if s is not None), None)
        finally:
            self._busy.discard(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _NotifyingLoader(spec.loader, callback)  # type: ignore[assignment]
        return spec


class _NotifyingLoader:
    """Delegates to the real loader, then hands the executed module to a callback and steps aside."""

    def __init__(self, loader: Any, callback: Callable[[ModuleType], None]) -> None:
        self._loader = loader
        self._callback = callback

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        module.__loader__ = self._loader
        self._loader.exec_module(module)
        try:
            self._callback(module)
        except Exception:
            log.exception("Automagic: patching %s after import failed", module.__name__)


class _LightningPatch:
    """Wraps ``Trainer.__init__`` of every Lightning namespace while at least one handle is enabled."""

    users = 0
    undo: list[Callable[[], None]] = []
    hook: _PostImportHook | None = None

    @classmethod
    def acquire(cls) -> Callable[[], None]:
        with _lock:
            cls.users += 1
            if cls.users == 1:
                cls._install()
        released = False

        def release() -> None:
            nonlocal released
            with _lock:
                if released:
                    return
                released = True
                cls.users -= 1
                if cls.users == 0:
                    cls._uninstall()

        return release

    @classmethod
    def _patch_module(cls, namespace: str, module: ModuleType) -> None:
        with _lock:
            trainer = getattr(module, "Trainer", None)
            if isinstance(trainer, type) and cls.users > 0:
                cls.undo.append(_wrap_trainer_init(namespace, trainer))
                log.debug("Automagic: %s.Trainer adds TraceletCallback", namespace)

    @classmethod
    def _install(cls) -> None:
        later: dict[str, Callable[[ModuleType], None]] = {}
        for namespace in lightning_hooks.NAMESPACES:
            module = sys.modules.get(namespace)
            if module is not None and hasattr(module, "Trainer"):
                cls._patch_module(namespace, module)
            else:
                later[namespace] = lambda m, ns=namespace: cls._patch_module(ns, m)  # type: ignore[misc]
        if later:
            cls.hook = _PostImportHook(later)
            sys.meta_path.insert(0, cls.hook)

    @classmethod
    def _uninstall(cls) -> None:
        if cls.hook is not None:
            if cls.hook in sys.meta_path:
                sys.meta_path.remove(cls.hook)
            cls.hook = None
        undo, cls.undo = cls.undo, []
        for step in reversed(undo):
            step()
