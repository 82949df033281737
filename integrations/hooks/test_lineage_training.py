"""Lineage recorded by the hooks in real training on CPU: Lightning resuming with ``trainer.fit(ckpt_path=…)``
from a checkpoint an earlier run captured, and a plain PyTorch script's ``torch.load`` of a stored file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pl = pytest.importorskip("lightning.pytorch")

from tracelet_artifacts.experiment import Experiment  # noqa: E402
from tracelet_artifacts.hooks.lightning import RESUMED, TraceletCallback  # noqa: E402
from tracelet_artifacts.settings import TraceletSettings  # noqa: E402

pytestmark = pytest.mark.integration


class Tiny(pl.LightningModule):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(4, 1)

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.05)


def loader() -> Any:
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(0))
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x.sum(dim=1, keepdim=True)), batch_size=8)


def fit(exp: Experiment, epochs: int, ckpt_path: str | None = None) -> Any:
    checkpoint = pl.callbacks.ModelCheckpoint(dirpath="ckpts", filename="epoch{epoch}", save_top_k=-1)
    trainer = pl.Trainer(max_epochs=epochs, callbacks=[checkpoint, TraceletCallback(exp, log_model=False)],
                         logger=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    trainer.fit(Tiny(), loader(), ckpt_path=ckpt_path)
    return trainer


def settings(**values: Any) -> TraceletSettings:
    return TraceletSettings(store_path=Path(".tracelet"), **values)


def test_resuming_from_a_captured_checkpoint_makes_it_the_new_runs_input(workdir: Path) -> None:
    with Experiment("first", backend=[], settings=settings()) as first:
        fit(first, epochs=1)
    resume_from = str(Path("ckpts/epochepoch=0.ckpt").absolute())
    with Experiment("resumed", backend=[], settings=settings()) as resumed:
        fit(resumed, epochs=2, ckpt_path=resume_from)
        resumed.flush()
        lineage = resumed.store.lineage
        [use] = lineage.uses_of_run(resumed.run_id)
        assert use.how == RESUMED
        stored = resumed.store.get(use.name, use.version)
        assert stored.run_id == first.run_id  # the checkpoint the first run captured
        assert use.ref == "ckpts:v1"  # checkpoints of one folder are versions of one name
        newest = resumed.store.get("ckpts")
        assert newest.version == 2 and newest.run_id == resumed.run_id
        assert [u.ref for u in lineage.inputs_of(newest)] == [use.ref]
        graph = lineage.graph(newest.name, newest.version, direction="up")
        assert f"run:{first.run_id}" in {n.id for n in graph.nodes}


def test_a_script_that_torch_loads_a_stored_file_records_it(workdir: Path) -> None:
    with Experiment("pretrain", backend=[], settings=settings(automagic_artifacts=True)) as pretrain:
        model = torch.nn.Linear(4, 1)
        torch.save(model.state_dict(), "pretrained.pt")
        pretrain.flush()
    with Experiment("finetune", backend=[], settings=settings(automagic_artifacts=True)) as finetune:
        model = torch.nn.Linear(4, 1)
        model.load_state_dict(torch.load("pretrained.pt", weights_only=True))
        torch.save(model.state_dict(), "finetuned.pt")
        finetune.flush()
        store = finetune.store
        assert [(u.ref, u.how) for u in store.lineage.uses_of_run(finetune.run_id)] == [("pretrained.pt:v1",
                                                                                         "torch.load")]
        assert [u.ref for u in store.lineage.inputs_of(store.get("finetuned.pt"))] == ["pretrained.pt:v1"]
