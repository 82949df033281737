"""TraceletCallback against stand-in trainer objects (no real training): naming, the CheckpointIO wrapper and
its restore, eviction labels, content safety, the safety-net scan, rank, and failures kept out of training.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import types
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lightning_fakes import install_fake_lightning, isolate

from tracelet_artifacts import digest
from tracelet_artifacts.artifact import ArtifactType, validate_name
from tracelet_artifacts.experiment import Experiment
from tracelet_artifacts.hooks.lightning import STAGING_FOLDER, TraceletCallback
from tracelet_artifacts.hooks.naming import artifact_name_for
from tracelet_artifacts.settings import TraceletSettings


class FileIO:
    """Writes like Lightning's TorchCheckpointIO: to a temp name, then renamed into place."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str, storage_options: Any = None) -> None:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(f"{path}.part", "wb") as handle:
            handle.write(repr(sorted(checkpoint.items())).encode())
        os.replace(f"{path}.part", path)

    def remove_checkpoint(self, path: str) -> None:
        os.remove(path)


class WrappingIO:
    """Like AsyncCheckpointIO: delegates to ``checkpoint_io``."""

    def __init__(self, inner: FileIO) -> None:
        self.checkpoint_io = inner

    def save_checkpoint(self, *args: Any, **kwargs: Any) -> None:
        self.checkpoint_io.save_checkpoint(*args, **kwargs)

    def remove_checkpoint(self, path: str) -> None:
        self.checkpoint_io.remove_checkpoint(path)


class ModelCheckpoint:
    def __init__(self, dirpath: str) -> None:
        self.dirpath, self.monitor, self.mode = os.path.abspath(dirpath), "val_loss", "min"
        self.best_k_models: dict[str, float] = {}
        self.best_model_path = self.last_model_path = ""

    def save(self, trainer: Any, name: str, score: float, epoch: int) -> str:
        """What ModelCheckpoint does: update its bookkeeping, then save through the strategy."""
        path = os.path.join(self.dirpath, name)
        self.best_k_models[path] = score
        self.best_model_path = min(self.best_k_models, key=self.best_k_models.__getitem__)
        trainer.current_epoch, trainer.global_step = epoch, 4 * (epoch + 1)
        trainer.callback_metrics = {"val_loss": score}
        trainer.strategy.checkpoint_io.save_checkpoint({"epoch": epoch, "global_step": 4 * (epoch + 1)}, path)
        return path

    def evict(self, trainer: Any, path: str) -> None:
        del self.best_k_models[path]
        trainer.strategy.checkpoint_io.remove_checkpoint(path)


def make_trainer(workdir: Path) -> Any:
    checkpoint = ModelCheckpoint("ckpts")
    return types.SimpleNamespace(
        is_global_zero=True, strategy=types.SimpleNamespace(checkpoint_io=WrappingIO(FileIO())),
        checkpoint_callbacks=[checkpoint], checkpoint_callback=checkpoint, callback_metrics={}, current_epoch=0,
        global_step=0, sanity_checking=False, default_root_dir=str(workdir), log_dir=None, datamodule=None)


def content_key(path: str | Path) -> str:
    """The key the store names this file\'s content by (BLAKE3)."""
    return digest.file_key(path)


@pytest.fixture
def exp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Experiment]:
    workdir = isolate(tmp_path, monkeypatch)
    install_fake_lightning(monkeypatch)
    experiment = Experiment("callback-test", settings=TraceletSettings(store_path=workdir / ".tracelet")).start()
    yield experiment
    experiment.stop()


def new_callback(exp: Experiment, **options: Any) -> Any:
    return TraceletCallback(exp, namespace="pytorch_lightning", log_model=False, log_hparams=False, **options)


def checkpoint_versions(exp: Experiment) -> list[Any]:
    return exp.store.catalog.search(artifact_type=ArtifactType.CHECKPOINT)


def test_checkpoint_names_come_from_the_folder_relative_to_the_working_directory(
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert artifact_name_for("a/checkpoints", "x") == "a/checkpoints"
    assert artifact_name_for(tmp_path / "b" / "checkpoints", "x") == "b/checkpoints"
    assert artifact_name_for("runs/lr=0.1 bs=32", "x") == "runs/lr_0.1_bs_32"
    assert artifact_name_for(".", "checkpoints") == "checkpoints"
    assert artifact_name_for("/elsewhere/ckpt", "x") == "elsewhere/ckpt"


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)),
                        min_size=1, max_size=20), min_size=1, max_size=5))
