"""How producers name what they capture: the file's path relative to the working directory, as a valid
artifact name, so ``a/model.pt`` and ``b/model.pt`` never collide.
"""

from __future__ import annotations

import os
from pathlib import Path

from tracelet_artifacts.artifact import name_segment


def artifact_name_for(path: str | os.PathLike[str], fallback: str) -> str:
    """An artifact name from ``path`` relative to the working directory, sanitised to ``[A-Za-z0-9._-]``.

    ``lightning_logs/version_0/checkpoints`` stays as it is, ``epoch=2.ckpt`` becomes ``epoch_2.ckpt``; a
    path outside the working directory keeps its absolute parts; the working directory itself is ``fallback``.
    """
    absolute = os.path.abspath(path)
    relative = os.path.relpath(absolute, os.getcwd())
    parts = Path(absolute).parts[1:] if relative.startswith("..") else Path(relative).parts
    segments = [name_segment(p) for p in parts if p not in ("", ".")]
    name = "/".join(segments) or fallback
    return name[-200:].lstrip("/.") or fallback
