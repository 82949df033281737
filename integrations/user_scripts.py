"""A user's training script in a fresh process, for the backend suites that configure an SDK only the way its
users do (environment, config files, a run opened first): SDKs read their settings once per process.

    result, log = user_script(BODY, env, cwd)      # BODY prints one JSON line last; log is its stderr
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PRELUDE = """
import json, logging, sys
from pathlib import Path
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(levelname)s %(message)s")
from tracelet_artifacts import ArtifactType, Experiment

def log_model_and_config(exp, backend):
    Path("model.pth").write_bytes(bytes(range(256)) * 8)
    model = exp.create_artifact("classifier", ArtifactType.MODEL).add_file("model.pth")
    config = exp.create_artifact("cfg", ArtifactType.CONFIG).add_object({"lr": 0.1}, "hparams")
    exp.log_artifact(model, aliases=["best"])
    exp.log_artifact(config)
    exp.flush(timeout=120)
    return [dict(d.receipt or {}, status=d.status, last_error=d.last_error)
            for d in exp.store.catalog.deliveries(backend=backend)]

def experiment_receipts(name, backend, settings=None):
    # an experiment that logs a model and a config to the backend, then stops: its receipts
    exp = Experiment(name, backend=[backend], settings=settings).start()
    receipts = log_model_and_config(exp, backend)
    exp.stop(timeout=120)
    return receipts
"""


def user_script(body: str, env: dict[str, str], cwd: Path, timeout: float = 240) -> tuple[Any, str]:
    """Run ``PRELUDE + body`` as a user's script in ``cwd``; return (the last JSON object it printed on a line
    of its own, its stderr)."""
    cwd.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-c", PRELUDE + body], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    printed = [line for line in done.stdout.splitlines() if line.startswith("{")]  # SDKs print too, e.g. at exit
    assert printed, done.stdout[-2000:] + done.stderr[-4000:]
    return json.loads(printed[-1]), done.stderr


def doctor(backend: str, experiment: str, env: dict[str, str], cwd: Path) -> dict[str, str]:
    """``tracelet-artifacts doctor`` for one backend: its value lines by key (``"  key  value  (from …)"``),
    plus the heading under ``""``."""
    done = subprocess.run([sys.executable, "-m", "tracelet_artifacts.cli", "doctor", "--backend", backend,
                           "--experiment", experiment], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if line.startswith("  ")}
    lines[""] = next(line for line in done.stdout.splitlines() if line.startswith(f"{backend}:"))
    return lines
