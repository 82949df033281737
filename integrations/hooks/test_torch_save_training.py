"""The torch.save capture on real training: a plain PyTorch loop under automagic versions every checkpoint
it writes with the bytes it wrote, delivers them to MLflow (read back with MLflow's own client), and the
example script runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from tracelet_artifacts import digest  # noqa: E402
from tracelet_artifacts.artifact import ArtifactType  # noqa: E402
from tracelet_artifacts.experiment import Experiment  # noqa: E402
from tracelet_artifacts.settings import TraceletSettings  # noqa: E402
from tracelet_artifacts.store.embedded import EmbeddedStore  # noqa: E402

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def sha256(path: Path) -> str:
    """The content key the store names this file by (BLAKE3)."""
    return digest.file_key(path)


def train(epochs: int = 3) -> list[str]:
    """A tiny regression loop that checkpoints every epoch; returns each checkpoint's digest as written."""
    torch.manual_seed(0)
    x = torch.randn(128, 8)
    y = x.sum(dim=1, keepdim=True)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    Path("checkpoints").mkdir()
    written = []
    for epoch in range(epochs):
        for start in range(0, 128, 32):
            loss = torch.nn.functional.mse_loss(model(x[start:start + 32]), y[start:start + 32])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        torch.save({"epoch": epoch, "model_state_dict": model.state_dict(),
                    "optimizer_state_dict": optimizer.state_dict(), "loss": loss.item()}, "checkpoints/last.pt")
        written.append(sha256(Path("checkpoints/last.pt")))
    torch.save(model, "model.pt")
    return written


def test_a_real_training_loop_under_automagic_versions_each_checkpoint_it_wrote(workdir: Path) -> None:
    settings = TraceletSettings(store_path=workdir / ".tracelet", automagic_artifacts=True)
    original = torch.save
    with Experiment("torch-loop", settings=settings):
        assert torch.save is not original
        written = train()
    assert torch.save is original

    store = EmbeddedStore(workdir / ".tracelet")
    versions = store.catalog.versions("checkpoints/last.pt")
    assert [v.artifact_type for v in versions] == [ArtifactType.CHECKPOINT] * 3
    assert [v.manifest.entries[0].digest for v in versions] == written
    assert [v.manifest.metadata.get("epoch") for v in versions] == [0, 1, 2]
    final = store.get("model.pt")
    assert final.artifact_type is ArtifactType.MODEL
    assert final.manifest.entries[0].digest == sha256(workdir / "model.pt")
    store.fetch("checkpoints/last.pt", 2, workdir / "fetched")
    assert torch.load(workdir / "fetched" / "last.pt", weights_only=True)["epoch"] == 1
    assert list((workdir / ".tracelet" / "staging" / "torch_save").iterdir()) == []
    store.close()


def test_captured_saves_reach_mlflow(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("mlflow")
    for key, value in {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "HOME": str(workdir)}.items():
        monkeypatch.setenv(key, value)
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    settings = TraceletSettings(store_path=workdir / ".tracelet", automagic_artifacts=True,
                                backend_options={"mlflow": {"tracking_uri": uri}})
    exp = Experiment("torch-save-mlflow", backend=["mlflow"], settings=settings).start()
    written = train()
    flushed = exp.stop()
    assert flushed is not None

    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("torch-save-mlflow").experiment_id])
    downloaded = Path(client.download_artifacts(run.info.run_id, "", str(workdir / "download")))
    delivered = {p.relative_to(downloaded).as_posix(): sha256(p) for p in downloaded.rglob("*") if p.is_file()}
    assert [delivered.get(f"checkpoints/last.pt/v{i}/last.pt") for i in (1, 2, 3)] == written
    assert delivered.get("model.pt/v1/model.pt") == sha256(workdir / "model.pt")


def test_the_example_runs_and_prints_what_it_captured(workdir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACELET_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "torch_save_capture.py"), str(workdir)],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    store = EmbeddedStore(workdir / ".tracelet")
    assert [v.version for v in store.catalog.versions("checkpoints/last.pt")] == [1, 2, 3]
    assert store.get("models/regressor.pt").artifact_type is ArtifactType.MODEL
    assert store.get("models/weights.pt").artifact_type is ArtifactType.WEIGHTS
    assert [v.version for v in store.catalog.versions("models/weights.pt")] == [1]  # re-saved unchanged
    assert store.get("checkpoints/final.ckpt").artifact_type is ArtifactType.CHECKPOINT
    assert "checkpoints/final.ckpt" in done.stdout and "models/regressor.pt" in done.stdout
    store.close()
