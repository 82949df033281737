"""Delivery: the durable outbox, retries with backoff, never raising, sync, and recovery after a crash."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers_adapters import AdapterFiles, FlakyAdapter, read_records

from tracelet_artifacts import Capabilities, EmbeddedStore, RoutingPolicy, TraceletArtifact
from tracelet_artifacts.backends import registry
from tracelet_artifacts.backends.base import BackendAdapter, Delivery, Receipt
from tracelet_artifacts.delivery import DeliveryQueue, RetryPolicy, sync_outbox
from tracelet_artifacts.errors import DeliveryError
from tracelet_artifacts.procs import HOST, owner_is_dead, process_owner
from tracelet_artifacts.store.catalog import ArtifactVersion

pytestmark = pytest.mark.usefixtures("isolated")
FAST = RetryPolicy(max_attempts=3, backoff_s=0.02, backoff_max_s=0.1)


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedStore:
    return EmbeddedStore(tmp_path / "store", fsync=False)


def dead_pid() -> int:
    """The pid of a process that has already exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def log_for(store: EmbeddedStore, run_id: str, backend: str = "flaky", value: object = 1,
            owner: str | None = None) -> ArtifactVersion:
    """Log a small config artifact in ``run_id`` with one delivery planned for ``backend``."""
    store.catalog.add_run(run_id, "exp", owner or process_owner())
    policy = RoutingPolicy({backend: Capabilities(references=True), "local": Capabilities(references=True)})
    art = TraceletArtifact("cfg", "config").add_object({"value": value}, "hparams")
    return store.log(art, run_id=run_id,
                     plan=lambda m: {p.backend: p.to_dict() for p in policy.plan(m).backends if p.backend != "local"})


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def queue_for(store: EmbeddedStore, adapter: BackendAdapter, run_id: str = "run1",
              retry: RetryPolicy = FAST) -> DeliveryQueue:
    return DeliveryQueue(store, {adapter.name: adapter}, run_id=run_id, retry=retry, poll_s=0.02)


class GateAdapter(BackendAdapter):
    """Blocks in ``log`` until released, so a test can look at the outbox mid-delivery."""

    name = "flaky"
    capabilities = Capabilities(references=True)

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def log(self, delivery: Delivery) -> Receipt:
        self.calls += 1
        self.entered.set()
        assert self.release.wait(15)
        return delivery.receipt(self.name)

    def list(self, type_filter=None):  # type: ignore[no-untyped-def]
        return []

    def fetch(self, name, version, dest):  # type: ignore[no-untyped-def]
        raise NotImplementedError


