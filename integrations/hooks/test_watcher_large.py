"""The file watcher on the issue's large writers: a 50 MB file written slowly in chunks with pauses (file
open throughout), and a 50 MB file written to a temp name and renamed into place; each is in the store
exactly once with the finished file's digest, on inotify and on the polling fallback. And the example runs.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("watchdog")

from tracelet_artifacts.experiment import Experiment
from tracelet_artifacts.hooks.watcher import ArtifactWatcher, CapturedFile
from tracelet_artifacts.settings import TraceletSettings

pytestmark = pytest.mark.integration

SIZE = 50 * 1024 * 1024
CHUNKS = 25
SETTLE = 0.5


def write_slowly(path: Path, pauses: list[float]) -> str:
    """Write SIZE bytes in CHUNKS chunks, sleeping ``pauses[i]`` after chunk i; return the final digest."""
    digest = hashlib.sha256()
    with path.open("wb") as handle:
        for index in range(CHUNKS):
            chunk = os.urandom(SIZE // CHUNKS)
            handle.write(chunk)
            handle.flush()
            digest.update(chunk)
            time.sleep(pauses[index] if index < len(pauses) else 0)
    return digest.hexdigest()


@pytest.mark.parametrize("polling", [False, True], ids=["inotify", "polling"])
def test_50mb_slow_writer_and_temp_rename_are_each_captured_once_with_final_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, polling: bool
) -> None:
    for key in list(os.environ):
        if key.startswith("TRACELET_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outputs").mkdir()
    pauses = [0.2] * (CHUNKS - 1)
    if not polling:
        pauses[CHUNKS // 2] = 3 * SETTLE  # longer than the settle period, file still open: close decides
    seen: list[CapturedFile] = []
    digests: dict[str, str] = {}
    settings = TraceletSettings(store_path=tmp_path / ".tracelet")
    with Experiment("watch-large", settings=settings) as exp:
        watcher = ArtifactWatcher(["outputs"], experiment=exp, settle_s=SETTLE, callback=seen.append,
                                  polling=polling, poll_interval_s=0.2)
        with watcher:
            if polling:
                assert watcher.roots[0].mode == "polling"

            def renamed() -> None:
                temporary = tmp_path / "outputs" / "model.safetensors.part"
                digests["outputs/model.pt"] = write_slowly(temporary, [0.1] * CHUNKS)
                os.replace(temporary, tmp_path / "outputs" / "model.pt")

            rename_thread = threading.Thread(target=renamed)
            rename_thread.start()
            digests["outputs/epoch_3.ckpt"] = write_slowly(tmp_path / "outputs" / "epoch=3.ckpt", pauses)
            rename_thread.join()
            deadline = time.monotonic() + 30
            while len(seen) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(2 * SETTLE)  # room for a wrong second capture
        assert sorted((c.name, c.sha256) for c in seen) == sorted(digests.items())
        for name, sha in digests.items():
            versions = exp.store.catalog.versions(name)
            assert len(versions) == 1
            record = exp.store.get(name)
            assert [e.size for e in record.manifest.entries] == [SIZE]  # its key is BLAKE3: checked below
            (entry,) = record.manifest.entries
            assert hashlib.sha256(exp.store.blob_path(entry.digest).read_bytes()).hexdigest() == sha
            assert record.size_bytes == SIZE
            assert exp.store.verify(name) == []


def test_watch_outputs_example_runs(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACELET_")}
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, str(root / "examples" / "watch_outputs.py"), str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for name in ("outputs/config.json", "outputs/epoch_2.ckpt", "outputs/final.pt", "outputs/plots/loss.svg"):
        assert f"captured {name}" in done.stdout
    assert "9 artifact version(s)" in done.stdout  # metrics.csv once per epoch, the rest once each
    assert ".scratch" not in done.stdout and ".tmp" not in done.stdout
