"""Helpers shared by the Lightning/automagic hook tests: an isolated working folder and a stand-in Lightning
namespace, so these tests need no real Lightning import.
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path
from typing import Any

import pytest


def isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in ``tmp_path`` with no TRACELET_* or rank variables set."""
    for key in list(os.environ):
        if key.startswith("TRACELET_") or key in ("RANK", "LOCAL_RANK", "SLURM_PROCID"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def install_fake_lightning(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """Put a stand-in ``pytorch_lightning`` (Callback, Trainer taking ``callbacks=``) in ``sys.modules``."""
    module = types.ModuleType("pytorch_lightning")

    class Callback:
        pass

    class Trainer:
        def __init__(self, *, callbacks: Any = None, max_epochs: int = 1) -> None:
            self.callbacks = list(callbacks) if isinstance(callbacks, list) else [callbacks] if callbacks else []

    module.Callback, module.Trainer = Callback, Trainer  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pytorch_lightning", module)
    return module
