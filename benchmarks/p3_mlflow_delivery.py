"""P3: ``Experiment.log_artifact`` of a 200 MB, 20-file artifact routed to MLflow, measured until MLflow's
delivery is confirmed, ÷ ``MlflowClient.log_artifacts`` of the same folder directly. Target ≤ 1.10.

Both sides use a ``sqlite:///`` tracking URI with a local artifact root in one temp folder. Each repetition
writes new content (so the store's de-duplication never skips work) and the order of the two sides
alternates; the median of ``--repeats`` is reported. Start-up (importing MLflow, creating runs, opening
the store) is not timed on either side.

What ours does that the baseline does not: it copies and hashes every file into the embedded store
(the source of truth, so the run can be re-delivered after a crash) before the MLflow upload. The script
prints that split so the reader sees where the time goes.

    python benchmarks/p3_mlflow_delivery.py [--files 20] [--size-mb 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from tracelet_artifacts import ArtifactType, Experiment, TraceletArtifact, TraceletSettings

TARGET = 1.10


def write_files(folder: Path, files: int, size_mb: int, seed: int) -> None:
    folder.mkdir(parents=True)
    block = os.urandom(1024 * 1024)
    for index in range(files):
        with (folder / f"part-{index:02d}.bin").open("wb") as handle:
            handle.write(f"{seed}-{index}".encode())  # new content every repetition
            for _ in range(size_mb):
                handle.write(block)


def baseline(client: object, experiment_id: str, folder: Path) -> float:
    run = client.create_run(experiment_id)  # type: ignore[attr-defined]
    started = time.perf_counter()
    client.log_artifacts(run.info.run_id, str(folder), "model")  # type: ignore[attr-defined]
    elapsed = time.perf_counter() - started
    client.set_terminated(run.info.run_id)  # type: ignore[attr-defined]
    return elapsed


def ours(exp: Experiment, folder: Path, name: str) -> tuple[float, float]:
    """(seconds until log_artifact returned, seconds until MLflow's receipt was recorded)."""
    started = time.perf_counter()
    record = exp.log_artifact(TraceletArtifact(name, ArtifactType.MODEL).add_dir(folder, "model"))
    returned = time.perf_counter() - started
    version = record["local"].version
    while not any(r["backend"] == "mlflow" for r in exp.store.catalog.receipts(name, version)):
        time.sleep(0.002)
    return returned, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--size-mb", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from mlflow.tracking import MlflowClient

    with tempfile.TemporaryDirectory(prefix="tracelet-p3-") as tmp:
        root = Path(tmp)
        uri = f"sqlite:///{root / 'baseline.db'}"
        client = MlflowClient(tracking_uri=uri)
        experiment_id = client.create_experiment("p3-baseline", artifact_location=(root / "baseline-art").as_uri())
        settings = TraceletSettings(store_path=root / "store", backend_options={"mlflow": {
            "tracking_uri": f"sqlite:///{root / 'ours.db'}", "artifact_location": (root / "ours-art").as_uri()}})
        exp = Experiment("p3", backend=["mlflow"], settings=settings).start()
        base_times, our_times, returned_times = [], [], []
        try:
            for rep in range(args.repeats):
                folder = root / f"src-{rep}"
                write_files(folder, args.files, args.size_mb, rep)
                os.sync()
                if rep % 2 == 0:
                    base_times.append(baseline(client, experiment_id, folder))
                    os.sync()
                    returned, total = ours(exp, folder, f"model-{rep}")
                else:
                    returned, total = ours(exp, folder, f"model-{rep}")
                    os.sync()
                    base_times.append(baseline(client, experiment_id, folder))
                our_times.append(total)
                returned_times.append(returned)
        finally:
            exp.stop(timeout=120)
    size = args.files * args.size_mb
    base, mine, ret = statistics.median(base_times), statistics.median(our_times), statistics.median(returned_times)
    print(f"P3: {args.files} files, {size} MB, median of {args.repeats}")
    print(f"  MlflowClient.log_artifacts (baseline)          {base * 1000:8.1f} ms")
    print(f"  log_artifact until MLflow confirmed (ours)     {mine * 1000:8.1f} ms")
    print(f"    of which: log_artifact returned after        {ret * 1000:8.1f} ms  (store: copy + SHA-256)")
    print(f"              delivery to MLflow after that      {(mine - ret) * 1000:8.1f} ms")
    ratio = mine / base
    print(f"  ratio ours / baseline  {ratio:.2f}x   target ≤ {TARGET}   {'PASS' if ratio <= TARGET else 'MISS'}")


if __name__ == "__main__":
    main()
