"""Multi-file checkpoints and saves that bypass torch.save's name: one version per complete folder (DCP with
its .metadata, Hugging Face model folders), ``from torch import save`` bound early, validation outputs."""

from __future__ import annotations

import json
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from lightning_fakes import isolate  # noqa: E402
from torch import save as save_bound_before_the_patch  # noqa: E402  (as a script does at its top)

from tracelet_artifacts.artifact import ArtifactType  # noqa: E402
from tracelet_artifacts.experiment import Experiment  # noqa: E402
from tracelet_artifacts.hooks import bundles  # noqa: E402
from tracelet_artifacts.hooks import torch_save as ts  # noqa: E402
from tracelet_artifacts.hooks.samples import SampleCollector, png, sample_artifact  # noqa: E402
from tracelet_artifacts.settings import TraceletSettings  # noqa: E402


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolate(tmp_path, monkeypatch)


@pytest.fixture
def exp(workdir: Path) -> Iterator[Experiment]:
    experiment = Experiment("multi", settings=TraceletSettings(store_path=workdir / ".tracelet")).start()
    yield experiment
    experiment.stop()


def safetensors_bytes(values: list[float]) -> bytes:
    data = struct.pack(f"<{len(values)}f", *values)
    header = json.dumps({"w": {"dtype": "F32", "shape": [len(values)], "data_offsets": [0, len(data)]}}).encode()
    return struct.pack("<Q", len(header)) + header + data


