"""What both command-line groups print through: the table console, the one rich progress bar on stderr
(bytes, rate, what is left; off with ``--quiet`` or when stderr is not a terminal), and the output-folder check.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tracelet_artifacts.errors import ConfigurationError

__all__ = ["console", "transfer_bar", "writable_folder"]


def console() -> Any:
    """A rich console on stdout; piped or captured output gets a wide one rather than wrapped cells."""
    from rich.console import Console

    out = Console()
    return out if out.is_terminal else Console(width=200)


def transfer_bar(*, quiet: bool) -> Any:
    """A rich Progress on stderr with bytes, rate, a ``left`` field and time left; disabled when ``quiet``
    or when stderr is not a terminal. Tasks need ``left=…`` when added."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    err = Console(stderr=True)
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[left]}"),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=quiet or not err.is_terminal,
    )


def writable_folder(path: Path, what: str, hint: str) -> Path:
    """``path`` created if missing; ConfigurationError naming it (and ``hint``: how to choose another)
    when it cannot be created or written to."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(f"cannot create the {what} folder {path}: {exc.strerror or exc}; {hint}.") from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigurationError(f"the {what} folder {path} is not writable; {hint}.")
    return path
