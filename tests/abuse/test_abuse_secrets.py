"""Secrets never show: every provider and backend that takes a token or password is given ``SeCrEt-123``,
made to fail (401, 404, connection refused), and then every log record (DEBUG and up, every logger),
every exception's str and repr with its chain, the objects' reprs, the catalog file bytes and the blob
folder are searched for it."""

from __future__ import annotations

import base64
import json
import logging
import re
import socket
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from ci_fakes import Sleeps
from pytest_httpserver import HTTPServer

from tracelet_artifacts.ci.providers.github import GitHubActionsProvider
from tracelet_artifacts.ci.providers.gitlab import GitLabProvider
from tracelet_artifacts.ci.providers.jenkins import JenkinsProvider
from tracelet_artifacts.ci.providers.taskcluster import TaskclusterProvider
from tracelet_artifacts.ci.retry import RetryPolicy
from tracelet_artifacts.errors import TraceletError
from tracelet_artifacts.redact import MASK, Secret, redact_text, redact_url, redact_value
from tracelet_artifacts.settings import ExperimentConfig, TraceletSettings

SECRET = "SeCrEt-123"
# The secret as it may travel: plain, in a Basic header, URL-quoted.
FORMS = [SECRET, base64.b64encode(f"builder:{SECRET}".encode()).decode(), SECRET.replace("-", "%2D")]
FAST = RetryPolicy(attempts=2, base_delay=0.0, jitter=0)


def _closed_port_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


def _exception_text(exc: BaseException) -> str:
    """str, repr and the whole printed traceback, causes and contexts included."""
    return "\n".join([str(exc), repr(exc), *traceback.format_exception(exc)])


def _assert_clean(text: str, where: str) -> None:
    for form in FORMS:
        assert form not in text, f"the secret ({form!r}) shows in {where}:\n{text[:2000]}"


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)  # the root logger: every library's records, ours and the SDKs'
    yield caplog
    _assert_clean(caplog.text, "the log")
    for record in caplog.records:
        _assert_clean(record.getMessage(), f"the log record from {record.name}")
        if record.exc_info and record.exc_info[1] is not None:
            _assert_clean(_exception_text(record.exc_info[1]), f"the exception logged by {record.name}")


def _providers(base_url: str, sleeps: Sleeps) -> list[Any]:
    kw: dict[str, Any] = {"retry": FAST, "sleep": sleeps}
    return [
        GitHubActionsProvider("o/r", token=SECRET, base_url=base_url, **kw),
        GitLabProvider("g/p", token=SECRET, base_url=base_url, **kw),
        GitLabProvider("g/p", token=SECRET, token_type="bearer", base_url=base_url, **kw),
        JenkinsProvider("nightly", base_url=base_url, user="builder", token=SECRET, **kw),
        JenkinsProvider("nightly", base_url=base_url.replace("http://", f"http://builder:{SECRET}@"), **kw),
        TaskclusterProvider(base_url, client_id="project/me", access_token=SECRET, **kw),
    ]


def _calls(provider: Any) -> list[Callable[[], Any]]:
    runs = {"task_group_id": "fQ1aBcD2Ref3ghIjK4LmNo"} if isinstance(provider, TaskclusterProvider) else {}
    return [lambda: provider.list_runs(limit=3, **runs), lambda: provider.list_artifacts("42")]


@pytest.mark.parametrize("status", [401, 403, 404, 500])
def test_provider_errors_never_show_the_secret(
    api: HTTPServer, sleeps: Sleeps, all_logs: pytest.LogCaptureFixture, status: int
) -> None:
    api.expect_request(re.compile(".*")).respond_with_data(f"nope (status {status})", status=status)
    for provider in _providers(api.url_for("/").rstrip("/"), sleeps):
        _assert_clean(repr(provider) + str(provider), f"repr of {type(provider).__name__}")
        _assert_clean(repr(provider.http) + repr(vars(provider.http)), "the HTTP layer's repr")
        for call in _calls(provider):
            with pytest.raises(TraceletError) as info:
                call()
            _assert_clean(_exception_text(info.value), f"the {status} error of {type(provider).__name__}")
    assert api.log, "the providers never reached the server"


def test_connection_refused_never_shows_the_secret(sleeps: Sleeps, all_logs: pytest.LogCaptureFixture) -> None:
    for provider in _providers(_closed_port_url(), sleeps):
        for call in _calls(provider):
            with pytest.raises(TraceletError) as info:
                call()
            _assert_clean(_exception_text(info.value), f"the network error of {type(provider).__name__}")


def test_redaction_helpers_hide_database_urls_tokens_and_signatures() -> None:
    cases = {
        f"postgresql://app:{SECRET}@db.example:5432/tracelet": "postgresql://app:***@db.example:5432/tracelet",
        f"postgresql+psycopg://app:{SECRET}@db/tracelet?sslmode=require":
            "postgresql+psycopg://app:***@db/tracelet?sslmode=require",
        f"host=db user=app password={SECRET} dbname=tracelet": "host=db user=app password=*** dbname=tracelet",
        f"http://me:{SECRET}@127.0.0.1:5000": "http://me:***@127.0.0.1:5000",
        f"https://blob.example/x.zip?sig={SECRET}&se=1": "https://blob.example/x.zip?sig=***&se=1",
    }
    for url, shown in cases.items():
        assert redact_url(url) == shown
        _assert_clean(redact_text(f"could not connect to {url}: refused"), "redact_text")
    for text in [f"Authorization: Bearer {SECRET}", f"{{'PRIVATE-TOKEN': '{SECRET}'}}",
                 f"AWS_SECRET_ACCESS_KEY={SECRET}", f"password={SECRET}", f"s3://b/k?X-Amz-Signature={SECRET}"]:
        assert MASK in redact_text(text)
        _assert_clean(redact_text(text), "redact_text")
    assert redact_text(f"token {SECRET} here", [SECRET]) == f"token {MASK} here"
    assert SECRET not in repr(Secret(SECRET)) + str(Secret(SECRET))


