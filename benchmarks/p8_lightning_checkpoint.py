"""P8: a Lightning checkpoint save (~100 MB) with TraceletCallback capturing it ÷ the same save without.
Target: ≤ 1.05 (the callback hard-links the file and hands it over; hashing and copying run off the thread).

Side by side in one process, alternating which goes first in each repetition: the plain side calls a fresh
``TorchCheckpointIO.save_checkpoint`` (what Lightning's strategy calls), the captured side calls the real
Trainer's ``strategy.checkpoint_io.save_checkpoint`` after ``TraceletCallback.setup`` wrapped it, on an
embedded store in the same folder (so staging is a hard link). One tensor changes before every repetition,
so each capture is a new version. Between repetitions the callback is flushed and the page cache written
back (``os.sync``), so neither side pays for the other's background work.

Printed: the median of each side, their ratio against the target, the callback's own time inside the save
(measured around its capture step), and the time from the save returning until the version is stored.
On a machine shared with other work the two medians can drift apart by noise; the callback's own time
is the figure the ratio should be read against.

    python benchmarks/p8_lightning_checkpoint.py [--mb 100] [--reps 7] [--dir /path/on/disk]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

try:
    import lightning.pytorch as pl
    from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
except ImportError:
    import pytorch_lightning as pl  # type: ignore[no-redef]
    from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO  # type: ignore[assignment]

from tracelet_artifacts.artifact import ArtifactType
from tracelet_artifacts.experiment import Experiment
from tracelet_artifacts.hooks.lightning import TraceletCallback
from tracelet_artifacts.settings import TraceletSettings

TARGET_RATIO = 1.05
TENSORS = 50


def checkpoint(megabytes: int) -> dict[str, Any]:
    per_tensor = megabytes * 1024 * 1024 // 4 // TENSORS
    generator = torch.Generator().manual_seed(0)
    weights = {f"layer{i}.weight": torch.randn(per_tensor, generator=generator) for i in range(TENSORS)}
    return {"state_dict": weights, "epoch": 0, "global_step": 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--dir", default=None, help="work folder (default: a temp folder)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="p8-", dir=args.dir))
    os.chdir(work)
    ckpt = checkpoint(args.mb)
    plain_io = TorchCheckpointIO()
    exp = Experiment("p8", settings=TraceletSettings(store_path=work / ".tracelet")).start()
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False, default_root_dir=str(work))
    callback = TraceletCallback(exp, log_model=False, log_hparams=False)
    callback.setup(trainer, None, "fit")
    captured_io = trainer.strategy.checkpoint_io
    plain: list[float] = []
    captured: list[float] = []
    stored: list[float] = []
    in_hook: list[float] = []
    on_saved = callback._on_saved

    def timed_on_saved(*hook_args: Any) -> None:  # the callback's own work after Lightning's save returned
        started = time.perf_counter()
        on_saved(*hook_args)
        in_hook.append(time.perf_counter() - started)

    callback._on_saved = timed_on_saved
    try:
        for rep in range(args.reps):
            ckpt["state_dict"]["layer0.weight"][0] = float(rep)  # new content every repetition
            ckpt["epoch"] = ckpt["global_step"] = rep
            sides = [("plain", plain_io, plain), ("captured", captured_io, captured)]
            for side, io, times in sides if rep % 2 == 0 else reversed(sides):
                os.sync()
                started = time.perf_counter()
                io.save_checkpoint(ckpt, str(work / side / f"epoch={rep}.ckpt"))
                times.append(time.perf_counter() - started)
                if side == "captured":
                    returned = time.perf_counter()
                    callback.flush(600)
                    stored.append(time.perf_counter() - returned)
        versions = exp.store.catalog.search(artifact_type=ArtifactType.CHECKPOINT)
    finally:
        callback.teardown(trainer, None, "fit")
        exp.stop()
        shutil.rmtree(work, ignore_errors=True)
    ratio = statistics.median(captured) / statistics.median(plain)
    print(f"P8 Lightning checkpoint save, {args.mb} MB, {args.reps} reps (alternating order)")
    print(f"  plain TorchCheckpointIO.save_checkpoint : median {statistics.median(plain) * 1000:8.1f} ms")
    print(f"  with TraceletCallback capturing it      : median {statistics.median(captured) * 1000:8.1f} ms")
    print(f"  ratio captured / plain                  : {ratio:.3f}  (target <= {TARGET_RATIO}) "
          f"{'OK' if ratio <= TARGET_RATIO else 'ABOVE TARGET'}")
    print(f"  of which the callback's own work        : median {statistics.median(in_hook) * 1000:8.1f} ms "
          f"(stat, hard link, hand-over)")
    print(f"  save returned -> version stored         : median {statistics.median(stored) * 1000:8.1f} ms "
          f"(background)")
    print(f"  versions captured                       : {len(versions)} of {args.reps}")


if __name__ == "__main__":
    main()
