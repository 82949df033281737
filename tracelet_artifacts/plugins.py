"""One registry shape for everything pluggable (backend adapters, CI providers): name → "module:Class".

A ``PluginRegistry`` starts from its built-ins, adds third-party entries from an entry-point group (kept as
strings until asked for, never replacing a name), imports each class on first use and caches it, and
refuses to replace a registered name unless told to. The error types and messages stay the caller's:
it passes the functions that build them.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Generic, TypeVar

from tracelet_artifacts.errors import ConfigurationError, TraceletError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class PluginSpec:
    """Where a plugin class lives, the module it needs (checked without importing it), and how to install it."""

    target: str
    sdk: str | None = None
    install: str | None = None


class PluginRegistry(Generic[T]):
    """Name → plugin class, for one kind of plugin.

    Example::

        adapters = PluginRegistry[BackendAdapter]("backend", "tracelet_artifacts.backends", BUILTIN,
                                                  unknown=lambda name, known: UnknownBackendError(...),
                                                  missing=lambda name, spec, exc: BackendNotInstalledError(...))
        adapters.load("mlflow")       # the class, imported now and cached
    """

    def __init__(
        self,
        noun: str,
        group: str,
        builtin: Mapping[str, PluginSpec],
        *,
        unknown: Callable[[str, list[str]], TraceletError],
        missing: Callable[[str, PluginSpec, Exception | None], TraceletError],
    ) -> None:
        self.noun, self.group = noun, group
        self.builtin = dict(builtin)
        self._unknown, self._missing = unknown, missing
        self._specs: dict[str, PluginSpec] = dict(builtin)
        self._classes: dict[str, type[T]] = {}
        self._lock = threading.RLock()
        self._entry_points_loaded = False

    def fresh(self) -> PluginRegistry[T]:
        """A new registry with the same built-ins and nothing else (entry points read again on first use)."""
        return PluginRegistry(self.noun, self.group, self.builtin, unknown=self._unknown, missing=self._missing)

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=self.group):
            if ep.name in self._specs:
                log.warning("Ignoring entry point %r: the %s name %r is already registered.", ep.value, self.noun,
                            ep.name)
                continue
            self._specs[ep.name] = PluginSpec(ep.value)

    def known(self) -> Mapping[str, PluginSpec]:
        """A read-only view of every registered name (built-ins, entry points, ``register`` calls)."""
        with self._lock:
            self._load_entry_points()
            return MappingProxyType(dict(self._specs))

    def register(self, name: str, target: str | type[T], *, sdk: str | None = None, install: str | None = None,
                 clobber: bool = False) -> None:
        """Register ``"package.module:Class"`` (or the class) under ``name``; never replaces one unless ``clobber``."""
        with self._lock:
            self._load_entry_points()
            if name in self._specs and not clobber:
                raise ConfigurationError(
                    f"A {self.noun} named {name!r} is already registered; pass clobber=True to replace it.")
            self._classes.pop(name, None)
            if isinstance(target, type):
                self._classes[name] = target
                target = f"{target.__module__}:{target.__qualname__}"
            self._specs[name] = PluginSpec(target, sdk, install)

    def unregister(self, name: str) -> None:
        """Remove a name added by ``register`` or an entry point; built-ins stay."""
        with self._lock:
            if name in self.builtin:
                raise ConfigurationError(f"{name!r} is a built-in {self.noun} and cannot be removed.")
            self._specs.pop(name, None)
            self._classes.pop(name, None)

    def spec(self, name: str) -> PluginSpec:
        """The spec registered under ``name``; the caller's "unknown" error (naming the known ones) otherwise."""
        spec = self.known().get(name)
        if spec is None:
            raise self._unknown(name, sorted(self.known()))
        return spec

    def is_installed(self, name: str) -> bool:
        """Whether the module the plugin needs can be imported (checked without importing it)."""
        spec = self.spec(name)
        return spec.sdk is None or importlib.util.find_spec(spec.sdk) is not None

    def load(self, name: str) -> type[T]:
        """The class for ``name``, imported on first use; the caller's "missing" error names what to install."""
        with self._lock:
            cached = self._classes.get(name)
        if cached is not None:
            return cached
        spec = self.spec(name)
        if not self.is_installed(name):
            raise self._missing(name, spec, None)
        module_name, _, class_name = spec.target.partition(":")
        try:
            cls: type[T] = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as exc:
            raise self._missing(name, spec, exc) from exc
        with self._lock:
            self._classes[name] = cls
        return cls
