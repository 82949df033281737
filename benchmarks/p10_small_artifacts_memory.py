"""P10: 10 000 small artifacts logged in a tight loop while the only backend (MLflow) is down: throughput
(artifacts/s) and peak RSS, against a bare interpreter that imports tracelet_artifacts and against 1 000
artifacts. Every case runs in a fresh child process (peak RSS is per process); deliveries pile up in the
outbox on disk.

Cases: ``log_artifact`` x1 000 and x10 000; a burst of ``submit_artifact`` x10 000 with the default
``submit_queue_max`` (1 000) and with the queue effectively unbounded (what it was before the bound).
Target: each artifact past the first 1 000 adds < 2 KiB of peak RSS.

    python benchmarks/p10_small_artifacts_memory.py [--count 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
REPO = Path(__file__).resolve().parents[1]
TARGET_BYTES = 2048


def child(config: dict[str, object]) -> None:
    """One case, in this (child) process: print the artifacts/s and the peak RSS as a JSON line."""
    count = int(config["count"])  # type: ignore[call-overload]
    if count:
        from tracelet_artifacts import ArtifactType, Experiment, TraceletArtifact, TraceletSettings

        down = {"tracking_uri": config["down"], "http_timeout_s": 5, "http_max_retries": 0, "http_backoff_factor": 0}
        settings = TraceletSettings(store_path=str(config["store"]), backend_options={"mlflow": down},
                                    flush_timeout_s=0, submit_queue_max=int(config["queue"]))  # type: ignore[call-overload]
        exp = Experiment("p10", backend=["mlflow"], settings=settings).start()
        started = time.perf_counter()
        for index in range(count):
            art = TraceletArtifact(f"cfg-{index % 50}", ArtifactType.CONFIG).add_object({"step": index}, "hparams")
            if config["via"] == "submit":
                exp.submit_artifact(art)
            else:
                exp.log_artifact(art)
        exp.flush(timeout=0)  # waits until every submitted artifact is stored (not for the deliveries)
        rate = count / (time.perf_counter() - started)
    else:
        import tracelet_artifacts  # noqa: F401

        rate = 0.0
    print(json.dumps({"rate": rate, "rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}), flush=True)
    os._exit(0)  # leave without stop(): it would wait on the down backend


def run_case(root: Path, name: str, count: int, via: str = "log", queue: int = 1000) -> dict[str, float]:
    with socket.socket() as sock:  # a loopback port nothing listens on: MLflow is down
        sock.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = {"store": str(root / name / "store"), "count": count, "via": via, "queue": queue, "down": down}
    env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true", PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, __file__, "--child", json.dumps(config)], env=env, check=True,
                          capture_output=True, text=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return

    small = args.count // 10
    with tempfile.TemporaryDirectory(prefix="tracelet-p10-") as tmp:
        root = Path(tmp)
        cases = {
            "import tracelet_artifacts (bare interpreter)": run_case(root, "bare", 0),
            f"log_artifact x{small}": run_case(root, "log-small", small),
            f"log_artifact x{args.count}": run_case(root, "log", args.count),
            f"submit_artifact x{args.count} (queue 1000)": run_case(root, "submit", args.count, "submit"),
            f"submit_artifact x{args.count} (unbounded)": run_case(root, "unbounded", args.count, "submit", 10**9),
        }
    print(f"P10: {args.count} small artifacts, MLflow down (every delivery waits in the outbox); a fresh process each")
    for label, case in cases.items():
        rate = f"{case['rate']:8.0f} artifacts/s" if case["rate"] else " " * 20
        print(f"  {label:<48} {rate}   peak RSS {case['rss_kib'] / 1024:7.1f} MiB")
    base = cases[f"log_artifact x{small}"]["rss_kib"]
    extra = args.count - small
    for label in list(cases)[2:]:
        per = (cases[label]["rss_kib"] - base) * 1024 / extra
        verdict = "PASS" if per < TARGET_BYTES else "MISS"
        print(f"  {label:<48} {per:8.0f} B per artifact past the first {small}   target < {TARGET_BYTES}   {verdict}")


if __name__ == "__main__":
    main()
