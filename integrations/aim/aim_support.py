"""Helpers of the Aim integration suite: a real ``aim server`` on loopback, a harness that logs a builder
straight through ``AimAdapter`` (store → plan → delivery), and one artifact of every type."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracelet_artifacts.artifact import TraceletArtifact
from tracelet_artifacts.backends.aim import AimAdapter
from tracelet_artifacts.backends.base import Delivery, Receipt, RunContext
from tracelet_artifacts.backends.local import LocalAdapter
from tracelet_artifacts.routing import RoutingPolicy
from tracelet_artifacts.store.embedded import EmbeddedStore

AIM_BIN = Path(sys.executable).with_name("aim")
SANDBOX_ENV = {
    # Aim 3.29 makes no network call of its own (0 attempts measured) and hard-codes the UI's telemetry
    # off; these two keep it so for older UIs and any library that honours DO_NOT_TRACK.
    "AIM_UI_TELEMETRY_ENABLED": "0",
    "DO_NOT_TRACK": "1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _status_ok(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/status/", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


@dataclass
class AimServer:
    """A real ``aim server`` on 127.0.0.1, in its own process group (uvicorn is forked)."""

    repo: Path
    port: int
    home: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"aim://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        env = {**os.environ, **SANDBOX_ENV, "HOME": str(self.home)}
        log = (self.repo.parent / "aim-server.log").open("ab")
        self.process = subprocess.Popen(
            [str(AIM_BIN), "server", "--repo", str(self.repo), "--host", "127.0.0.1", "--port", str(self.port), "-y"],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not _status_ok(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"aim server did not start; see {self.repo.parent / 'aim-server.log'}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=15)
        self.process = None
        deadline = time.monotonic() + 15
        while _status_ok(self.port) and time.monotonic() < deadline:
            time.sleep(0.1)


def open_repo(path: Path) -> Any:
    """A fresh ``aim.Repo`` on a folder with every run indexed, as ``aim up`` would (else closed runs are
    invisible to ``Repo.get_run``)."""
    from aim import Repo
    from aim.sdk.index_manager import RepoIndexManager

    repo = Repo(str(path))
    manager = RepoIndexManager(repo)
    try:
        for run_hash in repo.list_all_runs():
            manager.index(run_hash)
    finally:
        manager.stop()
    return repo


def init_repo(path: Path, home: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(AIM_BIN), "init", "--repo", str(path)], check=True, capture_output=True, timeout=120,
                   env={**os.environ, **SANDBOX_ENV, "HOME": str(home)})
    return path


@dataclass
class Harness:
    """One AimAdapter over one embedded store, with a helper that logs a builder through it."""

    store: EmbeddedStore
    adapter: AimAdapter
    context: RunContext

    def start(self) -> dict[str, str]:
        return self.adapter.start_run(self.context)

    def delivery(self, builder: TraceletArtifact) -> Delivery:
        policy = RoutingPolicy({"aim": AimAdapter.capabilities, "local": LocalAdapter.capabilities})
        record = self.store.log(builder)
        plan = policy.plan(record.manifest)
        return Delivery(record.manifest, record.version, plan.for_backend("aim"), self.store.blobs.root)

    def log(self, builder: TraceletArtifact) -> Receipt:
        return self.adapter.log(self.delivery(builder))


def _png(path: Path, colour: tuple[int, int, int]) -> Path:
    from PIL import Image

    Image.new("RGB", (8, 6), colour).save(path, format="PNG")
    return path


def _wav(path: Path) -> Path:
    import wave

    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(bytes(range(256)) * 8)
    return path


def every_type(folder: Path) -> list[TraceletArtifact]:
    """One artifact per ArtifactType: files, a directory, objects, a reference and a real sklearn model."""
    from sklearn.linear_model import LogisticRegression

    from tracelet_artifacts.artifact import ArtifactType as T

    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "data"
    (data / "split").mkdir(parents=True)
    (data / "train.csv").write_text("x,y\n1,0\n2,1\n")
    (data / "split" / "test.csv").write_text("x,y\n3,1\n")
    (folder / "ckpt.pt").write_bytes(bytes(range(256)) * 4)
    (folder / "weights.bin").write_bytes(b"\x00\x01" * 300)
    (folder / "sample.jsonl").write_text('{"text": "hello"}\n')
    (folder / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(64))
    (folder / "plot.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>')
    (folder / "report.md").write_text("# Eval\naccuracy: 0.93\n")
    (folder / "train.py").write_text("print('train')\n")
    (folder / "notes.txt").write_text("custom notes\n")
    model = LogisticRegression(max_iter=50).fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    return [
        TraceletArtifact("classifier", T.MODEL, "a tiny sklearn model", metadata={"acc": 0.93},
                         labels=["baseline"]).add_model(model),
        TraceletArtifact("ckpt", T.CHECKPOINT).add_file(folder / "ckpt.pt", "checkpoints/epoch-1.pt"),
        TraceletArtifact("weights", T.WEIGHTS).add_file(folder / "weights.bin", "weights/model.bin"),
        TraceletArtifact("dataset", T.DATASET, "a folder", metadata={"rows": 3}).add_dir(data, "data")
        .add_reference("s3://bucket/raw/train.parquet", size_bytes=1234, sha256="ab" * 32),
        TraceletArtifact("samples", T.SAMPLE).add_file(folder / "sample.jsonl", "samples/s.jsonl"),
        TraceletArtifact("pictures", T.IMAGE, labels=["media"]).add_file(_png(folder / "a.png", (255, 0, 0)),
                                                                          "img/a.png"),
        TraceletArtifact("sound", T.AUDIO).add_file(_wav(folder / "beep.wav"), "audio/beep.wav"),
        TraceletArtifact("movie", T.VIDEO).add_file(folder / "clip.mp4", "video/clip.mp4"),
        TraceletArtifact("plots", T.VISUALIZATION).add_file(folder / "plot.svg", "plots/plot.svg")
        .add_file(_png(folder / "roc.png", (0, 0, 255)), "plots/roc.png"),
        TraceletArtifact("report", T.REPORT, "evaluation report").add_file(folder / "report.md", "report.md"),
        TraceletArtifact("config", T.CONFIG).add_object({"lr": 0.001, "layers": [4, 2]}, "hparams")
        .add_object({"batch": 8}, "train", "yaml"),
        TraceletArtifact("code", T.CODE).add_file(folder / "train.py", "src/train.py"),
        TraceletArtifact("extras", T.CUSTOM).add_file(folder / "notes.txt", "notes/notes.txt")
        .add_reference("https://example.org/extra.bin"),
    ]


# -- a user's script, in a fresh process ----------------------------------------------------------------
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # integrations/user_scripts.py


def user_env(root: Path) -> dict[str, str]:
    """A user's environment: home and temp files under ``root``, no TRACELET_* from the caller, Aim sandboxed,
    this checkout importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACELET_")}
    for folder in ("home", "tmp"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    env.update(SANDBOX_ENV, HOME=str(root / "home"), TMPDIR=str(root / "tmp"),
               PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    return env
