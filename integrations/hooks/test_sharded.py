"""Sharded checkpoints from 2 real processes (gloo, CPU): one CHECKPOINT version per checkpoint folder,
holding every rank's shard and the folder's ``.metadata``, created only once every rank has finished.

- Lightning: a DDP strategy that saves the way ``FSDPStrategy(state_dict_type="sharded")`` does (Lightning's
  FSDP itself refuses a CPU), captured by the automagic TraceletCallback.
- The file watcher, in this process, watching what a ``torchrun --nproc-per-node 2`` job writes with
  ``torch.distributed.checkpoint.save`` (no Experiment in the job).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("lightning")
pytest.importorskip("watchdog")

from test_ddp import SCRIPT, run_launcher, run_torchrun

from tracelet_artifacts import digest
from tracelet_artifacts.artifact import ArtifactType
from tracelet_artifacts.experiment import Experiment
from tracelet_artifacts.hooks.watcher import ArtifactWatcher
from tracelet_artifacts.settings import TraceletSettings
from tracelet_artifacts.store.embedded import EmbeddedStore

pytestmark = pytest.mark.integration
SHARD_FILES = {".metadata", "__0_0.distcp", "__1_0.distcp"}


def test_a_lightning_sharded_checkpoint_folder_is_one_version_with_every_shard(workdir: Path) -> None:
    done = run_launcher([sys.executable, str(SCRIPT), str(workdir), "on", "sharded"], workdir,
                        "2-process Lightning training with sharded checkpoints")
    assert done.returncode == 0, done.stderr[-3000:]
    store = EmbeddedStore(workdir / ".tracelet")
    name = "logs/lightning_logs/version_0/checkpoints"
    versions = store.catalog.versions(name)
    assert versions, store.catalog.names()
    for version in versions:  # never a version missing a shard or the metadata
        held = {e.path.split("/", 1)[1] for e in version.manifest.entries}
        assert held == SHARD_FILES | {"meta.pt"}, (version.version, held)
        assert version.artifact_type is ArtifactType.CHECKPOINT
    assert len({v.digest for v in versions}) == len(versions)
    folders = workdir / "logs" / "lightning_logs" / "version_0" / "checkpoints"
    on_disk = {p.name: {f.name: digest.file_key(f) for f in p.iterdir()} for p in folders.iterdir()}
    assert sorted(on_disk) == ["epoch=1-step=4.ckpt", "last.ckpt"]
    stored = [{e.path.split("/", 1)[1]: e.digest for e in v.manifest.entries} for v in versions]
    assert all(files in stored for files in on_disk.values()), "a checkpoint folder on disk is not in the store"
    best = store.get(name, "best")
    assert best.manifest.metadata["file_name"] == "epoch=1-step=4.ckpt"
    assert {e.path.split("/", 1)[1]: e.digest for e in best.manifest.entries} == on_disk["epoch=1-step=4.ckpt"]
    store.close()


def test_the_watcher_versions_each_dcp_folder_of_a_torchrun_job_once_with_its_metadata(workdir: Path) -> None:
    (workdir / "dcp").mkdir()
    (workdir / "ckpt").mkdir()
    settings = TraceletSettings(store_path=workdir / ".tracelet", watch_settle_s=0.5)
    with Experiment("watching", settings=settings) as exp:
        watcher = ArtifactWatcher(["dcp", "ckpt"], experiment=exp).start()
        done = run_torchrun(workdir, capture="off")
        captured = watcher.stop()
        assert done.returncode == 0, done.stderr[-3000:]
        names = sorted(exp.store.catalog.names())
        assert names == ["ckpt/epoch_0.pt", "ckpt/epoch_1.pt", "dcp/epoch_0", "dcp/epoch_1"], names
        for epoch in (0, 1):
            (version,) = exp.store.catalog.versions(f"dcp/epoch_{epoch}")
            folder = workdir / "dcp" / f"epoch_{epoch}"
            assert version.artifact_type is ArtifactType.CHECKPOINT
            assert {e.path: e.digest for e in version.manifest.entries} == {
                p.name: digest.file_key(p) for p in folder.iterdir()}
            assert {e.path for e in version.manifest.entries} == SHARD_FILES
    assert sorted(c.name for c in captured if c.reason == "folder") == ["dcp/epoch_0", "dcp/epoch_1"]
