"""The file watcher on a real training run: Lightning on CPU (tiny model, 3 epochs, ModelCheckpoint with
top-k eviction and last.ckpt rewritten every epoch) plus a plain ``torch.save``, all written into a
watched folder. Every file left on disk is in the store with its final digest, each epoch's last.ckpt
and the evicted top-k file were captured in time, and every version the watcher stored loads with
``torch.load`` (nothing half-written was captured).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pl = pytest.importorskip("lightning.pytorch")
pytest.importorskip("watchdog")

from tracelet_artifacts import digest  # noqa: E402
from tracelet_artifacts.experiment import Experiment  # noqa: E402
from tracelet_artifacts.hooks.naming import artifact_name_for  # noqa: E402
from tracelet_artifacts.hooks.watcher import ArtifactWatcher  # noqa: E402
from tracelet_artifacts.settings import TraceletSettings  # noqa: E402

pytestmark = pytest.mark.integration


class Regressor(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y))

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.05)


class SlowEpochs(pl.Callback):
    """Makes each epoch last longer than the settle period, as real ones do (this model trains in milliseconds)."""

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        if trainer.current_epoch > 0:
            time.sleep(1.0)


def loader(seed: int) -> Any:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(32, 4, generator=generator)
    data = torch.utils.data.TensorDataset(x, x.sum(dim=1, keepdim=True))
    return torch.utils.data.DataLoader(data, batch_size=8)


def test_checkpoints_of_a_real_training_run_are_captured_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("TRACELET_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outputs").mkdir()
    settings = TraceletSettings(store_path=tmp_path / ".tracelet")
    with Experiment("watch-training", settings=settings) as exp:
        with ArtifactWatcher(["outputs"], patterns=["*.ckpt", "*.pt"], experiment=exp, settle_s=0.5):
            checkpoint = pl.callbacks.ModelCheckpoint(dirpath="outputs/ckpt", monitor="val_loss", save_top_k=2,
                                                      save_last=True)
            trainer = pl.Trainer(max_epochs=3, accelerator="cpu", devices=1, logger=False,
                                 callbacks=[checkpoint, SlowEpochs()], enable_progress_bar=False,
                                 enable_model_summary=False)
            model = Regressor()
            trainer.fit(model, loader(0), loader(1))
            torch.save(model.state_dict(), "outputs/final.pt")
        on_disk = sorted(p for p in (tmp_path / "outputs").rglob("*") if p.is_file())
        assert len(on_disk) == 4  # two top-k checkpoints, last.ckpt, final.pt
        for path in on_disk:
            record = exp.store.get(artifact_name_for(path, path.name))
            assert record.manifest.entries[0].digest == digest.file_key(path), path
        assert exp.store.get("outputs/ckpt/last.ckpt").run_id == exp.run_id
        # an epoch takes over a second here, so each epoch's last.ckpt is captured before it is replaced (even
        # epoch 0's, which can land in outputs/ckpt before inotify watches that new folder: the watcher's scan
        # of a new folder finds it, and it waits the settle period), and the top-k file Lightning evicts at
        # epoch 2 was captured before it was deleted
        assert len(exp.store.catalog.versions("outputs/ckpt/last.ckpt")) == 3
        assert exp.store.get("outputs/ckpt/epoch_0-step_4.ckpt").version == 1
        for record in exp.store.catalog.search(latest_only=False):
            blob = exp.store.blob_path(record.manifest.entries[0].digest)
            loaded = torch.load(blob, map_location="cpu", weights_only=False)
            assert "state_dict" in loaded or "layer.weight" in loaded
