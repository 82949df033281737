"""A setting that cannot be used raises InvalidSettingError (a ConfigurationError, so a TraceletError) with one
line naming the setting as the user wrote it, the value given and what is accepted: from the environment,
from ``.env``, as an argument, in an ExperimentConfig, and through ``Experiment`` and the stores that read them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracelet_artifacts import Experiment, ExperimentConfig, TraceletSettings
from tracelet_artifacts.errors import ConfigurationError, InvalidSettingError, TraceletError
from tracelet_artifacts.store.embedded import EmbeddedStore

pytestmark = pytest.mark.usefixtures("isolated")


def raised(build: object) -> InvalidSettingError:
    with pytest.raises(InvalidSettingError) as info:
        build()  # type: ignore[operator]
    message = str(info.value)
    assert "\n" not in message and "pydantic" not in message and "errors.pydantic.dev" not in message
    return info.value


def test_the_error_is_a_configuration_error_and_a_value_error() -> None:
    assert issubclass(InvalidSettingError, ConfigurationError) and issubclass(InvalidSettingError, TraceletError)
    assert issubclass(InvalidSettingError, ValueError)  # code that caught pydantic's ValidationError still works


def test_a_boolean_variable_names_the_variable_the_value_and_the_accepted_spellings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRACELET_ENABLE_ARTIFACTS", "maybe")
    error = raised(TraceletSettings)
    assert str(error) == ("TRACELET_ENABLE_ARTIFACTS='maybe' is not valid: expected true or false "
                          "(also 1/0, yes/no, on/off).")
    assert (error.setting, error.value) == ("TRACELET_ENABLE_ARTIFACTS", "maybe")


def test_a_negative_threshold_says_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_REFERENCE_THRESHOLD_MB", "-1")
    assert str(raised(TraceletSettings)) == ("TRACELET_REFERENCE_THRESHOLD_MB='-1' is not valid: "
                                             "expected a number greater than 0.")


def test_malformed_json_says_where_and_shows_an_example(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_ROUTING", '{"model": [mlflow]}')
    message = str(raised(TraceletSettings))
    assert message.startswith("TRACELET_ROUTING='{\"model\": [mlflow]}' is not valid JSON (Expecting value, at ")
    assert message.endswith('expected JSON such as {"model": ["mlflow"], "image": ["wandb"]}.')


def test_json_of_the_wrong_shape_names_the_inner_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_ROUTING", '{"model": "mlflow"}')
    message = str(raised(TraceletSettings))
    assert "is not valid at routing.model: expected a valid list" in message


def test_secrets_in_a_rejected_value_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_BACKEND_OPTIONS", '{"mlflow": {"password": "hunter2"}, "wandb": 1}')
    message = str(raised(TraceletSettings))
    assert "backend_options.wandb" in message and "hunter2" not in message


def test_a_long_value_is_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_SUBMIT_QUEUE_MAX", "9" * 500 + "x")
    assert len(str(raised(TraceletSettings))) < 200


def test_an_explicit_argument_is_named_as_written() -> None:
    assert str(raised(lambda: TraceletSettings(reference_threshold_mb=0))) == (
        "reference_threshold_mb=0 is not valid: expected a number greater than 0.")


def test_a_value_from_dot_env_says_it_came_from_there(isolated: Path) -> None:
    (isolated / ".env").write_text("TRACELET_FLUSH_TIMEOUT_S=-3\n")
    assert str(raised(TraceletSettings)) == ("TRACELET_FLUSH_TIMEOUT_S='-3' in .env is not valid: "
                                             "expected a number of at least 0.")


def test_an_undecodable_dot_env_is_named(isolated: Path) -> None:
    (isolated / ".env").write_bytes(b"\xff\xfe\x00")
    assert str(raised(TraceletSettings)).startswith("cannot read the settings file .env: 'utf-8' codec")


def test_an_experiment_config_key_that_does_not_exist_lists_the_known_ones() -> None:
    error = raised(lambda: Experiment("run", config={"stor_path": "x"}))
    assert str(error).startswith("'stor_path' is not a setting of ExperimentConfig; known settings: ")
    assert "store_path" in str(error)


def test_an_experiment_config_value_is_named_as_the_key() -> None:
    assert str(raised(lambda: ExperimentConfig(watch_filesystem="kinda"))) == (
        "watch_filesystem='kinda' is not valid: expected true or false (also 1/0, yes/no, on/off).")


def test_experiment_and_store_built_from_a_bad_environment_raise_the_same_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRACELET_DELIVERY_BACKOFF_S", "soon")
    assert "TRACELET_DELIVERY_BACKOFF_S='soon'" in str(raised(lambda: Experiment("run")))
    assert "TRACELET_DELIVERY_BACKOFF_S='soon'" in str(raised(EmbeddedStore.from_settings))


def test_several_problems_report_the_first_and_count_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_ENABLE_ARTIFACTS", "maybe")
    monkeypatch.setenv("TRACELET_WATCH_FILESYSTEM", "perhaps")
    assert str(raised(TraceletSettings)).endswith("(1 more problem(s) after this one)")