def write_sharded_model(folder: Path, pause: Callable[[], None] = lambda: None) -> None:
    """What save_pretrained writes for a sharded model: config, shards one after another, the index last."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "tiny", "architectures": ["Tiny"]}))
    pause()
    names = [f"model-0000{i}-of-00002.safetensors" for i in (1, 2)]
    for index, name in enumerate(names):
        (folder / name).write_bytes(safetensors_bytes([float(index)] * 64))
        pause()
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": names[0], "b": names[1]}}))


# -- bundles ----------------------------------------------------------------------------------------
def test_a_sharded_model_folder_is_complete_only_once_its_index_names_written_shards(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "tiny"}))
    assert bundles.kind_of(folder) == bundles.HF_MODEL
    assert "no weights" in (bundles.problem(folder) or "")
    (folder / "model-00001-of-00002.safetensors").write_bytes(safetensors_bytes([1.0]))
    assert "index" in (bundles.problem(folder) or "")
    (folder / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    assert "model-00002-of-00002" in (bundles.problem(folder) or "")
    (folder / "model-00002-of-00002.safetensors").write_bytes(safetensors_bytes([2.0])[:-3])  # torn
    assert "safetensors" in (bundles.problem(folder) or "")
    (folder / "model-00002-of-00002.safetensors").write_bytes(safetensors_bytes([2.0]))
    assert bundles.problem(folder) is None


def test_a_folder_of_unrelated_files_is_no_bundle(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(safetensors_bytes([1.0]))
    (tmp_path / "config.json").write_text('{"lr": 0.1}')  # not a Hugging Face config
    assert bundles.kind_of(tmp_path) is None


# -- torch.save and the writers around it ----------------------------------------------------------
def test_a_save_imported_before_the_capture_started_is_captured(exp: Experiment, workdir: Path) -> None:
    with ts.capture_torch_save(exp) as capture:
        save_bound_before_the_patch({"w": torch.ones(3)}, "early.pt")
        assert capture.flush(10)
    version = exp.get_artifact("early.pt")
    assert version.artifact_type is ArtifactType.WEIGHTS  # the saved object was seen, not only the path
    assert version.manifest.metadata["captured_by"] == "torch.save"


@pytest.mark.filterwarnings("ignore:torch.distributed is disabled")
def test_a_distributed_checkpoint_folder_is_one_checkpoint_version_with_its_metadata(
        exp: Experiment, workdir: Path) -> None:
    dcp = pytest.importorskip("torch.distributed.checkpoint")
    with ts.capture_torch_save(exp) as capture:
        state = {"model": torch.nn.Linear(4, 2).state_dict(), "step": 3}
        dcp.save(state, checkpoint_id=str(workdir / "ckpt" / "step_3"), no_dist=True)
        assert capture.flush(10)
    assert exp.store.catalog.names() == ["ckpt/step_3"]
    version = exp.get_artifact("ckpt/step_3")
    paths = {e.path for e in version.manifest.entries}
    assert version.artifact_type is ArtifactType.CHECKPOINT
    assert ".metadata" in paths and any(p.endswith(".distcp") for p in paths)


# -- the watcher ------------------------------------------------------------------------------------
def wait_for(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.05)
    return predicate()


def test_the_watcher_versions_a_dcp_folder_once_with_its_dot_metadata(exp: Experiment, workdir: Path) -> None:
    pytest.importorskip("watchdog")
    from tracelet_artifacts.hooks.watcher import ArtifactWatcher

    (workdir / "out").mkdir()
    with ArtifactWatcher(["out"], experiment=exp, settle_s=0.3) as watcher:
        folder = workdir / "out" / "step_1"
        folder.mkdir()
        (folder / "__0_0.distcp").write_bytes(b"rank0" * 100)
        time.sleep(0.6)  # rank 1 is slower: the folder must not be taken without it
        (folder / "__1_0.distcp").write_bytes(b"rank1" * 100)
        time.sleep(0.6)
        assert exp.store.catalog.names() == []  # no .metadata yet: not complete
        (folder / ".metadata").write_bytes(b"coordinator metadata")
        assert wait_for(lambda: exp.store.catalog.names())
    captured = watcher.captured
    assert [c.name for c in captured] == ["out/step_1"] and captured[0].reason == "folder"
    version = exp.get_artifact("out/step_1")
    assert {e.path for e in version.manifest.entries} == {"__0_0.distcp", "__1_0.distcp", ".metadata"}
    assert version.artifact_type is ArtifactType.CHECKPOINT
    assert len(exp.store.catalog.versions("out/step_1")) == 1


def test_the_watcher_versions_a_model_folder_written_file_by_file_once(exp: Experiment, workdir: Path) -> None:
    pytest.importorskip("watchdog")
    from tracelet_artifacts.hooks.watcher import ArtifactWatcher

    (workdir / "out").mkdir()
    with ArtifactWatcher(["out"], experiment=exp, settle_s=0.3):
        write_sharded_model(workdir / "out" / "hf", pause=lambda: time.sleep(0.5))
        assert wait_for(lambda: exp.store.catalog.names())
    assert exp.store.catalog.names() == ["out/hf"]
    version = exp.get_artifact("out/hf")
    assert version.artifact_type is ArtifactType.MODEL
    assert {e.path for e in version.manifest.entries} == {
        "config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
        "model.safetensors.index.json"}


def test_a_model_folder_written_just_before_stop_is_taken_whole_by_the_final_sweep(
        exp: Experiment, workdir: Path) -> None:
    pytest.importorskip("watchdog")
    from tracelet_artifacts.hooks.watcher import ArtifactWatcher

    (workdir / "out").mkdir()
    watcher = ArtifactWatcher(["out"], experiment=exp, settle_s=0.3, polling=True, poll_interval_s=5.0).start()
    write_sharded_model(workdir / "out" / "hf")
    watcher.stop()
    assert exp.store.catalog.names() == ["out/hf"]


# -- validation outputs ------------------------------------------------------------------------------
def test_an_image_tensor_becomes_a_valid_png() -> None:
    data = png(torch.rand(3, 8, 10))
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (10, 8)
    idat = data.index(b"IDAT")
    length = struct.unpack(">I", data[idat - 4:idat])[0]
    assert len(zlib.decompress(data[idat + 4:idat + 4 + length])) == 8 * (1 + 10 * 3)


def test_validation_outputs_become_one_sample_artifact(tmp_path: Path) -> None:
    collector = SampleCollector(max_batches=2)
    for batch in range(4):
        collector.add(batch, 0, {"preds": torch.rand(2, 3, 8, 8, requires_grad=True), "loss": torch.tensor(0.5),
                                 "label": "cat"})
    collector.add(0, 1, {"other": torch.zeros(1)})  # a second dataloader is left out
    batches, skipped = collector.take()
    assert sorted(batches) == [0, 1] and skipped == []
    artifact = sample_artifact("run/samples", batches, skipped, epoch=2, step=10, folder=tmp_path / "png")
    assert artifact is not None and artifact.type is ArtifactType.SAMPLE
    paths = {f.artifact_path for f in artifact.files} | {o.artifact_path for o in artifact.objects}
    assert {"batch_0/preds/image_0.png", "batch_1/preds/image_1.png", "batch_0/loss.pt", "values.json"} <= paths
    assert collector.take() == ({}, [])


def test_a_user_folder_named_like_a_trainer_checkpoint_is_no_bundle(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoint-3"
    folder.mkdir()
    (folder / "weights.pt").write_bytes(b"x")
    assert bundles.kind_of(folder) is None  # no Trainer file in it: a plain folder
    (folder / "trainer_state.json").write_text("{}")
    assert bundles.kind_of(folder) == bundles.HF_CHECKPOINT


def test_disabling_puts_back_every_function_the_capture_wrapped(exp: Experiment) -> None:
    import sys

    import torch.distributed.checkpoint as dcp

    originals = (torch.save, torch.serialization._open_zipfile_writer, torch.serialization._save, dcp.save)
    meta_path = list(sys.meta_path)
    with ts.capture_torch_save(exp):
        assert torch.serialization._open_zipfile_writer is not originals[1] and dcp.save is not originals[3]
    assert (torch.save, torch.serialization._open_zipfile_writer, torch.serialization._save, dcp.save) == originals
    assert sys.meta_path == meta_path