def test_settings_reprs_mask_backend_secrets_and_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("TRACELET_BACKEND_OPTIONS", json.dumps({"wandb": {"api_key": SECRET}}))
    from_env = TraceletSettings()
    assert from_env.backend_options["wandb"]["api_key"] == SECRET  # intact where it is used
    options = {"mlflow": {"tracking_uri": f"http://me:{SECRET}@127.0.0.1:5000", "password": SECRET},
               "store": {"url": f"postgresql://app:{SECRET}@db/tracelet"}}
    settings = TraceletSettings(backend_options=options)
    config = ExperimentConfig(backend_options=options)
    for shown in (repr(from_env), str(from_env), repr(settings), str(settings), repr(config), str(config),
                  repr(redact_value(options))):
        _assert_clean(shown, "a settings repr")
    assert settings.backend_options["mlflow"]["password"] == SECRET


@pytest.fixture
def mlflow_refusing(api: HTTPServer) -> str:
    pytest.importorskip("mlflow")
    api.expect_request(re.compile(".*")).respond_with_data('{"error_code": "UNAUTHENTICATED"}', status=401)
    return api.url_for("/").rstrip("/")


@pytest.mark.parametrize("where", ["401", "refused"])
def test_mlflow_tracking_uri_password_stays_out_of_logs_errors_catalog_and_blobs(
    mlflow_refusing: str, tmp_path: Path, all_logs: pytest.LogCaptureFixture, where: str
) -> None:
    from tracelet_artifacts import ArtifactType, Experiment

    base = mlflow_refusing if where == "401" else _closed_port_url()
    uri = base.replace("http://", f"http://me:{SECRET}@")
    store = tmp_path / "store"
    settings = TraceletSettings(
        store_path=store, delivery_max_attempts=1, delivery_backoff_s=0.0, flush_timeout_s=3.0,
        backend_options={"mlflow": {"tracking_uri": uri, "http_max_retries": 0, "http_timeout_s": 2,
                                    "experiment_name": "abuse"}},
    )
    exp = Experiment("secrets", backend=["mlflow"], settings=settings)
    errors: list[BaseException] = []
    try:
        exp.start()
        art = exp.create_artifact("cfg", ArtifactType.CONFIG).add_object({"lr": 0.1}, "hparams")
        exp.log_artifact(art)
    except Exception as exc:
        errors.append(exc)
    finally:
        try:
            exp.stop()
        except Exception as exc:
            errors.append(exc)
    _assert_clean(repr(exp) + repr(exp.settings) + str(exp.settings), "the experiment's repr")
    for exc in errors:
        _assert_clean(_exception_text(exc), "an exception from the experiment")
    written = [p for p in store.rglob("*") if p.is_file()]
    assert any(p.name.startswith("catalog.db") for p in written)
    for path in written:
        _assert_clean(path.read_bytes().decode("latin-1"), f"{path.relative_to(store)}")


class _TrackingClient:
    """A stand-in MlflowClient for one unit (the state start_run saves), whose URI carries a password."""

    tracking_uri = f"https://me:{SECRET}@mlflow.example"

    def get_experiment_by_name(self, name: str) -> None:
        return None

    def create_experiment(self, name: str, artifact_location: str | None = None) -> str:
        return "1"

    def search_runs(self, *args: Any, **kwargs: Any) -> list[Any]:
        return []

    def create_run(self, experiment_id: str, run_name: str, tags: dict[str, str]) -> Any:
        return SimpleNamespace(info=SimpleNamespace(run_id="r1"))

    def get_run(self, run_id: str) -> Any:
        return SimpleNamespace(info=SimpleNamespace(run_id=run_id, experiment_id="1", lifecycle_stage="active",
                                                    status="RUNNING"))


def test_mlflow_run_state_saved_to_the_catalog_holds_no_password(tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    from tracelet_artifacts.backends.base import RunContext
    from tracelet_artifacts.backends.mlflow import MlflowAdapter

    adapter = MlflowAdapter({"client": _TrackingClient()})
    state = adapter.start_run(RunContext("run-1", "abuse", tmp_path))
    _assert_clean(repr(state), "the MLflow run state")
    assert state["tracking_uri"] == "https://me:***@mlflow.example"
    again = MlflowAdapter({"client": _TrackingClient()})  # the saved (redacted) state still resumes the same run
    assert again.start_run(RunContext("run-1", "abuse", tmp_path, state))["run_id"] == "r1"


def test_mlflow_errors_quoting_a_password_url_are_redacted_and_not_chained() -> None:
    pytest.importorskip("mlflow")
    from tracelet_artifacts.backends.mlflow import _backend_errors
    from tracelet_artifacts.errors import DeliveryError

    with pytest.raises(DeliveryError) as info, _backend_errors("opening experiment 'x'"):
        raise ConnectionError(f"API request to http://me:{SECRET}@127.0.0.1:9/api/2.0/mlflow failed")
    _assert_clean(_exception_text(info.value), "the MLflow error")
    assert "http://me:***@127.0.0.1:9" in str(info.value)
