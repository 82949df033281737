"""Fixtures of the Aim integration suite: a sandboxed environment (no telemetry, nothing in the user's
home), a fresh ``aim server`` per test that needs one, and adapters that are always closed."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aim_support import SANDBOX_ENV, AimServer, Harness, free_port, init_repo

from tracelet_artifacts.backends.aim import AimAdapter
from tracelet_artifacts.backends.base import RunContext
from tracelet_artifacts.store.embedded import EmbeddedStore


@pytest.fixture(autouse=True)
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Everything the SDK writes goes under tmp_path; no telemetry; never the user's home."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    for key, value in SANDBOX_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    return home


@pytest.fixture
def aim_server(tmp_path: Path, sandbox: Path) -> Iterator[AimServer]:
    """A fresh ``aim server`` (after ``aim init``), stopped after the test's adapters are closed."""
    server = AimServer(init_repo(tmp_path / "server-repo", sandbox), free_port(), sandbox)
    server.start()
    try:
        yield server
    finally:
        gc.collect()  # finalise any aim:// object while the server can still answer it (else exit hangs)
        server.stop()


@pytest.fixture
def make_harness(tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(options: dict[str, object] | None = None, state: dict[str, str] | None = None,
             experiment: str = "aim-suite") -> Harness:
        store = EmbeddedStore(tmp_path / "store", fsync=False)
        harness = Harness(store, AimAdapter(options), RunContext(f"run-{len(made)}", experiment, store.root,
                                                                 state or {}))
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.adapter.end_run()
        harness.store.close()
    gc.collect()


@pytest.fixture(scope="session", autouse=True)
def aim_exit_guard() -> Iterator[None]:
    """Run aim's exit-time finalizers now, while every repo folder still exists.

    Aim closes whatever is left open in an ``atexit`` hook that waits forever if one finalizer raises
    (a deleted tmp folder, a stopped server), which would hang pytest after the last test. Running the
    same cleanup here, bounded, leaves nothing for that hook to trip on.
    """
    yield
    import threading

    from aim.ext.cleanup import AutoClean

    def drain() -> None:
        for _ in range(100):  # each failing finalizer is dropped once called; stop when one pass succeeds
            try:
                AutoClean._cleanup()
                return
            except Exception as exc:
                print(f"aim cleanup: {type(exc).__name__}: {exc}")

    gc.collect()
    worker = threading.Thread(target=drain, daemon=True)
    worker.start()
    worker.join(60)
