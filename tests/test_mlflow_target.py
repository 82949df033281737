"""Where the MLflow adapter sends a run, resolved without opening anything: adapter options > MLflow's own
settings (asked of MLflow) > the embedded default, each value with the place it came from."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("mlflow")

from tracelet_artifacts.backends.base import RunContext
from tracelet_artifacts.backends.mlflow import MlflowAdapter
from tracelet_artifacts.backends.mlflow_target import run_locator

MLFLOW_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID",
                    "MLFLOW_RUN_ID")


@pytest.fixture(autouse=True)
def clean_mlflow(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    import mlflow
    import mlflow.tracking.fluent as fluent

    for key in MLFLOW_VARIABLES:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr("mlflow.tracking._model_registry.utils._registry_uri", None)  # whatever ran before
    yield
    mlflow.set_tracking_uri(None)
    fluent._active_experiment_id = None


def _target(tmp_path: Path, options: dict[str, object] | None = None, sources: dict[str, str] | None = None,
            experiment: str = "resnet-sweep-3"):  # type: ignore[no-untyped-def]
    adapter = MlflowAdapter(options)
    adapter.option_sources = dict(sources or {})
    return adapter.resolve_target(RunContext("run-1", experiment, tmp_path / ".tracelet"))


def test_nothing_configured_uses_the_embedded_default_and_says_how_to_change_it(tmp_path: Path) -> None:
    target = _target(tmp_path)
    db = f"sqlite:///{(tmp_path / '.tracelet' / 'mlflow.db').absolute()}"
    assert target.embedded_default and target.active_run is None
    assert target.settings["tracking_uri"].value == db and target.settings["tracking_uri"].source == "embedded default"
    assert target.settings["registry_uri"].value == db
    assert target.settings["experiment_name"].value == "resnet-sweep-3"
    assert target.settings["run_name"].value == "resnet-sweep-3"  # named after the experiment
    assert target.settings["artifact_location"].value.endswith("/.tracelet/mlflow-artifacts")
    assert target.view == f"mlflow ui --backend-store-uri {db}"
    assert "MLFLOW_TRACKING_URI" in target.announcement() and db in target.announcement()


def test_mlflow_tracking_uri_and_registry_uri_from_the_environment_are_used(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "sqlite:////srv/registry.db")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "team")
    target = _target(tmp_path)
    assert not target.embedded_default and target.view is None  # a server: its URL opens it
    settings = {key: (s.value, s.source) for key, s in target.settings.items()}
    assert settings["tracking_uri"] == ("http://127.0.0.1:5999", "MLFLOW_TRACKING_URI")
    assert settings["registry_uri"] == ("sqlite:////srv/registry.db", "MLFLOW_REGISTRY_URI")
    assert settings["experiment_name"] == ("team", "MLFLOW_EXPERIMENT_NAME")
    assert "artifact_location" not in settings  # the server decides
    assert target.where == "http://127.0.0.1:5999 (experiment 'team')"


def test_a_registry_uri_set_in_code_wins_and_one_set_to_nothing_hides_the_variable_as_in_mlflow(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "sqlite:////srv/registry.db")
    mlflow.set_registry_uri("sqlite:////srv/in-code.db")
    registry = _target(tmp_path).settings["registry_uri"]
    assert (registry.value, registry.source) == ("sqlite:////srv/in-code.db", "mlflow.set_registry_uri()")
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "sqlite:////srv/registry.db")  # set_registry_uri() overwrote it
    mlflow.set_registry_uri("")  # MLflow now ignores the variable: so do we, and say what it uses instead
    registry = _target(tmp_path).settings["registry_uri"]
    assert mlflow.get_registry_uri() == "http://127.0.0.1:5999"
    assert (registry.value, registry.source) == ("http://127.0.0.1:5999", "the tracking URI (MLFLOW_TRACKING_URI)")


def test_set_tracking_uri_in_code_is_named_as_the_source(tmp_path: Path) -> None:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'code.db'}")
    target = _target(tmp_path)
    assert target.settings["tracking_uri"].source == "mlflow.set_tracking_uri()"
    assert target.settings["registry_uri"].source == "the tracking URI (mlflow.set_tracking_uri())"


def test_adapter_options_win_over_mlflow_settings_and_name_where_they_were_set(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", "7")
    options = {"tracking_uri": "sqlite:///mine.db", "experiment_name": "mine", "run_name": "r"}
    target = _target(tmp_path, options, {"tracking_uri": "TRACELET_BACKEND_OPTIONS"})
    settings = {key: (s.value, s.source) for key, s in target.settings.items()}
    assert settings["tracking_uri"] == ("sqlite:///mine.db", "TRACELET_BACKEND_OPTIONS")
    assert settings["experiment_name"] == ("mine", "backend_options")
    assert settings["run_name"] == ("r", "backend_options")


def test_experiment_follows_mlflows_own_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow.tracking.fluent as fluent

    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", "7")
    assert (_target(tmp_path).settings["experiment_id"].value, _target(tmp_path).settings["experiment_id"].source) \
        == ("7", "MLFLOW_EXPERIMENT_ID")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "by-name")
    assert _target(tmp_path).settings["experiment_name"].value == "by-name"  # the name before the id, as MLflow
    fluent._active_experiment_id = "12"  # what mlflow.set_experiment() leaves
    setting = _target(tmp_path).settings["experiment_id"]
    assert (setting.value, setting.source) == ("12", "mlflow.set_experiment()")


def test_mlflow_run_id_is_joined_and_no_run_of_our_own_is_planned(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    monkeypatch.setenv("MLFLOW_RUN_ID", "abc123")
    target = _target(tmp_path)
    assert target.active_run == "MLFLOW_RUN_ID abc123"
    assert target.settings["run_id"].source == "MLFLOW_RUN_ID"


def test_run_locator_is_the_run_page_under_a_server_and_the_run_id_for_a_database() -> None:
    assert run_locator("http://me:pw@host:5000/", "3", "r1") == "http://me:***@host:5000/#/experiments/3/runs/r1"
    assert run_locator("sqlite:///x.db", "3", "r1") == "r1"
