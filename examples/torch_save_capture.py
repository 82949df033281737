"""Example: a plain PyTorch loop whose ``torch.save`` calls are versioned with no upload code.

Trains a tiny regressor for 3 epochs on CPU inside ``capture_torch_save(exp)`` on the embedded store (no
server, no account). Every epoch re-saves ``checkpoints/last.pt`` (a new version each time, since the
weights changed); the final model, its state dict and a checkpoint written through an open file are
captured as MODEL, WEIGHTS and CHECKPOINT; a save into a BytesIO is left alone; saving unchanged weights
again makes no new version. Then it prints what was captured, as ``tracelet-artifacts ls`` shows it.

    python examples/torch_save_capture.py [work-folder]      # default: a fresh temporary folder

With ``Experiment(..., automagic_artifacts=True)`` (or ``TRACELET_AUTOMAGIC_ARTIFACTS=true``) the same
capture is on with no ``with capture_torch_save(...)`` line at all.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from pathlib import Path

import torch

from tracelet_artifacts import Experiment
from tracelet_artifacts.cli import main as tracelet_cli
from tracelet_artifacts.hooks.torch_save import capture_torch_save


def main(folder: Path) -> None:
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)  # a folder that does not exist yet is created
    os.chdir(folder)  # the saved files and the embedded store (./.tracelet) land here
    torch.manual_seed(0)
    x = torch.randn(256, 8)
    y = x @ torch.linspace(-1, 1, 8) + 0.1 * torch.randn(256)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    Path("checkpoints").mkdir(exist_ok=True)
    Path("models").mkdir(exist_ok=True)

    with Experiment("torch-save-demo") as exp, capture_torch_save(exp) as capture:
        for epoch in range(3):
            for batch in range(0, 256, 32):
                loss = torch.nn.functional.mse_loss(model(x[batch:batch + 32]).squeeze(1), y[batch:batch + 32])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            print(f"epoch {epoch}: loss {loss.item():.4f}")
            torch.save({"epoch": epoch, "model_state_dict": model.state_dict(),
                        "optimizer_state_dict": optimizer.state_dict()}, "checkpoints/last.pt")

        torch.save(model, "models/regressor.pt")                      # MODEL
        torch.save(model.state_dict(), Path("models/weights.pt"))     # WEIGHTS
        with open("checkpoints/final.ckpt", "wb") as handle:          # CHECKPOINT, captured once closed
            torch.save({"epoch": 3, "state_dict": model.state_dict()}, handle)
        torch.save(model.state_dict(), io.BytesIO())                  # in memory: not captured
        capture.flush()
        torch.save(model.state_dict(), "models/weights.pt")           # same bytes: no new version
        capture.flush()

        print(f"\ncapture stats: {capture.stats}")
        for item in capture.captured:
            print(f"  {os.path.relpath(item.path):24} -> {item.name}:v{item.version} ({item.artifact_type.value})")
    # leaving the block waited for anything still being stored; now show what the store holds
    print(f"\nCaptured in {folder / '.tracelet'}:")
    os.environ.setdefault("COLUMNS", "150")  # room for the full names when the output is not a terminal
    tracelet_cli(["ls", "--all-versions"], standalone_mode=False)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="torch-save-demo-")))
