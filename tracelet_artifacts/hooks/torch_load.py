"""The ``torch.load`` report: a file the script loads that the store holds (a checkpoint an earlier run
logged, a dataset tensor file) is recorded as consumed by the run, for lineage.

``torch.load`` (and ``torch.serialization.load``, which Lightning and Fabric call) is wrapped while an
experiment's automagic capture is on. The original runs first and its result or exception is the
caller's, untouched; then the path (a ``str`` or ``os.PathLike`` of a regular local file, outside the store
folder) goes to the newest capturing port's ``use_file``, which finds the version on its ingest thread: no
hashing on the caller's thread. Buffers and file objects are not reported (no path to identify them by).
"""

from __future__ import annotations

import functools
import os
import stat
import threading
from collections.abc import Callable
from typing import Any

import torch

from tracelet_artifacts.hooks import capture_logger
from tracelet_artifacts.hooks.port import CapturePort

log = capture_logger(__name__)

HOW = "torch.load"
_MARK = "__tracelet_torch_load__"
_lock = threading.RLock()
_ports: list[CapturePort] = []  # newest last
_original: dict[str, Any] = {}


def _report(target: Any) -> None:
    if not isinstance(target, (str, os.PathLike)):
        return
    path = os.path.abspath(os.fspath(target))
    with _lock:
        port = next((p for p in reversed(_ports) if p.capturing), None)
    if port is None:
        return
    try:
        if not stat.S_ISREG(os.stat(path).st_mode) or path.startswith(str(port.capture_root) + os.sep):
            return
        port.use_file(path, how=HOW)
    except Exception:  # never the caller's problem
        log.debug("torch.load of %s: not reported", path, exc_info=True)


def _wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def load(f: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(f, *args, **kwargs)
        _report(f)
        return result

    setattr(load, _MARK, True)
    return load


def enable(port: CapturePort) -> Callable[[], None]:
    """Report ``torch.load`` calls to ``port`` from now on; return the function that stops it."""
    with _lock:
        if not _ports:
            original = torch.serialization.load
            if getattr(original, _MARK, False):  # pragma: no cover - left wrapped by a crashed disable
                original = original.__wrapped__  # type: ignore[attr-defined]
            _original["load"] = original
            wrapped = _wrapper(original)
            torch.serialization.load = wrapped
            torch.load = wrapped
        _ports.append(port)
    removed = False

    def disable() -> None:
        nonlocal removed
        with _lock:
            if removed:
                return
            removed = True
            _ports.remove(port)
            if not _ports and "load" in _original:
                original = _original.pop("load")
                if getattr(torch.serialization.load, _MARK, False):
                    torch.serialization.load = original
                if getattr(torch.load, _MARK, False):
                    torch.load = original

    return disable
