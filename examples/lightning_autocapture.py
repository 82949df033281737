"""Example: Lightning training whose checkpoints, final model and hyper-parameters are versioned with no
upload code — ``automagic_artifacts=True`` adds a TraceletCallback to every Trainer.

Trains a tiny classifier for 3 epochs on CPU with ``ModelCheckpoint(save_top_k=2, save_last=True)`` on the
embedded store (no server, no account), then prints what was captured as ``tracelet-artifacts ls`` does.

    python examples/lightning_autocapture.py [work-folder]      # default: a fresh temporary folder
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

try:
    import lightning.pytorch as pl
except ImportError:  # the older standalone namespace works the same way
    import pytorch_lightning as pl  # type: ignore[no-redef]

from tracelet_artifacts import Experiment
from tracelet_artifacts.cli import main as tracelet_cli


class TinyClassifier(pl.LightningModule):
    """Two linear layers on 8 features, 3 classes."""

    def __init__(self, lr: float = 0.1, hidden: int = 16) -> None:
        super().__init__()
        self.save_hyperparameters()  # captured as the CONFIG artifact ".../hparams"
        self.net = torch.nn.Sequential(torch.nn.Linear(8, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 3))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.cross_entropy(self.net(x), y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.cross_entropy(self.net(x), y))

    def tracelet_validation_samples(self) -> dict[str, Any]:
        """Picked up by TraceletCallback after each validation: a SAMPLE artifact ".../samples"."""
        probe = torch.linspace(-1, 1, 16).reshape(2, 8)
        return {"probe_predictions": self.net(probe).argmax(dim=1)}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def loaders() -> tuple[torch.utils.data.DataLoader[Any], torch.utils.data.DataLoader[Any]]:
    generator = torch.Generator().manual_seed(7)
    x = torch.randn(96, 8, generator=generator)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    data = torch.utils.data.TensorDataset(x, y)
    train, val = torch.utils.data.random_split(data, [64, 32], generator=generator)
    return torch.utils.data.DataLoader(train, batch_size=16), torch.utils.data.DataLoader(val, batch_size=32)


def main(folder: Path) -> None:
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)  # a folder that does not exist yet is created
    os.chdir(folder)  # checkpoints, logs and the embedded store (./.tracelet) all land here
    torch.manual_seed(0)
    with Experiment("lightning-demo", automagic_artifacts=True):
        checkpoint = pl.callbacks.ModelCheckpoint(monitor="val_loss", mode="min", save_top_k=2, save_last=True)
        trainer = pl.Trainer(max_epochs=3, accelerator="cpu", devices=1, logger=pl.loggers.CSVLogger("."),
                             callbacks=[checkpoint], log_every_n_steps=1, enable_progress_bar=False,
                             enable_model_summary=False)
        train_loader, val_loader = loaders()
        trainer.fit(TinyClassifier(), train_loader, val_loader)
    # leaving the block waited for the background capture; now show what the store holds
    print(f"\nCaptured in {folder / '.tracelet'} (best checkpoint: {Path(checkpoint.best_model_path).name}):")
    os.environ.setdefault("COLUMNS", "150")  # room for the full names when the output is not a terminal
    tracelet_cli(["ls", "--all-versions"], standalone_mode=False)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="lightning-demo-"))
    target.mkdir(parents=True, exist_ok=True)
    main(target.resolve())
