"""Lineage and retention from an empty folder: a dataset, a training run that uses it and logs checkpoints
and a model, the lineage printed both ways, then what a retention policy would prune (a dry run).

    python examples/lineage_and_retention.py [OUTPUT_DIR]

Everything lands in ``OUTPUT_DIR/.tracelet`` (default ``./lineage-demo-output``). The same from the shell:

    tracelet-artifacts lineage --store OUTPUT_DIR/.tracelet demo/model:v1            # where it came from
    tracelet-artifacts lineage --store OUTPUT_DIR/.tracelet demo/train-set:v1 --down # what used it
    tracelet-artifacts prune --store OUTPUT_DIR/.tracelet demo/checkpoints --keep-last 2 --dry-run
    tracelet-artifacts ui --store OUTPUT_DIR/.tracelet                                # the lineage graph
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from tracelet_artifacts import Experiment, TraceletArtifact, TraceletSettings
from tracelet_artifacts.lineage_view import tree_lines
from tracelet_artifacts.retention import RetentionRule, plan_prune

LOSSES = [0.9, 0.41, 0.52, 0.48, 0.45]  # validation loss per epoch: the best checkpoint is v2


def make_dataset(folder: Path) -> Path:
    rows = ["x1,x2,label"] + [f"{i % 7},{i % 5},{int(i % 7 > i % 5)}" for i in range(200)]
    path = folder / "train.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", default="lineage-demo-output")
    out = Path(parser.parse_args().output)
    inputs = out / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    settings = TraceletSettings(store_path=out / ".tracelet")

    # 1. A data-prep run logs the dataset.
    with Experiment("prepare-data", backend=[], settings=settings) as prep:
        prep.log_artifact(TraceletArtifact("demo/train-set", "dataset", description="200 rows")
                          .add_file(make_dataset(inputs)))

    # 2. A training run says what it consumed, then logs five checkpoints and the model.
    with Experiment("train", backend=[], settings=settings) as train:
        data = train.use_artifact("demo/train-set")          # recorded: this run consumed demo/train-set:v1
        rng = random.Random(0)
        for epoch, loss in enumerate(LOSSES):
            ckpt = inputs / "checkpoint.json"
            ckpt.write_text(json.dumps({"epoch": epoch, "weights": [round(rng.random(), 6) for _ in range(4)]}))
            train.log_artifact(TraceletArtifact("demo/checkpoints", "checkpoint", metadata={"val_loss": loss})
                               .add_file(ckpt))
        (inputs / "model.json").write_text(json.dumps({"trained_on": data.ref}))
        train.log_artifact(TraceletArtifact("demo/model", "model").add_file(inputs / "model.json"))
        store = train.store

        # 3. Lineage, both ways.
        print("where demo/model:v1 came from:")
        print("\n".join("  " + line for line in tree_lines(store.lineage.graph("demo/model", 1, direction="up"))))
        print("what used demo/train-set:v1:")
        print("\n".join("  " + line for line in tree_lines(store.lineage.graph("demo/train-set", 1,
                                                                               direction="down", depth=1))))

        # 4. What "keep the last 2 checkpoints, and the best by val_loss" would prune (nothing is removed).
        rule = RetentionRule(keep_last=2, keep_best=1, best_by="val_loss", best_mode="min")
        plan = plan_prune(store, {"demo/checkpoints": rule})
        print(f"prune --dry-run ({rule.describe()}):")
        for decision in plan.decisions:
            what = "keep  " if decision.keep else "remove"
            why = ", ".join(decision.reasons) or "no rule keeps it"
            print(f"  {what} {decision.record.ref}  {decision.record.size_bytes} B  ({why})")
        print(f"  would remove {len(plan.removed)} version(s), {plan.removed_bytes} B")


if __name__ == "__main__":
    main()
