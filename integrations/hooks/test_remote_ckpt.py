"""Remote checkpoint folders: ``ModelCheckpoint(dirpath="s3://bucket/ckpts")`` written by Lightning through
fsspec/s3fs to a local S3 server (moto's), captured by reading each object back in chunks (never the whole
file in memory), with ``best`` on the best checkpoint.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pl = pytest.importorskip("lightning.pytorch")
pytest.importorskip("s3fs")

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from tracelet_artifacts import digest  # noqa: E402
from tracelet_artifacts.artifact import ArtifactType  # noqa: E402
from tracelet_artifacts.experiment import Experiment  # noqa: E402
from tracelet_artifacts.hooks import remote  # noqa: E402
from tracelet_artifacts.settings import TraceletSettings  # noqa: E402

pytestmark = pytest.mark.integration
_TEAM = Path(__file__).resolve().parents[1] / "team" / "team_support.py"


def _team_support() -> Any:
    spec = importlib.util.spec_from_file_location("team_support", _TEAM)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("team_support", module)
    spec.loader.exec_module(module)
    return sys.modules["team_support"]


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    server = _team_support().S3Server().start()
    yield server
    server.stop()


@pytest.fixture
def bucket(s3: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    for key, value in s3.env.items():  # s3fs finds the server the way boto does: AWS_* variables
        monkeypatch.setenv(key, value)
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    return str(s3.create_bucket())


def s3_objects(s3: Any, bucket: str) -> dict[str, str]:
    import boto3

    client = boto3.client("s3", endpoint_url=s3.endpoint, **{k.lower(): v for k, v in s3.env.items()
                                                               if k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")},
                          region_name="us-east-1")
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {item["Key"]: digest.bytes_key(client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
            for item in listed}


class Regressor(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(8, 1)

    def training_step(self, batch: Any, _: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.mse_loss(self.net(x), y)

    def validation_step(self, batch: Any, _: int) -> None:
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.05)


def test_checkpoints_written_to_s3_are_versioned_by_reading_them_back(workdir: Path, s3: Any, bucket: str) -> None:
    torch.manual_seed(0)
    x = torch.randn(64, 8)
    data = DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=16)
    settings = TraceletSettings(store_path=workdir / ".tracelet", automagic_artifacts=True)
    with Experiment("remote-ckpt", settings=settings) as exp:
        checkpoint = pl.callbacks.ModelCheckpoint(dirpath=f"s3://{bucket}/ckpts", monitor="val_loss", save_top_k=1,
                                                  save_last=True)
        trainer = pl.Trainer(max_epochs=2, accelerator="cpu", devices=1, logger=False, callbacks=[checkpoint],
                             enable_progress_bar=False, enable_model_summary=False)
        trainer.fit(Regressor(), data, data)
        name = f"s3/{bucket}/ckpts"
        assert name in {v.name for v in exp.list_artifacts()}  # read your writes: the read-back was handed over
        versions = exp.store.catalog.versions(name)
        assert versions, exp.store.catalog.names()
        objects = s3_objects(s3, bucket)
        held = {v.manifest.entries[0].digest for v in versions}
        assert set(objects.values()) <= held, "an object in the bucket is not in the store"
        assert all(v.artifact_type is ArtifactType.CHECKPOINT for v in versions)
        best = exp.get_artifact(name, "best")
        assert best.manifest.metadata["source_path"] == checkpoint.best_model_path
        assert best.manifest.entries[0].digest == objects[checkpoint.best_model_path.split(f"{bucket}/", 1)[1]]
        assert not list((exp.store.root / "staging" / "lightning").iterdir())  # read-back copies cleaned up


def test_reading_a_remote_checkpoint_back_never_holds_the_whole_file(s3: Any, bucket: str, tmp_path: Path) -> None:
    import s3fs

    size = 48 * 1024 * 1024
    payload = os.urandom(1024 * 1024) * 48
    fs = s3fs.S3FileSystem()
    fs.pipe(f"{bucket}/big/last.ckpt", payload)
    tracemalloc.start()
    try:
        staged, read = remote.read_back(f"s3://{bucket}/big/last.ckpt", tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert read == size and staged.stat().st_size == size
    assert hashlib.sha256(staged.read_bytes()).hexdigest() == hashlib.sha256(payload).hexdigest()
    assert peak < min(size / 2, 4 * remote.CHUNK), f"reading back {size} bytes peaked at {peak} bytes"
