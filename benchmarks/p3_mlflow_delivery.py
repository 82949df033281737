"""P3: ``Experiment.log_artifact`` of a 1 GB, 10-file artifact routed to a local MLflow tracking server,
measured until MLflow's delivery is confirmed, ÷ ``MlflowClient.log_artifacts`` of the same folder to the
same server. Target ≤ 1.10.

The server is a real ``mlflow server --artifacts-destination`` on 127.0.0.1 (sqlite backend store,
local artifact folder), started from its own folder. Both sides talk to it through
``MLFLOW_TRACKING_URI`` (no adapter options). Each repetition writes new content (the store's
de-duplication never skips work) and the order of the two sides alternates; the median of ``--repeats``
is reported. Start-up (importing MLflow, the server, creating runs) is not timed on either side.

What ours does that the baseline does not: it copies and hashes every file into the embedded store (the
source of truth, so the run can be re-delivered after a crash) before the upload, then writes the
manifest file and the run tags. The script prints that split, and a profile of the adapter's own calls
(``--profile``), so the reader sees where the time goes.

    python benchmarks/p3_mlflow_delivery.py [--files 10] [--size-mb 100] [--repeats 3] [--profile]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

from tracelet_artifacts import ArtifactType, Experiment, TraceletArtifact, TraceletSettings

TARGET = 1.10


@contextmanager
def mlflow_server(root: Path) -> Iterator[str]:
    """A real ``mlflow server`` on a free loopback port, stopped (process group) on exit."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    root.mkdir(parents=True)
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    command = [str(Path(sys.executable).with_name("mlflow")), "server", "--backend-store-uri",
               f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "artifacts"),
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    with (root / "server.log").open("ab") as out:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((root / "server.log").read_text()[-2000:]) from None
                time.sleep(0.3)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def write_files(folder: Path, files: int, size_mb: int, seed: int) -> None:
    folder.mkdir(parents=True)
    block = os.urandom(1024 * 1024)
    for index in range(files):
        with (folder / f"part-{index:02d}.bin").open("wb") as handle:
            handle.write(f"{seed}-{index}".encode())  # new content every repetition
            for _ in range(size_mb):
                handle.write(block)


def baseline(client: Any, experiment_id: str, folder: Path) -> float:
    run = client.create_run(experiment_id)
    started = time.perf_counter()
    client.log_artifacts(run.info.run_id, str(folder), "model")
    elapsed = time.perf_counter() - started
    client.set_terminated(run.info.run_id)
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


class CallTimes:
    """Wall time spent in each MlflowClient method the adapter calls (``--profile``)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def wrap(self, client: Any) -> None:
        for name in ("search_runs", "log_artifacts", "log_dict", "log_batch", "get_run", "set_tag"):
            setattr(client, name, self._timed(name, getattr(client, name)))

    def _timed(self, name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started
                self.calls[name] += 1
        return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="time each MLflow call the adapter makes")
    args = parser.parse_args()

    from mlflow.tracking import MlflowClient

    with tempfile.TemporaryDirectory(prefix="tracelet-p3-") as tmp, mlflow_server(Path(tmp) / "server") as url:
        root = Path(tmp)
        os.environ["MLFLOW_TRACKING_URI"] = url  # both sides: MLflow's own setting, no adapter options
        client = MlflowClient()
        experiment_id = client.create_experiment(f"p3-baseline-{time.time_ns()}")
        settings = TraceletSettings(store_path=root / "store", flush_timeout_s=600)  # files over 100 MB: uploaded
        exp = Experiment(f"p3-{time.time_ns()}", backend=["mlflow"], settings=settings).start()
        times = CallTimes()
        if args.profile:
            times.wrap(exp._adapters["mlflow"].client)  # type: ignore[attr-defined]
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
                for side in (folder,):
                    for path in side.iterdir():
                        path.unlink()
        finally:
            exp.stop(timeout=600)
    size = args.files * args.size_mb
    base, mine, ret = statistics.median(base_times), statistics.median(our_times), statistics.median(returned_times)
    print(f"P3: {args.files} files, {size} MB, to a local mlflow server, median of {args.repeats}")
    print(f"  MlflowClient.log_artifacts (baseline)          {base * 1000:8.1f} ms   {size / base:7.1f} MB/s")
    print(f"  log_artifact until MLflow confirmed (ours)     {mine * 1000:8.1f} ms   {size / mine:7.1f} MB/s")
    print(f"    of which: log_artifact returned after        {ret * 1000:8.1f} ms  (store: one-pass copy + BLAKE3)")
    print(f"              delivery to MLflow after that      {(mine - ret) * 1000:8.1f} ms")
    if args.profile:
        for name, seconds in sorted(times.seconds.items(), key=lambda kv: -kv[1]):
            print(f"    adapter: {name:<14} {times.calls[name]:4d} calls {seconds * 1000 / args.repeats:9.1f} ms/rep")
    ratio = mine / base
    print(f"  ratio ours / baseline  {ratio:.2f}x   target ≤ {TARGET}   {'PASS' if ratio <= TARGET else 'MISS'}")


if __name__ == "__main__":
    main()
