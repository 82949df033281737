"""Your own W&B run, ClearML task and Aim run receive the experiment's artifacts — no account, no server.

    python examples/join_open_runs.py [OUTPUT_DIR]     # needs: pip install 'tracelet-artifacts[wandb,clearml,aim]'

A training script that already opened ``wandb.init()``, ``Task.init()`` and an ``aim.Run`` keeps them: the
experiment logs its model and config into those runs (no second run beside them, nothing closed behind your
back), registers the model where the backend has models (a ClearML OutputModel named after the artifact and
tagged ``best``; W&B links models to its registry once online), and each receipt says where to open the
result. Everything lands under OUTPUT_DIR (default ``./join-open-runs-output``): the offline W&B run, the
offline ClearML session, the Aim repo and the embedded store.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

PROJECT = "my-project"


def configure(out: Path) -> None:
    """Offline W&B and ClearML writing under ``out`` (what a user's environment or config file would say)."""
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    for name in ("WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR"):
        os.environ.setdefault(name, str(out / "wandb-home"))
    config = out / "clearml.conf"
    config.write_text("sdk { development { report_use_subprocess: false, suppress_update_message: true }\n"
                      f'      storage {{ cache {{ default_base_dir: "{(out / "clearml").as_posix()}" }} }} }}\n')
    os.environ.setdefault("CLEARML_CONFIG_FILE", str(config))
    os.environ.setdefault("CLEARML_OFFLINE_MODE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", nargs="?", default="join-open-runs-output")
    out = Path(parser.parse_args().output).absolute()
    out.mkdir(parents=True, exist_ok=True)
    configure(out)

    import wandb
    from aim import Repo, Run
    from clearml import Task

    from tracelet_artifacts import ArtifactType, Experiment, TraceletSettings

    # The user's own runs, opened before the experiment as the training script always did.
    wandb_run = wandb.init(project=PROJECT, name="my-wandb-run", dir=str(out))
    task = Task.init(project_name=PROJECT, task_name="my-clearml-task", reuse_last_task_id=False,
                     auto_connect_frameworks={"detect_repository": False}, auto_resource_monitoring=False)
    Repo.from_path(str(out / "aim"), init=True)
    aim_run = Run(repo=str(out / "aim"), experiment=PROJECT, system_tracking_interval=None,
                  capture_terminal_logs=False)

    (out / "model.pth").write_bytes(bytes(range(256)) * 16)
    settings = TraceletSettings(store_path=out / ".tracelet", routing={"model": ["*"]},
                                backend_options={"aim": {"run": aim_run}})  # Aim has no "current run"
    with Experiment("resnet-sweep-3", backend=["wandb", "clearml", "aim"], settings=settings) as exp:
        model = exp.create_artifact("classifier", ArtifactType.MODEL).add_file(out / "model.pth")
        exp.log_artifact(model, aliases=["best"])
        exp.log_artifact(exp.create_artifact("train-config", ArtifactType.CONFIG).add_object({"lr": 0.1}, "config"))
        exp.flush(timeout=300)
        for delivery in exp.store.catalog.deliveries("classifier"):
            receipt = delivery.receipt or {}
            print(f"{delivery.backend:8} {delivery.status}: open {receipt.get('locator')}"
                  + (f"  (locally: {receipt['view_command']})" if receipt.get("view_command") else ""))
            for what, why in (receipt.get("not_held") or {}).items():
                print(f"{'':9}not held: {what}: {why}")

    # Still open, still the user's: read each back through its SDK, then close them as usual.
    print(f"\nwandb    run {wandb_run.id} still open: {wandb.run is wandb_run}")
    wandb_run.finish()
    print(f"clearml  task '{task.name}' holds: {', '.join(sorted(task.artifacts))}")
    task.close()
    print(f"aim      run {aim_run.hash} holds: {', '.join(sorted(aim_run['tracelet_artifacts']))}")
    aim_run.close()
    print(f"\nEverything is under {out}.")


if __name__ == "__main__":
    main()
