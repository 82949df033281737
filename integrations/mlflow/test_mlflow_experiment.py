"""End to end through ``Experiment(..., backend=["mlflow"])``: background delivery to MLflow, reading back
through the experiment's backend API and MLflow's own client, and a tracking server that goes down mid-run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mlflow_support import artifact_files, holders

from tracelet_artifacts import digest
from tracelet_artifacts.artifact import ArtifactType, TraceletArtifact
from tracelet_artifacts.backends.base import Delivery, RunContext
from tracelet_artifacts.backends.local import LocalAdapter
from tracelet_artifacts.backends.mlflow import MlflowAdapter
from tracelet_artifacts.delivery import sync_outbox
from tracelet_artifacts.errors import DeliveryError
from tracelet_artifacts.experiment import Experiment
from tracelet_artifacts.routing import RoutingPolicy
from tracelet_artifacts.settings import TraceletSettings
from tracelet_artifacts.store.embedded import EmbeddedStore

pytestmark = pytest.mark.integration


def _client(uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _model() -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]], [0, 1, 0, 1])


def _wait(condition: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the background delivery"
        time.sleep(0.2)


def _dataset(src: Path, name: str = "ds") -> TraceletArtifact:
    (src / "sub").mkdir(parents=True, exist_ok=True)
    (src / "a.csv").write_text("x\n1\n")
    (src / "sub" / "b.csv").write_text("x\n2\n")
    return TraceletArtifact(name, ArtifactType.DATASET, "two csv files").add_dir(src, "data")


def test_experiment_delivers_to_mlflow_and_reads_back(tmp_path: Path) -> None:
    settings = TraceletSettings(store_path=tmp_path / "store", flush_timeout_s=120,
                                backend_options={"mlflow": {}})  # defaults: sqlite under the store root
    exp = Experiment("e2e", backend=["mlflow"], settings=settings).start()
    model = TraceletArtifact("clf", ArtifactType.MODEL, "a tiny classifier").add_model(_model())
    receipts = exp.log_artifact(model, aliases=["best"])
    assert receipts["mlflow"].status in ("pending", "done") and receipts["local"].ok
    exp.log_artifact(_dataset(tmp_path / "data"))
    exp.log_artifact(TraceletArtifact("cfg", "config").add_object({"lr": 0.1}, "hparams"))
    exp.log_params({"lr": 0.1, "epochs": 2})
    exp.log_metric("loss", 0.5, step=1)

    _wait(lambda: len(exp.list_artifacts(backend="mlflow")) == 3)
    stored = exp.get_artifact("clf")
    remote = exp.get_artifact("clf", "best", backend="mlflow")
    assert (remote.digest, remote.version, remote.artifact_type) == (stored.digest, "v1", ArtifactType.MODEL)
    assert [a.name for a in exp.list_artifacts(ArtifactType.DATASET, backend="mlflow")] == ["ds"]
    fetched = exp.fetch_artifact("ds", "latest", tmp_path / "fetched", backend="mlflow")
    assert {p.relative_to(fetched).as_posix(): digest.file_key(p) for p in fetched.rglob("*") if p.is_file()} \
        == {e.path: e.digest for e in exp.get_artifact("ds").manifest.entries}
    result = exp.stop()
    assert result is not None and result.complete and result.done == 3

    client = _client(f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("e2e")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.data.params == {"lr": "0.1", "epochs": "2"}
    assert run.data.metrics == {"loss": 0.5}
    assert run.data.tags["tracelet.artifact/clf/v1"] == stored.digest
    assert client.get_model_version_by_alias("clf", "best").tags["tracelet.digest"] == stored.digest
    assert Path(experiment.artifact_location.removeprefix("file://")).is_relative_to(tmp_path / "store")


def test_server_outage_mid_run_delivers_everything_once_after_restart(
        mlflow_server: Any, fast_fail: dict[str, Any], tmp_path: Path) -> None:
    name = f"outage-{time.monotonic_ns()}"
    options = {"tracking_uri": mlflow_server.url, "experiment_name": name, **fast_fail}
    settings = TraceletSettings(store_path=tmp_path / "store", backend_options={"mlflow": options},
                                delivery_max_attempts=1000, delivery_backoff_s=0.2, delivery_backoff_max_s=1.0,
                                flush_timeout_s=120)
    exp = Experiment("outage", backend=["mlflow"], settings=settings).start()
    exp.log_artifact(TraceletArtifact("cfg", "config").add_object({"lr": 0.1}, "hparams"))
    _wait(lambda: len(exp.list_artifacts(backend="mlflow")) == 1)
    probe = MlflowAdapter(options | {"async_metrics": False})  # to see what a stopped server does to each call
    probe.start_run(RunContext("probe", name, tmp_path / "probe"))

    mlflow_server.stop()
    try:
        calls: list[float] = []
        for step, artifact in enumerate((TraceletArtifact(f"{name}-clf", "model").add_model(_model()),
                                         _dataset(tmp_path / "d"),
                                         TraceletArtifact("cfg", "config").add_object({"lr": 0.2}, "hparams"))):
            started = time.monotonic()
            assert exp.log_artifact(artifact)["mlflow"].status == "pending"
            exp.log_metric("loss", 1.0 / (step + 1), step=step)  # queued in the adapter, sent after the restart
            calls.append(time.monotonic() - started)
        assert max(calls) < 2.0, calls

        record = exp.get_artifact(f"{name}-clf")
        plan = RoutingPolicy({"mlflow": MlflowAdapter.capabilities, "local": LocalAdapter.capabilities})
        delivery = Delivery(record.manifest, record.version, plan.plan(record.manifest).for_backend("mlflow"),
                            exp.store.blobs.root, record.aliases)
        fresh = MlflowAdapter(options)
        for call in (lambda: probe.log(delivery), lambda: probe.log_metric("loss", 1.0), probe.list,
                     lambda: fresh.start_run(RunContext("fresh", name, tmp_path / "fresh"))):
            started = time.monotonic()
            with pytest.raises(DeliveryError) as failure:
                call()
            assert failure.value.retryable is True
            assert time.monotonic() - started < 5.0
        time.sleep(1.0)  # let the delivery workers fail a few times
    finally:
        mlflow_server.start()

    result = exp.stop()
    assert result is not None and result.complete and result.done == 4
    client = _client(mlflow_server.url)
    experiment_id = client.get_experiment_by_name(name).experiment_id
    (run,) = client.search_runs([experiment_id], f"tags.`tracelet.run_id` = '{exp.run_id}'")
    for artifact, version in (("cfg", 1), ("cfg", 2), (f"{name}-clf", 1), ("ds", 1)):
        assert holders(client, experiment_id, artifact, version) == [run.info.run_id]
    for artifact, version, files in (("cfg", 2, ["hparams.json"]), (f"{name}-clf", 1, ["model/model.pkl"]),
                                     ("ds", 1, ["data/a.csv", "data/sub/b.csv"])):
        prefix = f"{artifact}/v{version}"
        assert artifact_files(client, run.info.run_id, prefix) == [f"{prefix}/{f}" for f in files]
    assert len(client.search_model_versions(f"name='{name}-clf'")) == 1
    assert client.get_run(run.info.run_id).info.status == "FINISHED"
    history = client.get_metric_history(run.info.run_id, "loss")
    assert sorted((m.step, m.value) for m in history) == [(0, 1.0), (1, 0.5), (2, 1.0 / 3)]


def test_deliveries_left_by_a_stopped_run_are_delivered_by_sync_into_the_same_mlflow_run(
        mlflow_server: Any, fast_fail: dict[str, Any], tmp_path: Path) -> None:
    name = f"sync-{time.monotonic_ns()}"
    options = {"tracking_uri": mlflow_server.url, "experiment_name": name, **fast_fail}
    settings = TraceletSettings(store_path=tmp_path / "store", backend_options={"mlflow": options},
                                delivery_max_attempts=2, delivery_backoff_s=0.1, flush_timeout_s=3)
    exp = Experiment("sync", backend=["mlflow"], settings=settings).start()
    mlflow_server.stop()
    try:
        exp.log_artifact(TraceletArtifact(f"{name}-clf", "model").add_model(_model()), aliases=["best"])
        exp.log_artifact(TraceletArtifact("cfg", "config").add_object({"lr": 0.1}, "hparams"))
        result = exp.stop()  # the server is down: nothing can be delivered before the flush gives up
        assert result is not None and not result.complete and result.done == 0
    finally:
        mlflow_server.start()

    store = EmbeddedStore(tmp_path / "store")
    try:
        results = sync_outbox(store, {"mlflow": options}, timeout=90, include_live=True)  # `tracelet-artifacts sync`
        assert results[exp.run_id].complete and results[exp.run_id].done == 2
        digests = {n: store.get(n).digest for n in (f"{name}-clf", "cfg")}
    finally:
        store.close()
    client = _client(mlflow_server.url)
    experiment_id = client.get_experiment_by_name(name).experiment_id
    (run,) = client.search_runs([experiment_id])  # the run created at start, resumed from its saved state
    assert run.data.tags["tracelet.run_id"] == exp.run_id
    for artifact, artifact_digest in digests.items():
        assert run.data.tags[f"tracelet.artifact/{artifact}/v1"] == artifact_digest
    (version,) = client.search_model_versions(f"name='{name}-clf'")
    assert version.tags["tracelet.digest"] == digests[f"{name}-clf"]
    assert client.get_model_version_by_alias(f"{name}-clf", "best").version == version.version
