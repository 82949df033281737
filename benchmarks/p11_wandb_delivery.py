"""P11: delivering a large artifact to an offline W&B run through the adapter ÷ W&B's own ``Artifact.add_dir`` +
``run.log_artifact`` of the same folder, side by side in one run; and the bytes each stages on disk.

Target: time ratio ≤ 1.10, and the adapter stages no second copy (W&B's default ``mutable`` policy copies every
file into ``$WANDB_DATA_DIR/artifacts/staging``; the adapter hands W&B the store's blobs, ``immutable``).

Each repeat opens a fresh offline run (untimed) for each side, alternating which goes first. Timed: from the
call until the artifact's record is in the run file on disk (the point at which the adapter confirms a
delivery; the baseline is timed to the same point). The store already holds the artifact (its ingest is P2).

    python benchmarks/p11_wandb_delivery.py [--size-mb 64] [--files 4] [--repeats 3] [--dir /path]
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

from tracelet_artifacts.artifact import TraceletArtifact
from tracelet_artifacts.backends.base import Delivery, RunContext
from tracelet_artifacts.backends.wandb import WandbAdapter
from tracelet_artifacts.backends.wandb_runfiles import RunFiles
from tracelet_artifacts.routing import BackendPlan
from tracelet_artifacts.store.catalog import ArtifactVersion
from tracelet_artifacts.store.embedded import EmbeddedStore

TARGET = 1.10
CHUNK = 4 * 1024 * 1024


def write_sources(folder: Path, files: int, size_mb: int) -> None:
    folder.mkdir(parents=True)
    for index in range(files):
        with (folder / f"shard-{index:02d}.bin").open("wb") as handle:
            for _ in range(size_mb * 1024 * 1024 // CHUNK):
                handle.write(os.urandom(CHUNK))


def staged_bytes(data_dir: Path) -> int:
    return sum(p.stat().st_size for p in data_dir.rglob("*") if p.is_file())


def wait_for(run_file: Path, name: str) -> None:
    files = RunFiles()
    while not (run_file.is_file() and any(r.name == name for r in files.parse(run_file))):
        time.sleep(0.01)


def baseline(source: Path, root: Path, tag: str) -> float:
    """W&B's own way: ``add_dir`` (default policy) and ``log_artifact`` on a run of its own."""
    import wandb

    run = wandb.init(project="p11", dir=str(root), mode="offline", reinit="create_new",
                     settings=wandb.Settings(x_transaction_log_flush_interval=0.2))
    start = time.perf_counter()
    art = wandb.Artifact(f"baseline-{tag}", type="dataset")
    art.add_dir(str(source))
    run.log_artifact(art)
    wait_for(Path(run.dir).parent / f"run-{run.id}.wandb", f"baseline-{tag}")
    elapsed = time.perf_counter() - start
    run.finish()
    return elapsed


def delivery(store: EmbeddedStore, version: ArtifactVersion) -> Delivery:
    """The stored version as the delivery queue hands it to the adapter (every entry uploaded)."""
    plan = BackendPlan("wandb", tuple(e.path for e in version.manifest.entries))
    return Delivery(version.manifest, version.version, plan, store.blobs.root)


def ours(store: EmbeddedStore, record: ArtifactVersion, warm_up: ArtifactVersion, root: Path, tag: str) -> float:
    """The adapter, on a run it started; a tiny delivery first (untimed) waits out ``wandb.init``, which
    ``start_run`` runs in the background."""
    adapter = WandbAdapter({"project": "p11", "dir": str(root), "mode": "offline"})
    adapter.start_run(RunContext(f"p11-{tag}", "p11", store.root))
    adapter.log(delivery(store, warm_up))
    start = time.perf_counter()
    adapter.log(delivery(store, record))
    elapsed = time.perf_counter() - start
    adapter.end_run()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=64)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="p11-") as tmp:
        work = Path(tmp)
        for key, folder in (("WANDB_DATA_DIR", "data"), ("WANDB_CACHE_DIR", "cache"), ("WANDB_CONFIG_DIR", "config")):
            (work / folder).mkdir()
            os.environ[key] = str(work / folder)
        os.environ.update(WANDB_SILENT="true", WANDB_MODE="offline", WANDB_X_DISABLE_STATS="true",
                          WANDB_DISABLE_GIT="true", WANDB_DISABLE_CODE="true")
        source = work / "source"
        write_sources(source, args.files, args.size_mb)
        store = EmbeddedStore(work / "store", fsync=False)
        record = store.log(TraceletArtifact("p11-shards", "dataset").add_dir(source))
        warm_up = store.log(TraceletArtifact("p11-warm-up", "config").add_object({"warm": True}, "up"))
        total_mb = args.files * args.size_mb
        times: dict[str, list[float]] = {"wandb add_dir + log_artifact": [], "adapter.log": []}
        staged: dict[str, list[int]] = {"wandb add_dir + log_artifact": [], "adapter.log": []}
        for repeat in range(args.repeats):
            steps = [("wandb add_dir + log_artifact", lambda t: baseline(source, work / f"b{t}", t)),
                     ("adapter.log", lambda t: ours(store, record, warm_up, work / f"o{t}", t))]
            for name, step in steps if repeat % 2 == 0 else reversed(steps):
                before = staged_bytes(work / "data")
                os.sync()
                times[name].append(step(str(repeat)))
                staged[name].append(staged_bytes(work / "data") - before)
        store.close()
    base, mine = (statistics.median(times[k]) for k in times)
    print(f"P11 W&B offline delivery of {args.files} x {args.size_mb} MB ({total_mb} MB), median of {args.repeats}:")
    for name in times:
        print(f"  {name:30} {statistics.median(times[name]):7.2f} s   staged on disk: "
              f"{statistics.median(staged[name]) / 2**20:7.1f} MB")
    print(f"  ratio adapter ÷ W&B's own: {mine / base:.2f} (target ≤ {TARGET:.2f})")


if __name__ == "__main__":
    main()
