"""Comparing two torch state dicts (or checkpoints holding one): tensors whose shape changed, and how much
each of the others moved (``‖B-A‖ / ‖A‖``). torch is imported only here, and files load with
``weights_only=True``: a file that needs a full unpickle is reported, never executed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from tracelet_artifacts.diff.model import ADDED, CHANGED, REMOVED, UNCHANGED, ContentDiff, TensorChange
from tracelet_artifacts.errors import SerializationError
from tracelet_artifacts.serialize import load_torch_file

TORCH_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")
MAX_STATE_DICT_BYTES = 2 * 1024**3  # per side; larger checkpoints are compared by digest only
MAX_TENSORS = 5000


def _tensors(value: Any, prefix: str, torch: Any, depth: int = 0) -> Iterator[tuple[str, Any]]:
    """Every tensor inside a loaded object, by dotted key (a Lightning checkpoint's ``state_dict.layer.weight``)."""
    if isinstance(value, torch.Tensor):
        yield prefix, value
    elif isinstance(value, Mapping) and depth < 8:
        for key, item in value.items():
            yield from _tensors(item, f"{prefix}.{key}" if prefix else str(key), torch, depth + 1)
    elif isinstance(value, (list, tuple)) and depth < 8:
        for index, item in enumerate(value):
            yield from _tensors(item, f"{prefix}.{index}" if prefix else str(index), torch, depth + 1)


def _load(path: Path, torch: Any) -> dict[str, Any]:
    return dict(_tensors(load_torch_file(path), "", torch))


def looks_like_torch_file(path: Path) -> bool:
    """A zip archive (``torch.save``'s format) or a pickle (its legacy one): only those are given to torch."""
    with path.open("rb") as handle:
        head = handle.read(4)
    return head.startswith((b"PK\x03\x04", b"\x80"))


def _relative_change(a: Any, b: Any, torch: Any) -> float:
    wide = torch.complex128 if a.is_complex() or b.is_complex() else torch.float64
    a, b = a.to(wide), b.to(wide)
    moved = float(torch.linalg.vector_norm(b - a))
    if moved == 0:
        return 0.0
    base = float(torch.linalg.vector_norm(a))
    return moved / base if base else float("inf")


def diff_state_dicts(name: str, left: Path, right: Path) -> ContentDiff | None:
    """Tensor-by-tensor changes between two torch files; None when neither holds a tensor."""
    if max(left.stat().st_size, right.stat().st_size) > MAX_STATE_DICT_BYTES:
        return ContentDiff(name, "state_dict",
                           note=f"larger than {MAX_STATE_DICT_BYTES} bytes: compared by digest only")
    if not (looks_like_torch_file(left) and looks_like_torch_file(right)):
        return None  # e.g. a .bin that is not a torch file: compared by digest, torch never imported
    try:
        import torch
    except ImportError:
        return ContentDiff(name, "state_dict", note="torch is not installed: tensors not compared (pip install torch)")
    try:
        before, after = _load(left, torch), _load(right, torch)
    except SerializationError as exc:  # weights_only refuses arbitrary objects; an unreadable file is reported too
        return ContentDiff(name, "state_dict", note=f"not loadable with weights_only=True: {exc}"[:300])
    if not before and not after:
        return None
    changes: list[TensorChange] = []
    for key in sorted(before.keys() | after.keys())[:MAX_TENSORS]:
        a, b = before.get(key), after.get(key)
        if a is None or b is None:
            status = ADDED if a is None else REMOVED
            changes.append(TensorChange(key, status, _shape(a), _shape(b)))
        elif tuple(a.shape) != tuple(b.shape):
            changes.append(TensorChange(key, "shape", _shape(a), _shape(b)))
        else:
            change = _relative_change(a, b, torch)
            changes.append(TensorChange(key, CHANGED if change else UNCHANGED, _shape(a), _shape(b), change))
    cut = len(before.keys() | after.keys()) > MAX_TENSORS
    note = f"only the first {MAX_TENSORS} tensors were compared" if cut else ""
    order = {"shape": 0, ADDED: 1, REMOVED: 1, CHANGED: 2, UNCHANGED: 3}
    changes.sort(key=lambda c: (order[c.status], -(c.relative_change or 0.0), c.key))
    return ContentDiff(name, "state_dict", tensors=tuple(changes), note=note)


def _shape(tensor: Any) -> tuple[int, ...] | None:
    return None if tensor is None else tuple(int(n) for n in tensor.shape)