def test_any_path_gives_a_valid_artifact_name(parts: list[str]) -> None:
    assert validate_name(artifact_name_for(os.path.join("/", *parts), "checkpoints"))


def test_saves_are_captured_with_best_latest_and_eviction_and_the_io_is_restored(exp: Experiment,
                                                                                 workdir: Path) -> None:
    trainer, callback = make_trainer(workdir), new_callback(exp)
    inner = trainer.strategy.checkpoint_io.checkpoint_io
    callback.setup(trainer, None, "fit")
    assert "save_checkpoint" in vars(inner)  # the innermost IO is wrapped, not the wrapper

    mc = trainer.checkpoint_callback
    first = mc.save(trainer, "epoch=0.ckpt", 0.5, 0)
    first_digest = content_key(first)
    second = mc.save(trainer, "epoch=1.ckpt", 0.3, 1)
    third = mc.save(trainer, "epoch=2.ckpt", 0.4, 2)
    mc.evict(trainer, first)
    assert callback.flush(10)

    versions = checkpoint_versions(exp)
    assert [v.manifest.metadata["file_name"] for v in versions] == ["epoch=0.ckpt", "epoch=1.ckpt", "epoch=2.ckpt"]
    assert {v.name for v in versions} == {"ckpts"}
    best, latest = exp.store.get("ckpts", "best"), exp.store.get("ckpts", "latest")
    assert best.manifest.entries[0].digest == content_key(second) and best.manifest.metadata["monitor_value"] == 0.3
    assert latest.manifest.entries[0].digest == content_key(third)
    assert exp.store.catalog.labels("ckpts", 1) == ["evicted"] and exp.store.catalog.labels("ckpts", 2) == []
    assert versions[0].manifest.entries[0].digest == first_digest and exp.store.blobs.verify(first_digest)

    callback.teardown(trainer, None, "fit")
    assert "save_checkpoint" not in vars(inner) and "remove_checkpoint" not in vars(inner)


def test_saving_identical_content_again_makes_no_new_version(exp: Experiment, workdir: Path) -> None:
    trainer, callback = make_trainer(workdir), new_callback(exp)
    callback.setup(trainer, None, "fit")
    io = trainer.strategy.checkpoint_io
    io.save_checkpoint({"epoch": 0}, "ckpts/epoch=0.ckpt")
    io.save_checkpoint({"epoch": 0}, "ckpts/last.ckpt")  # same bytes under another name
    io.save_checkpoint({"epoch": 0}, "ckpts/last.ckpt")  # and again (a new mtime, the same bytes)
    assert callback.flush(10)
    assert [v.label for v in checkpoint_versions(exp)] == ["v1"]
    callback.teardown(trainer, None, "fit")


