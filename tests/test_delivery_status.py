"""Honest status: what each backend holds of a version, entry by entry; reads through a backend wait for
this run's deliveries; an alias moved in the store is delivered again so it moves in the backend too."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers_adapters import AdapterFiles, read_records

from tracelet_artifacts import ArtifactType, Experiment, TraceletArtifact
from tracelet_artifacts.cli import main
from tracelet_artifacts.errors import DeliveryError, DeliveryPendingError
from tracelet_artifacts.settings import TraceletSettings
from tracelet_artifacts.status import FAILED, LOCAL_ONLY, NOT_HELD, REFERENCED, UPLOADED, version_status

pytestmark = pytest.mark.usefixtures("isolated")


def _experiment(adapters: AdapterFiles, backend: Any = ("flaky", "plain"), **values: Any) -> Experiment:
    options = {"flaky": adapters.options(remote=True),
               "plain": adapters.options(fail_flag=str(adapters.fail_flag) + "-plain")}
    settings = TraceletSettings(delivery_max_attempts=1, delivery_backoff_s=0.01, flush_timeout_s=20,
                                backend_options=options, **values)
    return Experiment("run-1", backend=list(backend), settings=settings)


def _mixed_artifact(folder: Path) -> TraceletArtifact:
    (folder / "model.bin").write_bytes(b"m" * 10)
    art = TraceletArtifact("mixed", ArtifactType.CONFIG, metadata={"preferred_backends": ["flaky", "plain"]})
    art.add_file(folder / "model.bin")
    art.add_reference("s3://bucket/data.parquet").add_reference("file:///srv/local.parquet")
    return art


def test_status_tells_uploaded_referenced_elsewhere_this_machine_only_not_held_and_failed_apart(
        adapters: AdapterFiles, isolated: Path) -> None:
    Path(str(adapters.fail_flag) + "-plain").touch()  # "plain" is down: its delivery fails for good
    with _experiment(adapters) as exp:
        exp.log_artifact(_mixed_artifact(isolated))
        exp.flush(timeout=20)
        statuses = {s.backend: s for s in version_status(exp.store.catalog.deliveries("mixed", 1))}
    flaky = {(e.state, e.path) for e in statuses["flaky"].entries}
    assert flaky == {(UPLOADED, "model.bin"), (REFERENCED, "s3://bucket/data.parquet"),
                     (LOCAL_ONLY, "file:///srv/local.parquet")}
    assert statuses["flaky"].state == "partial", "a reference only this machine reads is not a full delivery"
    assert statuses["flaky"].locator == "flaky://runs/mixed" and statuses["flaky"].view_command == "flaky-ui"
    assert statuses["plain"].state == FAILED
    assert "plain is down" in statuses["plain"].entries[0].detail

    shown = CliRunner().invoke(main, ["show", "mixed:v1"])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert any("uploaded" in line and "model.bin" in line for line in lines)
    assert any(line.split("│")[2].strip() == REFERENCED and "data.parquet" in line for line in lines if "│" in line)
    assert any("this machine only" in line and "local.parquet" in line for line in lines)
    assert any(line.startswith("plain: failed") for line in lines)
    assert "open: flaky://runs/mixed" in shown.output and "locally: flaky-ui" in shown.output
    listed = CliRunner().invoke(main, ["ls"])
    assert "flaky:partial" in listed.output and "plain:failed" in listed.output


def test_a_backend_that_cannot_hold_references_shows_them_as_not_held(adapters: AdapterFiles, isolated: Path) -> None:
    with _experiment(adapters, backend=["plain"]) as exp:
        exp.log_artifact(_mixed_artifact(isolated))
        exp.flush(timeout=20)
        (status,) = version_status(exp.store.catalog.deliveries("mixed", 1))
    assert {(e.state, e.path) for e in status.entries} >= {(NOT_HELD, "s3://bucket/data.parquet"),
                                                           (UPLOADED, "model.bin")}


def test_a_pending_delivery_is_shown_as_pending_with_its_last_error(adapters: AdapterFiles) -> None:
    adapters.down()
    settings = TraceletSettings(delivery_max_attempts=50, delivery_backoff_s=30, flush_timeout_s=0.1,
                                backend_options={"flaky": adapters.options()})
    with Experiment("run-1", backend="flaky", settings=settings) as exp:
        exp.log_artifact(TraceletArtifact("cfg", "config").add_object({"a": 1}, "hparams"))
        deadline = time.monotonic() + 10
        while not exp.store.catalog.deliveries("cfg", 1)[0].last_error:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        (status,) = version_status(exp.store.catalog.deliveries("cfg", 1))
        assert status.state == "pending" and "flaky is down" in status.entries[0].detail
        shown = CliRunner().invoke(main, ["show", "cfg"])
        assert "flaky: pending" in shown.output


def test_reading_through_a_backend_waits_for_this_runs_delivery(adapters: AdapterFiles) -> None:
    with _experiment(adapters, backend=["flaky"]) as exp:
        exp.log_artifact(TraceletArtifact("cfg", "config").add_object({"a": 1}, "hparams"))
        found = exp.get_artifact("cfg", backend="flaky")  # no flush: the read waits for the delivery
        assert found.version == "v1"


def test_reading_through_a_backend_says_a_pending_delivery_is_pending_not_missing(adapters: AdapterFiles) -> None:
    adapters.down()
    settings = TraceletSettings(delivery_max_attempts=50, delivery_backoff_s=30, flush_timeout_s=0.1,
                                backend_options={"flaky": adapters.options()})
    with Experiment("run-1", backend="flaky", settings=settings) as exp:
        exp.log_artifact(TraceletArtifact("cfg", "config").add_object({"a": 1}, "hparams"))
        with pytest.raises(DeliveryPendingError, match=r"cfg:v1 is still being delivered to flaky.*exp\.flush\(\)"):
            exp.get_artifact("cfg", backend="flaky", wait=0.3)
        with pytest.raises(DeliveryPendingError, match="wait=SECONDS"):
            exp.list_artifacts(backend="flaky", wait=0.1)


def test_reading_through_a_backend_after_its_delivery_failed_says_so(adapters: AdapterFiles) -> None:
    adapters.down()
    with _experiment(adapters, backend=["flaky"]) as exp:
        exp.log_artifact(TraceletArtifact("cfg", "config").add_object({"a": 1}, "hparams"))
        exp.flush(timeout=20)
        with pytest.raises(DeliveryError, match=r"cfg:v1 could not be delivered to flaky.*flaky is down.*sync"):
            exp.get_artifact("cfg", backend="flaky")


def test_moving_an_alias_in_the_store_delivers_it_again_with_the_alias(adapters: AdapterFiles) -> None:
    with _experiment(adapters, backend=["flaky"]) as exp:
        for value in (1, 2):  # each delivered before the next is logged, so each goes out as "latest"
            exp.log_artifact(TraceletArtifact("cfg", "config").add_object({"a": value}, "hparams"))
            exp.flush(timeout=20)
        exp.store.catalog.set_alias("cfg", "best", 1)
        exp.flush(timeout=20)
        exp.store.catalog.set_alias("cfg", "best", 1)  # not moved: nothing to deliver again
        exp.flush(timeout=20)
    logs = [(r["version"], r["aliases"]) for r in read_records(adapters.record)]
    assert logs[:2] == [(1, ["latest"]), (2, ["latest"])]
    assert logs[2:] == [(1, ["best"])]


def test_an_alias_moved_after_the_run_reaches_the_backend_with_sync(adapters: AdapterFiles) -> None:
    with _experiment(adapters, backend=["flaky"]) as exp:
        exp.log_artifact(TraceletArtifact("cfg", "config").add_object({"a": 1}, "hparams"))
    runner = CliRunner()
    assert runner.invoke(main, ["alias", "cfg:v1", "prod"]).exit_code == 0
    env = {"TRACELET_BACKEND_OPTIONS": json.dumps({"flaky": {"record": str(adapters.record)}})}
    synced = runner.invoke(main, ["sync"], env=env)
    assert synced.exit_code == 0, synced.output
    assert [r["aliases"] for r in read_records(adapters.record)] == [["latest"], ["latest", "prod"]]
