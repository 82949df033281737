"""DDP overhead: a 2-process DDP training epoch (gloo, CPU) with automatic capture on ÷ the same epoch off.
Target: ≤ 1.05 (the capture hard-links each checkpoint and hands it over; nothing runs in a collective).

Two launch modes, each run with capture off and on, alternating which goes first:

- ``torchrun``: ``torchrun --standalone --nproc-per-node 2 integrations/hooks/torchrun_training.py``; each epoch
  trains, rank 0 saves a checkpoint with ``torch.save`` and every rank writes a ``torch.distributed.checkpoint``
  folder; with capture on, every rank runs inside ``Experiment(automagic_artifacts=True)``.
- ``lightning``: ``integrations/hooks/ddp_training.py`` with ``strategy="ddp"``, a ModelCheckpoint every epoch,
  and (capture on) the automagic TraceletCallback.

An epoch's time is what each rank prints for it (training plus its checkpoint saves); the first epoch is
left out (warm-up), the median over the remaining epochs of both ranks is compared. Printed side by side.

On a machine shared with other work single epochs vary by tens of percent; use several launches per
side (``--repeats``, alternating which side goes first) and read the ratio of medians.

    python benchmarks/ddp_overhead.py [--epochs 8] [--repeats 2] [--rows 16384] [--lightning-rows 4096]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "integrations" / "hooks"
TARGET_RATIO = 1.05
EPOCH_LINE = re.compile(r"^RANK (\d+) EPOCH (\d+) ([0-9.]+)$", re.MULTILINE)


def environment(rows: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TRACELET_") and k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_PORT")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(TRAIN_ROWS=str(rows), OMP_NUM_THREADS="1", MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    return env


def command(mode: str, out: Path, capture: str, epochs: int) -> list[str]:
    if mode == "torchrun":
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                str(SCRIPTS / "torchrun_training.py"), str(out), capture, str(epochs)]
    return [sys.executable, str(SCRIPTS / "ddp_training.py"), str(out), capture, "ddp", str(epochs)]


def epoch_times(mode: str, capture: str, epochs: int, rows: int) -> list[float]:
    """Each rank's epoch times after the first epoch, from one launch in a fresh folder."""
    with tempfile.TemporaryDirectory(prefix=f"ddp-{mode}-{capture}-") as folder:
        done = subprocess.run(command(mode, Path(folder), capture, epochs), cwd=folder, env=environment(rows),
                              capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"{mode} with capture {capture} failed:\n{done.stderr[-3000:]}")
    times = [(int(e), float(t)) for _, e, t in EPOCH_LINE.findall(done.stdout)]
    kept = [t for epoch, t in times if epoch > 0]
    if not kept:
        raise SystemExit(f"{mode} with capture {capture} printed no epoch times:\n{done.stdout[-2000:]}")
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--rows", type=int, default=16384, help="torchrun training rows (both ranks together)")
    parser.add_argument("--lightning-rows", type=int, default=4096, help="Lightning training rows")
    parser.add_argument("--repeats", type=int, default=2, help="launches per side and mode")
    parser.add_argument("--modes", nargs="+", default=["torchrun", "lightning"], choices=["torchrun", "lightning"])
    args = parser.parse_args()
    print(f"DDP overhead: 2 processes (gloo, CPU), {args.epochs} epochs (first left out), "
          f"{args.repeats} launch(es) per side, alternating")
    print(f"  {'launch mode':<12} {'capture off':>14} {'capture on':>14} {'on / off':>10}")
    worst = 0.0
    for mode in args.modes:
        off: list[float] = []
        on: list[float] = []
        for repeat in range(args.repeats):
            order = ("off", "on") if repeat % 2 == 0 else ("on", "off")
            for capture in order:
                rows = args.rows if mode == "torchrun" else args.lightning_rows
                (off if capture == "off" else on).extend(epoch_times(mode, capture, args.epochs, rows))
        ratio = statistics.median(on) / statistics.median(off)
        worst = max(worst, ratio)
        print(f"  {mode:<12} {statistics.median(off) * 1000:>11.1f} ms {statistics.median(on) * 1000:>11.1f} ms "
              f"{ratio:>10.3f}")
    verdict = "within" if worst <= TARGET_RATIO else "ABOVE"
    print(f"  worst ratio {worst:.3f}: {verdict} the target of {TARGET_RATIO}")


if __name__ == "__main__":
    main()
