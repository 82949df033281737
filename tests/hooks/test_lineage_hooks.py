"""Hooks that record what a run consumed without user code: ``torch.load`` of a file the store holds, a
Lightning run resuming from a checkpoint (``trainer.ckpt_path``), a watched folder's declared inputs."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from lightning_fakes import isolate

from tracelet_artifacts import TraceletArtifact
from tracelet_artifacts.errors import ArtifactStoreNotFoundError, ConfigurationError
from tracelet_artifacts.experiment import Experiment
from tracelet_artifacts.hooks.lightning import RESUMED, _CaptureLogic
from tracelet_artifacts.settings import TraceletSettings


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolate(tmp_path, monkeypatch)


def run(name: str, **values: object) -> Experiment:
    return Experiment(name, backend=[], settings=TraceletSettings(store_path=Path(".tracelet"), **values))


def uses(exp: Experiment) -> list[tuple[str, str]]:
    exp.flush()
    return [(u.ref, u.how) for u in exp.store.lineage.uses_of_run(exp.run_id)]


def test_torch_load_of_a_checkpoint_an_earlier_run_saved_is_recorded_as_input(workdir: Path) -> None:
    with run("train", automagic_artifacts=True) as train:
        torch.save({"w": torch.ones(3)}, "ckpt.pt")  # captured by the torch.save patch
        train.flush()
    with run("finetune", automagic_artifacts=True) as finetune:
        state = torch.load("ckpt.pt")
        assert torch.equal(state["w"], torch.ones(3))  # the caller's result, untouched
        assert uses(finetune) == [("ckpt.pt:v1", "torch.load")]
        torch.save({"w": torch.zeros(3)}, "tuned.pt")
        finetune.flush()
        tuned = finetune.store.get("tuned.pt")
        assert [u.ref for u in finetune.store.lineage.inputs_of(tuned)] == ["ckpt.pt:v1"]


def test_torch_load_of_a_file_the_store_does_not_hold_records_nothing(workdir: Path) -> None:
    torch.save({"w": torch.ones(1)}, "loose.pt")  # no experiment running: not captured
    with run("reader", automagic_artifacts=True) as reader:
        torch.load("loose.pt")
        assert uses(reader) == []


def test_torch_load_is_put_back_when_the_experiment_stops(workdir: Path) -> None:
    original = torch.load
    with run("r", automagic_artifacts=True) as exp:
        assert torch.load is not original and "torch.load" in exp._automagic.installed
    assert torch.load is original and torch.serialization.load is original


def test_a_lightning_run_resuming_from_a_stored_checkpoint_records_it(workdir: Path) -> None:
    Path("last.ckpt").write_bytes(b"lightning checkpoint bytes")
    with run("first") as first:
        first.log_artifact(TraceletArtifact("ckpt/last.ckpt", "checkpoint").add_file("last.ckpt"))
    with run("resumed") as resumed:
        logic = _CaptureLogic(resumed, log_checkpoints=False)
        trainer = SimpleNamespace(is_global_zero=True, ckpt_path=str(Path("last.ckpt").absolute()), loggers=[])
        logic.setup(trainer, None, "fit")
        logic.on_train_start(trainer, None)
        assert uses(resumed) == [("ckpt/last.ckpt:v1", RESUMED)]


def test_a_lightning_run_without_ckpt_path_records_no_input(workdir: Path) -> None:
    with run("fresh") as fresh:
        logic = _CaptureLogic(fresh, log_checkpoints=False)
        trainer = SimpleNamespace(is_global_zero=True, ckpt_path=None, loggers=[])
        logic.setup(trainer, None, "fit")
        logic.on_train_start(trainer, None)
        assert uses(fresh) == []


def test_a_watched_folders_declared_inputs_become_the_runs_inputs(workdir: Path) -> None:
    from tracelet_artifacts.hooks.watcher import ArtifactWatcher

    Path("train.csv").write_text("x\n1\n")
    Path("vocab.txt").write_text("a b c\n")
    with run("prep") as prep:
        prep.log_artifact(TraceletArtifact("data/train", "dataset").add_file("train.csv"))
        prep.log_artifact(TraceletArtifact("data/vocab", "dataset").add_file("vocab.txt"))
    Path("outputs").mkdir()
    with run("job") as job:
        watcher = ArtifactWatcher(["outputs"], experiment=job, settle_s=0.2,
                                  inputs=["data/train@latest", "vocab.txt"]).start()
        (Path("outputs") / "model.bin").write_bytes(b"trained")
        watcher.stop()
        assert sorted(uses(job)) == [("data/train:v1", "watch inputs"), ("data/vocab:v1", "watch inputs")]
        model = job.store.get("outputs/model.bin")
        assert sorted(u.ref for u in job.store.lineage.inputs_of(model)) == ["data/train:v1", "data/vocab:v1"]


def test_watch_inputs_come_from_settings_and_an_unknown_version_fails_at_start(workdir: Path) -> None:
    from tracelet_artifacts.hooks.watcher import ArtifactWatcher

    Path("outputs").mkdir()
    with run("job", watch_inputs="data/missing:v2") as job:
        watcher = ArtifactWatcher(["outputs"], experiment=job)
        assert watcher.inputs == ["data/missing:v2"]
        with pytest.raises(ArtifactStoreNotFoundError, match="data/missing"):
            watcher.start()
        Path("folder").mkdir()
        with pytest.raises(ConfigurationError, match="is a folder"):
            ArtifactWatcher(["outputs"], experiment=job, inputs=["folder"]).start()
