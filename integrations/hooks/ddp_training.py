"""A 2-process DDP training script (gloo, CPU) for the DDP suite, launched the way Lightning launches it.

Lightning's DDP strategy starts rank 1 by running this same script again with ``LOCAL_RANK`` set, so it
must be a file, not a function. Usage: ``python ddp_training.py OUT_DIR [on|off]``; ``on`` (default)
trains inside an ``Experiment`` with automagic capture, ``off`` without. Each rank prints
``RANK <r> FIT <seconds>`` when its fit returns.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tracelet_artifacts import Experiment


class TinyRegressor(L.LightningModule):
    def __init__(self, lr: float = 0.05) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Linear(4, 1)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss, sync_dist=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> None:
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self.net(x), y), sync_dist=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def main(out: Path, capture: bool) -> None:
    os.chdir(out)
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    data = DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=16)

    def fit() -> None:
        trainer = L.Trainer(max_epochs=2, accelerator="cpu", devices=2, strategy="ddp", logger=CSVLogger("logs"),
                            callbacks=[ModelCheckpoint(monitor="val_loss", save_top_k=1, save_last=True)],
                            enable_progress_bar=False, enable_model_summary=False)
        started = time.perf_counter()
        trainer.fit(TinyRegressor(), data, data)
        print(f"RANK {trainer.global_rank} FIT {time.perf_counter() - started:.3f}", flush=True)

    if capture:
        with Experiment("ddp-run", backend=[], automagic_artifacts=True):
            fit()
    else:
        fit()


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve(), (sys.argv[2] if len(sys.argv) > 2 else "on") == "on")
