"""Validation samples kept with no user code: the outputs Lightning hands ``on_validation_batch_end`` for the
first few batches of an epoch (tensors, dicts of tensors, lists of them), turned into one SAMPLE artifact.
Image-shaped tensors become PNG files, other tensors ``.pt`` files, numbers and strings one JSON file.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracelet_artifacts.artifact import ArtifactType, TraceletArtifact, name_segment

MAX_BATCHES = 2  # batches kept per epoch
MAX_IMAGES = 8  # images written per tensor
MAX_ELEMENTS = 1_000_000  # larger tensors are left out (noted in the artifact's metadata)


def png(pixels: Any) -> bytes:
    """A PNG of an image tensor (CxHxW with 1, 3 or 4 channels, or HxW), values in [0, 1] or 0..255."""
    image = pixels.detach().float().cpu()
    if image.dim() == 2:
        image = image.unsqueeze(0)
    if image.max() <= 1.0 and image.min() >= 0.0:
        image = image * 255.0
    channels, height, width = image.shape
    data = image.clamp(0, 255).round().to(dtype=_uint8()).permute(1, 2, 0).contiguous().numpy().tobytes()
    color = {1: 0, 3: 2, 4: 6}[channels]
    stride = width * channels
    raw = b"".join(b"\x00" + data[row * stride:(row + 1) * stride] for row in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def _uint8() -> Any:
    import torch

    return torch.uint8


def _is_tensor(value: Any) -> bool:
    return all(hasattr(value, a) for a in ("detach", "dim", "shape", "numel"))


def _is_image(tensor: Any) -> bool:
    """CxHxW (or NxCxHxW) with 1, 3 or 4 channels, both sides at least 8 pixels, float or uint8 values."""
    shape = tuple(tensor.shape)
    if len(shape) == 4:
        shape = shape[1:]
    pixels = tensor.is_floating_point() or str(tensor.dtype) == "torch.uint8"
    return pixels and len(shape) == 3 and shape[0] in (1, 3, 4) and shape[1] >= 8 and shape[2] >= 8


@dataclass
class SampleCollector:
    """Keeps what the first ``max_batches`` validation batches of an epoch returned, detached and on the CPU."""

    max_batches: int = MAX_BATCHES
    batches: dict[int, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def add(self, batch_idx: int, dataloader_idx: int, outputs: Any) -> None:
        if outputs is None or dataloader_idx != 0 or batch_idx >= self.max_batches:
            return
        self.batches[batch_idx] = self._detach(outputs, f"batch_{batch_idx}", 0)

    def _detach(self, value: Any, where: str, depth: int) -> Any:
        if _is_tensor(value):
            if value.numel() > MAX_ELEMENTS:
                self.skipped.append(f"{where}: {tuple(value.shape)} has more than {MAX_ELEMENTS} elements")
                return None
            return value.detach().cpu().clone()
        if depth > 3:
            return None
        if isinstance(value, Mapping):
            return {str(k): self._detach(v, f"{where}/{k}", depth + 1) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._detach(v, f"{where}/{i}", depth + 1) for i, v in enumerate(value)]
        if value is None or isinstance(value, (bool, int, str)):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else repr(value)
        return repr(value)[:200]

    def take(self) -> tuple[dict[int, Any], list[str]]:
        batches, skipped = self.batches, self.skipped
        self.batches, self.skipped = {}, []
        return batches, skipped


def sample_artifact(name: str, batches: Mapping[int, Any], skipped: list[str], epoch: int, step: int,
                    folder: Path) -> TraceletArtifact | None:
    """One SAMPLE artifact of the collected outputs (None when they held nothing to keep); its PNG files are
    written under ``folder`` (a staging folder the caller removes once the artifact is stored)."""
    artifact = TraceletArtifact(name, ArtifactType.SAMPLE, f"Validation outputs at epoch {epoch}",
                                metadata={"epoch": epoch, "global_step": step, "captured_by": "validation_outputs",
                                          "batches": sorted(batches)})
    if skipped:
        artifact.metadata["left_out"] = skipped[:20]
    plain: dict[str, Any] = {}
    for batch_idx, outputs in sorted(batches.items()):
        _add(artifact, plain, f"batch_{batch_idx}", outputs, folder)
    if plain:
        artifact.add_object(plain, "values", "json")
    return artifact if artifact.files or artifact.objects else None


def _add(artifact: TraceletArtifact, plain: dict[str, Any], where: str, value: Any, folder: Path) -> None:
    if _is_tensor(value):
        if _is_image(value):
            images = value if value.dim() == 4 else value.unsqueeze(0)
            for index, image in enumerate(images[:MAX_IMAGES]):
                target = folder / f"{where}/image_{index}.png"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(png(image))
                artifact.add_file(target, f"{where}/image_{index}.png")
        else:
            artifact.add_object(value, where, "torch")
    elif isinstance(value, Mapping):
        for key, inner in value.items():
            _add(artifact, plain, f"{where}/{name_segment(str(key))}", inner, folder)
    elif isinstance(value, list) and any(_is_tensor(v) or isinstance(v, (Mapping, list)) for v in value):
        for index, inner in enumerate(value):
            _add(artifact, plain, f"{where}/{index}", inner, folder)
    elif value is not None:
        plain[where] = value
