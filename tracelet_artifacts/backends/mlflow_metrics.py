"""Params and metrics for the MLflow adapter: checked at the call, sent in batches from one background thread
so the training loop never waits on MLflow."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

from tracelet_artifacts.errors import DeliveryError

log = logging.getLogger("tracelet_artifacts.backends.mlflow")

_KEY = re.compile(r"^[/\w.\- :]*$")
MAX_QUEUED_METRICS = 100_000


def checked_key(item: Any) -> Any:
    """Refuse at the call (not later in the background) a param or metric name MLflow would refuse."""
    if not _KEY.match(item.key) or len(item.key) > 250:
        raise DeliveryError(f"MLflow refuses the name {item.key!r}: use letters, digits, '_', '-', '.', ' ', ':' "
                            "and '/' (at most 250 characters).", retryable=False)
    return item


class BatchSender:
    """Sends params and metrics from one background thread, so the training loop never waits on MLflow.

    Transient failures keep the items and retry with backoff; a params batch MLflow refuses is retried one
    param at a time (so one conflicting param does not drop the others); a refused metrics batch is dropped
    with a warning. Nothing is persisted: what is still queued when the process dies is lost.
    """

    def __init__(self, send: Callable[[list[Any], list[Any]], None], backoff_max_s: float = 30.0) -> None:
        self._send = send
        self._backoff_max_s = backoff_max_s
        self._params: list[Any] = []
        self._metrics: list[Any] = []
        self._busy = self.closed = self._flushing = False
        self._cond = threading.Condition()
        self._kick = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tracelet-mlflow-metrics", daemon=True)
        self._thread.start()

    def add(self, params: list[Any], metrics: list[Any]) -> None:
        with self._cond:
            self._params.extend(params)
            self._metrics.extend(metrics)
            if len(self._metrics) > MAX_QUEUED_METRICS:
                log.warning("MLflow is not taking metrics; dropping the %d oldest queued values.",
                            len(self._metrics) - MAX_QUEUED_METRICS)
                del self._metrics[:len(self._metrics) - MAX_QUEUED_METRICS]
            self._cond.notify_all()

    def _take(self) -> tuple[list[Any], list[Any]] | None:
        with self._cond:
            self._cond.wait_for(lambda: self._params or self._metrics or self.closed)
            if not (self._params or self._metrics):
                return None
            self._busy = True
            if self._params:
                params, self._params = self._params[:100], self._params[100:]
                return params, []
            metrics, self._metrics = self._metrics[:1000], self._metrics[1000:]
            return [], metrics

    def _run(self) -> None:
        failures = 0
        while (batch := self._take()) is not None:
            params, metrics = batch
            delay = 0.0
            try:
                self._send(params, metrics)
                failures = 0
            except DeliveryError as exc:
                if exc.retryable:
                    failures += 1
                    delay = min(0.5 if self._flushing else self._backoff_max_s, 0.5 * 2 ** (failures - 1))
                    log.warning("MLflow params/metrics not sent (retry in %.1fs): %s", delay, exc)
                    with self._cond:
                        self._params[:0], self._metrics[:0] = params, metrics
                else:
                    self._refused(params, metrics, exc)
            except Exception:
                log.exception("Sending params/metrics to MLflow failed; %d item(s) dropped", len(params + metrics))
            with self._cond:
                self._busy = False
                self._cond.notify_all()
            if delay:
                self._kick.wait(delay)
                self._kick.clear()

    def _refused(self, params: list[Any], metrics: list[Any], exc: DeliveryError) -> None:
        if len(params) > 1:
            for param in params:
                try:
                    self._send([param], [])
                except DeliveryError as one:
                    log.warning("MLflow refused param %r: %s", param.key, one)
        else:
            log.warning("MLflow refused %d param(s) and %d metric value(s): %s", len(params), len(metrics), exc)

    def flush(self, timeout: float | None = None) -> bool:
        self._flushing = True  # retry every 0.5 s while someone waits
        self._kick.set()  # and cut the current backoff short
        try:
            with self._cond:
                return self._cond.wait_for(lambda: not (self._params or self._metrics or self._busy), timeout)
        finally:
            self._flushing = False

    def close(self, timeout: float | None = None) -> bool:
        done = self.flush(timeout)
        with self._cond:
            self.closed = True
            self._params.clear()
            self._metrics.clear()
            self._cond.notify_all()
        return done


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings become dotted keys (``{"opt": {"lr": 1}}`` → ``{"opt.lr": 1}``)."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        full = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{full}."))
        else:
            flat[full] = value
    return flat