class FailingAdapter(GateAdapter):
    """Fails the first ``failures`` calls (with the given exception), then confirms; records call times."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        super().__init__()
        self.failures = failures
        self.error = error or DeliveryError("backend down")
        self.times: list[float] = []

    def log(self, delivery: Delivery) -> Receipt:
        self.times.append(time.monotonic())
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return delivery.receipt(self.name)


def test_a_delivery_is_in_the_outbox_before_it_starts(store: EmbeddedStore) -> None:
    record = log_for(store, "run1")
    [item] = store.catalog.outbox()
    assert (item.version_id, item.backend, item.run_id, item.status, item.attempts) == (
        record.row_id, "flaky", "run1", "pending", 0)
    assert item.plan["uploads"] == ["hparams.json"]


def test_a_delivery_is_marked_done_only_after_the_backend_confirms(store: EmbeddedStore) -> None:
    log_for(store, "run1")
    adapter = GateAdapter()
    queue = queue_for(store, adapter)
    queue.start()
    try:
        assert adapter.entered.wait(10)
        assert [i.status for i in store.catalog.outbox()] == ["inflight"]
        assert store.catalog.receipts("cfg", 1) == []
        adapter.release.set()
        result = queue.close(timeout=10)
    finally:
        adapter.release.set()
    assert (result.done, result.pending, result.failed) == (1, 0, 0)
    assert [i.status for i in store.catalog.outbox()] == ["done"]
    [receipt] = store.catalog.receipts("cfg", 1)
    assert (receipt["backend"], receipt["status"], receipt["uploaded"]) == ("flaky", "done", ["hparams.json"])


def test_the_adapter_receives_the_stored_content(store: EmbeddedStore, adapters: AdapterFiles) -> None:
    log_for(store, "run1", value="payload")
    adapter = registry.create("flaky", adapters.options())
    queue = queue_for(store, adapter)
    queue.start()
    assert queue.close(timeout=10).complete
    [delivered] = read_records(adapters.record)
    assert (delivered["artifact"], delivered["version"], delivered["uploads"]) == ("cfg", 1, ["hparams.json"])
    assert b'"payload"' in bytes.fromhex(delivered["contents"]["hparams.json"])


def test_failures_are_retried_with_growing_backoff(store: EmbeddedStore) -> None:
    log_for(store, "run1")
    adapter = FailingAdapter(failures=2)
    queue = queue_for(store, adapter, retry=RetryPolicy(max_attempts=5, backoff_s=0.1, backoff_max_s=5))
    queue.start()
    result = queue.close(timeout=15)
    assert result.done == 1 and adapter.calls == 3
    first_gap, second_gap = adapter.times[1] - adapter.times[0], adapter.times[2] - adapter.times[1]
    assert first_gap >= 0.08  # 0.1 s minus jitter
    assert second_gap >= 0.16  # doubled
    [item] = store.catalog.outbox()
    assert (item.status, item.attempts, item.last_error) == ("done", 3, None)


def test_retry_delay_doubles_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(max_attempts=10, backoff_s=0.5, backoff_max_s=3.0)
    for attempts, base in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (9, 3.0)]:
        delays = [policy.delay(attempts) for _ in range(50)]
        assert all(base * 0.8 <= d <= base * 1.2 for d in delays)


def test_a_backend_that_keeps_failing_ends_failed_without_raising(store: EmbeddedStore) -> None:
    log_for(store, "run1")
    adapter = FailingAdapter(failures=100, error=RuntimeError("connection refused"))
    queue = queue_for(store, adapter)
    queue.start()
    result = queue.close(timeout=15)
    assert (result.done, result.pending, result.failed) == (0, 0, 1)
    assert adapter.calls == FAST.max_attempts
    [item] = store.catalog.outbox()
    assert item.status == "failed"
    assert "RuntimeError: connection refused" in (item.last_error or "")


def test_a_non_retryable_failure_is_not_retried(store: EmbeddedStore) -> None:
    log_for(store, "run1")
    adapter = FailingAdapter(failures=100, error=DeliveryError("bad credentials", retryable=False))
    queue = queue_for(store, adapter)
    queue.start()
    assert queue.close(timeout=10).failed == 1
    assert adapter.calls == 1


def test_sync_delivers_a_failed_delivery_once_the_backend_works(store: EmbeddedStore,
                                                               adapters: AdapterFiles) -> None:
    log_for(store, "run1")
    adapters.down()
    queue = queue_for(store, registry.create("flaky", adapters.options()))
    queue.start()
    assert queue.close(timeout=15).failed == 1
    store.catalog.end_run("run1")
    assert read_records(adapters.record) == []

    adapters.up()
    results = sync_outbox(store, {"flaky": adapters.options()}, timeout=15)
    assert results["run1"].complete and results["run1"].done == 1
    assert len(read_records(adapters.record)) == 1
    assert [i.status for i in store.catalog.outbox()] == ["done"]
    assert sync_outbox(store, {"flaky": adapters.options()}, timeout=5) == {}  # nothing left to do
    assert len(read_records(adapters.record)) == 1


def test_sync_leaves_a_live_runs_deliveries_to_it(store: EmbeddedStore, adapters: AdapterFiles) -> None:
    log_for(store, "live-run")  # owned by this (live) process
    assert sync_outbox(store, {"flaky": adapters.options()}, timeout=5) == {}
    assert read_records(adapters.record) == []
    results = sync_outbox(store, {"flaky": adapters.options()}, timeout=10, include_live=True)
    assert results["live-run"].done == 1


def test_sync_reports_deliveries_to_a_backend_it_could_not_open_as_pending(store: EmbeddedStore,
                                                                          adapters: AdapterFiles) -> None:
    log_for(store, "run1", owner=f"{HOST}:{dead_pid()}")
    results = sync_outbox(store, {"flaky": adapters.options(fail_start=True)}, timeout=1)
    assert not results["run1"].complete
    assert results["run1"].pending == 1
    assert [i.status for i in store.catalog.outbox()] == ["pending"]


def test_sync_reports_progress(store: EmbeddedStore, adapters: AdapterFiles) -> None:
    log_for(store, "run1", owner=f"{HOST}:{dead_pid()}")
    seen: list[tuple[int, int]] = []
    sync_outbox(store, {"flaky": adapters.options()}, timeout=10, progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1] == (1, 1)


def test_relogging_in_the_same_run_queues_one_delivery(store: EmbeddedStore, adapters: AdapterFiles) -> None:
    log_for(store, "run1")
    log_for(store, "run1")
    assert len(store.catalog.outbox()) == 1


def test_owner_is_dead_only_for_exited_processes_on_this_host() -> None:
    pid = dead_pid()
    assert owner_is_dead(f"{HOST}:{pid}")
    assert owner_is_dead(f"{HOST}:{pid}:abcd1234")
    assert not owner_is_dead(process_owner())
    assert not owner_is_dead(f"some-other-host:{pid}")
    assert not owner_is_dead("garbage")


def test_a_claim_is_taken_by_one_owner_only(store: EmbeddedStore) -> None:
    for value in range(6):
        log_for(store, "run1", value=value)
    claimed: list[int] = []
    lock = threading.Lock()

    def grab(owner: str) -> None:
        while items := store.catalog.claim(owner, 600, limit=1):
            with lock:
                claimed.extend(i.id for i in items)

    threads = [threading.Thread(target=grab, args=(f"{HOST}:1:{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(claimed) == sorted(i.id for i in store.catalog.outbox())
    assert len(claimed) == 6


def test_an_expired_lease_is_claimed_again(store: EmbeddedStore) -> None:
    log_for(store, "run1")
    assert store.catalog.claim("a", lease_s=600) != []
    assert store.catalog.claim("b", lease_s=600) == []
    store.catalog.retry_later(store.catalog.outbox()[0].id, "x", 0)
    assert store.catalog.claim("b", lease_s=-1) != []  # an already-expired lease...
    assert store.catalog.claim("c", lease_s=600) != []  # ...is taken over


# -- crash recovery --------------------------------------------------------------------------------

def test_a_delivery_claimed_by_a_killed_worker_is_delivered_once_by_a_new_queue(
        store: EmbeddedStore, adapters: AdapterFiles) -> None:
    pid = dead_pid()
    log_for(store, "run1", owner=f"{HOST}:{pid}")
    [claimed] = store.catalog.claim(f"{HOST}:{pid}:deadbeef", lease_s=600)  # the worker then died
    assert store.catalog.outbox_item(claimed.id).status == "inflight"

    queue = queue_for(store, FlakyAdapter(adapters.options()))
    queue.start()
    result = queue.close(timeout=10)
    assert result.done == 1
    assert len(read_records(adapters.record)) == 1
    assert len(store.catalog.receipts("cfg", 1)) == 1


def test_a_delivery_claimed_by_a_killed_worker_is_delivered_once_by_sync(
        store: EmbeddedStore, adapters: AdapterFiles) -> None:
    pid = dead_pid()
    log_for(store, "run1", owner=f"{HOST}:{pid}")
    store.catalog.claim(f"{HOST}:{pid}:deadbeef", lease_s=600)
    results = sync_outbox(store, {"flaky": adapters.options()}, timeout=10)
    assert results["run1"].done == 1
    assert len(read_records(adapters.record)) == 1
    assert sync_outbox(store, {"flaky": adapters.options()}, timeout=5) == {}
    assert len(read_records(adapters.record)) == 1


def test_a_live_workers_claim_is_not_stolen(store: EmbeddedStore, adapters: AdapterFiles) -> None:
    log_for(store, "run1")
    store.catalog.claim(f"{process_owner()}:other", lease_s=600)
    queue = queue_for(store, FlakyAdapter(adapters.options()))
    queue.start()
    result = queue.close(timeout=0.3)
    assert result.pending == 1
    assert read_records(adapters.record) == []


CRASHING_RUN = textwrap.dedent("""
    import sys
    from tracelet_artifacts import Experiment, TraceletArtifact
    from tracelet_artifacts.backends import registry

    registry.register("flaky", "helpers_adapters:FlakyAdapter", clobber=True)
    options = {"flaky": {"crash": True}}
    exp = Experiment("killed", backend="flaky", config={"store_path": sys.argv[1], "backend_options": options})
    exp.start()
    art = TraceletArtifact("cfg", "config").add_object({"value": 42}, "hparams")
    exp.log_artifact(art)
    exp.stop()  # the worker kills the process inside the adapter, before it confirms
    print("not reached", flush=True)
""")


def test_a_process_killed_mid_delivery_is_delivered_once_after_restart(tmp_path: Path,
                                                                       adapters: AdapterFiles) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}
    done = subprocess.run([sys.executable, "-c", CRASHING_RUN, str(tmp_path / "store")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 17, done.stderr
    assert "not reached" not in done.stdout

    store = EmbeddedStore(tmp_path / "store", fsync=False)
    assert [i.status for i in store.catalog.outbox()] == ["inflight"]
    results = sync_outbox(store, {"flaky": adapters.options()}, timeout=15)
    assert [r.done for r in results.values()] == [1]
    [delivered] = read_records(adapters.record)
    assert (delivered["artifact"], delivered["version"]) == ("cfg", 1)
    assert b"42" in bytes.fromhex(delivered["contents"]["hparams.json"])
    assert sync_outbox(store, {"flaky": adapters.options()}, timeout=5) == {}
    assert len(read_records(adapters.record)) == 1
