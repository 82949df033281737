"""Example: a Hugging Face ``Trainer`` whose checkpoints, final model and training arguments are versioned with
no upload code — ``automagic_artifacts=True`` adds a TraceletTrainerCallback to every Trainer.

Fine-tunes a tiny BERT built from a config (no download from the Hub) for 2 epochs on CPU, on the embedded
store (no server, no account), then shows which checkpoint is ``best`` and prints what was captured as
``tracelet-artifacts ls`` does. Needs ``pip install 'tracelet-artifacts[hf]'``.

    python examples/hf_trainer_capture.py [work-folder]      # default: a fresh temporary folder
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
import transformers

from tracelet_artifacts import Experiment
from tracelet_artifacts.cli import main as tracelet_cli


class ParityDataset(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """Sequences of 8 token ids, labelled by whether their sum is even."""

    def __init__(self, size: int, seed: int) -> None:
        self.tokens = torch.randint(0, 50, (size, 8), generator=torch.Generator().manual_seed(seed))

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, index: int) -> dict[str, Any]:
        tokens = self.tokens[index]
        return {"input_ids": tokens, "attention_mask": torch.ones_like(tokens), "labels": tokens.sum() % 2}


def tiny_bert() -> transformers.PreTrainedModel:
    config = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=16, num_labels=2)
    return transformers.BertForSequenceClassification(config)


def main(folder: Path) -> None:
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    os.chdir(folder)  # the Trainer's output folder and the embedded store (./.tracelet) land here
    torch.manual_seed(0)
    with Experiment("bert-parity", automagic_artifacts=True) as exp:
        args = transformers.TrainingArguments(
            output_dir="out", num_train_epochs=2, per_device_train_batch_size=8, eval_strategy="epoch",
            save_strategy="epoch", metric_for_best_model="eval_loss", greater_is_better=False, report_to=[],
            use_cpu=True, logging_strategy="no", disable_tqdm=True)
        trainer = transformers.Trainer(model=tiny_bert(), args=args, train_dataset=ParityDataset(32, 0),
                                       eval_dataset=ParityDataset(16, 1))
        trainer.train()
        best = exp.get_artifact("out/checkpoints", "best")  # read your writes: no flush needed
        print(f"best checkpoint: {best.manifest.metadata['checkpoint']} ({best.ref}), "
              f"the Trainer says {Path(trainer.state.best_model_checkpoint).name}")
    print(f"\nCaptured in {folder / '.tracelet'}:")
    os.environ.setdefault("COLUMNS", "150")  # room for the full names when the output is not a terminal
    tracelet_cli(["ls", "--all-versions"], standalone_mode=False)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="hf-demo-"))
    main(target)
