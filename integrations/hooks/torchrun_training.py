"""A plain 2-process DDP script (gloo, CPU), launched with ``torchrun --standalone --nproc-per-node 2``.

Every rank builds the Experiment the way users write it. Rank 0 saves a checkpoint per epoch with a
``save`` imported from torch before the experiment started; every rank writes its shard of a
``torch.distributed.checkpoint`` folder per epoch; rank 1 only reads (it loads rank 0's checkpoint and
lists the store). Usage: ``torchrun ... torchrun_training.py OUT_DIR [on|off] [EPOCHS] [BACKEND]``.
Each rank prints ``RANK <r> EPOCH <e> <seconds>`` and, at the end, ``RANK <r> SEES <names>``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch import save  # bound before the experiment starts, as many scripts do
from torch.nn.parallel import DistributedDataParallel

from tracelet_artifacts import Experiment


def train(epochs: int, experiment: Experiment | None) -> None:
    rank = dist.get_rank()
    torch.manual_seed(0)
    model = DistributedDataParallel(torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(),
                                                        torch.nn.Linear(64, 1)))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(int(os.environ.get("TRAIN_ROWS", "2048")), 32)  # the DDP benchmark trains longer epochs
    y = x.sum(1, keepdim=True)
    mine_x, mine_y = x[rank::2], y[rank::2]
    for epoch in range(epochs):
        started = time.perf_counter()
        for start in range(0, len(mine_x), 32):
            loss = torch.nn.functional.mse_loss(model(mine_x[start:start + 32]), mine_y[start:start + 32])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if rank == 0:
            os.makedirs("ckpt", exist_ok=True)
            save({"epoch": epoch, "state_dict": model.module.state_dict(), "optimizer": optimizer.state_dict()},
                 f"ckpt/epoch_{epoch}.pt")
        dcp.save({"model": model.module.state_dict(), "epoch": epoch}, checkpoint_id=f"dcp/epoch_{epoch}")
        dist.barrier()
        if rank == 1:  # a rank that only reads what rank 0 wrote
            torch.load(f"ckpt/epoch_{epoch}.pt", weights_only=False)
        print(f"RANK {rank} EPOCH {epoch} {time.perf_counter() - started:.3f}", flush=True)
    if experiment is not None:
        names = sorted(v.name for v in experiment.list_artifacts())
        print(f"RANK {rank} SEES {','.join(names)}", flush=True)


def main(out: Path, capture: bool, epochs: int, backend: str | None) -> None:
    os.chdir(out)
    dist.init_process_group("gloo")
    try:
        context = Experiment("torchrun-run", backend=[backend] if backend else [], automagic_artifacts=True) \
            if capture else contextlib.nullcontext()
        with context as experiment:
            train(epochs, experiment)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    args = sys.argv[1:]
    main(Path(args[0]).resolve(), (args[1] if len(args) > 1 else "on") == "on",
         int(args[2]) if len(args) > 2 else 2, args[3] if len(args) > 3 else None)
