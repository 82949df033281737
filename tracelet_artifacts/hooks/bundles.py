"""Multi-file checkpoints and model folders ("bundles"): which folder a file belongs to, what kind it is, and
whether it is complete, so every producer versions such a folder once, whole, and never file by file.

Kinds: a ``torch.distributed.checkpoint`` folder (``*.distcp`` shards, complete once its ``.metadata`` is
written, which the coordinator does after every rank finished), a Hugging Face model folder
(``config.json`` with ``model.safetensors`` / ``pytorch_model.bin``, or shards named by an
``*.index.json``), and a ``transformers.Trainer`` ``checkpoint-N`` folder (complete with its
``trainer_state.json``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from tracelet_artifacts.artifact import ArtifactType
from tracelet_artifacts.hooks.filecheck import Signature, file_signature, format_problem

DCP_METADATA = ".metadata"
DCP_SUFFIX = ".distcp"
HF_CONFIG = "config.json"
HF_WEIGHTS = ("model.safetensors", "pytorch_model.bin", "adapter_model.safetensors", "adapter_model.bin")
INDEX_SUFFIX = ".index.json"
TRAINER_STATE = "trainer_state.json"
MARKER_DOTFILES = frozenset({DCP_METADATA})  # dot-files that belong to their folder's version
_SHARD = re.compile(r".+-\d{5}-of-\d{5}\.(safetensors|bin)$")

DCP, HF_MODEL, HF_CHECKPOINT = "dcp", "hf-model", "hf-checkpoint"
TYPES = {DCP: ArtifactType.CHECKPOINT, HF_MODEL: ArtifactType.MODEL, HF_CHECKPOINT: ArtifactType.CHECKPOINT}


@dataclass(frozen=True)
class Bundle:
    """A folder that is versioned as one artifact, and its kind."""

    folder: Path
    kind: str

    @property
    def artifact_type(self) -> ArtifactType:
        return TYPES[self.kind]


def _names(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []


def _is_hf_config(path: Path) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and ("model_type" in data or "architectures" in data)


def kind_of(folder: Path) -> str | None:
    """The bundle kind of ``folder`` (``"dcp"``, ``"hf-model"``, ``"hf-checkpoint"``), or None."""
    names = _names(folder)
    if DCP_METADATA in names or any(n.endswith(DCP_SUFFIX) for n in names):
        return DCP
    trainer_files = {TRAINER_STATE, HF_CONFIG, "training_args.bin", "adapter_config.json"}
    if TRAINER_STATE in names or (folder.name.startswith("checkpoint-") and folder.name[11:].isdigit()
                                  and not trainer_files.isdisjoint(names)):
        return HF_CHECKPOINT
    if (any(n.endswith(INDEX_SUFFIX) or _SHARD.match(n) for n in names)
            or (HF_CONFIG in names and _is_hf_config(folder / HF_CONFIG))):
        return HF_MODEL
    return None


def bundle_for(path: str | os.PathLike[str], top: str | os.PathLike[str] | None = None) -> Bundle | None:
    """The bundle ``path`` (a file) belongs to: its folder, when that folder is one (never above ``top``)."""
    folder = Path(path).parent
    if top is not None and not (folder == Path(top) or Path(top) in folder.parents):
        return None
    kind = kind_of(folder)
    return Bundle(folder, kind) if kind is not None else None


def members(folder: Path) -> list[Path]:
    """Every regular file of the bundle at ``folder``: dot-files included, temp and lock files left out, and
    sub-folders that are bundles of their own (``checkpoint-N`` inside a model folder) left to themselves."""
    found: list[Path] = []
    for dirpath, dirnames, files in os.walk(folder):
        base = Path(dirpath)
        dirnames[:] = [d for d in dirnames if kind_of(base / d) is None]
        found.extend(base / name for name in files if not name.endswith((".tmp", ".lock", ".part", ".incomplete")))
    return sorted(found)


def signature(folder: Path) -> tuple[tuple[str, Signature], ...]:
    """The stat signatures of a folder's members: equal signatures mean nothing in it changed."""
    out = []
    for path in members(folder):
        sig = file_signature(os.fspath(path))
        if sig is not None:
            out.append((path.relative_to(folder).as_posix(), sig))
    return tuple(out)


def problem(folder: Path, kind: str | None = None) -> str | None:
    """Why ``folder`` is not a complete bundle yet (a marker or a shard missing, a weight file torn), or None."""
    kind = kind or kind_of(folder)
    names = set(_names(folder))
    if kind == DCP and DCP_METADATA not in names:
        return "its .metadata is not written yet (a rank is still writing)"
    if kind == HF_CHECKPOINT and TRAINER_STATE not in names:
        return f"its {TRAINER_STATE} is not written yet"
    if kind == HF_MODEL:
        indexes = [n for n in names if n.endswith(INDEX_SUFFIX)]
        for index in indexes:
            try:
                weight_map = json.loads((folder / index).read_text()).get("weight_map", {})
            except (OSError, ValueError, AttributeError):
                return f"{index} is not readable JSON yet"
            missing = sorted(set(weight_map.values()) - names)
            if missing:
                return f"{index} names {missing[0]}, which is not written yet"
        if not indexes and any(_SHARD.match(n) for n in names):
            return "its shards are written but not their index"
        if not indexes and not any(n in HF_WEIGHTS for n in names):
            return "no weights are written yet"
    for path in members(folder):
        size = path.stat().st_size if path.exists() else 0
        torn = format_problem(path, size)
        if torn is not None:
            return f"{path.name}: {torn}"
    return None
