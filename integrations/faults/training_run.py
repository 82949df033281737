"""A training process for the fault suite, run as a child by the tests (never collected by pytest).

    python training_run.py '<json config>'

Config keys: ``store`` (store folder), ``experiment``, ``backends``, ``options`` (backend_options),
``settings`` (extra TraceletSettings fields), ``count`` (artifacts to log), ``kind`` (``mixed``: models
with large files, images, configs and registered sklearn models in turn; ``tiny``: small configs),
``big_mb`` (size of the large model files), ``then`` (``wait``: sleep until killed; ``stop``: flush and
stop; ``exit``: leave without stopping). It prints one JSON line at the end: artifacts logged, seconds,
the longest ``log_artifact`` call and the peak RSS (KiB).
"""

from __future__ import annotations

import json
import os
import resource
import struct
import sys
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


def main() -> None:
    config = json.loads(sys.argv[1])
    work = Path(config["store"]).parent / "work"
    work.mkdir(parents=True, exist_ok=True)
    settings = TraceletSettings(store_path=config["store"], backend_options=config.get("options", {}),
                                **config.get("settings", {}))
    exp = Experiment(config["experiment"], backend=config["backends"], settings=settings).start()
    print(json.dumps({"started": exp.run_id}), flush=True)
    longest, started = 0.0, time.perf_counter()
    for index in range(int(config["count"])):
        artifact = tiny(index) if config.get("kind") == "tiny" else mixed(index, work, int(config.get("big_mb", 8)))
        before = time.perf_counter()
        exp.log_artifact(artifact)
        longest = max(longest, time.perf_counter() - before)
    elapsed = time.perf_counter() - started
    then = config.get("then", "stop")
    if then == "stop":
        exp.stop()
    report = {"logged": int(config["count"]), "seconds": elapsed, "longest_call_s": longest,
              "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
    print(json.dumps(report), flush=True)
    if then == "wait":
        time.sleep(3600)  # the test kills this process
    os._exit(0)  # "exit": leave without stop(), like a process that ends abruptly


if __name__ == "__main__":
    main()
