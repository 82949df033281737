"""Run a script of ``examples/`` as a user runs it: a fresh interpreter, no ``TRACELET_*`` setting from the test's
environment (only those the test gives), this checkout importable."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_example(script: str, cwd: Path, *args: str, settings: Mapping[str, str] | None = None,
                timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACELET_")}
    env.update(settings or {})
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return subprocess.run([sys.executable, str(REPO / "examples" / script), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
