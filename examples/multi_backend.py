"""Log to MLflow, W&B, ClearML and Aim at once — no account, no server.

    python examples/multi_backend.py [OUTPUT_DIR]      # needs: pip install 'tracelet-artifacts[all]'

Everything lands under OUTPUT_DIR (default ``./multi-backend-output``): the embedded store, MLflow's
sqlite database and artifact root, the offline W&B run, the offline ClearML session and the Aim repo.
The router decides who gets what: the model goes to MLflow (and is registered there), the image to W&B
(also as a media panel), the dataset to ClearML, the config to every backend; the embedded store keeps
everything. At the end each backend is asked, through its own adapter, what it holds.
"""

from __future__ import annotations

import argparse
import os
import struct
import zlib
from pathlib import Path

# Offline everywhere, and nothing written to the home folder.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

from tracelet_artifacts import ArtifactType, Experiment, TraceletSettings

BACKENDS = ["mlflow", "wandb", "clearml", "aim"]


def tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"".join(bytes((x * 16, y * 16, 128)) for x in range(16)) for y in range(16))
    header = struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", nargs="?", default="multi-backend-output")
    out = Path(parser.parse_args().output).absolute()
    inputs = out / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    for name in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR"):
        os.environ.setdefault(name, str(out / "wandb-home"))

    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit([[0.0, 1.0], [1.0, 0.0], [0.9, 0.2], [0.1, 0.8]], [0, 1, 1, 0])
    (inputs / "predictions.png").write_bytes(tiny_png())
    (inputs / "train.csv").write_text("x1,x2,y\n0,1,0\n1,0,1\n0.9,0.2,1\n0.1,0.8,0\n")

    settings = TraceletSettings(store_path=out / ".tracelet")
    with Experiment("multi-backend-demo", backend=BACKENDS, settings=settings) as exp:
        exp.log_params({"C": 1.0, "solver": "lbfgs"})
        exp.log_metric("accuracy", 1.0, step=1)
        logged = [
            exp.create_artifact("classifier", ArtifactType.MODEL, "logistic regression")
               .add_model(model, input_example=[[0.5, 0.5]]),
            exp.create_artifact("predictions", ArtifactType.IMAGE).add_file(inputs / "predictions.png"),
            exp.create_artifact("train-set", ArtifactType.DATASET).add_file(inputs / "train.csv"),
            exp.create_artifact("train-config", ArtifactType.CONFIG).add_object({"C": 1.0, "seed": 0}, "config"),
        ]
        for artifact in logged:
            receipts = exp.log_artifact(artifact)
            print(f"{artifact.name:14} {artifact.type.value:8} -> {', '.join(sorted(receipts))}")
        result = exp.flush(timeout=300)
        print(f"\ndelivered: {result.done}, pending: {result.pending}, failed: {result.failed}\n")
        for backend in BACKENDS:  # read back through each backend's own API (via its adapter)
            names = sorted({item.name for item in exp.list_artifacts(backend=backend)})
            print(f"{backend:8} holds: {', '.join(names) or '(nothing)'}")
    print(f"\nEverything is under {out}; `tracelet-artifacts ls --store {out / '.tracelet'}` lists the store.")


if __name__ == "__main__":
    main()
