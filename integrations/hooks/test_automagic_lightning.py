"""Automagic with real Lightning: every Trainer of both namespaces gets a TraceletCallback while it is on
(and none after), and the auto-capture example versions a real run with no callback in its code.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

from tracelet_artifacts.artifact import ArtifactType
from tracelet_artifacts.experiment import Experiment
from tracelet_artifacts.hooks import automagic
from tracelet_artifacts.hooks.lightning import TraceletCallback, installed_namespaces
from tracelet_artifacts.settings import TraceletSettings
from tracelet_artifacts.store.embedded import EmbeddedStore

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("namespace", installed_namespaces())
def test_real_trainers_get_the_callback_only_while_automagic_is_on(workdir: Path, namespace: str) -> None:
    pl = importlib.import_module(namespace)
    original = pl.Trainer.__dict__["__init__"]

    def tracelet_callbacks() -> list[object]:
        trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
        return [c for c in trainer.callbacks if isinstance(c, TraceletCallback)]

    settings = TraceletSettings(store_path=workdir / ".tracelet", automagic_artifacts=True)
    with Experiment("automagic-real", settings=settings) as exp:
        (callback,) = tracelet_callbacks()
        assert isinstance(callback, pl.Callback) and callback.experiment is exp
    assert pl.Trainer.__dict__["__init__"] is original
    assert tracelet_callbacks() == []
    assert automagic.active_experiment() is None


def test_the_autocapture_example_versions_a_real_run(workdir: Path) -> None:
    if importlib.util.find_spec("lightning") is None and importlib.util.find_spec("pytorch_lightning") is None:
        pytest.skip("Lightning is not installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACELET_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "lightning_autocapture.py"), str(workdir)],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "best, latest" in done.stdout and "lightning_logs/version_0/checkpoints" in done.stdout

    store = EmbeddedStore(workdir / ".tracelet")
    checkpoints = store.catalog.versions("lightning_logs/version_0/checkpoints")
    on_disk = sorted((workdir / "lightning_logs" / "version_0" / "checkpoints").glob("*.ckpt"))
    assert len(on_disk) == 3 and len(checkpoints) >= 3
    assert store.get("lightning_logs/version_0/model").artifact_type is ArtifactType.MODEL
    assert store.get("lightning_logs/version_0/hparams").artifact_type is ArtifactType.CONFIG
    # the torch.save patch was on too: Lightning's own saves were not captured a second time under other names
    assert {v.name for v in store.catalog.search()} == {f"lightning_logs/version_0/{leaf}" for leaf in
                                                        ("checkpoints", "model", "hparams", "samples")}
    store.close()
