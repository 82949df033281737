"""Example: point the file watcher at an output folder and every complete file written there is versioned,
with no logging code in the "training" loop.

The loop below writes what a training script typically writes: a config, per-epoch metrics appended to a
CSV, a plot, a checkpoint saved to a temp name and renamed into place (the atomic-write pattern), a
checkpoint written slowly in chunks, and scratch files the watcher ignores (``*.tmp``, dotfiles). It
runs on the embedded store (no server, no account) and ends by printing what was captured, as
``tracelet-artifacts ls --all-versions`` does.

    python examples/watch_outputs.py [work-folder]      # default: a fresh temporary folder

The same from a shell, for a script you cannot change: ``tracelet-artifacts watch outputs/``.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from tracelet_artifacts import Experiment
from tracelet_artifacts.cli import main as tracelet_cli
from tracelet_artifacts.hooks.watcher import ArtifactWatcher, CapturedFile


def fake_checkpoint(epoch: int) -> bytes:
    """Bytes shaped like a torch checkpoint (a zip archive), without needing torch."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", json.dumps({"epoch": epoch}))
        archive.writestr("archive/data/0", os.urandom(200_000))
    return buffer.getvalue()


def train(outputs: Path, epochs: int = 3) -> None:
    (outputs / "config.json").write_text(json.dumps({"lr": 0.1, "epochs": epochs}))
    for epoch in range(epochs):
        time.sleep(0.3)  # "training"
        with (outputs / "metrics.csv").open("a") as metrics:  # reopened and closed each epoch: a version each
            metrics.write(f"{epoch},{1.0 / (epoch + 1):.3f}\n")
        temporary = outputs / f"epoch={epoch}.ckpt.tmp"
        temporary.write_bytes(fake_checkpoint(epoch))
        os.replace(temporary, outputs / f"epoch={epoch}.ckpt")
        (outputs / ".scratch").write_text("ignored: a dotfile")
    (outputs / "plots").mkdir(exist_ok=True)
    (outputs / "plots" / "loss.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    data = fake_checkpoint(epochs)
    with (outputs / "final.pt").open("wb") as handle:  # written slowly; captured once, after the close
        for start in range(0, len(data), 50_000):
            handle.write(data[start:start + 50_000])
            handle.flush()
            time.sleep(0.2)


def main(folder: Path) -> None:
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)  # a folder that does not exist yet is created
    os.chdir(folder)  # the outputs and the embedded store (./.tracelet) land here
    outputs = folder / "outputs"
    outputs.mkdir(exist_ok=True)

    def show(item: CapturedFile) -> None:
        print(f"  captured {item.name:<26} {item.artifact_type.value:<11} {item.size:>8} bytes  ({item.reason})")

    with Experiment("watch-demo") as exp, ArtifactWatcher([outputs], experiment=exp, settle_s=0.5, callback=show):
        train(outputs)
    # leaving the blocks swept the folder once more and waited for every capture to be stored
    print(f"\nCaptured in {folder / '.tracelet'}:")
    os.environ.setdefault("COLUMNS", "150")  # room for the full names when the output is not a terminal
    tracelet_cli(["ls", "--all-versions"], standalone_mode=False)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="watch-demo-"))
    target.mkdir(parents=True, exist_ok=True)
    main(target.resolve())
