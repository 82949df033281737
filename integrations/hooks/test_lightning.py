"""Real Lightning training on CPU (tiny model, few batches) with TraceletCallback: every checkpoint on disk
is in the store once with its digest, ``best``/``latest`` point at the right content, evicted files are
labelled, the final model and hparams are there, a crash keeps the last checkpoint, rank != 0 captures
nothing, both namespaces work, and the same run reaches MLflow (read back with MlflowClient).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from tracelet_artifacts import digest  # noqa: E402
from tracelet_artifacts.artifact import ArtifactType  # noqa: E402
from tracelet_artifacts.experiment import Experiment  # noqa: E402
from tracelet_artifacts.hooks import lightning as hooks_lightning  # noqa: E402
from tracelet_artifacts.hooks.lightning import TraceletCallback  # noqa: E402
from tracelet_artifacts.settings import TraceletSettings  # noqa: E402
from tracelet_artifacts.store.embedded import EmbeddedStore  # noqa: E402

pytestmark = pytest.mark.integration

NAMESPACES = hooks_lightning.installed_namespaces()
SCORES = (0.5, 0.3, 0.4)  # val_score per epoch (mode=min): epoch 1 is best, epoch 0 is evicted by epoch 2
SERIES = "checkpoints"


def sha256(path: str | Path) -> str:
    """The content key the store names this file by (BLAKE3)."""
    return digest.file_key(path)


def lightning(namespace: str) -> Any:
    return importlib.import_module(namespace)


def tiny_module(namespace: str, crash_at: tuple[int, int] | None = None) -> Any:
    pl = lightning(namespace)

    class TinyRegressor(pl.LightningModule):  # type: ignore[misc, name-defined]
        def __init__(self, lr: float = 0.05, hidden: int = 4) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.net = torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            if crash_at == (self.current_epoch, batch_idx):
                raise RuntimeError("boom mid-epoch")
            x, y = batch
            return torch.nn.functional.mse_loss(self.net(x), y)

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))
            self.log("val_score", SCORES[min(self.current_epoch, len(SCORES) - 1)])

        def tracelet_validation_samples(self) -> dict[str, Any]:
            return {"predictions": self.net(torch.ones(2, 4)).detach()}

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    return TinyRegressor()


def loaders() -> tuple[Any, Any]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(32, 4, generator=generator)
    data = torch.utils.data.TensorDataset(x, x.sum(dim=1, keepdim=True))
    return (torch.utils.data.DataLoader(data, batch_size=8), torch.utils.data.DataLoader(data, batch_size=16))


def train(namespace: str, exp: Experiment, *, crash_at: tuple[int, int] | None = None,
          plugins: list[Any] | None = None, **callback_options: Any) -> Any:
    pl = lightning(namespace)
    checkpoint = pl.callbacks.ModelCheckpoint(dirpath=SERIES, monitor="val_score", mode="min", save_top_k=2,
                                              save_last=True)
    trainer = pl.Trainer(max_epochs=3, accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, default_root_dir=os.getcwd(),
                         callbacks=[TraceletCallback(exp, namespace=namespace, **callback_options), checkpoint],
                         plugins=plugins or [])
    train_loader, val_loader = loaders()
    trainer.fit(tiny_module(namespace, crash_at), train_loader, val_loader)
    return trainer


def experiment(workdir: Path, **kwargs: Any) -> Experiment:
    return Experiment("lightning-test", settings=TraceletSettings(store_path=workdir / ".tracelet"), **kwargs)


def files_on_disk(workdir: Path) -> list[Path]:
    return sorted((workdir / SERIES).glob("*.ckpt"))


def versions_holding(store: EmbeddedStore, digest: str) -> list[str]:
    return [v.ref for v in store.catalog.search(artifact_type=ArtifactType.CHECKPOINT)
            if any(e.digest == digest for e in v.manifest.entries)]


def entry_digest(store: EmbeddedStore, name: str, version: str | int) -> str:
    (entry,) = store.get(name, version).manifest.entries
    return entry.digest


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_every_checkpoint_is_captured_once_with_best_latest_and_evicted(workdir: Path, namespace: str) -> None:
    exp = experiment(workdir).start()
    trainer = train(namespace, exp)
    best_path, last_path = trainer.checkpoint_callback.best_model_path, trainer.checkpoint_callback.last_model_path
    exp.stop()

    store = EmbeddedStore(workdir / ".tracelet")
    on_disk = files_on_disk(workdir)
    assert [p.name for p in on_disk] == ["epoch=1-step=8.ckpt", "epoch=2-step=12.ckpt", "last.ckpt"]
    for path in on_disk:
        assert len(versions_holding(store, sha256(path))) == 1, path.name
    assert entry_digest(store, SERIES, "best") == sha256(best_path)
    assert Path(best_path).name == "epoch=1-step=8.ckpt"
    assert entry_digest(store, SERIES, "latest") == sha256(last_path)

    evicted = store.catalog.search(labels=["evicted"])
    assert [v.manifest.metadata["file_name"] for v in evicted] == ["epoch=0-step=4.ckpt"]
    assert store.blobs.verify(evicted[0].manifest.entries[0].digest)  # its content outlived the deletion

    best = store.get(SERIES, "best").manifest
    assert best.metadata["epoch"] == 1 and best.metadata["global_step"] == 8
    assert best.metadata["monitor"] == "val_score" and best.metadata["monitor_value"] == pytest.approx(0.3)

    model = store.get("model")
    assert model.artifact_type is ArtifactType.MODEL and model.manifest.metadata["global_step"] == 12
    hparams = store.get("hparams")
    assert hparams.artifact_type is ArtifactType.CONFIG
    assert b'"lr": 0.05' in store.blob_path(hparams.manifest.entries[0].digest).read_bytes()
    assert [v.manifest.metadata["epoch"] for v in store.catalog.versions("samples")] == [0, 1, 2]
    assert not list((workdir / ".tracelet" / "staging" / "lightning").iterdir())  # staged links are cleaned up
    store.close()


def test_a_run_that_raises_mid_epoch_keeps_its_last_checkpoint(workdir: Path) -> None:
    exp = experiment(workdir).start()
    with pytest.raises(RuntimeError, match="boom mid-epoch"):
        train(NAMESPACES[0], exp, crash_at=(1, 2))
    store = EmbeddedStore(workdir / ".tracelet")  # read before stop(): on_exception already flushed
    on_disk = files_on_disk(workdir)
    assert [p.name for p in on_disk] == ["epoch=0-step=4.ckpt", "last.ckpt"]
    for path in on_disk:
        assert len(versions_holding(store, sha256(path))) == 1, path.name
    assert entry_digest(store, SERIES, "latest") == sha256(workdir / SERIES / "last.ckpt")
    store.close()
    exp.stop()


def test_the_model_checkpoint_scan_alone_captures_every_file(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hooks_lightning._CaptureLogic, "_wrap_checkpoint_io", lambda self, trainer: None)
    exp = experiment(workdir).start()
    trainer = train(NAMESPACES[0], exp)
    exp.stop()
    store = EmbeddedStore(workdir / ".tracelet")
    for path in files_on_disk(workdir):
        assert len(versions_holding(store, sha256(path))) == 1, path.name
    assert entry_digest(store, SERIES, "best") == sha256(trainer.checkpoint_callback.best_model_path)
    store.close()


def test_async_checkpoint_io_is_unwrapped_and_restored(workdir: Path) -> None:
    namespace = NAMESPACES[0]
    async_io = lightning(namespace).plugins.io.AsyncCheckpointIO()
    exp = experiment(workdir).start()
    trainer = train(namespace, exp, plugins=[async_io])
    exp.stop()
    inner = async_io.checkpoint_io
    assert "save_checkpoint" not in vars(inner) and "remove_checkpoint" not in vars(inner)
    store = EmbeddedStore(workdir / ".tracelet")
    for path in files_on_disk(workdir):
        assert len(versions_holding(store, sha256(path))) == 1, path.name
    assert entry_digest(store, SERIES, "best") == sha256(trainer.checkpoint_callback.best_model_path)
    store.close()


def test_a_process_that_is_not_global_rank_zero_captures_nothing(workdir: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "1")
    exp = experiment(workdir).start()
    train(NAMESPACES[0], exp)
    exp.stop()
    assert files_on_disk(workdir)  # Lightning wrote its checkpoints; we captured none of them
    store = EmbeddedStore(workdir / ".tracelet")
    assert store.catalog.search() == []
    store.close()


def test_the_run_is_delivered_to_mlflow(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("mlflow")
    for key, value in {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "HOME": str(workdir)}.items():
        monkeypatch.setenv(key, value)
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    settings = TraceletSettings(store_path=workdir / ".tracelet", backend_options={"mlflow": {"tracking_uri": uri}})
    exp = Experiment("lightning-mlflow", backend=["mlflow"], settings=settings).start()
    train(NAMESPACES[0], exp)
    flushed = exp.stop()
    assert flushed is not None

    store = EmbeddedStore(workdir / ".tracelet")
    expected = {f"{v.name}/{v.label}/{e.path}": e.digest
                for v in [*store.catalog.search(artifact_type=ArtifactType.CHECKPOINT), store.get("model")]
                for e in v.manifest.entries}
    store.close()
    assert len(expected) >= 4  # three-plus checkpoint versions and the final model
    client = MlflowClient(tracking_uri=uri)
    mlflow_experiment = client.get_experiment_by_name("lightning-mlflow")
    (run,) = client.search_runs([mlflow_experiment.experiment_id])
    downloaded = Path(client.download_artifacts(run.info.run_id, "", str(workdir / "download")))
    delivered = {p.relative_to(downloaded).as_posix(): sha256(p) for p in downloaded.rglob("*") if p.is_file()}
    assert {k: delivered.get(k) for k in expected} == expected
    on_disk = {sha256(p) for p in files_on_disk(workdir)}
    assert on_disk <= set(delivered.values())  # every checkpoint file Lightning left is in MLflow


def test_with_the_watcher_on_the_same_folder_checkpoints_are_not_catalogued_twice(workdir: Path) -> None:
    from tracelet_artifacts.hooks.watcher import ArtifactWatcher

    exp = experiment(workdir).start()
    watcher = ArtifactWatcher([SERIES], experiment=exp, settle_s=0.3).start()  # as watch_filesystem would
    train(NAMESPACES[0], exp)
    watcher.stop()
    exp.stop()
    store = EmbeddedStore(workdir / ".tracelet")
    names = {v.name for v in store.catalog.search(artifact_type=ArtifactType.CHECKPOINT)}
    assert names == {SERIES}  # only the callback's series; the watcher left the claimed files alone
    for path in files_on_disk(workdir):
        assert len(versions_holding(store, sha256(path))) == 1, path.name
    store.close()


def test_validation_outputs_are_kept_with_no_user_code(workdir: Path) -> None:
    pl = lightning(NAMESPACES[0])

    class ImageModel(pl.LightningModule):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Linear(4, 1)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            x, y = batch
            return torch.nn.functional.mse_loss(self.net(x), y)

        def validation_step(self, batch: Any, batch_idx: int) -> dict[str, Any]:
            x, y = batch
            prediction = self.net(x)
            self.log("val_loss", torch.nn.functional.mse_loss(prediction, y))
            return {"prediction": prediction, "image": torch.sigmoid(prediction).reshape(-1, 1, 1, 1).expand(
                -1, 3, 8, 8)[:2]}

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.05)

    with experiment(workdir, automagic_artifacts=True) as exp:
        trainer = pl.Trainer(max_epochs=2, accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                             enable_model_summary=False, num_sanity_val_steps=0, enable_checkpointing=False,
                             default_root_dir=os.getcwd())
        train_loader, val_loader = loaders()
        trainer.fit(ImageModel(), train_loader, val_loader)
        samples = [v for v in exp.list_artifacts(type_filter="sample")]
        assert [v.name for v in samples] == ["samples"]
        history = exp.store.catalog.versions("samples")
        assert [v.manifest.metadata["epoch"] for v in history] == [0, 1]
        paths = {e.path for e in history[-1].manifest.entries}
        assert {"batch_0/image/image_0.png", "batch_0/image/image_1.png", "batch_0/prediction.pt"} <= paths
        png = exp.store.blob_path(next(e.digest for e in history[-1].manifest.entries
                                       if e.path.endswith("image_0.png"))).read_bytes()
        assert png.startswith(b"\x89PNG")
