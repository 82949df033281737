"""A training script killed in the middle of writing its second checkpoint (the crash suite sends SIGKILL).

It saves ``ckpt/epoch_0.pt`` (captured by automagic), lists the store (read your writes: the version is
stored), prints ``STORED``, then starts ``torch.save`` of ``ckpt/epoch_1.pt`` and, with that file open and
half-written, prints ``WRITING`` and waits to be killed. Usage: ``python crash_training.py OUT_DIR``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

from tracelet_artifacts import Experiment


class KilledWhilePickled:
    """Pickling this (inside torch.save, with the checkpoint file already open) waits for the kill."""

    def __reduce__(self) -> tuple[Any, ...]:
        print("WRITING", flush=True)
        time.sleep(120)
        return (dict, ())


def main(out: Path) -> None:
    os.chdir(out)
    os.makedirs("ckpt", exist_ok=True)
    model = torch.nn.Linear(64, 64)
    with Experiment("crash-run", backend=["mlflow"], automagic_artifacts=True) as exp:
        torch.save({"epoch": 0, "state_dict": model.state_dict()}, "ckpt/epoch_0.pt")
        assert [v.name for v in exp.list_artifacts()] == ["ckpt/epoch_0.pt"]
        print("STORED", flush=True)
        torch.save({"epoch": 1, "state_dict": model.state_dict(), "extra": KilledWhilePickled()}, "ckpt/epoch_1.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
