"""A run killed with SIGKILL in the middle of writing a checkpoint: after ``tracelet-artifacts sync`` the last
complete checkpoint is in the store and delivered to MLflow, and the torn one never is."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
mlflow = pytest.importorskip("mlflow")

from test_ddp import clean_env  # noqa: E402

from tracelet_artifacts import digest  # noqa: E402
from tracelet_artifacts.store.embedded import EmbeddedStore  # noqa: E402

pytestmark = pytest.mark.integration
SCRIPT = Path(__file__).with_name("crash_training.py")


def wait_for_line(process: subprocess.Popen[str], wanted: str, timeout: float = 120) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line.strip())
        if line.strip() == wanted:
            return seen
    pytest.fail(f"the script never printed {wanted!r}; it printed {seen}")


def test_after_a_kill_mid_checkpoint_sync_delivers_the_last_complete_one_and_never_the_torn_one(
        workdir: Path) -> None:
    process = subprocess.Popen([sys.executable, str(SCRIPT), str(workdir)], cwd=workdir, env=clean_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        wait_for_line(process, "STORED")
        wait_for_line(process, "WRITING")
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
    torn = workdir / "ckpt" / "epoch_1.pt"
    assert torn.exists()  # the kill left a half-written checkpoint behind

    sync = subprocess.run([sys.executable, "-m", "tracelet_artifacts.cli", "sync", "--store",
                           str(workdir / ".tracelet")], cwd=workdir, env=clean_env(), capture_output=True, text=True,
                          timeout=300)
    assert sync.returncode == 0, sync.stdout + sync.stderr

    store = EmbeddedStore(workdir / ".tracelet")
    try:
        assert store.catalog.names() == ["ckpt/epoch_0.pt"]  # the torn one never became a version
        (version,) = store.catalog.versions("ckpt/epoch_0.pt")
        assert version.manifest.entries[0].digest == digest.file_key(workdir / "ckpt" / "epoch_0.pt")
        assert store.catalog.outbox_counts().get("pending", 0) == 0
        assert not list((workdir / ".tracelet" / "staging" / "torch_save").glob("*epoch_1*"))
    finally:
        store.close()
    client = mlflow.tracking.MlflowClient(tracking_uri=f"sqlite:///{workdir / '.tracelet' / 'mlflow.db'}")
    (run,) = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    delivered = {a.path for a in client.list_artifacts(run.info.run_id, "ckpt/epoch_0.pt")}
    assert delivered, "the last complete checkpoint was not delivered to MLflow"
    everything = str([a.path for a in client.list_artifacts(run.info.run_id)])
    assert "epoch_1" not in everything
