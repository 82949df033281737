"""A 2-process DDP training script (gloo, CPU) for the DDP suite, launched the way Lightning launches it.

Lightning's DDP strategy starts rank 1 by running this same script again with ``LOCAL_RANK`` set, so it
must be a file, not a function. Usage: ``python ddp_training.py OUT_DIR [on|off] [ddp|sharded] [EPOCHS]``;
``on`` (default) trains inside an ``Experiment`` with automagic capture, ``off`` without. ``sharded`` saves
checkpoints the way ``FSDPStrategy(state_dict_type="sharded")`` does (a folder of every rank's
``torch.distributed.checkpoint`` shards plus rank 0's ``meta.pt``), which Lightning's own FSDP refuses to
run on a CPU. Each rank prints ``RANK <r> FIT <seconds>`` when its fit returns and ``RANK <r> EPOCH <e>
<seconds>`` per epoch.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import lightning as L
import torch
from lightning.fabric.strategies.fsdp import _distributed_checkpoint_save
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.strategies import DDPStrategy
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


class ShardedSaveDDP(DDPStrategy):
    """DDP that saves checkpoints as FSDPStrategy(state_dict_type="sharded") does: a folder, every rank writing."""

    def save_checkpoint(self, checkpoint: dict, filepath: str | Path, storage_options: object = None) -> None:
        path = Path(self.broadcast(filepath))
        path.mkdir(parents=True, exist_ok=True)
        converted = {"model": checkpoint.pop("state_dict")}
        converted.update({f"optimizer_{i}": s for i, s in enumerate(checkpoint.pop("optimizer_states", []))})
        _distributed_checkpoint_save(converted, path)
        if self.global_rank == 0:
            torch.save(checkpoint, path / "meta.pt")


class EpochTimer(Callback):
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.started = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        print(f"RANK {trainer.global_rank} EPOCH {trainer.current_epoch} {time.perf_counter() - self.started:.3f}",
              flush=True)


def main(out: Path, capture: bool, strategy: str = "ddp", epochs: int = 2) -> None:
    os.chdir(out)
    torch.manual_seed(0)
    x = torch.randn(int(os.environ.get("TRAIN_ROWS", "64")), 4)  # the DDP benchmark trains longer epochs
    data = DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=16)

    def fit() -> None:
        chosen = ShardedSaveDDP() if strategy == "sharded" else "ddp"
        trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", devices=2, strategy=chosen, logger=CSVLogger("logs"),
                            callbacks=[ModelCheckpoint(monitor="val_loss", save_top_k=1, save_last=True),
                                       EpochTimer()],
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
    args = sys.argv[1:]
    main(Path(args[0]).resolve(), (args[1] if len(args) > 1 else "on") == "on", args[2] if len(args) > 2 else "ddp",
         int(args[3]) if len(args) > 3 else 2)
