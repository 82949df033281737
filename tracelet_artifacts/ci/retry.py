"""Retry with exponential backoff for the CI bridge: which failures are worth another try, and when.

Only transient failures are retried (connection errors, timeouts, truncated bodies, 5xx, 429);
a 401/403/404/410/424 fails at once because asking again cannot change the answer.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from tracelet_artifacts.ci.errors import CIProviderError, DownloadIntegrityError, RateLimitedError

logger = logging.getLogger("tracelet_artifacts.ci")

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to try and how long to wait between tries.

    >>> list(RetryPolicy(attempts=3, base_delay=1.0, jitter=0.0).delays())
    [1.0, 2.0]
    """

    attempts: int = 5
    base_delay: float = 0.5
    multiplier: float = 2.0
    max_delay: float = 30.0
    jitter: float = 0.1

    def delays(self) -> Iterator[float]:
        """The waits between consecutive attempts (one fewer than ``attempts``)."""
        delay = self.base_delay
        for _ in range(max(self.attempts - 1, 0)):
            spread = delay * self.jitter
            yield max(0.0, min(self.max_delay, delay + random.uniform(-spread, spread)))
            delay *= self.multiplier


def is_retryable(exc: BaseException) -> bool:
    """True for failures that another attempt may fix."""
    if isinstance(exc, RateLimitedError):
        return False  # the HTTP layer already waited what it was allowed to; another try cannot help
    if isinstance(exc, CIProviderError | DownloadIntegrityError):
        return exc.retryable
    try:
        import httpx
    except ImportError:  # pragma: no cover - httpx is part of the ci extra
        return False
    return isinstance(exc, httpx.TransportError)


def call_with_retries(
    fn: Callable[[], T],
    policy: RetryPolicy,
    *,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fn`` until it succeeds, a non-retryable error is raised, or the attempts run out."""
    delays = policy.delays()
    while True:
        try:
            return fn()
        except Exception as exc:
            if not is_retryable(exc):
                raise
            delay = next(delays, None)
            if delay is None:
                raise
            logger.warning("%s failed (%s); retrying in %.2fs", what, type(exc).__name__, delay)
            sleep(delay)
