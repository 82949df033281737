"""``Fabric.save`` writes through an in-memory buffer and fsspec, so ``torch.save`` never sees its path: the
automagic capture wraps it and versions the file like a ``torch.save``."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
lightning = pytest.importorskip("lightning")

from tracelet_artifacts import digest  # noqa: E402
from tracelet_artifacts.artifact import ArtifactType  # noqa: E402
from tracelet_artifacts.experiment import Experiment  # noqa: E402
from tracelet_artifacts.settings import TraceletSettings  # noqa: E402

pytestmark = pytest.mark.integration


def test_fabric_save_is_captured_like_torch_save(workdir: Path) -> None:
    settings = TraceletSettings(store_path=workdir / ".tracelet", automagic_artifacts=True)
    with Experiment("fabric-run", settings=settings) as exp:
        fabric = lightning.Fabric(accelerator="cpu", devices=1)
        model = fabric.setup_module(torch.nn.Linear(8, 2))
        optimizer = fabric.setup_optimizers(torch.optim.SGD(model.parameters(), lr=0.1))
        for step in (1, 2):
            loss = model(torch.randn(4, 8)).sum()
            fabric.backward(loss)
            optimizer.step()
            fabric.save("fabric_ckpt/last.ckpt", {"model": model, "optimizer": optimizer, "step": step})
        versions = [v for v in exp.list_artifacts() if v.name == "fabric_ckpt/last.ckpt"]
        assert versions, [v.name for v in exp.list_artifacts()]
        history = exp.store.catalog.versions("fabric_ckpt/last.ckpt")
        assert len(history) == 2  # each save with new weights is a new version
        latest = history[-1]
        assert latest.artifact_type is ArtifactType.CHECKPOINT
        assert latest.manifest.metadata["captured_by"] == "Fabric.save"
        assert latest.manifest.entries[0].digest == digest.file_key(workdir / "fabric_ckpt" / "last.ckpt")
