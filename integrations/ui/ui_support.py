"""Support for the web-view suites: a store filled the way users fill theirs (configs, metrics, images,
a state dict, a CSV, CI perf reports, a description that holds markup), the ``tracelet-artifacts ui``
command started on a free loopback port, and the distribution's Chromium driven by Playwright.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tracelet_artifacts.artifact import TraceletArtifact
from tracelet_artifacts.settings import TraceletSettings
from tracelet_artifacts.store.embedded import EmbeddedStore

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
INSTALL_HINT = "install the distribution's Chromium (Debian: apt-get install -y chromium)"
SCREENSHOTS = REPO / "docs" / "images" / "ui"
EVIL = '<script>document.title="owned"</script><img src=x onerror=alert(1)>'


@dataclass
class Site:
    """A running web view and the store it shows."""

    kind: str
    base: str
    store: EmbeddedStore
    env: dict[str, str]
    workdir: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def png_bytes(width: int, height: int, color: tuple[int, int, int]) -> bytes:
    """A real PNG of one colour with a diagonal stripe (no imaging library needed)."""
    rows = b""
    for y in range(height):
        line = bytearray()
        for x in range(width):
            line += bytes((255, 255, 255)) if abs(x - y) < 3 else bytes(color)
        rows += b"\x00" + bytes(line)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def populate(store: EmbeddedStore, work: Path, settings: Any = None) -> None:
    """Two versions of a classifier (config, metrics, weights, a sample image), a dataset CSV, an artifact
    whose description and metadata hold markup, fifteen CI perf reports with a regression at run 10, an
    MLflow delivery, and a model a run trained from the dataset (lineage)."""
    import torch

    work.mkdir(parents=True, exist_ok=True)
    for version, (lr, loss, acc, hidden) in enumerate([(0.01, 0.42, 0.88, 4), (0.003, 0.47, 0.91, 6)], start=1):
        folder = work / f"classifier-{version}"
        folder.mkdir(exist_ok=True)
        (folder / "config.yaml").write_text(f"optimizer:\n  lr: {lr}\n  name: adam\nlayers: [{hidden}, 2]\n")
        (folder / "metrics.json").write_text(json.dumps({"val_loss": loss, "accuracy": acc, "epochs": 10}))
        torch.manual_seed(version)
        torch.save({"encoder.weight": torch.randn(hidden, 3), "head.weight": torch.randn(2, 4) * version,
                    "head.bias": torch.zeros(2)}, folder / "model.pt")
        (folder / "sample.png").write_bytes(png_bytes(160, 100, (40, 90, 160) if version == 1 else (160, 60, 40)))
        art = TraceletArtifact("vision/classifier", "model", description=f"ResNet-ish classifier, run {version}",
                               metadata={"accuracy": acc, "framework": "pytorch"}, labels=["baseline"])
        for name in ("config.yaml", "metrics.json", "model.pt", "sample.png"):
            art.add_file(folder / name, name if name != "model.pt" else "weights/model.pt")
        store.log(art, aliases=["best"] if version == 1 else ())
    (work / "train.csv").write_text("id,feature,label\n" + "".join(f"{i},{i * 0.5},{i % 2}\n" for i in range(40)))
    store.log(TraceletArtifact("data/train-set", "dataset", description="Training rows").add_file(work / "train.csv"))
    (work / "notes.txt").write_text("plain notes\n")
    store.log(TraceletArtifact("reports/untrusted", "report", description=EVIL, metadata={"note": EVIL})
              .add_file(work / "notes.txt"))
    add_ci_reports(store, work / "ci")
    deliver_to_mlflow(settings or TraceletSettings(store_path=store.root), work / "mlflow")
    train_from_the_dataset(settings or TraceletSettings(store_path=store.root), work / "lineage")


def train_from_the_dataset(settings: TraceletSettings, folder: Path) -> None:
    """The lineage to follow in the browser: a run fine-tunes ``vision/classifier@best`` on ``data/train-set``
    into ``vision/resnet``; another run evaluates it into ``reports/resnet-eval``."""
    from tracelet_artifacts.experiment import Experiment

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "resnet.pt").write_bytes(b"resnet weights")
    (folder / "eval.json").write_text(json.dumps({"accuracy": 0.93}))
    with Experiment("train-resnet", backend=[], automagic_artifacts=False, settings=settings) as run:
        run.use_artifact("data/train-set")
        run.use_artifact("vision/classifier", "best")
        run.log_artifact(run.create_artifact("vision/resnet", "model", description="trained on data/train-set")
                         .add_file(folder / "resnet.pt"))
    with Experiment("evaluate", backend=[], automagic_artifacts=False, settings=settings) as run:
        run.use_artifact("vision/resnet")
        run.log_artifact(run.create_artifact("reports/resnet-eval", "report").add_file(folder / "eval.json"))


def deliver_to_mlflow(settings: TraceletSettings, folder: Path) -> None:
    """``vision/exported`` logged by a run with the MLflow backend (a local sqlite tracking store) into the
    store ``settings`` name, so the version page has a real delivery and its receipt to show."""
    from tracelet_artifacts.experiment import Experiment

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "export.onnx").write_bytes(b"onnx-bytes" * 100)
    settings = settings.model_copy(update={"backend_options": {"mlflow": {
        "tracking_uri": f"sqlite:///{folder / 'mlflow.db'}", "artifact_location": str(folder / "artifacts")}}})
    with Experiment("ui-suite", backend=["mlflow"], automagic_artifacts=False, settings=settings) as run:
        run.log_artifact(run.create_artifact("vision/exported", "model", description="exported for serving")
                         .add_file(folder / "export.onnx"))


def add_ci_reports(store: EmbeddedStore, folder: Path) -> None:
    from tracelet_artifacts.ci.catalog_index import CatalogIndex
    from tracelet_artifacts.ci.metadata import ArtifactMetadata

    folder.mkdir(parents=True, exist_ok=True)
    start = datetime.now(timezone.utc) - timedelta(days=20)
    index = CatalogIndex(store)
    for run in range(15):
        value = (100.0 if run < 10 else 130.0) + (run % 3) * 0.5
        path = folder / f"perf-{run}.json"
        path.write_text(json.dumps({"metrics": {"latency_ms": value, "fps": 1000 / value}}))
        index.add(ArtifactMetadata("perf.json", path, f"run-{run:02d}", "github",
                                   created_at=start + timedelta(days=run), artifact_type="perf_report"))


@contextmanager
def ui_server(env: Mapping[str, str], *extra: str, cwd: Path) -> Iterator[str]:
    """``tracelet-artifacts ui`` in a child process on a free port; yields its base URL."""
    port = free_port()
    full_env = {**env, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)}
    process = subprocess.Popen([sys.executable, "-m", "tracelet_artifacts.cli", "ui", "--port", str(port), *extra],
                               cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                raise RuntimeError(f"tracelet-artifacts ui exited with {process.returncode}: {output}")
            try:
                urllib.request.urlopen(f"{base}/static/style.css", timeout=2).close()
                break
            except urllib.error.HTTPError:  # it answers (401 when it wants a token): it is up
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("tracelet-artifacts ui did not answer within 60 s") from None
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def chromium_available() -> bool:
    return Path(CHROMIUM).exists() and shutil.which(CHROMIUM) is not None


def launch(playwright: Any) -> Any:
    """The distribution's Chromium, headless, with no network beyond what the pages ask for."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
