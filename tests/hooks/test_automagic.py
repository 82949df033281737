"""The automagic switch: what enable() installs (per settings) and that disable() puts everything back."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lightning_fakes import install_fake_lightning, isolate

from tracelet_artifacts.experiment import Experiment
from tracelet_artifacts.hooks import automagic
from tracelet_artifacts.hooks.lightning import TraceletCallback
from tracelet_artifacts.settings import TraceletSettings
from tracelet_artifacts.store.embedded import EmbeddedStore


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolate(tmp_path, monkeypatch)


@pytest.fixture
def fake_lightning(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    return install_fake_lightning(monkeypatch)


@pytest.fixture
def exp(workdir: Path) -> Iterator[Experiment]:
    experiment = Experiment("automagic-test", settings=TraceletSettings(store_path=workdir / ".tracelet"))
    experiment.start()
    yield experiment
    experiment.stop()


class FakeWatcher:
    made: list[FakeWatcher] = []

    def __init__(self, dirs: list[Path], *, experiment: Experiment) -> None:
        self.dirs, self.experiment, self.running = dirs, experiment, False
        FakeWatcher.made.append(self)

    def start(self) -> None:
        self.running = True

    def stop(self) -> None:
        self.running = False


@pytest.fixture
def fake_watcher(monkeypatch: pytest.MonkeyPatch) -> type[FakeWatcher]:
    module = types.ModuleType("tracelet_artifacts.hooks.watcher")
    module.ArtifactWatcher = FakeWatcher  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tracelet_artifacts.hooks.watcher", module)
    FakeWatcher.made = []
    return FakeWatcher


@pytest.fixture
def fake_torch_save(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed")
    calls: dict[str, Any] = {"enabled": [], "disabled": 0}

    class Patch:
        def disable(self) -> None:
            calls["disabled"] += 1

    def enable(experiment: Experiment) -> Patch:
        calls["enabled"].append(experiment)
        return Patch()

    module = types.ModuleType("tracelet_artifacts.hooks.torch_save")
    module.enable = enable  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tracelet_artifacts.hooks.torch_save", module)
    return calls


def tracelet_callbacks(trainer: Any) -> list[Any]:
    return [c for c in trainer.callbacks if isinstance(c, TraceletCallback)]


def test_enable_adds_a_callback_to_new_trainers_and_disable_restores_trainer_init(
        exp: Experiment, fake_lightning: Any) -> None:
    original, meta_path = fake_lightning.Trainer.__dict__["__init__"], list(sys.meta_path)
    user_callback = fake_lightning.Callback()

    handle = automagic.enable(exp)
    assert "lightning" in handle.installed
    trainer = fake_lightning.Trainer(callbacks=[user_callback], max_epochs=3)
    (callback,) = tracelet_callbacks(trainer)
    assert isinstance(callback, fake_lightning.Callback) and callback.experiment is exp
    assert user_callback in trainer.callbacks
    assert len(tracelet_callbacks(fake_lightning.Trainer(callbacks=user_callback))) == 1  # a single callback too

    handle.disable()
    assert fake_lightning.Trainer.__dict__["__init__"] is original
    assert tracelet_callbacks(fake_lightning.Trainer()) == []
    assert sys.meta_path == meta_path
    assert automagic.active_experiment() is None
    handle.disable()  # a second disable changes nothing


def test_a_trainer_that_already_has_a_tracelet_callback_gets_no_second_one(
        exp: Experiment, fake_lightning: Any) -> None:
    mine = TraceletCallback(exp, namespace="pytorch_lightning", log_model=False)
    handle = automagic.enable(exp)
    try:
        trainer = fake_lightning.Trainer(callbacks=[mine])
    finally:
        handle.disable()
    assert tracelet_callbacks(trainer) == [mine]


def test_a_namespace_imported_after_enable_is_patched_then(exp: Experiment, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "pkgs" / "pytorch_lightning"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent("""
        class Callback:
            pass

        class Trainer:
            def __init__(self, *, callbacks=None):
                self.callbacks = list(callbacks or [])
    """))
    monkeypatch.delitem(sys.modules, "pytorch_lightning", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    handle = automagic.enable(exp)
    try:
        assert "pytorch_lightning" not in sys.modules  # enabling imports nothing
        import pytorch_lightning

        assert pytorch_lightning.__spec__.loader is pytorch_lightning.__loader__  # our loader stepped aside
        assert len(tracelet_callbacks(pytorch_lightning.Trainer())) == 1
    finally:
        handle.disable()
        init = sys.modules["pytorch_lightning"].Trainer.__dict__["__init__"]
        sys.modules.pop("pytorch_lightning", None)
    assert not getattr(init, "__tracelet_automagic__", False)


def test_the_environment_variable_turns_automagic_on(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACELET_AUTOMAGIC_ARTIFACTS", "true")
    exp = Experiment("env-on", settings=TraceletSettings(store_path=workdir / ".tracelet")).start()
    try:
        assert automagic.active_experiment() is exp
    finally:
        exp.stop()
    assert automagic.active_experiment() is None

    monkeypatch.setenv("TRACELET_AUTOMAGIC_ARTIFACTS", "false")
    with Experiment("env-off", settings=TraceletSettings(store_path=workdir / ".tracelet")) as off:
        assert automagic.active_experiment() is None and off.started


def test_the_watcher_starts_only_when_watch_filesystem_is_on(workdir: Path,
                                                            fake_watcher: type[FakeWatcher]) -> None:
    settings = TraceletSettings(store_path=workdir / ".tracelet", automagic_artifacts=True)
    with Experiment("no-watch", settings=settings):
        assert fake_watcher.made == []

    watching = settings.model_copy(update={"watch_filesystem": True, "artifact_watch_dirs": [Path("outputs")]})
    with Experiment("watch", settings=watching) as exp:
        (watcher,) = fake_watcher.made
        assert watcher.running and watcher.experiment is exp and watcher.dirs == [Path("outputs")]
    assert not watcher.running  # stop() stopped it before closing the store


def test_the_torch_save_patch_is_enabled_with_the_experiment_and_disabled_again(
        exp: Experiment, fake_torch_save: dict[str, Any]) -> None:
    handle = automagic.enable(exp)
    assert fake_torch_save["enabled"] == [exp] and "torch.save" in handle.installed
    handle.disable()
    assert fake_torch_save["disabled"] == 1


def test_the_real_torch_save_patch_is_restored_exactly(exp: Experiment) -> None:
    pytest.importorskip("tracelet_artifacts.hooks.torch_save")
    torch = pytest.importorskip("torch")
    original = torch.save
    handle = automagic.enable(exp)
    assert "torch.save" in handle.installed
    handle.disable()
    assert torch.save is original and torch.serialization.save is original


def test_the_newest_enabled_experiment_receives_new_trainers_until_it_is_disabled(
        workdir: Path, exp: Experiment) -> None:
    other = Experiment("second", settings=TraceletSettings(store_path=workdir / ".tracelet")).start()
    first, second = automagic.enable(exp), automagic.enable(other)
    try:
        assert automagic.active_experiment() is other
        second.disable()
        assert automagic.active_experiment() is exp
    finally:
        first.disable()
        second.disable()
        other.stop()
    assert automagic.active_experiment() is None


def test_with_watch_filesystem_a_file_written_during_the_run_is_captured(workdir: Path) -> None:
    pytest.importorskip("watchdog")
    pytest.importorskip("tracelet_artifacts.hooks.watcher")
    settings = TraceletSettings(store_path=workdir / ".tracelet", automagic_artifacts=True, watch_filesystem=True,
                                artifact_watch_dirs=[workdir / "outputs"])
    (workdir / "outputs").mkdir()
    with Experiment("watching", settings=settings) as exp:
        assert "watcher" in exp._automagic.installed
        (workdir / "outputs" / "metrics.json").write_text('{"accuracy": 0.9}')
    store = EmbeddedStore(workdir / ".tracelet")
    (version,) = store.catalog.search(contains="metrics.json")
    assert version.manifest.entries[0].size == len('{"accuracy": 0.9}')
    store.close()
