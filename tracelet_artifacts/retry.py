"""The one retry policy of the package: how many tries and how long to wait between them, for HTTP
requests to CI providers and for deliveries to tracking backends alike (imports nothing else of ours).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
N = TypeVar("N", int, float)
logger = logging.getLogger("tracelet_artifacts")


@dataclass(frozen=True, init=False)
class RetryPolicy:
    """Exponential backoff: the wait after try ``n`` is ``backoff_s * multiplier**(n-1)``, capped at
    ``backoff_max_s``, then spread by ±``jitter`` (a fraction) so that many clients do not retry in step.

    The CI bridge's names are accepted too: ``attempts`` for ``max_attempts``, ``base_delay`` for
    ``backoff_s`` and ``max_delay`` for ``backoff_max_s`` (as keywords, and as read-only properties).

    >>> policy = RetryPolicy(max_attempts=3, backoff_s=1.0, jitter=0.0)
    >>> [policy.delay(1), policy.delay(2)], list(policy.delays())
    ([1.0, 2.0], [1.0, 2.0])
    """

    max_attempts: int
    backoff_s: float
    backoff_max_s: float
    multiplier: float
    jitter: float

    def __init__(
        self,
        max_attempts: int | None = None,
        backoff_s: float | None = None,
        backoff_max_s: float | None = None,
        multiplier: float = 2.0,
        jitter: float = 0.2,
        *,
        attempts: int | None = None,
        base_delay: float | None = None,
        max_delay: float | None = None,
    ) -> None:
        tries = _one("max_attempts", max_attempts, "attempts", attempts, 6)
        values = {
            "backoff_s": _one("backoff_s", backoff_s, "base_delay", base_delay, 0.5),
            "backoff_max_s": _one("backoff_max_s", backoff_max_s, "max_delay", max_delay, 60.0),
            "multiplier": multiplier,
            "jitter": jitter,
        }
        if tries < 1:
            raise ValueError(f"a retry policy needs at least one attempt, got {tries}")
        if min(values.values()) < 0:
            raise ValueError(f"retry delays, multiplier and jitter must not be negative: {values}")
        object.__setattr__(self, "max_attempts", tries)
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @property
    def attempts(self) -> int:
        """``max_attempts``, by the CI bridge's name."""
        return self.max_attempts

    @property
    def base_delay(self) -> float:
        """``backoff_s``, by the CI bridge's name."""
        return self.backoff_s

    @property
    def max_delay(self) -> float:
        """``backoff_max_s``, by the CI bridge's name."""
        return self.backoff_max_s

    def delay(self, attempt: int) -> float:
        """Seconds to wait after the ``attempt``-th failed try (1 for the first)."""
        base = min(self.backoff_max_s, self.backoff_s * self.multiplier ** max(0, attempt - 1))
        return max(0.0, base * random.uniform(1 - self.jitter, 1 + self.jitter))

    def delays(self) -> Iterator[float]:
        """The waits between consecutive tries (one fewer than ``max_attempts``)."""
        return (self.delay(attempt) for attempt in range(1, self.max_attempts))


def _one(name: str, value: N | None, alias: str, alias_value: N | None, default: N) -> N:
    if value is not None and alias_value is not None and value != alias_value:
        raise TypeError(f"RetryPolicy got both {name}={value!r} and {alias}={alias_value!r}; give one")
    chosen = value if value is not None else alias_value
    return default if chosen is None else chosen


def call_with_retries(
    fn: Callable[[], T],
    policy: RetryPolicy,
    *,
    retryable: Callable[[BaseException], bool],
    what: str,
    sleep: Callable[[float], None] = time.sleep,
    log: logging.Logger = logger,
) -> T:
    """Call ``fn`` until it returns, raises an error ``retryable`` refuses, or the tries run out."""
    delays = policy.delays()
    while True:
        try:
            return fn()
        except Exception as exc:
            if not retryable(exc):
                raise
            wait = next(delays, None)
            if wait is None:
                raise
            log.warning("%s failed (%s); retrying in %.2fs", what, type(exc).__name__, wait)
            sleep(wait)
