"""A byte flipped in a stored blob: detected by digest, never served; where MLflow (sqlite or a real server
on loopback) received the version, the blob is re-fetched from it, checked and repaired -- through
``Experiment.fetch_artifact``, ``tracelet-artifacts get`` and ``tracelet-artifacts verify --repair``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from storage_support import child_env, flip_byte, run_cli, storage_mlflow_server, storage_offline  # noqa: F401

from tracelet_artifacts import digest
from tracelet_artifacts.artifact import ArtifactType, TraceletArtifact
from tracelet_artifacts.errors import IntegrityError
from tracelet_artifacts.experiment import Experiment
from tracelet_artifacts.settings import TraceletSettings

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("storage_offline")]

WEIGHTS = os.urandom(3 << 20)


def _checkpoint(src: Path) -> TraceletArtifact:
    src.mkdir(exist_ok=True)
    (src / "weights.bin").write_bytes(WEIGHTS)
    (src / "config.json").write_text(json.dumps({"layers": 4}))
    return (TraceletArtifact("ckpt", ArtifactType.CHECKPOINT, "a checkpoint")
            .add_file(src / "weights.bin", "weights.bin").add_file(src / "config.json", "config.json"))


@pytest.fixture(params=["sqlite", "server"])
def mlflow_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The MLflow backend the version is delivered to: sqlite under the store, or a real server."""
    if request.param == "sqlite":
        return {}
    return {"tracking_uri": request.getfixturevalue("storage_mlflow_server").url}


def _delivered(root: Path, src: Path, options: dict[str, Any]) -> Experiment:
    settings = TraceletSettings(store_path=root, flush_timeout_s=120, backend_options={"mlflow": options})
    exp = Experiment("corruption", backend=["mlflow"], settings=settings).start()
    exp.log_artifact(_checkpoint(src))
    assert exp.flush().complete
    assert [r["backend"] for r in exp.store.catalog.receipts("ckpt", 1)] == ["mlflow"]
    return exp


def _weights_blob(root: Path) -> Path:
    return root / "blobs" / digest.key_path(digest.bytes_key(WEIGHTS))


def _mlflow_run_status(options: dict[str, Any], root: Path, run_id: str) -> str:
    from mlflow.tracking import MlflowClient

    uri = options.get("tracking_uri") or f"sqlite:///{root / 'mlflow.db'}"
    return str(MlflowClient(tracking_uri=uri).get_run(run_id).info.status)


def test_experiment_fetch_repairs_a_flipped_byte_from_mlflow(
    tmp_path: Path, mlflow_options: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "store"
    exp = _delivered(root, tmp_path / "src", mlflow_options)
    try:
        flip_byte(_weights_blob(root), offset=1000)
        with caplog.at_level(logging.WARNING, logger="tracelet_artifacts"):
            exp.fetch_artifact("ckpt", "latest", tmp_path / "out")
        assert (tmp_path / "out" / "weights.bin").read_bytes() == WEIGHTS
        assert _weights_blob(root).read_bytes() == WEIGHTS
        assert "ckpt:v1: the blob of 'weights.bin' was corrupt; re-fetched it from mlflow" in caplog.text
    finally:
        exp.stop()


def test_cli_get_and_verify_repair_from_mlflow_and_leave_its_run_as_it_was(
    tmp_path: Path, mlflow_options: dict[str, Any]
) -> None:
    root = tmp_path / "store"
    exp = _delivered(root, tmp_path / "src", mlflow_options)
    mlflow_run = exp.store.catalog.run_state(exp.run_id)[1]["mlflow"]["run_id"]
    exp.stop()
    env = child_env(tmp_path)
    env["TRACELET_BACKEND_OPTIONS"] = json.dumps({"mlflow": mlflow_options})

    flip_byte(_weights_blob(root))
    got = run_cli(["get", "--store", str(root), "ckpt:v1", str(tmp_path / "out")], env, tmp_path)
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "out" / "weights.bin").read_bytes() == WEIGHTS
    assert "re-fetched it from mlflow" in got.stderr

    flip_byte(_weights_blob(root), offset=5)
    found = run_cli(["verify", "--store", str(root)], env, tmp_path)
    assert found.returncode == 1 and "weights.bin" in found.stdout and "corrupt" in found.stdout
    assert "verify --repair" in found.stderr
    fixed = run_cli(["verify", "--store", str(root), "--repair"], env, tmp_path)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "repaired from mlflow" in fixed.stdout and "1 bad entr(ies), 1 repaired" in fixed.stdout
    assert run_cli(["verify", "--store", str(root)], env, tmp_path).returncode == 0
    assert _mlflow_run_status(mlflow_options, root, mlflow_run) == "FINISHED"


def test_when_mlflow_copy_is_bad_too_fetch_raises_and_serves_no_bad_bytes(tmp_path: Path) -> None:
    root = tmp_path / "store"
    exp = _delivered(root, tmp_path / "src", {})  # sqlite: MLflow's copy is on this disk
    try:
        flip_byte(_weights_blob(root))
        [mlflow_copy] = (root / "mlflow-artifacts").rglob("weights.bin")
        flip_byte(mlflow_copy)
        with pytest.raises(IntegrityError, match=r"ckpt:v1 cannot be served.*'weights.bin' \(corrupt\)"):
            exp.fetch_artifact("ckpt", "v1", tmp_path / "out")
        assert not (tmp_path / "out" / "weights.bin").exists()
        assert not list((tmp_path / "out").rglob("*.part"))
    finally:
        exp.stop()


def test_a_version_no_backend_received_is_refused_not_served(tmp_path: Path) -> None:
    settings = TraceletSettings(store_path=tmp_path / "store")
    with Experiment("local-only", settings=settings) as exp:
        exp.log_artifact(_checkpoint(tmp_path / "src"))
        flip_byte(_weights_blob(tmp_path / "store"))
        with pytest.raises(IntegrityError, match="no backend that received this version holds a sound copy"):
            exp.fetch_artifact("ckpt", "latest", tmp_path / "out")
        assert not (tmp_path / "out" / "weights.bin").exists()
