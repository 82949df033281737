"""Experiment: lifecycle, log/get/list artifacts, backends chosen by name, and failures never reaching the caller."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers_adapters import AdapterFiles, read_records

from tracelet_artifacts import (
    ArtifactType,
    EmbeddedStore,
    Experiment,
    TraceletArtifact,
    TraceletSettings,
    sync_outbox,
)
from tracelet_artifacts.backends import registry
from tracelet_artifacts.backends.base import RemoteArtifact
from tracelet_artifacts.errors import (
    ArtifactStoreNotFoundError,
    BackendNotInstalledError,
    ConfigurationError,
    TraceletError,
    UnknownBackendError,
    VersionConflictError,
)
from tracelet_artifacts.store.catalog import ArtifactVersion

pytestmark = pytest.mark.usefixtures("isolated")


def fast(**values: Any) -> TraceletSettings:
    """Settings with quick retries, so a failing backend gives up within a second or two."""
    return TraceletSettings(**{"delivery_max_attempts": 2, "delivery_backoff_s": 0.01, "flush_timeout_s": 20,
                               **values})


def experiment(adapters: AdapterFiles, backend: Any = "flaky", **values: Any) -> Experiment:
    options = {"flaky": adapters.options(), "plain": adapters.options()}
    return Experiment("run-1", backend=backend, settings=fast(backend_options=options, **values))


def config_artifact(value: object = 1, name: str = "cfg") -> TraceletArtifact:
    return TraceletArtifact(name, ArtifactType.CONFIG).add_object({"value": value}, "hparams")


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# -- lifecycle -------------------------------------------------------------------------------------

def test_start_opens_the_store_in_the_working_folder_and_stop_closes_it(isolated: Path) -> None:
    exp = Experiment("run-1")
    assert not exp.started
    assert exp.start() is exp and exp.started
    assert (isolated / ".tracelet" / "catalog.db").is_file()
    assert exp.stop() is not None
    assert not exp.started
    assert exp.stop() is None  # stopping twice is harmless


def test_context_manager_starts_and_stops() -> None:
    with Experiment("run-1") as exp:
        assert exp.started
        exp.log_artifact(config_artifact())
    assert not exp.started


def test_context_manager_stops_even_when_the_block_raises() -> None:
    with pytest.raises(ValueError, match="boom"), Experiment("run-1") as exp:
        raise ValueError("boom")
    assert not exp.started


def test_logging_before_start_says_to_start_it_while_reading_says_nothing_is_logged_yet() -> None:
    exp = Experiment("run-1")
    with pytest.raises(TraceletError, match=r"call start\(\)"):
        exp.log_artifact(config_artifact())
    with pytest.raises(ArtifactStoreNotFoundError, match="nothing has been logged into"):
        exp.get_artifact("cfg")
    assert exp.list_artifacts() == [] and not Path(".tracelet").exists()  # reading creates no store


def test_store_path_comes_from_settings(tmp_path: Path) -> None:
    with Experiment("run-1", config={"store_path": str(tmp_path / "custom")}) as exp:
        exp.log_artifact(config_artifact())
    assert EmbeddedStore(tmp_path / "custom").get("cfg").ref == "cfg:v1"


def test_changing_the_working_folder_after_start_keeps_using_the_same_store(
        isolated: Path, monkeypatch: pytest.MonkeyPatch, adapters: AdapterFiles) -> None:
    exp = experiment(adapters).start()
    elsewhere = isolated / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # as Hydra or a training script might
    exp.log_artifact(config_artifact())
    result = exp.stop()
    assert result is not None and result.done == 1
    assert EmbeddedStore(isolated / ".tracelet").get("cfg").ref == "cfg:v1"
    assert list(elsewhere.iterdir()) == []


# -- backends by name ------------------------------------------------------------------------------

def test_unknown_backend_is_refused_with_the_known_names() -> None:
    with pytest.raises(UnknownBackendError, match=r"Unknown backend 'nosuch'.*local"):
        Experiment("run-1", backend=["nosuch"])


def test_unknown_backend_is_also_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        Experiment("run-1", backend="nosuch")


def test_backend_whose_sdk_is_missing_names_the_pip_command() -> None:
    registry.register("ghost", "tracelet_artifacts.backends.local:LocalAdapter", sdk="ghost_sdk_not_installed",
                      install="pip install 'tracelet-artifacts[ghost]'", clobber=True)
    with pytest.raises(BackendNotInstalledError, match=r"pip install 'tracelet-artifacts\[ghost\]'"):
        Experiment("run-1", backend=["ghost"])


def test_backend_whose_sdk_is_missing_without_a_hint_names_the_package() -> None:
    registry.register("ghost2", "tracelet_artifacts.backends.local:LocalAdapter", sdk="ghost_sdk_not_installed",
                      clobber=True)
    with pytest.raises(BackendNotInstalledError, match="pip install ghost_sdk_not_installed"):
        Experiment("run-1", backend="ghost2")


def test_local_is_implicit_and_never_listed_twice(adapters: AdapterFiles) -> None:
    assert experiment(adapters, backend=["flaky", "local", "flaky"]).backends == ["flaky"]


# -- logging ---------------------------------------------------------------------------------------

def test_log_artifact_returns_a_receipt_per_backend(adapters: AdapterFiles) -> None:
    with experiment(adapters) as exp:
        receipts = exp.log_artifact(config_artifact())
    assert set(receipts) == {"flaky", "local"}
    assert receipts["local"].status == "done" and receipts["local"].remote_version == "v1"
    assert receipts["flaky"].status in ("pending", "done")
    assert (receipts["flaky"].artifact, receipts["flaky"].version) == ("cfg", 1)


def test_stop_flushes_deliveries_to_the_backend(adapters: AdapterFiles, isolated: Path) -> None:
    exp = experiment(adapters).start()
    exp.log_artifact(config_artifact(1))
    exp.log_artifact(config_artifact(2))
    result = exp.stop()
    assert result is not None and (result.done, result.pending, result.failed) == (2, 0, 0)
    assert [(r["artifact"], r["version"]) for r in read_records(adapters.record)] == [("cfg", 1), ("cfg", 2)]
    receipts = EmbeddedStore(isolated / ".tracelet").catalog.receipts("cfg", 2)
    assert [(r["backend"], r["status"], r["uri"]) for r in receipts] == [("flaky", "done", "flaky://cfg/v2")]


def test_stop_reports_flush_progress(adapters: AdapterFiles) -> None:
    exp = experiment(adapters).start()
    for value in range(3):
        exp.log_artifact(config_artifact(value))
    seen: list[tuple[int, int]] = []
    exp.stop(progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (3, 3)
    assert all(done <= total for done, total in seen)


def test_relogging_same_content_creates_no_new_version_and_is_delivered_once(adapters: AdapterFiles) -> None:
    with experiment(adapters) as exp:
        first = exp.log_artifact(config_artifact("same"))
        wait_for(lambda: exp.store.outbox.counts(exp.run_id).get("done") == 1)  # the receipt is in, not just sent
        second = exp.log_artifact(config_artifact("same"))
    assert first["local"].version == second["local"].version == 1
    assert second["flaky"].status == "done"  # this run already delivered it
    assert len(read_records(adapters.record)) == 1


def test_explicit_version_and_aliases(adapters: AdapterFiles) -> None:
    with experiment(adapters) as exp:
        exp.log_artifact(config_artifact(1), aliases=["best"])
        exp.log_artifact(config_artifact(2))
        best = exp.get_artifact("cfg", "best")
        latest = exp.get_artifact("cfg")
    assert isinstance(best, ArtifactVersion) and best.version == 1
    assert isinstance(latest, ArtifactVersion) and latest.version == 2


def test_artifacts_are_routed_by_the_policy(adapters: AdapterFiles) -> None:
    with experiment(adapters, backend=["plain", "flaky"]) as exp:
        report = TraceletArtifact("r", "report").add_object({"acc": 1}, "metrics")
        assert exp.plan(report).targets == ("plain", "local")  # other types: first enabled backend
        assert exp.plan(config_artifact()).targets == ("plain", "flaky", "local")  # config: every backend
        receipts = exp.log_artifact(report)
    assert set(receipts) == {"plain", "local"}


def test_routing_override_from_the_environment_reaches_the_plan(adapters: AdapterFiles,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_ROUTING", '{"report": ["flaky"]}')
    options = {"flaky": adapters.options(), "plain": adapters.options()}
    exp = Experiment("run-1", backend=["plain", "flaky"], config={"backend_options": options})
    with exp:
        assert exp.plan(TraceletArtifact("r", "report").add_object({}, "m")).targets == ("flaky", "local")


def test_backends_and_their_options_from_the_environment(adapters: AdapterFiles,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_BACKENDS", "flaky")
    monkeypatch.setenv("TRACELET_BACKEND_OPTIONS", json.dumps({"flaky": adapters.options()}))
    with Experiment("run-1") as exp:
        assert exp.backends == ["flaky"]
        exp.log_artifact(config_artifact())
    assert [r["artifact"] for r in read_records(adapters.record)] == ["cfg"]


def test_size_threshold_from_settings_sends_large_files_as_references(adapters: AdapterFiles, isolated: Path) -> None:
    (isolated / "big.bin").write_bytes(b"x" * 4096)
    with experiment(adapters, backend=["flaky", "plain"], reference_threshold_mb=0.001) as exp:
        art = TraceletArtifact("data", "config").add_file(isolated / "big.bin").add_object({"a": 1}, "small")
        plan = exp.plan(art)
        exp.log_artifact(art)
    assert plan.for_backend("flaky").entry_references == ("big.bin",)
    assert plan.for_backend("plain").uploads == ("big.bin", "small.json")
    by_backend = {r["backend"]: r for r in read_records(adapters.record)}
    assert by_backend["flaky"]["uploads"] == ["small.json"] and by_backend["flaky"]["references"] == ["big.bin"]
    assert by_backend["plain"]["uploads"] == ["big.bin", "small.json"]


def test_disabled_artifacts_log_nothing(adapters: AdapterFiles, isolated: Path) -> None:
    exp = Experiment("run-1", backend="flaky", artifacts=False,
                     settings=fast(backend_options={"flaky": adapters.options()}))
    with exp:
        assert exp.log_artifact(config_artifact()) == {}
        assert exp.list_artifacts() == []
    assert read_records(adapters.record) == []


def test_disabled_by_environment(adapters: AdapterFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_ENABLE_ARTIFACTS", "false")
    with Experiment("run-1") as exp:
        assert exp.log_artifact(config_artifact()) == {}


def test_explicit_version_with_different_content_is_refused(adapters: AdapterFiles) -> None:
    with experiment(adapters) as exp:
        exp.log_artifact(config_artifact(1), version=1)
        with pytest.raises(VersionConflictError, match="immutable"):
            exp.log_artifact(config_artifact(2), version=1)
        assert exp.get_artifact("cfg").digest == exp.get_artifact("cfg", 1).digest  # type: ignore[union-attr]


def test_submit_artifact_logs_in_the_background_and_stop_waits_for_it(adapters: AdapterFiles) -> None:
    exp = experiment(adapters).start()
    future = exp.submit_artifact(config_artifact("bg"), aliases=["best"])
    result = exp.stop()
    receipts = future.result(timeout=0)
    assert receipts["local"].remote_version == "v1"
    assert result is not None and result.done == 1
    assert [r["artifact"] for r in read_records(adapters.record)] == ["cfg"]


def test_a_failed_background_log_stays_in_its_future(adapters: AdapterFiles, isolated: Path) -> None:
    (isolated / "gone.txt").write_text("x")
    art = TraceletArtifact("r", "report").add_file(isolated / "gone.txt")
    (isolated / "gone.txt").unlink()
    with experiment(adapters) as exp:
        future = exp.submit_artifact(art)
        assert isinstance(future.exception(timeout=20), TraceletError)


def test_a_burst_of_submits_blocks_the_caller_once_submit_queue_max_wait(
        adapters: AdapterFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    exp = experiment(adapters, backend=[], submit_queue_max=5).start()
    gate = threading.Event()
    real_ingest = exp.store.ingest
    monkeypatch.setattr(exp.store, "ingest", lambda *a, **k: (gate.wait(20), real_ingest(*a, **k))[1])
    handed: list[Any] = []
    producer = threading.Thread(target=lambda: handed.extend(exp.submit_artifact(config_artifact(i))
                                                             for i in range(12)))
    producer.start()
    wait_for(lambda: len(handed) == 5)
    time.sleep(0.2)
    assert len(handed) == 5 and producer.is_alive()  # the sixth waits: five are handed over, none stored
    gate.set()
    producer.join(20)
    assert not producer.is_alive() and [f.result(20)["local"].version for f in handed] == list(range(1, 13))
    exp.stop()


def test_sync_resumes_the_backend_run_the_experiment_opened(adapters: AdapterFiles, isolated: Path) -> None:
    adapters.down()
    exp = experiment(adapters).start()
    exp.log_artifact(config_artifact())
    exp.stop(timeout=20)
    adapters.up()
    sync_outbox(EmbeddedStore(isolated / ".tracelet"), {"flaky": adapters.options()}, timeout=20)
    first, resumed = read_records(adapters.record, "start")
    assert first["run_id"] == resumed["run_id"] == exp.run_id
    assert (first["state"], resumed["state"]) == ({}, {"remote_run": f"remote-{exp.run_id}"})


# -- reading back ----------------------------------------------------------------------------------

def test_get_artifact_from_the_store_and_from_a_backend(adapters: AdapterFiles) -> None:
    with experiment(adapters) as exp:
        exp.log_artifact(config_artifact(1))
        exp.log_artifact(config_artifact(2))
        assert exp.get_artifact("cfg").version == 2  # type: ignore[union-attr]
        assert exp.get_artifact("cfg", "v1").version == 1  # type: ignore[union-attr]
        wait_for(lambda: len(read_records(adapters.record)) == 2)
        remote = exp.get_artifact("cfg", "v1", backend="flaky")
        assert isinstance(remote, RemoteArtifact) and (remote.backend, remote.version) == ("flaky", "v1")
        assert exp.get_artifact("cfg", backend="flaky").version == "v2"  # latest, not the first listed
        assert exp.get_artifact("cfg", 2, backend="flaky").version == "v2"
        assert exp.get_artifact("cfg", "1", backend="flaky").version == "v1"
        with pytest.raises(ArtifactStoreNotFoundError):
            exp.get_artifact("cfg", "v9", backend="flaky")
        with pytest.raises(ArtifactStoreNotFoundError):
            exp.get_artifact("missing")


def test_get_artifact_from_a_backend_that_is_not_running_is_a_configuration_error() -> None:
    with Experiment("run-1") as exp, pytest.raises(ConfigurationError, match="not running"):
        exp.get_artifact("cfg", backend="mlflow")


def test_list_artifacts_gives_the_latest_of_each_filtered_by_type(adapters: AdapterFiles) -> None:
    with experiment(adapters) as exp:
        exp.log_artifact(config_artifact(1))
        exp.log_artifact(config_artifact(2))
        exp.log_artifact(TraceletArtifact("r", "report").add_object({"a": 1}, "metrics"))
        assert [v.ref for v in exp.list_artifacts()] == ["cfg:v2", "r:v1"]  # type: ignore[union-attr]
        assert [v.ref for v in exp.list_artifacts(type_filter="report")] == ["r:v1"]  # type: ignore[union-attr]
        assert [v.ref for v in exp.list_artifacts(ArtifactType.CONFIG)] == ["cfg:v2"]  # type: ignore[union-attr]
        wait_for(lambda: len(read_records(adapters.record)) == 3)
        remote = exp.list_artifacts(type_filter=ArtifactType.REPORT, backend="flaky")
        assert [(r.name, r.version) for r in remote] == [("r", "v1")]  # type: ignore[union-attr]


def test_fetch_artifact_writes_the_files(isolated: Path) -> None:
    with Experiment("run-1") as exp:
        exp.log_artifact(config_artifact("fetched"))
        exp.fetch_artifact("cfg", "latest", isolated / "out")
    assert '"fetched"' in (isolated / "out" / "hparams.json").read_text()


# -- failures never reach the caller ---------------------------------------------------------------

def test_a_failing_backend_never_raises_and_sync_delivers_later(adapters: AdapterFiles, isolated: Path) -> None:
    adapters.down()
    exp = experiment(adapters).start()
    receipts = exp.log_artifact(config_artifact())
    assert receipts["flaky"].status == "pending" and receipts["local"].status == "done"
    result = exp.stop(timeout=20)
    assert result is not None and (result.done, result.failed) == (0, 1)
    assert read_records(adapters.record) == []

    adapters.up()
    results = sync_outbox(EmbeddedStore(isolated / ".tracelet"), {"flaky": adapters.options()}, timeout=20)
    assert [r.done for r in results.values()] == [1]
    assert len(read_records(adapters.record)) == 1


def test_the_next_start_delivers_what_a_stopped_run_left(adapters: AdapterFiles) -> None:
    adapters.down()
    first = experiment(adapters).start()
    first.log_artifact(config_artifact())
    first.stop(timeout=20)
    adapters.up()
    with experiment(adapters):
        wait_for(lambda: len(read_records(adapters.record)) == 1)
    assert len(read_records(adapters.record)) == 1


def test_a_backend_that_fails_to_start_keeps_its_deliveries_for_sync(adapters: AdapterFiles,
                                                                     isolated: Path) -> None:
    exp = Experiment("run-1", backend="flaky",
                     settings=fast(backend_options={"flaky": adapters.options(fail_start=True)}))
    exp.start()  # does not raise
    receipts = exp.log_artifact(config_artifact())
    assert receipts["flaky"].status == "pending"
    exp.log_params({"lr": 0.1})  # waits for the backend in memory; a flush must not wait for it
    started = time.monotonic()
    assert exp.flush(timeout=10).pending == 0
    assert time.monotonic() - started < 5
    result = exp.stop(timeout=5)
    assert result is not None and (result.done, result.pending) == (0, 1)  # reported, not hidden
    store = EmbeddedStore(isolated / ".tracelet")
    assert [(i.backend, i.status) for i in store.catalog.outbox()] == [("flaky", "pending")]
    results = sync_outbox(store, {"flaky": adapters.options()}, timeout=20)
    assert [r.done for r in results.values()] == [1]
    assert len(read_records(adapters.record)) == 1


def test_a_backend_that_starts_late_gets_its_deliveries_and_params_without_sync(adapters: AdapterFiles,
                                                                               tmp_path: Path) -> None:
    not_up_yet = tmp_path / "server-not-up"
    not_up_yet.touch()
    exp = Experiment("run-1", backend="flaky", settings=fast(
        delivery_max_attempts=50, backend_options={"flaky": adapters.options(fail_start_flag=str(not_up_yet))}))
    exp.start()
    assert exp.log_artifact(config_artifact())["flaky"].status == "pending"
    exp.log_params({"lr": 0.1})
    assert read_records(adapters.record) == []
    not_up_yet.unlink()  # the backend comes up: its worker starts the run and delivers what waited
    wait_for(lambda: len(read_records(adapters.record)) == 1 and len(read_records(adapters.record, "params")) == 1)
    result = exp.stop(timeout=20)
    assert result is not None and (result.done, result.pending, result.failed) == (1, 0, 0)
    assert len(read_records(adapters.record, "start")) == 1


def test_params_and_metrics_reach_every_running_backend(adapters: AdapterFiles) -> None:
    with experiment(adapters, backend=["flaky", "plain"]) as exp:
        exp.log_params({"lr": 0.1, "layers": 3})
        exp.log_metric("loss", 0.5, step=1)
    params = read_records(adapters.record, "params")
    metrics = read_records(adapters.record, "metric")
    assert sorted(p["backend"] for p in params) == ["flaky", "plain"]
    assert all(p["params"] == {"lr": 0.1, "layers": 3} for p in params)
    assert sorted((m["backend"], m["name"], m["value"], m["step"]) for m in metrics) == [
        ("flaky", "loss", 0.5, 1), ("plain", "loss", 0.5, 1)]


def test_params_and_metrics_to_a_failing_backend_never_raise(adapters: AdapterFiles) -> None:
    adapters.down()
    exp = experiment(adapters).start()
    started = time.monotonic()
    exp.log_params({"lr": 0.1})
    exp.log_metric("loss", 0.5)
    assert time.monotonic() - started < 1.0  # the training loop is not held up
    exp.stop(timeout=20)
    assert read_records(adapters.record, "params") == []


def test_flush_waits_for_deliveries_and_keeps_the_run_going(adapters: AdapterFiles) -> None:
    with experiment(adapters) as exp:
        exp.submit_artifact(config_artifact(1))
        result = exp.flush(timeout=20)
        assert (result.done, result.pending, result.failed) == (1, 0, 0)
        assert [r["artifact"] for r in read_records(adapters.record)] == ["cfg"]
        exp.log_artifact(config_artifact(2))  # still running after the flush
        assert exp.flush(timeout=20).done == 2


# -- reads before start() and after stop() --------------------------------------------------------

def test_reads_work_after_stop_which_is_when_users_look(tmp_path: Path) -> None:
    exp = Experiment("run-1", config={"store_path": str(tmp_path / "store")})
    with exp:
        exp.log_artifact(config_artifact())
    assert not exp.started
    assert exp.get_artifact("cfg").ref == "cfg:v1"
    assert [v.name for v in exp.list_artifacts()] == ["cfg"]
    assert [v.name for v in exp.search_artifacts(prefix="cf")] == ["cfg"]
    assert exp.load_object("cfg", "hparams") == {"value": 1}
    assert exp.fetch_artifact("cfg", dest=tmp_path / "out") == tmp_path / "out"
    assert exp.artifact_stats().backends["local"].logged == 1


def test_reads_work_before_start_on_an_existing_store(tmp_path: Path) -> None:
    with Experiment("writer", config={"store_path": str(tmp_path / "store")}) as writer:
        writer.log_artifact(config_artifact())
    reader = Experiment("reader", config={"store_path": str(tmp_path / "store")})
    assert reader.get_artifact("cfg", version="v1").version == 1
    reader.start()  # starting closes the read handle and opens the run's own store
    assert reader.get_artifact("cfg").version == 1
    reader.stop()


def test_reads_through_a_backend_still_need_a_started_experiment(tmp_path: Path) -> None:
    exp = Experiment("run-1", config={"store_path": str(tmp_path / "store")})
    with pytest.raises(TraceletError, match="not started"):
        exp.get_artifact("cfg", backend="mlflow")
