"""Automatic capture under real multi-process DDP (2 gloo processes on the CPU): launched by Lightning
(``strategy="ddp"``), and a plain script launched with ``torchrun --nproc-per-node 2``.

Guards the hang where rank 0's callback read ``trainer.log_dir`` (a collective broadcast) while the other
rank's callback stayed idle, and checks that each checkpoint is captured exactly once, from the process
that wrote it; that a rank that only reads opens no backend run and makes no version; and that a
``torch.distributed.checkpoint`` folder every rank wrote is one version holding every shard.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("lightning")

from tracelet_artifacts import digest
from tracelet_artifacts.artifact import ArtifactType
from tracelet_artifacts.store.catalog import ArtifactVersion
from tracelet_artifacts.store.embedded import EmbeddedStore

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("ddp_training.py")
TORCHRUN_SCRIPT = Path(__file__).with_name("torchrun_training.py")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment a launcher starts from: no TRACELET_* settings, no rank variables, our checkout first."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TRACELET_", "MLFLOW_TRACKING"))
           and k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_PORT", "MASTER_ADDR")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def run_launcher(command: list[str], workdir: Path, what: str, timeout: float = 240,
                 **extra: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(command, cwd=workdir, env=clean_env(**extra), capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{what} did not finish in {timeout:.0f} s (a rank is stuck in a collective?):\n"
                    f"{(exc.stderr or b'')[-3000:]!r}")


def _run_ddp(workdir: Path, capture: str = "on", timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return run_launcher([sys.executable, str(SCRIPT), str(workdir), capture], workdir,
                        f"2-process Lightning DDP training with capture {capture}", timeout)


def run_torchrun(workdir: Path, capture: str = "on", epochs: int = 2, backend: str = "",
                 **extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               str(TORCHRUN_SCRIPT), str(workdir), capture, str(epochs), *([backend] if backend else [])]
    return run_launcher(command, workdir, f"torchrun --nproc-per-node 2 with capture {capture}", **extra)


@pytest.fixture(scope="module")
def lightning_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One 2-process Lightning DDP training with automagic capture, shared by the tests that read it."""
    workdir = tmp_path_factory.mktemp("lightning-ddp")
    return workdir, _run_ddp(workdir)


@pytest.fixture(scope="module")
def torchrun_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One ``torchrun --nproc-per-node 2`` training, every rank inside an Experiment delivering to MLflow."""
    workdir = tmp_path_factory.mktemp("torchrun-ddp")
    return workdir, run_torchrun(workdir, backend="mlflow")  # MLflow's default here: <store>/mlflow.db


def test_ddp_training_with_automagic_capture_finishes_on_every_rank(
        lightning_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    workdir, done = lightning_run
    assert done.returncode == 0, done.stderr[-3000:]
    assert "RANK 0 FIT" in done.stdout and "RANK 1 FIT" in done.stdout

    store = EmbeddedStore(workdir / ".tracelet")
    # Named from the CSV logger's folder as rank 0 sees it (no broadcast needed to find it).
    hparams = store.get("logs/lightning_logs/version_0/hparams")
    assert hparams.artifact_type is ArtifactType.CONFIG
    assert store.get("logs/lightning_logs/version_0/model").artifact_type is ArtifactType.MODEL


def test_ddp_checkpoints_are_captured_once_each_from_the_writing_rank(
        lightning_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    workdir, done = lightning_run
    assert done.returncode == 0, done.stderr[-3000:]
    store = EmbeddedStore(workdir / ".tracelet")
    name = "logs/lightning_logs/version_0/checkpoints"
    versions = store.catalog.versions(name)
    digests = [v.digest for v in versions]
    assert len(digests) == len(set(digests)), "the same checkpoint content became two versions"
    on_disk = sorted((workdir / "logs" / "lightning_logs" / "version_0" / "checkpoints").glob("*.ckpt"))
    assert len(on_disk) == 2  # save_top_k=1 and save_last
    held = {e.digest for v in versions for e in v.manifest.entries}
    assert all(digest.file_key(p) in held for p in on_disk), "a checkpoint on disk is not in the store"
    # Both ranks run the same script and open the same store, but only the rank that wrote a file captured it.
    assert {v.run_id for v in versions} == {versions[0].run_id}
    best = store.get(name, "best").manifest.metadata
    assert best["file_name"].startswith("epoch=1") and best["is_best"] is True


def _versions(workdir: Path) -> dict[str, list[ArtifactVersion]]:
    store = EmbeddedStore(workdir / ".tracelet")
    try:
        return {name: store.catalog.versions(name) for name in store.catalog.names()}
    finally:
        store.close()


def test_torchrun_checkpoints_are_captured_once_from_rank_0_and_never_from_the_reading_rank(
        torchrun_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    workdir, done = torchrun_run
    assert done.returncode == 0, done.stderr[-3000:]
    assert "RANK 0 EPOCH 1" in done.stdout and "RANK 1 EPOCH 1" in done.stdout
    versions = _versions(workdir)
    assert sorted(versions) == ["ckpt/epoch_0.pt", "ckpt/epoch_1.pt", "dcp/epoch_0", "dcp/epoch_1"]
    assert all(len(v) == 1 for v in versions.values()), "a checkpoint became more than one version"
    assert len({v.run_id for vs in versions.values() for v in vs}) == 1  # rank 0's run only
    for epoch in (0, 1):
        (saved,) = versions[f"ckpt/epoch_{epoch}.pt"]
        assert saved.artifact_type is ArtifactType.CHECKPOINT  # `from torch import save`, bound before the start
        assert saved.manifest.entries[0].digest == digest.file_key(workdir / "ckpt" / f"epoch_{epoch}.pt")
        assert "latest" in saved.aliases
    # Read your writes: rank 0 listed the store right after its last save and saw all of it.
    assert "RANK 0 SEES ckpt/epoch_0.pt,ckpt/epoch_1.pt,dcp/epoch_0,dcp/epoch_1" in done.stdout


def test_torchrun_sharded_checkpoint_is_one_version_holding_every_rank_s_shard(
        torchrun_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    workdir, done = torchrun_run
    assert done.returncode == 0, done.stderr[-3000:]
    for epoch in (0, 1):
        (version,) = _versions(workdir)[f"dcp/epoch_{epoch}"]
        folder = workdir / "dcp" / f"epoch_{epoch}"
        assert version.artifact_type is ArtifactType.CHECKPOINT
        held = {e.path: e.digest for e in version.manifest.entries}
        assert held == {p.name: digest.file_key(p) for p in folder.iterdir()}
        assert {".metadata", "__0_0.distcp", "__1_0.distcp"} <= set(held)


def test_a_reading_rank_opens_no_second_backend_run(
        torchrun_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    mlflow = pytest.importorskip("mlflow")
    workdir, done = torchrun_run
    assert done.returncode == 0, done.stderr[-3000:]
    client = mlflow.tracking.MlflowClient(tracking_uri=f"sqlite:///{workdir / '.tracelet' / 'mlflow.db'}")
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    assert len(runs) == 1, f"{len(runs)} MLflow runs for one 2-process job"
    delivered = {a.path for a in client.list_artifacts(runs[0].info.run_id)}
    assert delivered, "rank 0's run received no artifact"
