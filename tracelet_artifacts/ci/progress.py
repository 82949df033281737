"""Progress of long CI transfers: byte counts summed over many concurrent downloads (the rich bar the
commands show them in is ``tracelet_artifacts.terminal.transfer_bar``, re-exported here).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from tracelet_artifacts.terminal import transfer_bar

__all__ = ["ByteCallback", "TransferTotals", "transfer_bar"]

ByteCallback = Callable[[int, "int | None"], None]


@dataclass
class TransferTotals:
    """Bytes received and expected over every file of a transfer (thread-safe).

    ``file(key, size)`` gives the per-file callback ``(done, total)`` that ``download_artifact`` calls;
    a retried file starts again from zero without counting its bytes twice.
    """

    done: int = 0
    total: int = 0
    files_done: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[Hashable, tuple[int, int]] = {}

    def expect(self, key: Hashable, size: int | None) -> None:
        """Count ``size`` bytes of ``key`` as expected (before its download starts)."""
        if size:
            with self._lock:
                done, known = self._seen.get(key, (0, 0))
                self.total += size - known
                self._seen[key] = (done, size)

    def file(self, key: Hashable, on_change: Callable[[TransferTotals], None] | None = None) -> ByteCallback:
        """The callback for one file's ``(bytes so far, its size or None)``."""

        def update(done: int, size: int | None) -> None:
            with self._lock:
                before, known = self._seen.get(key, (0, 0))
                self.done += done - before
                if size is not None and size != known:
                    self.total += size - known
                    known = size
                self._seen[key] = (done, known)
            if on_change is not None:
                on_change(self)

        return update

    def finished(self, key: Hashable) -> None:
        """One more file is complete."""
        with self._lock:
            self.files_done += 1
