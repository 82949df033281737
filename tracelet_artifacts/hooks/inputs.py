"""Declared inputs: what a watched folder's outputs are made from, named by the user (``watch --input``,
``TRACELET_WATCH_INPUTS``) as stored versions (``NAME:VERSION``, ``NAME@ALIAS``) or as files the store holds.
Each is recorded through the port as consumed by the run, so every file the watcher versions lists them
as its inputs (lineage).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from tracelet_artifacts.errors import ConfigurationError
from tracelet_artifacts.hooks import capture_logger
from tracelet_artifacts.hooks.port import CapturePort

log = capture_logger(__name__)

HOW = "watch inputs"


def record_inputs(port: CapturePort, inputs: Iterable[str | os.PathLike[str]], *, how: str = HOW) -> list[Any]:
    """Record each declared input as consumed by the port's run; return the versions (Futures for files).

    A path that exists is a file the store should hold (found by identity or digest, in the background; a
    file the store does not hold is named in a warning). Anything else must be a stored version: an
    unknown one raises at once, naming it.
    """
    found: list[Any] = []
    for item in inputs:
        text = os.fspath(item).strip()
        if not text:
            continue
        path = Path(text)
        if path.is_dir():
            raise ConfigurationError(f"Input {text!r} is a folder; declare the files in it, or a stored version "
                                     "NAME:VERSION.")
        if path.is_file():
            future = port.use_file(path, how=how)
            future.add_done_callback(functools.partial(_unknown, shown=text))
            found.append(future)
            continue
        name, sep, version = text.replace("@", ":", 1).partition(":")  # NAME:VERSION or NAME@ALIAS
        found.append(port.use_artifact(name, version if sep and version else "latest", how=how))
    return found


def _unknown(future: Future[Any], shown: str) -> None:
    if future.result() is None:
        log.warning("Input %s is not in the store (no stored version holds its content); log it first to "
                    "see it in the lineage.", shown)
