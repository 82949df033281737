"""What is printed on a terminal: the commands' table console, the one rich progress bar on stderr (bytes,
rate, what is left; off with ``--quiet`` or when stderr is not a terminal), the bar of deliveries a run or
``sync`` waits for, and the commands' output-folder check.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from tracelet_artifacts.errors import ConfigurationError

__all__ = ["DeliveryBar", "console", "transfer_bar", "writable_folder"]


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


class DeliveryCounts(Protocol):
    """What a delivery bar reads (``delivery.FlushResult`` has it)."""

    @property
    def pending(self) -> int: ...

    @property
    def done_bytes(self) -> int: ...

    @property
    def total_bytes(self) -> int: ...


class DeliveryBar:
    """The bar of deliveries still on their way: bytes delivered of all, rate, deliveries left, time left; one
    line per ``what`` (a run). It appears once the wait has lasted ``delay_s`` (a flush that is over at once
    shows nothing) and never when ``quiet`` or when stderr is not a terminal.

    Example::

        with DeliveryBar(quiet=False) as bar:
            queue.close(timeout, watch=lambda result: bar.update(result, "run-1"))
    """

    def __init__(self, *, quiet: bool, delay_s: float = 1.0) -> None:
        from rich.console import Console

        self._off = quiet or not Console(stderr=True).is_terminal
        self._delay = delay_s
        self._since = time.monotonic()
        self._bar: Any = None
        self._tasks: dict[str, Any] = {}

    def update(self, result: DeliveryCounts, what: str) -> None:
        if self._off:
            return
        if self._bar is None:
            if not result.pending or time.monotonic() - self._since < self._delay:
                return
            self._bar = transfer_bar(quiet=False)
            self._bar.start()
        if what not in self._tasks:
            self._tasks[what] = self._bar.add_task(what, total=None, left="")
        self._bar.update(self._tasks[what], completed=result.done_bytes, total=result.total_bytes or None,
                         left=f"{result.pending} delivery(ies) left")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def __enter__(self) -> DeliveryBar:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
