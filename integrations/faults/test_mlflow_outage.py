"""The MLflow tracking server is down for 30 s in the middle of a run and comes back on the same port with
the same backend store: logging never waits on it, and everything logged is delivered once after the
restart (read back through ``MlflowClient``). integrations/mlflow has the short outage (a few calls);
this is the long one, with logging going on throughout.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from faults_support import assert_mlflow_holds_each_once
from mlflow_support import FAST_FAIL
from training_run import mixed

from tracelet_artifacts import Experiment, TraceletSettings

pytestmark = [pytest.mark.integration, pytest.mark.slow]
OUTAGE_S = 30.0


def test_a_30s_server_outage_never_blocks_logging_and_everything_arrives_once(
        mlflow_server: Any, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    name = f"outage30-{time.monotonic_ns()}"
    options = {"tracking_uri": mlflow_server.url, "experiment_name": name, **FAST_FAIL}
    settings = TraceletSettings(store_path=tmp_path / "store", backend_options={"mlflow": options},
                                delivery_max_attempts=1000, delivery_backoff_s=0.2, delivery_backoff_max_s=2.0,
                                flush_timeout_s=180)
    exp = Experiment(name, backend=["mlflow"], settings=settings).start()
    work = tmp_path / "work"
    work.mkdir()
    exp.log_artifact(mixed(0, work, big_mb=1))
    assert exp.flush(60).complete

    calls: list[float] = []
    mlflow_server.stop()
    down_at = time.monotonic()
    try:
        index = 1
        while time.monotonic() - down_at < OUTAGE_S:
            artifact = mixed(index, work, big_mb=1)  # weights, images, configs and registered models in turn
            started = time.monotonic()
            receipts = exp.log_artifact(artifact)
            exp.log_metric("loss", 1.0 / index, step=index)
            calls.append(time.monotonic() - started)
            assert all(r.status == "pending" for b, r in receipts.items() if b == "mlflow")
            index += 1
            time.sleep(0.25)
        waiting = exp.flush(timeout=0)
    finally:
        mlflow_server.start()
    restarted = time.monotonic() - down_at

    assert waiting.done == 1 and waiting.pending == len(exp.store.catalog.outbox()) - 1  # nothing got through
    failed_attempts = [r for r in exp.store.catalog.outbox() if r.last_error or r.attempts > 1]
    assert failed_attempts, "no delivery ever failed: the server was not really down"
    result = exp.flush(180)
    delivered_after = time.monotonic() - down_at - restarted
    versions = [exp.store.catalog.version_by_id(r.version_id) for r in exp.store.catalog.outbox()]
    run_id = exp.run_id
    exp.stop()
    print(f"{len(calls)} log_artifact calls during a {OUTAGE_S:.0f} s outage (server back after {restarted:.1f} s): "
          f"longest {max(calls) * 1000:.0f} ms, median {sorted(calls)[len(calls) // 2] * 1000:.0f} ms; "
          f"{result.done} deliveries done {delivered_after:.1f} s after the restart")
    assert max(calls) < 2.0, calls
    assert result.complete and result.done == len(versions)

    client = MlflowClient(tracking_uri=mlflow_server.url, registry_uri=mlflow_server.url)
    mlflow_run = assert_mlflow_holds_each_once(client, name, run_id, versions)
    history = client.get_metric_history(mlflow_run, "loss")
    assert sorted(m.step for m in history) == list(range(1, index))
