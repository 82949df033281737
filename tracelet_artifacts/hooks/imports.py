"""Run a callback once a module has executed, without importing it first: a ``sys.meta_path`` finder that
wraps the real loader and steps aside afterwards (the module keeps its real loader).

``after_import("lightning.fabric.fabric", patch)`` calls ``patch(module)`` now if the module is imported,
else the moment the program imports it; the returned function takes the hook out again.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Mapping
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

from tracelet_artifacts.hooks import capture_logger

log = capture_logger(__name__)
_lock = threading.Lock()


def after_import(targets: Mapping[str, Callable[[ModuleType], None]]) -> Callable[[], None]:
    """Call each ``targets[name](module)`` once that module is imported (now, if it already is); returns undo."""
    later: dict[str, Callable[[ModuleType], None]] = {}
    for name, callback in targets.items():
        module = sys.modules.get(name)
        if module is not None:
            callback(module)
        else:
            later[name] = callback
    if not later:
        return lambda: None
    hook = _PostImportHook(later)
    with _lock:
        sys.meta_path.insert(0, hook)

    def undo() -> None:
        with _lock:
            if hook in sys.meta_path:
                sys.meta_path.remove(hook)

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
