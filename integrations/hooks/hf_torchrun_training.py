"""A Hugging Face Trainer run on 2 processes (``torchrun --standalone --nproc-per-node 2``, gloo, CPU): every rank
builds the Experiment with automagic capture; the Trainer saves ``checkpoint-N`` folders from process 0.
Usage: ``torchrun ... hf_torchrun_training.py OUT_DIR``; each rank prints ``RANK <r> TRAINED``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
import transformers

from tracelet_artifacts import Experiment


class Pairs(torch.utils.data.Dataset):  # type: ignore[misc]
    def __init__(self, size: int, seed: int) -> None:
        self.tokens = torch.randint(0, 50, (size, 8), generator=torch.Generator().manual_seed(seed))

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        tokens = self.tokens[index]
        return {"input_ids": tokens, "attention_mask": torch.ones(8, dtype=torch.long), "labels": tokens.sum() % 2}


def main(out: Path) -> None:
    os.chdir(out)
    config = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=16, num_labels=2)
    torch.manual_seed(0)
    with Experiment("hf-ddp", automagic_artifacts=True):
        args = transformers.TrainingArguments(
            output_dir="hf_out", num_train_epochs=2, per_device_train_batch_size=8, eval_strategy="epoch",
            save_strategy="epoch", metric_for_best_model="eval_loss", greater_is_better=False, report_to=[],
            use_cpu=True, logging_strategy="no", disable_tqdm=True, ddp_backend="gloo")
        trainer = transformers.Trainer(model=transformers.BertForSequenceClassification(config), args=args,
                                       train_dataset=Pairs(64, 0), eval_dataset=Pairs(16, 1))
        trainer.train()
        print(f"RANK {trainer.args.process_index} TRAINED", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
