"""Hugging Face capture with the real ``transformers`` (a tiny BERT built from a config, no hub download):
``TraceletTrainerCallback`` added by automagic versions each ``checkpoint-N`` folder once, marks ``best``
from ``metric_for_best_model``, logs the final model and the training arguments; ``save_pretrained``
folders (sharded safetensors with their index) are one version each, from the hook and from the watcher.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from test_ddp import run_launcher  # noqa: E402

from tracelet_artifacts import digest  # noqa: E402
from tracelet_artifacts.artifact import ArtifactType  # noqa: E402
from tracelet_artifacts.experiment import Experiment  # noqa: E402
from tracelet_artifacts.hooks.hf import TraceletTrainerCallback  # noqa: E402
from tracelet_artifacts.settings import TraceletSettings  # noqa: E402
from tracelet_artifacts.store.embedded import EmbeddedStore  # noqa: E402

pytestmark = pytest.mark.integration


class Pairs(torch.utils.data.Dataset):  # type: ignore[misc]
    """Token sequences labelled by the parity of their sum."""

    def __init__(self, size: int, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.tokens = torch.randint(0, 50, (size, 8), generator=generator)

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, index: int) -> dict[str, Any]:
        tokens = self.tokens[index]
        return {"input_ids": tokens, "attention_mask": torch.ones(8, dtype=torch.long), "labels": tokens.sum() % 2}


def tiny_bert() -> Any:
    config = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=16, num_labels=2)
    torch.manual_seed(0)
    return transformers.BertForSequenceClassification(config)


def settings(workdir: Path, **values: Any) -> TraceletSettings:
    return TraceletSettings(store_path=workdir / ".tracelet", **values)


def train(output_dir: str = "hf_out", **options: Any) -> Any:
    args = transformers.TrainingArguments(
        output_dir=output_dir, num_train_epochs=2, per_device_train_batch_size=8, eval_strategy="epoch",
        save_strategy="epoch", metric_for_best_model="eval_loss", greater_is_better=False, report_to=[],
        use_cpu=True, logging_strategy="no", disable_tqdm=True, **options)
    trainer = transformers.Trainer(model=tiny_bert(), args=args, train_dataset=Pairs(32), eval_dataset=Pairs(16, 1))
    trainer.train()
    return trainer


def test_automagic_versions_each_trainer_checkpoint_and_marks_best(workdir: Path) -> None:
    with Experiment("hf-run", settings=settings(workdir, automagic_artifacts=True)) as exp:
        trainer = train()
        assert any(isinstance(c, TraceletTrainerCallback) for c in trainer.callback_handler.callbacks)
        # Read your writes: right after train() the final model the callback queued is listed.
        listed = {v.name: v for v in exp.list_artifacts()}
        assert sorted(listed) == ["hf_out/checkpoints", "hf_out/model", "hf_out/training_args"]
        checkpoints = exp.store.catalog.versions("hf_out/checkpoints")
        assert [v.manifest.metadata["checkpoint"] for v in checkpoints] == ["checkpoint-4", "checkpoint-8"]
        for version in checkpoints:
            folder = Path("hf_out") / version.manifest.metadata["checkpoint"]
            held = {e.path.removeprefix("checkpoint/"): e.digest for e in version.manifest.entries}
            assert held == {p.name: digest.file_key(p) for p in folder.iterdir()}  # whole, as on disk
            assert {"model.safetensors", "config.json", "trainer_state.json", "optimizer.pt"} <= set(held)
            assert version.artifact_type is ArtifactType.CHECKPOINT
        best = exp.get_artifact("hf_out/checkpoints", "best")
        assert Path(trainer.state.best_model_checkpoint).name == best.manifest.metadata["checkpoint"]
        assert best.manifest.metadata["metric_for_best_model"] == "eval_loss"
        model = exp.get_artifact("hf_out/model")
        assert model.artifact_type is ArtifactType.MODEL
        assert {"config.json", "model.safetensors"} <= {e.path for e in model.manifest.entries}
        args = exp.load_object("hf_out/training_args", "training_args")
        assert args["num_train_epochs"] == 2 and args["metric_for_best_model"] == "eval_loss"


def test_best_follows_the_trainer_when_a_later_checkpoint_is_better(workdir: Path) -> None:
    with Experiment("hf-best", settings=settings(workdir)) as exp:
        args = transformers.TrainingArguments(
            output_dir="out", num_train_epochs=3, per_device_train_batch_size=8, eval_strategy="epoch",
            save_strategy="epoch", metric_for_best_model="eval_loss", greater_is_better=False, report_to=[],
            use_cpu=True, logging_strategy="no", disable_tqdm=True, learning_rate=5e-3, save_total_limit=2)
        trainer = transformers.Trainer(model=tiny_bert(), args=args, train_dataset=Pairs(32),
                                       eval_dataset=Pairs(16, 1), callbacks=[TraceletTrainerCallback(exp)])
        trainer.train()
        best = exp.get_artifact("out/checkpoints", "best")
        assert best.manifest.metadata["checkpoint"] == Path(trainer.state.best_model_checkpoint).name
        assert len(exp.store.catalog.versions("out/checkpoints")) == 3  # rotated folders were taken in time


def test_a_sharded_save_pretrained_folder_is_one_model_version(workdir: Path) -> None:
    with Experiment("hf-export", settings=settings(workdir, automagic_artifacts=True)) as exp:
        tiny_bert().save_pretrained("exported", max_shard_size="4KB")
        index = json.loads((workdir / "exported" / "model.safetensors.index.json").read_text())
        shards = set(index["weight_map"].values())
        assert len(shards) > 1
        assert [v.name for v in exp.list_artifacts()] == ["exported"]
        version = exp.get_artifact("exported")
        assert version.artifact_type is ArtifactType.MODEL
        assert {e.path for e in version.manifest.entries} >= shards | {"config.json", "model.safetensors.index.json"}


def test_the_watcher_takes_a_sharded_model_folder_as_one_version(workdir: Path) -> None:
    pytest.importorskip("watchdog")
    from tracelet_artifacts.hooks.watcher import ArtifactWatcher

    (workdir / "watched").mkdir()
    with Experiment("hf-watch", settings=settings(workdir)) as exp:  # no automagic: only the watcher sees it
        watcher = ArtifactWatcher(["watched"], experiment=exp, settle_s=0.3).start()
        tiny_bert().save_pretrained("watched/model", max_shard_size="4KB")
        captured = watcher.stop()
        assert [c.name for c in captured] == ["watched/model"]
        version = exp.get_artifact("watched/model")
        files = {p.name for p in (workdir / "watched" / "model").iterdir()}
        assert {e.path for e in version.manifest.entries} == files


def test_a_two_process_trainer_run_is_captured_once_from_process_zero(workdir: Path) -> None:
    script = Path(__file__).with_name("hf_torchrun_training.py")
    done = run_launcher([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                         str(script), str(workdir)], workdir, "a 2-process Hugging Face Trainer run")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "RANK 0 TRAINED" in done.stdout and "RANK 1 TRAINED" in done.stdout
    store = EmbeddedStore(workdir / ".tracelet")
    try:
        assert store.catalog.names() == ["hf_out/checkpoints", "hf_out/model", "hf_out/training_args"]
        checkpoints = store.catalog.versions("hf_out/checkpoints")
        assert [v.manifest.metadata["checkpoint"] for v in checkpoints] == ["checkpoint-4", "checkpoint-8"]
        assert len({v.run_id for n in store.catalog.names() for v in store.catalog.versions(n)}) == 1
        assert "best" in store.get("hf_out/checkpoints", "best").aliases
    finally:
        store.close()
