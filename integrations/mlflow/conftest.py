"""Fixtures for the MLflow suite: an offline, telemetry-free environment, a real ``mlflow server`` on
127.0.0.1, and helpers that deliver artifacts straight through the adapter.

Every file MLflow writes lands under the test's tmp_path (HOME, TMPDIR, the working folder, the database
and the artifact roots); nothing is sent beyond loopback.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow_support import FAST_FAIL, OFFLINE_ENV, MlflowServer

from tracelet_artifacts.artifact import TraceletArtifact
from tracelet_artifacts.backends.base import Delivery, Receipt, RunContext
from tracelet_artifacts.backends.local import LocalAdapter
from tracelet_artifacts.backends.mlflow import MlflowAdapter
from tracelet_artifacts.routing import RoutingPolicy
from tracelet_artifacts.store.embedded import EmbeddedStore

# Set before mlflow is first imported in this process (telemetry is decided at import).
for _key, _value in OFFLINE_ENV.items():
    os.environ[_key] = _value
for _key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):  # the adapter is always given its URI
    os.environ.pop(_key, None)

LOOPBACK = ("127.0.0.1", "::1", "localhost")
_remote_attempts: list[str] = []


def _watch_network(event: str, args: tuple[Any, ...]) -> None:
    """Records every attempt of this process to reach a host other than loopback (an audit hook)."""
    if event == "socket.getaddrinfo" and args and args[0] not in (None, *LOOPBACK, b"127.0.0.1"):
        _remote_attempts.append(f"lookup {args[0]!r}")
    elif event == "socket.connect" and len(args) > 1 and isinstance(args[1], tuple) and args[1][0] not in LOOPBACK:
        _remote_attempts.append(f"connect {args[1]!r}")


sys.addaudithook(_watch_network)


@pytest.fixture(autouse=True)
def offline_mlflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Offline, telemetry-free MLflow whose stray files (home, cwd, temp) all land under tmp_path."""
    home = tmp_path / "home"
    home.mkdir()
    for key, value in OFFLINE_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    for env in ("MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"):
        monkeypatch.setenv(env, "0")  # set, then removed: undo removes what an adapter's http_* options set
        monkeypatch.delenv(env)
    monkeypatch.setenv("HOME", str(home))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # MLflow's temp files (log_dict, downloads)
    monkeypatch.chdir(tmp_path)
    _remote_attempts.clear()
    yield
    assert not _remote_attempts, f"the test tried to reach the network: {_remote_attempts[:5]}"


def _needs_session_server(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return "mlflow_server" in getattr(item, "fixturenames", ()) or (
        callspec is not None and callspec.params.get("tracking_uri") == "server")


@pytest.fixture(scope="session", autouse=True)
def session_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Launches the shared server at session start when a selected test needs it (no wait here)."""
    if not any(_needs_session_server(item) for item in request.session.items):
        yield None
        return
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server")).launch()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mlflow_server(session_server: MlflowServer | None) -> MlflowServer:
    """One real MLflow tracking server for the session (tests use distinct experiment and model names)."""
    assert session_server is not None
    return session_server.wait()


@pytest.fixture
def fast_fail() -> dict[str, Any]:
    """Adapter options that make a down server fail at once (no HTTP retries, short timeout)."""
    return dict(FAST_FAIL)


@pytest.fixture(params=["sqlite", "server"])
def tracking_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Both ways the issue asks for: an embedded ``sqlite:///`` URI and a real server on loopback."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    server: MlflowServer = request.getfixturevalue("mlflow_server")
    return server.url


class Harness:
    """An embedded store plus an MlflowAdapter on one run: log a builder, deliver it, as the core would."""

    def __init__(self, root: Path, options: dict[str, Any], experiment: str, run_id: str = "run-1",
                 state: dict[str, Any] | None = None) -> None:
        self.root = root
        self.store = EmbeddedStore(root)
        self.adapter = MlflowAdapter(options)
        self.state = self.adapter.start_run(RunContext(run_id, experiment, root, state or {}))
        self.policy = RoutingPolicy({"mlflow": MlflowAdapter.capabilities, "local": LocalAdapter.capabilities})

    def delivery(self, artifact: TraceletArtifact, aliases: tuple[str, ...] = ()) -> Delivery:
        record = self.store.log(artifact, aliases=aliases)
        plan = self.policy.plan(record.manifest)
        return Delivery(record.manifest, record.version, plan.for_backend("mlflow"), self.store.blobs.root,
                        record.aliases)

    def log(self, artifact: TraceletArtifact, aliases: tuple[str, ...] = ()) -> tuple[Delivery, Receipt]:
        delivery = self.delivery(artifact, aliases)
        return delivery, self.adapter.log(delivery)

    def close(self) -> None:
        self.store.close()


@pytest.fixture
def harness_factory(tmp_path: Path) -> Iterator[Any]:
    made: list[Harness] = []

    def make(options: dict[str, Any], experiment: str = "exp", run_id: str = "run-1",
             state: dict[str, Any] | None = None, store: str = "store") -> Harness:
        harness = Harness(tmp_path / store, options, experiment, run_id, state)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.close()
