"""One daemon thread per adapter that runs its SDK's calls in order, so a backend SDK that hangs (a stopped
server, a lock) fails the delivery with a retryable error after a timeout instead of hanging the worker.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from tracelet_artifacts.errors import DeliveryError

T = TypeVar("T")


class SdkWorker:
    """Runs calls one at a time on its own thread; ``call`` waits at most ``timeout`` seconds for each.

    Example::

        worker = SdkWorker("Aim")
        run = worker.call(lambda: aim.Run(repo=path), timeout=30, what="opening the run")
    """

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self._jobs: queue.Queue[tuple[Callable[[], Any], Future[Any]]] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name=f"tracelet-{backend.lower()}-sdk", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            fn, future = self._jobs.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the caller, never lost
                future.set_exception(exc)
            del fn, future  # hold nothing of the SDK between calls (a closed run can be reopened)

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Queue ``fn``; its Future holds the result or the SDK's own exception."""
        future: Future[T] = Future()
        self._jobs.put((fn, future))
        return future

    def call(self, fn: Callable[[], T], timeout: float, what: str) -> T:
        """Run ``fn`` and return its result; the SDK's exceptions pass through; past ``timeout`` raise a
        retryable DeliveryError (the call is dropped if it has not started, else left to finish)."""
        future = self.submit(fn)
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()
            raise DeliveryError(f"{self.backend} did not finish {what} within {timeout:g} s; is it reachable? "
                                "The delivery will be retried.", retryable=True) from None
