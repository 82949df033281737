"""kill -9 of a training process while deliveries are in flight, then ``tracelet-artifacts sync``: every
version reaches every backend it was planned for exactly once (read back through ``MlflowClient`` and the
W&B adapter's reader of the offline run files).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from faults_support import SlowLink, assert_mlflow_holds_each_once
from mlflow_support import holders
from storage_support import run_cli

from tracelet_artifacts.backends.wandb import WandbAdapter
from tracelet_artifacts.store.catalog import Catalog, OutboxItem

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _uploading(catalog: Catalog, server_files: Path) -> tuple[list[OutboxItem], Path, int] | None:
    """Once some deliveries are done and some pending while a large MLflow upload is in flight: the outbox,
    the folder the server writes that version into, and the file's full size."""
    rows = catalog.outbox()
    if not {"done", "pending"} <= {r.status for r in rows}:
        return None
    for row in rows:
        record = catalog.version_by_id(row.version_id)
        if row.status == "inflight" and row.backend == "mlflow" and record.name == "weights":
            state = catalog.run_state(row.run_id)[1]["mlflow"]
            folder = server_files / state["experiment_id"] / state["run_id"] / "artifacts" / record.name
            return rows, folder / f"v{record.version}", record.size_bytes
    return None


def _spooled(folder: Path) -> list[int]:
    """Sizes of the hidden temp files the server is writing in ``folder`` (one may be renamed meanwhile)."""
    sizes = []
    for hidden in folder.glob(".*"):
        with contextlib.suppress(FileNotFoundError):
            sizes.append(hidden.stat().st_size)
    return sizes


def _kill_mid_upload(child: Any, catalog: Catalog, server_files: Path, timeout: float = 120.0) -> list[OutboxItem]:
    """SIGKILL the child while the server is receiving a large file: it writes a hidden temp file in the
    version's folder, then renames it. The outbox is read again on every poll, so an upload that ended
    between two polls is never waited on while the next one goes by."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert child.process.poll() is None, child.log.read_text()[-3000:]
        found = _uploading(catalog, server_files)
        if found is not None:
            rows, folder, size = found
            spooled = _spooled(folder)
            if any(0 < n < size for n in spooled):
                child.kill()
                print(f"killed with {spooled[0]} of {size} bytes of {folder.name} received by the server")
                return rows
        time.sleep(0.005)
    raise AssertionError(f"no large MLflow upload in flight within {timeout} s: {catalog.outbox()}")


def test_training_killed_mid_upload_then_sync_delivers_every_version_exactly_once(
        mlflow_server: Any, training: Any, training_env: dict[str, str], tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    name = f"killed-{time.monotonic_ns()}"
    store = tmp_path / "store"
    link = SlowLink(mlflow_server.port, bytes_per_s=40e6)  # a 24 MB upload takes ~0.6 s
    options = {"mlflow": {"tracking_uri": link.url, "experiment_name": name}, "wandb": {"project": name}}
    child = training({"store": str(store), "experiment": name, "backends": ["mlflow", "wandb"], "options": options,
                      "count": 24, "big_mb": 24, "then": "wait"})
    run_id = child.line()["started"]
    catalog = Catalog(store / "catalog.db")
    at_kill = _kill_mid_upload(child, catalog, mlflow_server.root / "mlartifacts")

    client = MlflowClient(tracking_uri=mlflow_server.url, registry_uri=mlflow_server.url)
    experiment_id = client.get_experiment_by_name(name).experiment_id
    (cut,) = [catalog.version_by_id(r.version_id) for r in at_kill
              if r.status == "inflight" and r.backend == "mlflow"]
    (mlflow_run,) = client.search_runs([experiment_id])
    assert holders(client, experiment_id, cut.name, cut.version) == []  # killed before MLflow held it
    partial = {f.path: f.file_size for f in client.list_artifacts(mlflow_run.info.run_id, f"{cut.name}/v{cut.version}")}
    print(f"outbox at the kill: {Counter(r.status for r in at_kill)}; {cut.ref} on the server after it: {partial}")

    env = dict(training_env, TRACELET_BACKEND_OPTIONS=json.dumps(options))
    synced = run_cli(["sync", "--store", str(store), "--timeout", "300"], env, tmp_path)
    link.close()
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert f"run {run_id[:12]}:" in synced.stdout and "0 pending, 0 failed" in synced.stdout

    rows = catalog.outbox()
    assert {r.status for r in rows} == {"done"}
    planned = {(r.backend, r.version_id) for r in rows}
    assert len(planned) == len(rows)
    versions = {r.version_id: catalog.version_by_id(r.version_id) for r in rows}
    assert {v.row_id for v in catalog.search()} == set(versions)  # every stored version was planned somewhere
    catalog.close()

    # MLflow: one run (the killed run, resumed by sync), each version held once with exactly its files.
    to_mlflow = [versions[v] for backend, v in planned if backend == "mlflow"]
    assert assert_mlflow_holds_each_once(client, name, run_id, to_mlflow) == mlflow_run.info.run_id

    # W&B: every artifact record in the offline run files (the killed run's and sync's), counted by content.
    reader = WandbAdapter({"project": name, "dir": str(store)})
    logged = Counter((r.tracelet.get("name"), r.tracelet.get("digest")) for r in reader.records())
    to_wandb = [versions[v] for backend, v in planned if backend == "wandb"]
    assert logged == Counter((v.name, v.digest) for v in to_wandb)
    listed = Counter((a.name, a.digest) for a in reader.list())
    assert listed == Counter((v.name, v.digest) for v in to_wandb)
