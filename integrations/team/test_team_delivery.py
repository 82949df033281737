"""Deliveries are shared work on a team store: a run whose backend was down leaves its deliveries in the
shared outbox; ``tracelet-artifacts sync`` on another machine (another working folder, an empty blob
cache) downloads the blobs from the bucket and delivers them to MLflow, read back through MlflowClient."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from team_support import Team, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TRAIN = """
import json, sys
from pathlib import Path
from tracelet_artifacts import Experiment, TraceletArtifact, TraceletSettings
Path("model.bin").write_bytes(b"weights " * 1000)
settings = TraceletSettings(backend_options=json.loads(sys.argv[1]), delivery_max_attempts=1, flush_timeout_s=2)
with Experiment("shared-work", backend="mlflow", settings=settings) as exp:
    receipts = exp.log_artifact(TraceletArtifact("classifier", "model").add_file("model.bin"))
    print(receipts["mlflow"].status, flush=True)
"""


def test_sync_on_another_machine_delivers_what_a_run_left_pending(team: Team, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    quiet = {"http_timeout_s": 2, "http_max_retries": 0, "http_backoff_factor": 0, "experiment_name": "shared-work"}
    down = {"mlflow": {**quiet, "tracking_uri": f"http://127.0.0.1:{free_port()}"}}
    alice = tmp_path / "alice"
    alice.mkdir()
    env = {**team.subprocess_env(alice), "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    trained = subprocess.run([sys.executable, "-c", TRAIN, json.dumps(down)], cwd=alice, env=env,
                             capture_output=True, text=True, timeout=300)
    assert trained.returncode == 0, trained.stderr
    assert trained.stdout.split()[-1] == "pending"
    store = team.open(tmp_path / "observer")
    assert {item.status for item in store.catalog.outbox()} - {"done"}  # left for someone else

    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    up = {"mlflow": {**quiet, "tracking_uri": tracking, "artifact_location": str(tmp_path / "mlruns")}}
    bob = tmp_path / "bob"
    bob.mkdir()
    bob_env = {**team.subprocess_env(bob), "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
               "TRACELET_BACKEND_OPTIONS": json.dumps(up)}
    synced = subprocess.run([sys.executable, "-m", "tracelet_artifacts.cli", "sync", "--timeout", "120"], cwd=bob,
                            env=bob_env, capture_output=True, text=True, timeout=300)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert "1 done, 0 pending, 0 failed" in synced.stdout
    assert {item.status for item in store.catalog.outbox()} == {"done"}

    client = MlflowClient(tracking_uri=tracking)
    experiment = client.get_experiment_by_name("shared-work")
    (run,) = client.search_runs([experiment.experiment_id])
    files = [f.path for f in client.list_artifacts(run.info.run_id, "classifier/v1")]
    assert "classifier/v1/model.bin" in files
    local = Path(client.download_artifacts(run.info.run_id, "classifier/v1/model.bin", str(tmp_path / "back")))
    assert local.read_bytes() == b"weights " * 1000
