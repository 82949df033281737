"""Background delivery: one worker thread per backend sends the outbox's pending deliveries in order.

Every delivery is already in the catalog's outbox before a worker sees it, and is marked done only when
the adapter returns a receipt; failures go back to the outbox with exponential backoff. Nothing here
raises into the caller's code. ``sync_outbox`` delivers what earlier (stopped or killed) runs left.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tracelet_artifacts.backends import registry
from tracelet_artifacts.backends.base import BackendAdapter, Delivery, RunContext
from tracelet_artifacts.errors import DeliveryError, TraceletError
from tracelet_artifacts.procs import owner_is_dead, process_owner
from tracelet_artifacts.redact import redact_text
from tracelet_artifacts.retry import RetryPolicy
from tracelet_artifacts.routing import LOCAL, BackendPlan, RoutePlan
from tracelet_artifacts.settings import option_sources
from tracelet_artifacts.store.embedded import EmbeddedStore
from tracelet_artifacts.store.outbox import OutboxItem
from tracelet_artifacts.values import ArtifactVersion, Receipt

log = logging.getLogger(__name__)
ProgressFn = Callable[[int, int], None]
WatchFn = Callable[["FlushResult"], None]


@dataclass(frozen=True)
class FlushResult:
    """Outbox counts for a run after a flush: done, pending (incl. in flight) and failed; and the bytes of
    the versions those deliveries carry (done, and all of them), for progress bars."""

    done: int
    pending: int
    failed: int
    done_bytes: int = 0
    total_bytes: int = 0

    @property
    def complete(self) -> bool:
        return self.pending == 0 and self.failed == 0


class DeliveryQueue:
    """Delivers one run's outbox to its adapters in the background.

    Example::

        queue = DeliveryQueue(store, {"mlflow": adapter}, run_id="abc")
        queue.start()
        queue.wake("mlflow")          # after a new outbox row
        queue.close(timeout=60)       # flushes, then stops the workers
    """

    def __init__(
        self,
        store: EmbeddedStore,
        adapters: Mapping[str, BackendAdapter],
        *,
        run_id: str,
        retry: RetryPolicy | None = None,
        lease_s: float = 600.0,
        poll_s: float = 1.0,
        max_calls: int = 100_000,
        late: Mapping[str, Callable[[], BackendAdapter]] | None = None,
    ) -> None:
        self.store = store
        self.adapters = dict(adapters)
        # Backends whose run could not start yet: their worker retries the start with backoff, then delivers.
        self._late = dict(late or {})
        self.run_id = run_id
        self.retry = retry or RetryPolicy()
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.owner = f"{process_owner()}:{uuid.uuid4().hex[:8]}"
        backends = [*self.adapters, *self._late]
        self._wake = {name: threading.Event() for name in backends}
        self._calls: dict[str, deque[tuple[str, Callable[[], None]]]] = {
            name: deque(maxlen=max_calls) for name in backends}
        self._call_failures = dict.fromkeys(backends, 0)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Return orphaned deliveries to the queue and start one worker per backend."""
        self.store.outbox.release_orphans(owner_is_dead)
        for name in self._wake:
            thread = threading.Thread(target=self._work, args=(name,), name=f"tracelet-deliver-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def submit(self, version: ArtifactVersion, plan: RoutePlan) -> dict[str, Receipt]:
        """Step 5 of the write path: hand a committed version (its outbox rows already written) to the
        workers; return a receipt per planned backend.

        ``local`` is done (the store holds the version); a backend this run already delivered identical
        content to returns that receipt; every other backend is ``pending``.
        """
        delivered = self.store.outbox.delivered(version.row_id, self.run_id)
        receipts: dict[str, Receipt] = {}
        for backend in plan.targets:
            if backend == LOCAL:
                receipts[LOCAL] = Receipt(LOCAL, "done", version.name, version.version, version.digest, version.label,
                                          f"tracelet://{version.ref}", tuple(e.path for e in version.manifest.entries))
            elif backend in delivered:
                receipts[backend] = Receipt.from_dict(delivered[backend])
            else:
                receipts[backend] = Receipt(backend, "pending", version.name, version.version)
        self.wake()
        return receipts

    def wake(self, backend: str | None = None) -> None:
        """Tell a backend's worker (or all) that new deliveries are waiting."""
        for name, event in self._wake.items():
            if backend is None or name == backend:
                event.set()

    def call(self, backend: str, what: str, func: Callable[[], None]) -> None:
        """Run ``func`` (a params/metrics call) on the backend's worker, in order, retrying while it fails.

        Calls live in memory only (bounded: the oldest are dropped past ``max_calls``).
        """
        calls = self._calls[backend]
        if len(calls) == calls.maxlen:
            log.warning("%s: too many queued calls; dropping the oldest (%s)", backend, calls[0][0])
        calls.append((what, func))
        self._wake[backend].set()

    def _run_calls(self, backend: str) -> bool:
        """Run queued calls; False when there were none. A failing call is retried with backoff."""
        calls = self._calls[backend]
        if not calls:
            return False
        while calls and not self._stop.is_set():
            what, func = calls[0]
            try:
                func()
            except Exception as exc:
                self._call_failures[backend] += 1
                failures = self._call_failures[backend]
                if failures >= self.retry.max_attempts:
                    log.warning("%s: %s failed %d times, dropped: %s", backend, what, failures, exc)
                    calls.popleft()
                    self._call_failures[backend] = 0
                else:
                    self._stop.wait(self.retry.delay(failures))  # new artifacts must not cut the backoff short
                return True
            calls.popleft()
            self._call_failures[backend] = 0
        return True

    def _start_late(self, backend: str) -> bool:
        """Try once more to start a backend whose run could not start; False (after a backoff) if it still fails."""
        attempt = self._call_failures[backend] + 1
        try:
            self.adapters[backend] = self._late[backend]()
        except Exception as exc:
            self._call_failures[backend] = attempt
            log.warning("%s still cannot start (attempt %d): %s", backend, attempt, exc)
            self._stop.wait(self.retry.delay(attempt))
            return False
        del self._late[backend]
        self._call_failures[backend] = 0
        log.info("%s started; delivering what waited for it", backend)
        return True

    def _work(self, backend: str) -> None:
        while not self._stop.is_set():
            if backend in self._late and not self._start_late(backend):
                continue
            if self._run_calls(backend):
                continue
            try:
                items = self.store.outbox.claim(self.owner, self.lease_s, run_id=self.run_id, backend=backend,
                                                 limit=1)
            except Exception:  # a locked or broken catalog must not kill the worker
                log.exception("Could not read the outbox; retrying in %.1fs", self.poll_s)
                items = []
            if not items:
                self._wake[backend].wait(self.poll_s)
                self._wake[backend].clear()
                continue
            self.deliver(items[0])

    def deliver(self, item: OutboxItem) -> bool:
        """Send one claimed delivery; record the receipt or schedule a retry. True when done."""
        adapter = self.adapters.get(item.backend)
        try:
            if adapter is None:
                raise DeliveryError(f"Backend {item.backend!r} is not configured in this process.", retryable=True)
            record = self.store.catalog.version_by_id(item.version_id)
            self.store.ensure_local(record.manifest)  # blobs in a bucket: fetched into this machine's cache
            delivery = Delivery(record.manifest, record.version, BackendPlan.from_dict(item.plan),
                                self.store.blobs.root, record.aliases, self.store.blobs.uri_prefix,
                                self.store.digests.hexdigest)
            receipt = adapter.log(delivery)
            self.store.outbox.complete(item.id, receipt.to_dict())
            log.debug("Delivered %s to %s", record.ref, item.backend)
            return True
        except Exception as exc:  # every failure goes back to the outbox; none reaches the caller
            retryable = not (isinstance(exc, DeliveryError) and not exc.retryable)
            give_up = not retryable or item.attempts >= self.retry.max_attempts
            message = redact_text(f"{type(exc).__name__}: {exc}")
            log.warning("Delivery %d to %s failed (attempt %d%s): %s", item.id, item.backend, item.attempts,
                        ", giving up until `tracelet-artifacts sync`" if give_up else ", will retry", message)
            try:
                self.store.outbox.retry_later(item.id, message, self.retry.delay(item.attempts), give_up=give_up)
            except Exception:
                log.exception("Could not record the failed delivery %d; its lease will expire", item.id)
            return False

    def counts(self, *, every_backend: bool = False) -> FlushResult:
        """Outbox counts of the run for the running adapters (or for every backend the run routed to)."""
        backends = None if every_backend else list(self.adapters)
        counts = self.store.outbox.counts(self.run_id, backends)
        sizes = self.store.outbox.bytes_by_status(self.run_id, backends)
        # Params/metrics calls live in memory: they count while a started backend can still take them.
        queued = sum(len(calls) for name, calls in self._calls.items() if name in self.adapters)
        return FlushResult(counts.get("done", 0), counts.get("pending", 0) + counts.get("inflight", 0) + queued,
                           counts.get("failed", 0), sizes.get("done", 0), sum(sizes.values()))

    def flush(self, timeout: float | None = None, progress: ProgressFn | None = None,
              watch: WatchFn | None = None) -> FlushResult:
        """Wait until every delivery of the run is done or failed, or ``timeout`` passes. ``progress(done,
        total)`` gets the delivery counts, ``watch(result)`` the whole FlushResult (bytes too) as they move."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self.wake()
        while True:
            result = self.counts()
            if progress:
                progress(result.done, result.done + result.pending + result.failed)
            if watch:
                watch(result)
            if result.pending == 0 or (deadline is not None and time.monotonic() >= deadline):
                return result
            time.sleep(0.05)

    def close(self, timeout: float | None = None, progress: ProgressFn | None = None,
              watch: WatchFn | None = None) -> FlushResult:
        """Flush (up to ``timeout``), then stop the workers; what is left stays in the outbox."""
        result = self.flush(timeout, progress, watch)
        self._stop.set()
        self.wake()
        for thread in self._threads:
            thread.join(timeout=5.0)
        dropped = sum(len(calls) for calls in self._calls.values())
        if dropped:
            log.warning("%d params/metrics call(s) never reached their backend (kept in memory only).", dropped)
            for calls in self._calls.values():
                calls.clear()
        result = self.counts(every_backend=True)  # deliveries to a backend that could not start count too
        if result.pending or result.failed:
            log.warning("%d delivery(ies) still pending and %d failed; `tracelet-artifacts sync` delivers them.",
                        result.pending, result.failed)
        return result


def start_adapter(
    store: EmbeddedStore, run_id: str, experiment: str, name: str, options: Mapping[str, Any] | None,
    sources: Mapping[str, str] | None = None,
) -> BackendAdapter:
    """Create an adapter and start (or resume, from the saved state) its run; save the state it returns.

    ``sources`` says where each option was set (for ``resolve_target``). When nothing configured the
    backend, one INFO line says where its data goes and how to change that.
    """
    _, saved = store.outbox.run_state(run_id)
    adapter = registry.create(name, options)
    adapter.option_sources = dict(sources or {})
    run = RunContext(run_id, experiment, store.root, saved.get(name, {}), store=store)
    state = adapter.start_run(run)
    store.outbox.save_backend_state(run_id, name, state)
    try:
        target = adapter.resolve_target(run)
    except Exception as exc:  # describing the target is a courtesy; it never stops a run
        log.debug("Could not describe where %s sends its data: %s", name, exc)
    else:
        if target.embedded_default:
            log.info(target.announcement())
    return adapter


def open_adapters(
    store: EmbeddedStore,
    run_id: str,
    experiment: str,
    backends: list[str],
    options: Mapping[str, Mapping[str, Any]],
    sources: Mapping[str, Mapping[str, str]] | None = None,
) -> tuple[dict[str, BackendAdapter], dict[str, str]]:
    """Create and start (or resume) adapters for a run; return (adapters, errors by backend)."""
    adapters: dict[str, BackendAdapter] = {}
    errors: dict[str, str] = {}
    for name in backends:
        try:
            adapters[name] = start_adapter(store, run_id, experiment, name, options.get(name),
                                           (sources or {}).get(name))
        except Exception as exc:
            errors[name] = redact_text(f"{type(exc).__name__}: {exc}")
            log.warning("Backend %s is unavailable for run %s: %s", name, run_id, errors[name])
    return adapters, errors


def sync_outbox(
    store: EmbeddedStore,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    timeout: float | None = None,
    include_live: bool = False,
    progress: ProgressFn | None = None,
    watch: Callable[[str, FlushResult], None] | None = None,
) -> dict[str, FlushResult]:
    """Deliver what stopped or killed runs left in the outbox; return the result per run.

    Runs whose owning process is still alive are skipped unless ``include_live``. ``watch(run_id, result)``
    follows each run's deliveries (counts and bytes) while they finish.
    """
    store.outbox.release_orphans(owner_is_dead)
    store.outbox.requeue_failed()
    results: dict[str, FlushResult] = {}
    for run_id, owner, _ended in store.outbox.runs_with_outstanding():
        if owner and not owner_is_dead(owner) and not include_live:
            log.info("Run %s is still active in %s; leaving its deliveries to it.", run_id, owner)
            continue
        experiment, _ = store.outbox.run_state(run_id)
        adapters, _errors = open_adapters(store, run_id, experiment, store.outbox.backends_of_run(run_id),
                                          options or {}, option_sources(options or {}))
        queue = DeliveryQueue(store, adapters, run_id=run_id, retry=RetryPolicy(max_attempts=3, backoff_s=0.2))
        queue.start()
        results[run_id] = queue.close(timeout, progress, None if watch is None else functools.partial(watch, run_id))
        for adapter in adapters.values():
            _end_quietly(adapter)
    return results


def _end_quietly(adapter: BackendAdapter) -> None:
    try:
        adapter.end_run()
    except TraceletError as exc:
        log.warning("Closing the %s run failed: %s", adapter.name, exc)
    except Exception:
        log.exception("Closing the %s run failed", adapter.name)
