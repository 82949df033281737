"""Automatic capture under real multi-process DDP (2 gloo processes on the CPU, launched by Lightning).

Guards the hang where rank 0's callback read ``trainer.log_dir`` (a collective broadcast) while the other
rank's callback stayed idle, and checks that each checkpoint Lightning writes is captured exactly once.
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
from tracelet_artifacts.store.embedded import EmbeddedStore

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("ddp_training.py")


def _run_ddp(workdir: Path, capture: str = "on", timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TRACELET_") and k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_PORT")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    try:
        return subprocess.run([sys.executable, str(SCRIPT), str(workdir), capture], cwd=workdir, env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"2-process DDP training with capture {capture} did not finish in {timeout:.0f} s "
                    f"(a rank is stuck in a collective?):\n{(exc.stderr or b'')[-3000:]!r}")


def test_ddp_training_with_automagic_capture_finishes_on_every_rank(workdir: Path) -> None:
    done = _run_ddp(workdir)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "RANK 0 FIT" in done.stdout and "RANK 1 FIT" in done.stdout

    store = EmbeddedStore(workdir / ".tracelet")
    # Named from the CSV logger's folder as rank 0 sees it (no broadcast needed to find it).
    hparams = store.get("logs/lightning_logs/version_0/hparams")
    assert hparams.artifact_type is ArtifactType.CONFIG
    assert store.get("logs/lightning_logs/version_0/model").artifact_type is ArtifactType.MODEL


def test_ddp_checkpoints_are_captured_once_each_from_the_writing_rank(workdir: Path) -> None:
    done = _run_ddp(workdir)
    assert done.returncode == 0, done.stderr[-3000:]
    store = EmbeddedStore(workdir / ".tracelet")
    name = "logs/lightning_logs/version_0/checkpoints"
    versions = store.catalog.versions(name)
    digests = [v.digest for v in versions]
    assert len(digests) == len(set(digests)), "the same checkpoint content became two versions"
    on_disk = sorted((workdir / "logs" / "lightning_logs" / "version_0" / "checkpoints").glob("*.ckpt"))
    assert len(on_disk) == 2  # save_top_k=1 and save_last
    held = {e.sha256 for v in versions for e in v.manifest.entries}
    assert all(digest.sha256_file(p) in held for p in on_disk), "a checkpoint on disk is not in the store"
    # Both ranks run the same script and open the same store, but only the rank that wrote a file captured it.
    assert {v.run_id for v in versions} == {versions[0].run_id}
    best = store.get(name, "best").manifest.metadata
    assert best["file_name"].startswith("epoch=1") and best["is_best"] is True
