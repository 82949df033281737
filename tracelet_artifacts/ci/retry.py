"""Which CI failures are worth another try: transient ones (connection errors, timeouts, truncated
bodies, 5xx, 429) are; a 401/403/404/410/424 fails at once because asking again cannot change the answer.

The policy itself (how many tries, how long between them) is the package's one ``RetryPolicy``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from tracelet_artifacts import retry
from tracelet_artifacts.ci.errors import CIProviderError, DownloadIntegrityError, RateLimitedError
from tracelet_artifacts.retry import RetryPolicy

__all__ = ["HTTP_RETRY", "RetryPolicy", "call_with_retries", "is_retryable"]

logger = logging.getLogger("tracelet_artifacts.ci")

T = TypeVar("T")

# The CI bridge's default: five tries, 0.5 s doubling to at most 30 s, ±10 % jitter.
HTTP_RETRY = RetryPolicy(max_attempts=5, backoff_s=0.5, backoff_max_s=30.0, jitter=0.1)


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
    return retry.call_with_retries(fn, policy, retryable=is_retryable, what=what, sleep=sleep, log=logger)
