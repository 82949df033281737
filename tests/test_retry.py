"""One retry policy for the whole package: delivery and the CI bridge share the type, its names and its
backoff; the bottom-floor module it lives in imports nothing else of the package."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

import tracelet_artifacts.retry as retry_module
from tracelet_artifacts.ci.retry import RetryPolicy as CIRetryPolicy
from tracelet_artifacts.delivery import RetryPolicy as DeliveryRetryPolicy
from tracelet_artifacts.retry import RetryPolicy, call_with_retries


def test_delivery_and_the_ci_bridge_use_the_same_type() -> None:
    assert DeliveryRetryPolicy is RetryPolicy is CIRetryPolicy


def test_the_ci_names_are_aliases_of_the_delivery_names() -> None:
    ci = RetryPolicy(attempts=3, base_delay=0.25, max_delay=4.0, jitter=0.0)
    assert ci == RetryPolicy(max_attempts=3, backoff_s=0.25, backoff_max_s=4.0, jitter=0.0)
    assert (ci.attempts, ci.base_delay, ci.max_delay) == (3, 0.25, 4.0)
    assert RetryPolicy(4, 0.5, 9.0) == RetryPolicy(max_attempts=4, backoff_s=0.5, backoff_max_s=9.0)


def test_giving_a_name_and_its_alias_with_different_values_is_refused() -> None:
    with pytest.raises(TypeError, match="attempts"):
        RetryPolicy(max_attempts=3, attempts=5)


@pytest.mark.parametrize("kwargs", [{"max_attempts": 0}, {"backoff_s": -1.0}, {"jitter": -0.1}])
def test_impossible_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_delays_double_are_capped_and_one_fewer_than_the_attempts() -> None:
    policy = RetryPolicy(max_attempts=5, backoff_s=1.0, backoff_max_s=3.0, jitter=0.0)
    assert list(policy.delays()) == [1.0, 2.0, 3.0, 3.0]
    spread = [RetryPolicy(backoff_s=1.0, jitter=0.1).delay(1) for _ in range(50)]
    assert all(0.9 <= d <= 1.1 for d in spread)


def test_the_policy_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        RetryPolicy().max_attempts = 9  # type: ignore[misc]
    assert dataclasses.replace(RetryPolicy(), max_attempts=2).max_attempts == 2


def test_call_with_retries_stops_at_a_failure_the_caller_says_is_final() -> None:
    calls: list[int] = []
    waits: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("down")
        return "up"

    policy = RetryPolicy(max_attempts=4, backoff_s=0.1, jitter=0.0)
    assert call_with_retries(flaky, policy, retryable=lambda e: isinstance(e, ConnectionError), what="x",
                             sleep=waits.append) == "up"  # fmt: skip
    assert waits == [0.1, 0.2]
    with pytest.raises(KeyError):
        call_with_retries(lambda: {}["k"], policy, retryable=lambda e: False, what="x", sleep=waits.append)
    assert waits == [0.1, 0.2]


def test_the_retry_module_imports_nothing_else_of_the_package() -> None:
    tree = ast.parse(Path(retry_module.__file__).read_text(encoding="utf-8"))
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [name for name in imported if name.startswith("tracelet_artifacts")]
