"""Fixtures for the W&B suite: W&B offline with every folder under pytest's tmp path and no network or
telemetry, an embedded store, a started adapter, and a loopback server that fails (helpers: wandb_suite.py).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from wandb_suite import GUARD, FailingServer, WandbRun, offline_env, start

from tracelet_artifacts.store.embedded import EmbeddedStore


@pytest.fixture(scope="module", autouse=True)
def wandb_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The W&B environment, set before the SDK is imported (its service reads it when it starts); module
    scoped, so that tests of other folders run in the same session never see it."""
    root = tmp_path_factory.mktemp("wandb-home")
    values = offline_env(root)
    with pytest.MonkeyPatch.context() as patch:
        for key in ("WANDB_API_KEY", "WANDB_ENTITY", "WANDB_PROJECT", "WANDB_RUN_ID", "WANDB_RESUME", "WANDB_DIR",
                    "WANDB_NAME"):
            patch.delenv(key, raising=False)
        for key, value in values.items():
            patch.setenv(key, value)
            if key.endswith(("_DIR", "HOME")):
                Path(value).mkdir(parents=True, exist_ok=True)
        (root / "tmp").mkdir()  # wandb makes temp folders at import (wandb-media, wandb-artifacts): keep them here
        patch.setattr(tempfile, "tempdir", str(root / "tmp"))
        patch.setenv("TMPDIR", str(root / "tmp"))
        GUARD.install()
        try:
            yield root
        finally:
            GUARD.uninstall()


@pytest.fixture(autouse=True)
def no_outbound_traffic() -> Iterator[None]:
    """Fails a test during which Python code tried to reach anything beyond loopback."""
    GUARD.attempts.clear()
    yield
    assert not GUARD.attempts, f"outbound network attempts: {GUARD.attempts}"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's W&B data folder (where staged artifact copies land)."""
    folder = tmp_path / "wandb-data"
    folder.mkdir()
    monkeypatch.setenv("WANDB_DATA_DIR", str(folder))
    return folder


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    embedded = EmbeddedStore(tmp_path / "store", fsync=False)
    yield embedded
    embedded.close()


@pytest.fixture
def wandb_run(store: EmbeddedStore, data_dir: Path) -> Iterator[WandbRun]:
    run = start(store)
    yield run
    run.adapter.end_run()


@pytest.fixture
def failing_server(request: pytest.FixtureRequest) -> Iterator[FailingServer]:
    server = FailingServer(getattr(request, "param", 503))
    yield server
    server.close()
