"""MLflow configured the way its users configure it, with no tracelet adapter options at all:
``MLFLOW_TRACKING_URI`` naming a real ``mlflow server`` (started from another folder) or a sqlite file,
``mlflow.set_tracking_uri()`` in code, a run opened with ``mlflow.start_run()`` before the Experiment.
Everything is read back through MLflow's own client (and pyfunc), after the logging folder is gone.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from mlflow_support import artifact_files

from tracelet_artifacts import digest
from tracelet_artifacts.artifact import ArtifactType, TraceletArtifact
from tracelet_artifacts.cli import main
from tracelet_artifacts.experiment import Experiment
from tracelet_artifacts.settings import TraceletSettings

pytestmark = pytest.mark.integration
MB = 1024 * 1024


@pytest.fixture(autouse=True)
def mlflow_globals() -> Iterator[None]:
    """Each test starts and ends with no URI set in code, no active experiment and no active run."""
    import mlflow

    yield
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)  # also unsets MLFLOW_TRACKING_URI
    import mlflow.tracking._model_registry.utils as registry

    registry._registry_uri = None  # as at import: set_registry_uri("") would hide MLFLOW_REGISTRY_URI from later tests
    os.environ.pop("MLFLOW_REGISTRY_URI", None)
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    import mlflow.tracking.fluent as fluent

    fluent._active_experiment_id = None


def _client(uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _settings(work: Path, **values: Any) -> TraceletSettings:
    return TraceletSettings(store_path=work / ".tracelet", flush_timeout_s=300, **values)  # no backend_options


def _unique(prefix: str) -> str:
    return f"{prefix}-{time.monotonic_ns()}"


def _net(seed: int) -> Any:
    import torch

    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))


def _write_random(path: Path, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    block = os.urandom(MB)
    with path.open("wb") as handle:
        for _ in range(size // MB):
            handle.write(block)
            block = block[1:] + block[:1]
    return path


def test_tracking_server_from_the_environment_gets_a_run_named_after_the_experiment_and_a_150mb_model_readers_can_download(  # noqa: E501
        mlflow_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    work = tmp_path / "work"
    name = _unique("resnet-sweep-3")
    big = _write_random(work / "model.pth", 150 * MB)
    expected = digest.sha256_file(big)
    exp = Experiment(name, backend=["mlflow"], settings=_settings(work)).start()
    model_name = f"{name}-weights"
    exp.log_artifact(TraceletArtifact(model_name, ArtifactType.MODEL).add_file(big, "model.pth"), aliases=["best"])
    result = exp.stop()
    assert result is not None and result.complete
    (receipt,) = _receipts(work / ".tracelet", model_name, 1)
    shutil.rmtree(work)  # the sources and .tracelet are gone: only the server holds the model now

    client = _client(mlflow_server.url)
    experiment = client.get_experiment_by_name(name)
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == name and run.info.status == "FINISHED"
    assert receipt["uploaded"] == ["model.pth"] and receipt["referenced"] == []  # over 100 MB, still uploaded
    assert receipt["locator"] == (f"{mlflow_server.url}/#/experiments/{experiment.experiment_id}"
                                  f"/runs/{run.info.run_id}")
    version = client.get_model_version_by_alias(model_name, "best")  # add_file into a MODEL: registered too
    assert version.run_id == run.info.run_id
    downloaded = Path(client.download_artifacts(run.info.run_id, f"{model_name}/v1/model.pth", str(tmp_path / "rd")))
    assert digest.sha256_file(downloaded) == expected
    source = client.get_model_version_download_uri(model_name, version.version)
    import mlflow

    via_registry = Path(mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(tmp_path / "reg"),
                                                            tracking_uri=mlflow_server.url))
    assert digest.sha256_file(via_registry / "model.pth") == expected


def _receipts(store_path: Path, name: str, version: int) -> list[dict[str, Any]]:
    from tracelet_artifacts.store.embedded import EmbeddedStore

    store = EmbeddedStore(store_path)
    try:
        return [r for r in store.catalog.receipts(name, version) if r["backend"] == "mlflow"]
    finally:
        store.close()


def test_a_run_opened_with_mlflow_start_run_receives_the_artifacts_and_stays_the_users(
        mlflow_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    name = _unique("joined")
    mlflow.set_experiment(name)
    with mlflow.start_run(run_name="my own run") as mine:
        mlflow.log_param("lr", 0.1)
        with Experiment("tracelet-side", backend=["mlflow"], settings=_settings(tmp_path / "work")) as exp:
            exp.log_artifact(TraceletArtifact("cfg", "config").add_object({"lr": 0.1}, "hparams"))
            exp.log_metric("loss", 0.5, step=1)
        client = _client(mlflow_server.url)
        assert client.get_run(mine.info.run_id).info.status == "RUNNING"  # not ended by the Experiment
    run = client.get_run(mine.info.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["tracelet.artifact/cfg/v1"]
    assert run.data.metrics == {"loss": 0.5} and run.data.params == {"lr": "0.1"}
    assert artifact_files(client, mine.info.run_id, "cfg/v1") == ["cfg/v1/hparams.json"]
    assert len(client.search_runs([run.info.experiment_id])) == 1  # joined, never duplicated


def test_a_sqlite_tracking_uri_from_the_environment_holds_the_run_and_large_files_as_local_references(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "elsewhere" / "mine.db"
    db.parent.mkdir()
    uri = f"sqlite:///{db}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "team-experiment")
    work = tmp_path / "work"
    big = _write_random(work / "big.bin", 2 * MB)
    with Experiment("sqlite-env", backend=["mlflow"], settings=_settings(work, reference_threshold_mb=1)) as exp:
        exp.log_artifact(TraceletArtifact("data", "dataset").add_file(big).add_object({"n": 1}, "meta"))
    assert not (work / ".tracelet" / "mlflow.db").exists()  # nothing went to the hidden default
    client = _client(uri)
    experiment = client.get_experiment_by_name("team-experiment")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "sqlite-env" and run.data.tags["tracelet.artifact/data/v1"]
    (receipt,) = _receipts(work / ".tracelet", "data", 1)
    # MLflow lives on this filesystem, so a file:// reference is readable by its readers
    assert receipt["uploaded"] == ["meta.json"] and receipt["referenced"] == ["big.bin"]
    assert receipt["unreachable"] == [] and receipt["reference_uris"]["big.bin"].startswith("file://")
    assert receipt["locator"] == run.info.run_id and receipt["view_command"] == f"mlflow ui --backend-store-uri {uri}"


def test_a_tracking_uri_set_in_code_is_used_and_doctor_says_where_each_value_came_from(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    uri = f"sqlite:///{tmp_path / 'in-code.db'}"
    mlflow.set_tracking_uri(uri)
    work = tmp_path / "work"
    with Experiment("set-in-code", backend=["mlflow"], settings=_settings(work)) as exp:
        exp.log_artifact(TraceletArtifact("cfg", "config").add_object({"a": 1}, "cfg"))
    client = _client(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("set-in-code").experiment_id])
    assert run.data.tags["tracelet.artifact/cfg/v1"] and not (work / ".tracelet" / "mlflow.db").exists()

    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "from-env")
    out = CliRunner().invoke(main, ["doctor", "--store", str(work / ".tracelet"), "--backend", "mlflow"])
    assert out.exit_code == 0, out.output
    assert f"{uri} (experiment 'from-env')" in out.output
    assert "(from mlflow.set_tracking_uri())" in out.output and "(from MLFLOW_EXPERIMENT_NAME)" in out.output
    assert "[embedded default]" not in out.output and f"mlflow ui --backend-store-uri {uri}" in out.output


def test_with_nothing_configured_one_info_line_says_where_runs_go(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    work = tmp_path / "work"
    with caplog.at_level(logging.INFO, logger="tracelet_artifacts"), \
            Experiment("nothing-set", backend=["mlflow"], settings=_settings(work)) as exp:
        exp.log_artifact(TraceletArtifact("cfg", "config").add_object({"a": 1}, "cfg"))
    db = (work / ".tracelet" / "mlflow.db").absolute()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("mlflow: nothing configured")]
    assert lines == [f"mlflow: nothing configured, so runs go to sqlite:///{db} (experiment 'nothing-set'), "
                     f"artifacts in {(work / '.tracelet' / 'mlflow-artifacts').absolute().as_uri()}; see them with "
                     f"`mlflow ui --backend-store-uri sqlite:///{db}`; to send them elsewhere, set MLFLOW_TRACKING_URI "
                     "(or call mlflow.set_tracking_uri()), or backend_options['mlflow']['tracking_uri']."]
    out = CliRunner().invoke(main, ["doctor", "--store", str(work / ".tracelet"), "--backend", "mlflow"])
    assert "[embedded default]" in out.output and "(from embedded default)" in out.output


def test_pyfunc_loads_models_best_and_best_moves_in_mlflow_when_it_moves_in_the_store(
        mlflow_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow
    import torch

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    work = tmp_path / "work"
    name = _unique("classifier")
    example = torch.rand(1, 4)
    fixed = np.random.default_rng(0).random((5, 4), dtype=np.float32)
    first, second = _net(1), _net(2)
    exp = Experiment(_unique("pyfunc"), backend=["mlflow"], settings=_settings(work)).start()
    exp.log_artifact(TraceletArtifact(name, "model").add_model(first, input_example=example), aliases=["best"])
    exp.log_artifact(TraceletArtifact(name, "model").add_model(second, input_example=example))
    report = TraceletArtifact(_unique("report"), "report").add_object({"acc": 0.9}, "metrics").add_model(second)
    exp.log_artifact(report)  # issue 15: a model in a REPORT is stored and delivered, not registered
    assert exp.stop().complete  # type: ignore[union-attr]

    client = _client(mlflow_server.url)
    loaded = mlflow.pyfunc.load_model(f"models:/{name}@best")
    np.testing.assert_allclose(loaded.predict(fixed), first(torch.from_numpy(fixed)).detach().numpy(), rtol=1e-5)
    best = client.get_model_version_by_alias(name, "best")
    assert best.version == "1" and loaded.metadata.signature.inputs.to_dict()[0]["tensor-spec"]["shape"] == (-1, 4)
    run_id = best.run_id
    logged = mlflow.search_logged_models(experiment_ids=[client.get_run(run_id).info.experiment_id],
                                         output_format="list")
    assert sorted((m.source_run_id, m.tags["tracelet.version"]) for m in logged) == [(run_id, "1"), (run_id, "2")]
    assert {m.name for m in client.search_registered_models()} >= {name}
    assert not client.search_model_versions(f"name='{report.name}'")
    files_before = artifact_files(client, run_id, name)

    moved = CliRunner().invoke(main, ["alias", "--store", str(work / ".tracelet"), f"{name}:v2", "best"])
    assert moved.exit_code == 0, moved.output
    synced = CliRunner().invoke(main, ["sync", "--store", str(work / ".tracelet"), "--timeout", "120"])
    assert synced.exit_code == 0, synced.output
    assert client.get_model_version_by_alias(name, "best").version == "2"
    again = mlflow.pyfunc.load_model(f"models:/{name}@best")
    np.testing.assert_allclose(again.predict(fixed), second(torch.from_numpy(fixed)).detach().numpy(), rtol=1e-5)
    assert artifact_files(client, run_id, name) == files_before  # the re-delivery uploaded nothing new
    assert len(mlflow.search_logged_models(experiment_ids=[client.get_run(run_id).info.experiment_id],
                                           output_format="list")) == 2
    assert len(client.search_model_versions(f"name='{name}'")) == 2


def test_show_tells_referenced_elsewhere_uploaded_and_failed_apart(
        mlflow_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    work = tmp_path / "work"
    src = work / "notes.txt"
    src.parent.mkdir(parents=True)
    src.write_text("hello\n")
    settings = _settings(work, delivery_max_attempts=1)
    exp = Experiment(_unique("show"), backend=["mlflow"], settings=settings).start()
    mixed = TraceletArtifact("mixed", "dataset").add_file(src).add_reference("s3://bucket/raw/train.parquet", 1234)
    exp.log_artifact(mixed)
    assert exp.flush(120).complete
    client = _client(mlflow_server.url)
    run_id = exp.store.catalog.run_state(exp.run_id)[1]["mlflow"]["run_id"]
    client.delete_run(run_id)  # MLflow now refuses anything logged into this run: a permanent failure
    exp.log_artifact(TraceletArtifact("late", "dataset").add_file(src))
    exp.stop(timeout=60)

    shown = CliRunner().invoke(main, ["show", "--store", str(work / ".tracelet"), "mixed:v1"], terminal_width=250)
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert any("uploaded" in line and "notes.txt" in line for line in lines), shown.output
    referenced = [line for line in lines if "s3://bucket/raw/train.parquet" in line and "referenced" in line]
    assert referenced and "this machine only" not in referenced[0]
    assert any(line.startswith("mlflow: done") and f"open: {mlflow_server.url}/#/experiments/" in line
               for line in lines), shown.output
    failed = CliRunner().invoke(main, ["show", "--store", str(work / ".tracelet"), "late:v1"], terminal_width=250)
    assert any(line.startswith("mlflow: failed") for line in failed.output.splitlines()), failed.output
    assert "deleted" in failed.output and "uploaded" not in failed.output and "referenced" not in failed.output