def test_content_is_safe_once_the_save_returns_even_if_the_file_goes_before_ingest(
        exp: Experiment, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gate, pool = threading.Event(), ThreadPoolExecutor(max_workers=1)

    def delayed_submit(artifact: Any, *, aliases: Any = ()) -> Future[Any]:
        return pool.submit(lambda: (gate.wait(10), exp.log_artifact(artifact, aliases=aliases))[1])

    monkeypatch.setattr(exp, "submit_artifact", delayed_submit)
    trainer, callback = make_trainer(workdir), new_callback(exp)
    callback.setup(trainer, None, "fit")
    io = trainer.strategy.checkpoint_io
    io.save_checkpoint({"epoch": 0}, "ckpts/top.ckpt")
    io.save_checkpoint({"epoch": 0, "step": 4}, "ckpts/last.ckpt")
    saved = {name: content_key(workdir / "ckpts" / name) for name in ("top.ckpt", "last.ckpt")}
    os.remove(workdir / "ckpts" / "top.ckpt")  # evicted before the background ingest ran
    (workdir / "ckpts" / "next.part").write_bytes(b"overwritten")
    os.replace(workdir / "ckpts" / "next.part", workdir / "ckpts" / "last.ckpt")  # atomically replaced
    gate.set()
    assert callback.flush(10)
    pool.shutdown()
    stored = {v.manifest.metadata["file_name"]: v.manifest.entries[0].digest for v in checkpoint_versions(exp)}
    assert stored == saved
    assert not list((exp.store.root / STAGING_FOLDER).iterdir())
    callback.teardown(trainer, None, "fit")


def test_the_scan_captures_what_the_wrapper_did_not_see(exp: Experiment, workdir: Path) -> None:
    trainer, callback = make_trainer(workdir), new_callback(exp, log_checkpoints=True)
    callback.setup(trainer, None, "fit")
    mc = trainer.checkpoint_callback
    path = os.path.join(mc.dirpath, "epoch=0.ckpt")
    FileIO().save_checkpoint({"epoch": 0}, path)  # written around the wrapped IO (e.g. a custom strategy)
    mc.best_k_models[path], mc.best_model_path = 0.2, path
    callback.on_validation_end(trainer, None)
    callback.on_validation_end(trainer, None)  # the second scan finds nothing new
    assert callback.flush(10)
    (version,) = checkpoint_versions(exp)
    assert version.manifest.metadata["captured_by"] == "scan" and "best" in version.aliases
    callback.teardown(trainer, None, "fit")


def test_a_process_that_is_not_rank_zero_wraps_and_captures_nothing(exp: Experiment, workdir: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "1")
    trainer, callback = make_trainer(workdir), new_callback(exp)
    callback.setup(trainer, None, "fit")
    assert "save_checkpoint" not in vars(trainer.strategy.checkpoint_io.checkpoint_io)
    trainer.checkpoint_callback.save(trainer, "epoch=0.ckpt", 0.5, 0)
    callback.on_validation_end(trainer, None)
    callback.on_exception(trainer, None, RuntimeError("x"))
    assert checkpoint_versions(exp) == []


def test_a_capture_failure_never_reaches_the_training_loop(exp: Experiment, workdir: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise OSError("disk full")

    monkeypatch.setattr(exp, "submit_artifact", broken)
    trainer, callback = make_trainer(workdir), new_callback(exp)
    callback.setup(trainer, None, "fit")
    path = trainer.checkpoint_callback.save(trainer, "epoch=0.ckpt", 0.5, 0)
    callback.on_validation_end(trainer, None)
    assert os.path.exists(path)  # Lightning's save itself went through
    assert not list((exp.store.root / STAGING_FOLDER).iterdir())  # nothing staged is left behind
    callback.teardown(trainer, None, "fit")


def test_lightning_saves_run_with_the_torch_save_capture_suppressed(exp: Experiment, workdir: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bool] = []
    state = {"suppressed": False}

    @contextlib.contextmanager
    def suppressed() -> Iterator[None]:
        state["suppressed"] = True
        try:
            yield
        finally:
            state["suppressed"] = False

    module = types.ModuleType("tracelet_artifacts.hooks.torch_save")
    module.suppressed = suppressed  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tracelet_artifacts.hooks.torch_save", module)
    trainer, callback = make_trainer(workdir), new_callback(exp)
    inner = trainer.strategy.checkpoint_io.checkpoint_io
    original = inner.save_checkpoint
    monkeypatch.setattr(inner, "save_checkpoint", lambda *a, **k: (seen.append(state["suppressed"]), original(*a, **k)))
    callback.setup(trainer, None, "fit")
    trainer.strategy.checkpoint_io.save_checkpoint({"epoch": 0}, "ckpts/a.ckpt")
    assert seen == [True] and state["suppressed"] is False
    callback.teardown(trainer, None, "fit")


def test_staged_files_of_dead_processes_are_removed_at_setup(exp: Experiment, workdir: Path) -> None:
    folder = exp.store.root / STAGING_FOLDER
    folder.mkdir(parents=True)
    dead = folder / "999999999-abc-epoch=0.ckpt"
    mine = folder / f"{os.getpid()}-def-epoch=1.ckpt"
    dead.write_bytes(b"x")
    mine.write_bytes(b"y")
    callback = new_callback(exp)
    callback.setup(make_trainer(workdir), None, "fit")
    assert not dead.exists() and mine.exists()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
