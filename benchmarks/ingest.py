"""Ingest at disk speed: logging a folder into this project's store, against ``cp -r`` and the tools people use
for the same job, all measured in one run on the same files.

Two datasets: (a) 1 GiB in 10 files of 100 MiB (random bytes); (b) 10,000 files of 4 KiB in 100 folders.
For each, every repeat times, in a fresh destination each time:

  cp -r                     ``cp -r SRC DEST`` (coreutils; the baseline every ratio divides by)
  tracelet first log        ``Experiment.log_artifact(TraceletArtifact(...).add_dir(SRC))`` into a new store:
                            returns when the version is committed (group durability, the default)
  tracelet durable          the same log until its group sync finished (``exp.flush()``): on disk
  tracelet re-log           the unchanged folder logged again into that store (a new builder)
  W&B offline               ``wandb.Artifact.add_dir(SRC)`` + ``run.log_artifact`` (WANDB_MODE=offline)
  DVC add                   ``Repo.add(SRC)`` in a new ``dvc init --no-scm`` repo holding a copy of SRC (the copy
                            untimed; DVC is the ``bench`` extra, run from its own interpreter: ``--dvc-python``)
  MLflow log_artifacts      ``MlflowClient.log_artifacts(run_id, SRC)`` to a local file artifact store (runs in
                            SQLite)

Every tool runs in a fresh child process that imports and sets up untimed, then times only the call; the
page cache's dirty pages are written out (``os.sync``, untimed) before each step so no step pays for the
previous one's writes; the order of the steps alternates between repeats. What a step wrote is kept until
the dataset's last repeat (for (b)): on ext4, creating files just after tens of thousands were deleted is
many times slower for a few minutes (inode allocation steps over every recently deleted inode,
``recently_deleted``), which would make each step pay for the one before it. The table gives each row's median
time and its ratio to ``cp -r`` (the median of the per-repeat ratios), with the spread (min-max) of both.
The first-log child also reports its peak memory above its baseline (target < 64 MiB for (a)).

Targets (issue 16): first log ÷ cp -r ≤ 1.25 on (a) and ≤ 2.0 on (b), and ahead of W&B and DVC on both.

    python benchmarks/ingest.py [--repeats 5] [--only a|b] [--dvc-python /path/to/venv/bin/python] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGETS = {"a": 1.25, "b": 2.0}
MEMORY_TARGET_MIB = 64
ROWS = ("cp -r", "tracelet first log", "tracelet durable", "tracelet re-log", "W&B offline", "DVC add",
        "MLflow log_artifacts")


# -- the datasets ----------------------------------------------------------------------------------------
def write_large(folder: Path, files: int = 10, size_mib: int = 100) -> None:
    folder.mkdir(parents=True)
    for index in range(files):
        with (folder / f"shard-{index:02d}.bin").open("wb") as handle:
            for _ in range(size_mib // 4):
                handle.write(os.urandom(4 << 20))


def write_small(folder: Path, folders: int = 100, per_folder: int = 100, size: int = 4096) -> None:
    for outer in range(folders):
        sub = folder / f"part-{outer:03d}"
        sub.mkdir(parents=True)
        for inner in range(per_folder):
            (sub / f"sample-{inner:03d}.bin").write_bytes(os.urandom(size))


# -- the children: each times one call ---------------------------------------------------------------------
def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_tracelet(src: Path, work: Path) -> dict[str, float]:
    from tracelet_artifacts import Experiment, TraceletArtifact, TraceletSettings

    exp = Experiment("ingest-bench", settings=TraceletSettings(store_path=work / "store")).start()
    before = _peak_rss_mib()
    start = time.perf_counter()
    first = exp.log_artifact(TraceletArtifact("bench", "dataset").add_dir(src))
    committed = time.perf_counter() - start
    exp.flush()
    durable = time.perf_counter() - start
    peak = _peak_rss_mib() - before
    assert first["local"].ok and exp.get_artifact("bench").durability == "durable"
    os.sync()
    start = time.perf_counter()
    again = exp.log_artifact(TraceletArtifact("bench", "dataset").add_dir(src))
    relog = time.perf_counter() - start
    assert again["local"].ok and exp.get_artifact("bench").version == 1
    exp.stop()
    return {"tracelet first log": committed, "tracelet durable": durable, "tracelet re-log": relog,
            "peak_mib": peak}


def child_wandb(src: Path, work: Path) -> dict[str, float]:
    os.environ.update(WANDB_MODE="offline", WANDB_SILENT="true", WANDB_DIR=str(work), WANDB_CACHE_DIR=str(work / "c"),
                      WANDB_DATA_DIR=str(work / "d"), WANDB_ARTIFACT_DIR=str(work / "a"))
    import wandb

    run = wandb.init(project="ingest-bench", dir=str(work))
    start = time.perf_counter()
    artifact = wandb.Artifact("bench", type="dataset")
    artifact.add_dir(str(src))
    run.log_artifact(artifact)
    seconds = time.perf_counter() - start
    run.finish()
    return {"W&B offline": seconds}


def child_dvc(src: Path, work: Path) -> dict[str, float]:
    from dvc.repo import Repo

    repo_dir = work / "repo"
    repo_dir.mkdir()
    subprocess.run(["cp", "-r", str(src), str(repo_dir / "data")], check=True)
    repo = Repo.init(str(repo_dir), no_scm=True)
    os.sync()
    start = time.perf_counter()
    repo.add(str(repo_dir / "data"))
    seconds = time.perf_counter() - start
    repo.close()
    return {"DVC add": seconds}


def child_mlflow(src: Path, work: Path) -> dict[str, float]:
    os.environ.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow.db'}")
    run = client.create_run(client.create_experiment("ingest-bench", artifact_location=(work / "artifacts").as_uri()))
    start = time.perf_counter()
    client.log_artifacts(run.info.run_id, str(src))
    seconds = time.perf_counter() - start
    client.set_terminated(run.info.run_id)
    return {"MLflow log_artifacts": seconds}


CHILDREN: dict[str, Callable[[Path, Path], dict[str, float]]] = {
    "tracelet": child_tracelet, "wandb": child_wandb, "dvc": child_dvc, "mlflow": child_mlflow}


# -- the parent ---------------------------------------------------------------------------------------------
class Bench:
    def __init__(self, work: Path, dvc_python: str | None) -> None:
        self.work = work
        self.dvc_python = dvc_python
        self.notes: list[str] = []
        self.used: dict[str, int] = {}
        self.keep = False  # keep every step's folder until clear() (many small files)

    def fresh(self, name: str) -> Path:
        """A new empty folder for one step (the previous step's removed now only when ``keep`` is False)."""
        self.used[name] = self.used.get(name, 0) + 1
        if not self.keep:
            shutil.rmtree(self.work / f"{name}-{self.used[name] - 1}", ignore_errors=True)
        path = self.work / f"{name}-{self.used[name]}"
        path.mkdir(parents=True)
        return path

    def clear(self) -> None:
        """Remove every step's folder (after a dataset's repeats)."""
        for name, count in self.used.items():
            for index in range(1, count + 1):
                shutil.rmtree(self.work / f"{name}-{index}", ignore_errors=True)
        self.used.clear()

    def cp(self, src: Path) -> dict[str, float]:
        dest = self.fresh("cp") / "dest"
        os.sync()
        start = time.perf_counter()
        subprocess.run(["cp", "-r", str(src), str(dest)], check=True)
        return {"cp -r": time.perf_counter() - start}

    def child(self, tool: str, src: Path) -> dict[str, float]:
        python = self.dvc_python if tool == "dvc" else sys.executable
        if python is None:
            return {}
        work = self.fresh(tool)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        os.sync()
        done = subprocess.run([python, __file__, "--child", tool, str(src), str(work)], env=env,
                              capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed:\n{done.stderr[-3000:]}")
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))

    def run(self, src: Path, repeats: int) -> dict[str, list[float]]:
        times: dict[str, list[float]] = {}
        steps: list[Callable[[], dict[str, float]]] = [
            lambda: self.cp(src), lambda: self.child("tracelet", src), lambda: self.child("wandb", src),
            lambda: self.child("dvc", src), lambda: self.child("mlflow", src)]
        for repeat in range(repeats):
            for step in (steps if repeat % 2 == 0 else steps[::-1]):
                for key, value in step().items():
                    times.setdefault(key, []).append(value)
            print(f"    repeat {repeat + 1}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in times.items()), flush=True)
        return times


def spread(values: list[float], fmt: str) -> str:
    return f"{format(statistics.median(values), fmt)} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def table(results: dict[str, dict[str, list[float]]], dvc_note: str | None) -> None:
    sets = list(results)
    print("\n| what | " + " | ".join(f"({s}) seconds, median (min-max) | ({s}) ÷ cp -r" for s in sets) + " |")
    print("|---|" + "---|---|" * len(sets))
    for row in ROWS:
        cells = []
        for name in sets:
            times = results[name]
            if row not in times:
                cells += ["skipped" if row == "DVC add" else "n/a", "n/a"]
                continue
            ratios = [t / c for t, c in zip(times[row], times["cp -r"], strict=False)]
            cells += [spread(times[row], ".3f"), spread(ratios, ".2f") + "x"]
        print(f"| {row} | " + " | ".join(cells) + " |")
    if dvc_note:
        print(f"\nDVC: {dvc_note}")
    for name in sets:
        times = results[name]
        ours = statistics.median([t / c for t, c in zip(times["tracelet first log"], times["cp -r"], strict=False)])
        rivals = {r: statistics.median(times[r]) for r in ("W&B offline", "DVC add") if r in times}
        ahead = all(statistics.median(times["tracelet first log"]) < v for v in rivals.values())
        print(f"({name}) first log ÷ cp -r {ours:.2f}x target ≤ {TARGETS[name]}: "
              f"{'PASS' if ours <= TARGETS[name] else 'MISS'}; ahead of {', '.join(rivals) or 'nobody measured'}: "
              f"{'PASS' if ahead else 'MISS'}")
        if "peak_mib" in times:
            peak = max(times["peak_mib"])
            verdict = "PASS" if peak < MEMORY_TARGET_MIB else "MISS"
            note = f" target < {MEMORY_TARGET_MIB} MiB: {verdict}" if name == "a" else ""
            print(f"({name}) first log peak memory above the process's baseline: {peak:.1f} MiB "
                  f"(max over repeats){note}")


def find_dvc_python(given: str | None) -> tuple[str | None, str | None]:
    """The interpreter that has DVC (``--dvc-python``, this one, or the one behind ``dvc`` on PATH)."""
    candidates = [given] if given else [sys.executable]
    dvc = shutil.which("dvc")
    if not given and dvc:
        with open(dvc, "rb") as handle:
            first = handle.readline().decode(errors="replace").strip()
        if first.startswith("#!"):
            candidates.append(first[2:].strip())
    for python in candidates:
        if python and subprocess.run([python, "-c", "import dvc.repo"], capture_output=True).returncode == 0:
            return python, None
    return None, ("not installed (pip install 'tracelet-artifacts[bench]', or pass --dvc-python of an "
                  "environment that has it): row skipped")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", choices=("a", "b"), help="run one dataset only")
    parser.add_argument("--dvc-python", help="an interpreter with DVC installed (default: this one, or dvc's)")
    parser.add_argument("--dir", type=Path, default=None, help="folder on the disk to test (default: temp dir)")
    parser.add_argument("--child", nargs=3, metavar=("TOOL", "SRC", "WORK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        tool, src, work = args.child
        print(json.dumps(CHILDREN[tool](Path(src), Path(work))))
        return

    if args.dvc_python and not shutil.which(args.dvc_python):
        parser.error(f"--dvc-python {args.dvc_python!r} is not an interpreter that can be run; "
                     "give the python of an environment that has DVC")
    dvc_python, dvc_note = find_dvc_python(args.dvc_python)
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)  # a new folder on the disk to test
    work = Path(tempfile.mkdtemp(prefix="tracelet-ingest-", dir=args.dir))
    try:
        bench = Bench(work, dvc_python)
        results: dict[str, dict[str, list[float]]] = {}
        for name, writer, what in (("a", write_large, "1 GiB in 10 files"),
                                   ("b", write_small, "10,000 files of 4 KiB in 100 folders")):
            if args.only and args.only != name:
                continue
            src = work / f"src-{name}"
            writer(src)
            os.sync()
            print(f"({name}) {what}, {args.repeats} repeats; load average {os.getloadavg()[0]:.2f}", flush=True)
            bench.keep = name == "b"
            results[name] = bench.run(src, args.repeats)
            bench.clear()
            shutil.rmtree(src)
        table(results, dvc_note)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
