"""TraceletSettings and ExperimentConfig: TRACELET_* variables, precedence explicit > env > .env > default."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracelet_artifacts import Experiment, ExperimentConfig, TraceletSettings
from tracelet_artifacts.errors import InvalidSettingError

pytestmark = pytest.mark.usefixtures("isolated")


def test_defaults() -> None:
    settings = TraceletSettings()
    assert settings.enable_artifacts is True
    assert settings.automagic_artifacts is False
    assert settings.watch_filesystem is False
    assert settings.artifact_watch_dirs == [Path("./checkpoints"), Path("./outputs"), Path("./artifacts")]
    assert settings.store_path == Path(".tracelet")
    assert settings.reference_threshold_bytes == 100 * 1024 * 1024
    assert settings.routing == {} and settings.backends == []


@pytest.mark.parametrize("raw, expected", [("false", False), ("0", False), ("no", False), ("true", True),
                                           ("1", True), ("YES", True)])
def test_enable_artifacts_from_the_environment(monkeypatch: pytest.MonkeyPatch, raw: str, expected: bool) -> None:
    monkeypatch.setenv("TRACELET_ENABLE_ARTIFACTS", raw)
    assert TraceletSettings().enable_artifacts is expected


def test_automagic_artifacts_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_AUTOMAGIC_ARTIFACTS", "true")
    assert TraceletSettings().automagic_artifacts is True


def test_watch_filesystem_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_WATCH_FILESYSTEM", "1")
    assert TraceletSettings().watch_filesystem is True


def test_artifact_watch_dirs_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_ARTIFACT_WATCH_DIRS", "runs/ckpt, /data/out ,,models")
    assert TraceletSettings().artifact_watch_dirs == [Path("runs/ckpt"), Path("/data/out"), Path("models")]


def test_single_watch_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_ARTIFACT_WATCH_DIRS", "only")
    assert TraceletSettings().artifact_watch_dirs == [Path("only")]


def test_store_path_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRACELET_STORE_PATH", str(tmp_path / "elsewhere"))
    assert TraceletSettings().store_path == tmp_path / "elsewhere"


def test_routing_overrides_are_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_ROUTING", '{"model": ["wandb", "mlflow"], "dataset": ["*"]}')
    assert TraceletSettings().routing == {"model": ["wandb", "mlflow"], "dataset": ["*"]}


def test_invalid_routing_json_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_ROUTING", "model=wandb")
    with pytest.raises(InvalidSettingError, match="TRACELET_ROUTING='model=wandb' is not valid JSON"):
        TraceletSettings()


def test_backends_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_BACKENDS", "mlflow, wandb")
    assert TraceletSettings().backends == ["mlflow", "wandb"]


def test_reference_threshold_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_REFERENCE_THRESHOLD_MB", "0.5")
    assert TraceletSettings().reference_threshold_bytes == 512 * 1024


def test_non_positive_threshold_is_refused() -> None:
    with pytest.raises(InvalidSettingError):
        TraceletSettings(reference_threshold_mb=0)


def test_invalid_boolean_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_ENABLE_ARTIFACTS", "maybe")
    with pytest.raises(InvalidSettingError, match="TRACELET_ENABLE_ARTIFACTS='maybe' is not valid"):
        TraceletSettings()


def test_explicit_beats_environment_beats_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_STORE_PATH", "from-env")
    monkeypatch.setenv("TRACELET_ARTIFACT_WATCH_DIRS", "env-a,env-b")
    assert TraceletSettings().store_path == Path("from-env")
    explicit = TraceletSettings(store_path="explicit", artifact_watch_dirs=["x"])
    assert explicit.store_path == Path("explicit")
    assert explicit.artifact_watch_dirs == [Path("x")]
    assert explicit.watch_filesystem is False  # untouched field keeps its default


def test_environment_beats_dot_env_file_which_beats_default(monkeypatch: pytest.MonkeyPatch,
                                                             isolated: Path) -> None:
    (isolated / ".env").write_text("TRACELET_STORE_PATH=from-dotenv\nTRACELET_WATCH_FILESYSTEM=true\n")
    settings = TraceletSettings()
    assert settings.store_path == Path("from-dotenv") and settings.watch_filesystem is True
    monkeypatch.setenv("TRACELET_STORE_PATH", "from-env")
    assert TraceletSettings().store_path == Path("from-env")


def test_settings_are_read_when_built_not_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    assert TraceletSettings().enable_artifacts is True
    monkeypatch.setenv("TRACELET_ENABLE_ARTIFACTS", "false")
    assert TraceletSettings().enable_artifacts is False


def test_unrelated_tracelet_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_SOMETHING_ELSE", "x")
    assert TraceletSettings().enable_artifacts is True


# -- ExperimentConfig layering -----------------------------------------------------------------------

def test_experiment_config_applies_only_the_fields_it_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_WATCH_FILESYSTEM", "true")
    monkeypatch.setenv("TRACELET_STORE_PATH", "from-env")
    layered = ExperimentConfig(store_path="from-config").apply(TraceletSettings())
    assert layered.store_path == Path("from-config")
    assert layered.watch_filesystem is True


def test_experiment_config_accepts_comma_separated_watch_dirs() -> None:
    assert ExperimentConfig(artifact_watch_dirs="a, b").artifact_watch_dirs == [Path("a"), Path("b")]


def test_experiment_config_does_not_change_the_settings_it_layers_over() -> None:
    base = TraceletSettings()
    ExperimentConfig(enable_artifacts=False).apply(base)
    assert base.enable_artifacts is True


def test_experiment_layers_arguments_over_config_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_ENABLE_ARTIFACTS", "true")
    monkeypatch.setenv("TRACELET_AUTOMAGIC_ARTIFACTS", "true")
    monkeypatch.setenv("TRACELET_STORE_PATH", "from-env")
    exp = Experiment("run", config={"enable_artifacts": False, "automagic_artifacts": False,
                                    "store_path": "from-config"}, automagic_artifacts=True)
    assert exp.settings.enable_artifacts is False  # config beats env
    assert exp.settings.automagic_artifacts is True  # argument beats config
    assert exp.settings.store_path == Path("from-config")


def test_experiment_reads_the_environment_when_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_ENABLE_ARTIFACTS", "false")
    assert Experiment("run").settings.enable_artifacts is False
    assert Experiment("run", artifacts=True).settings.enable_artifacts is True


def test_experiment_takes_backends_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_BACKENDS", "local")
    assert Experiment("run").backends == []  # the embedded store is implicit, never listed twice


def test_experiment_config_with_an_invalid_value_is_refused() -> None:
    with pytest.raises(InvalidSettingError):
        ExperimentConfig(enable_artifacts="sometimes")


def test_experiment_config_with_a_misspelt_key_is_refused() -> None:
    with pytest.raises(InvalidSettingError, match="stor_path"):
        Experiment("run", config={"stor_path": "somewhere"})
