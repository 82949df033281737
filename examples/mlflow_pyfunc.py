"""Train a small PyTorch model inside the MLflow run you opened, version it with tracelet, and load the
``best`` one back with ``mlflow.pyfunc`` — configured only the way MLflow users configure MLflow.

    MLFLOW_TRACKING_URI=http://127.0.0.1:5000 python examples/mlflow_pyfunc.py [OUTPUT_DIR]
    python examples/mlflow_pyfunc.py [OUTPUT_DIR]     # no server: mlflow.set_tracking_uri(OUTPUT_DIR/mlflow.db)

needs: pip install 'tracelet-artifacts[mlflow,lightning]' (torch). The Experiment has no backend options:
it finds the tracking URI MLflow uses and joins the run opened with ``mlflow.start_run()``. Each epoch's
model goes into the store; the best one gets the alias ``best``, which MLflow's registry mirrors, so
``mlflow.pyfunc.load_model("models:/pyfunc-demo-classifier@best")`` returns it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

from tracelet_artifacts import ArtifactType, Experiment, TraceletArtifact, TraceletSettings

MODEL = "pyfunc-demo-classifier"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", nargs="?", default="mlflow-pyfunc-output")
    out = Path(parser.parse_args().output).absolute()
    out.mkdir(parents=True, exist_ok=True)

    import mlflow
    import numpy as np
    import torch

    if not os.environ.get("MLFLOW_TRACKING_URI"):
        mlflow.set_tracking_uri(f"sqlite:///{out / 'mlflow.db'}")
        if mlflow.get_experiment_by_name("pyfunc-demo") is None:  # its files under OUTPUT_DIR, not ./mlruns
            mlflow.create_experiment("pyfunc-demo", artifact_location=(out / "mlartifacts").as_uri())
    mlflow.set_experiment("pyfunc-demo")

    torch.manual_seed(0)
    x = torch.rand(256, 4)
    y = (x[:, 0] + x[:, 1] > x[:, 2] + x[:, 3]).long()
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    fixed = np.random.default_rng(0).random((5, 4), dtype=np.float32)

    settings = TraceletSettings(store_path=out / ".tracelet")
    best_loss, best_outputs = float("inf"), None
    with mlflow.start_run(run_name="training") as run, \
            Experiment("pyfunc-demo", backend=["mlflow"], settings=settings) as exp:
        for epoch in range(3):
            for _ in range(50):
                optimizer.zero_grad()
                loss = torch.nn.functional.cross_entropy(net(x), y)
                loss.backward()
                optimizer.step()
            exp.log_metric("loss", loss.item(), step=epoch)
            artifact = TraceletArtifact(MODEL, ArtifactType.MODEL, description=f"epoch {epoch}")
            artifact.add_model(net, input_example=x[:2])
            better = loss.item() < best_loss
            exp.log_artifact(artifact, aliases=["best"] if better else [])
            if better:
                best_loss, best_outputs = loss.item(), net(torch.from_numpy(fixed)).detach().numpy()
            print(f"epoch {epoch}  loss {loss.item():.4f}" + ("  -> best" if better else ""))
        print(f"delivered: {exp.flush().done} version(s) into MLflow run {run.info.run_id} (the run you opened)")

    loaded = mlflow.pyfunc.load_model(f"models:/{MODEL}@best")
    same = np.allclose(loaded.predict(fixed), best_outputs, rtol=1e-5)
    version = mlflow.MlflowClient().get_model_version_by_alias(MODEL, "best")
    print(f"models:/{MODEL}@best is version {version.version}; pyfunc predicts like the best epoch: {same}")
    experiment_id = mlflow.get_experiment_by_name("pyfunc-demo").experiment_id
    logged = mlflow.search_logged_models(experiment_ids=[experiment_id], output_format="list")
    print(f"logged models of the run: {sum(m.source_run_id == run.info.run_id for m in logged)}")
    print(f"see it: mlflow ui --backend-store-uri {mlflow.get_tracking_uri()}")


if __name__ == "__main__":
    main()
