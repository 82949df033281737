"""A training process for the fault suite, run as a child by the tests (never collected by pytest).

    python training_run.py '<json config>'

Config keys: ``store`` (store folder), ``experiment``, ``backends``, ``options`` (backend_options),
``settings`` (extra TraceletSettings fields), ``count`` (artifacts to log), ``kind`` (``mixed``: models
with large files, images, configs and registered sklearn models in turn; ``tiny``: small configs),
``big_mb`` (size of the large model files), ``via`` (``log``: ``log_artifact``; ``submit``:
``submit_artifact``, futures not kept, then waits until all are stored), ``then`` (``wait``: sleep
until killed; ``stop``: flush and stop; ``exit``: leave without stopping). It prints a JSON line when
started, then one with: artifacts logged, seconds, the longest call, the most artifacts submitted and
not yet stored at once, and the peak RSS (KiB).
"""

from __future__ import annotations

import json
import os
import resource
import struct
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Any

from tracelet_artifacts import ArtifactType, Experiment, TraceletArtifact, TraceletSettings


def png(seed: int) -> bytes:
    """An 8x8 grey PNG whose shade depends on ``seed`` (distinct content per seed)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes([seed % 256, seed // 256 % 256] * 4) for _ in range(8))
    header = struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def classifier(seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1.0 + seed).fit([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]], [0, 1, 0, 1])


def mixed(index: int, work: Path, big_mb: int) -> TraceletArtifact:
    """Models with large files (MLflow), images (W&B), configs (both), registered sklearn models (MLflow)."""
    kind = index % 4
    if kind == 0:
        path = work / f"weights-{index}.bin"
        with path.open("wb") as handle:
            handle.write(index.to_bytes(4, "big"))
            handle.write(os.urandom(big_mb * 1024 * 1024))
        return TraceletArtifact("weights", ArtifactType.MODEL, "large weights").add_file(path, "weights.bin")
    if kind == 1:
        path = work / f"sample-{index}.png"
        path.write_bytes(png(index))
        return TraceletArtifact("samples", ArtifactType.IMAGE).add_file(path, "sample.png")
    if kind == 2:
        return TraceletArtifact("cfg", ArtifactType.CONFIG).add_object({"step": index, "lr": 0.1}, "hparams")
    return TraceletArtifact("clf", ArtifactType.MODEL, "a tiny classifier").add_model(classifier(index))


def tiny(index: int) -> TraceletArtifact:
    return TraceletArtifact(f"cfg-{index % 50}", ArtifactType.CONFIG).add_object({"step": index}, "hparams")


class Waiting:
    """Counts submitted artifacts not yet stored (without keeping their futures) and the most at once."""

    def __init__(self) -> None:
        self.now = self.most = 0
        self.lock = threading.Lock()

    def add(self, future: Any) -> None:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        future.add_done_callback(self.done)

    def done(self, _future: Any) -> None:
        with self.lock:
            self.now -= 1


def main() -> None:
    config = json.loads(sys.argv[1])
    work = Path(config["store"]).parent / "work"
    work.mkdir(parents=True, exist_ok=True)
    settings = TraceletSettings(store_path=config["store"], backend_options=config.get("options", {}),
                                **config.get("settings", {}))
    exp = Experiment(config["experiment"], backend=config["backends"], settings=settings).start()
    print(json.dumps({"started": exp.run_id}), flush=True)
    longest, started, waiting = 0.0, time.perf_counter(), Waiting()
    for index in range(int(config["count"])):
        artifact = tiny(index) if config.get("kind") == "tiny" else mixed(index, work, int(config.get("big_mb", 8)))
        before = time.perf_counter()
        if config.get("via") == "submit":
            waiting.add(exp.submit_artifact(artifact))
        else:
            exp.log_artifact(artifact)
        longest = max(longest, time.perf_counter() - before)
    exp.flush(timeout=0)  # waits until every submitted artifact is stored (not for deliveries)
    elapsed = time.perf_counter() - started
    then = config.get("then", "stop")
    if then == "stop":
        exp.stop()
    report = {"logged": int(config["count"]), "seconds": elapsed, "longest_call_s": longest,
              "most_waiting": waiting.most,
              "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
    print(json.dumps(report), flush=True)
    if then == "wait":
        time.sleep(3600)  # the test kills this process
    os._exit(0)  # "exit": leave without stop(), like a process that ends abruptly


if __name__ == "__main__":
    main()
