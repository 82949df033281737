"""P2: logging a 1 GB artifact of 10 files into the embedded store ÷ ``cp -r`` of the same files.

Targets: first log ÷ ``cp -r`` ≤ 1.25; re-logging the unchanged artifact ÷ the first log ≤ 0.25.

The 10 source files (``--size-mb`` each, default 100, random content written once) live in a temp folder
on the same disk as the stores and copies (``--dir``, default the system temp dir). Each measurement runs
3 times (``--repeats``) with a fresh store or destination every time, the order of the measurements
alternating between repeats, and the median is reported. Before every timed step the page cache's dirty
pages are written out (``os.sync``, untimed), so no step pays for the previous one's writes.

What is timed:
  * ``cp -r SRC DEST`` in a subprocess (coreutils; no fsync: the data may still be only in the page cache);
  * ``EmbeddedStore(root).log(TraceletArtifact(...).add_dir(SRC))`` — builder + hash + copy into blobs
    (temp file, fsync, rename, one per blob) + the catalog transaction; the store is opened untimed;
  * the same into ``EmbeddedStore(root, fsync=False)``, to show what durability costs;
  * re-logging the unchanged folder into the first store (a new builder each time);
  * ``cp -r`` followed by ``sync`` (for reference: a copy that is on disk when it returns, like ours).

    python benchmarks/p2_store_ingest.py [--size-mb 100] [--files 10] [--repeats 3] [--dir /path]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tracelet_artifacts.artifact import TraceletArtifact
from tracelet_artifacts.store.embedded import EmbeddedStore

TARGET_LOG_VS_CP = 1.25
TARGET_RELOG_VS_LOG = 0.25
CHUNK = 4 * 1024 * 1024


def write_sources(folder: Path, files: int, size_mb: int) -> int:
    """Write ``files`` files of ``size_mb`` MB of random bytes; return the total size."""
    folder.mkdir(parents=True)
    total = 0
    for index in range(files):
        remaining = size_mb * 1024 * 1024
        with (folder / f"shard-{index:02d}.bin").open("wb") as handle:
            while remaining:
                block = os.urandom(min(CHUNK, remaining))
                handle.write(block)
                remaining -= len(block)
                total += len(block)
    os.sync()
    return total


def timed(step: Callable[[], object]) -> float:
    os.sync()  # untimed: start every step with no dirty pages from an earlier one
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def build(source: Path) -> TraceletArtifact:
    return TraceletArtifact("p2-shards", "dataset").add_dir(source)


class Bench:
    """One repeat's fresh destinations under ``work`` and the timings of every step."""

    def __init__(self, source: Path, work: Path, total: int) -> None:
        self.source, self.work, self.total = source, work, total
        self.times: dict[str, list[float]] = {k: [] for k in ("cp", "cp+sync", "log", "log-nofsync", "relog")}

    def fresh(self, name: str) -> Path:
        path = self.work / name
        shutil.rmtree(path, ignore_errors=True)
        return path

    def cp(self) -> None:
        dest = self.fresh("cp-dest")
        self.times["cp"].append(timed(lambda: subprocess.run(["cp", "-r", str(self.source), str(dest)], check=True)))
        shutil.rmtree(dest)

    def cp_sync(self) -> None:
        dest = self.fresh("cp-dest")

        def step() -> None:
            subprocess.run(["cp", "-r", str(self.source), str(dest)], check=True)
            subprocess.run(["sync"], check=True)

        self.times["cp+sync"].append(timed(step))
        shutil.rmtree(dest)

    def log(self) -> None:
        """First log into a fresh store (fsync on), then the unchanged re-log into the same store."""
        store = EmbeddedStore(self.fresh("store"))
        first = []
        self.times["log"].append(timed(lambda: first.append(store.log(build(self.source)))))
        again = []
        self.times["relog"].append(timed(lambda: again.append(store.log(build(self.source)))))
        record, second = first[0], again[0]
        assert record.created and record.size_bytes == self.total, record
        assert not second.created and second.version == record.version, second
        store.close()
        shutil.rmtree(store.root)

    def log_nofsync(self) -> None:
        store = EmbeddedStore(self.fresh("store-nofsync"), fsync=False)
        self.times["log-nofsync"].append(timed(lambda: store.log(build(self.source))))
        store.close()
        shutil.rmtree(store.root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=100, help="size of each file in MB (default 100)")
    parser.add_argument("--files", type=int, default=10, help="number of files (default 10)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of each measurement (default 3)")
    parser.add_argument("--dir", type=Path, default=None, help="folder on the disk to test (default: temp dir)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tracelet-p2-", dir=args.dir))
    try:
        source = work / "source"
        total = write_sources(source, args.files, args.size_mb)
        print(f"P2 store ingest — {args.files} files x {args.size_mb} MB = {total / 2**20:,.0f} MiB in {source}; "
              f"median of {args.repeats}")
        bench = Bench(source, work, total)
        steps = [bench.cp, bench.log, bench.log_nofsync, bench.cp_sync]
        for repeat in range(args.repeats):
            for step in (steps if repeat % 2 == 0 else steps[::-1]):
                step()
            print(f"  repeat {repeat + 1}: "
                  + ", ".join(f"{k} {v[-1]:.3f} s" for k, v in bench.times.items()), flush=True)

        med = {k: statistics.median(v) for k, v in bench.times.items()}
        mib_s = {k: total / 2**20 / v for k, v in med.items()}
        print(f"  cp -r (baseline)                 {med['cp']:7.2f} s  {mib_s['cp']:7.0f} MiB/s")
        print(f"  store.log, fsync on (headline)   {med['log']:7.2f} s  {mib_s['log']:7.0f} MiB/s")
        print(f"  store.log, fsync off             {med['log-nofsync']:7.2f} s  {mib_s['log-nofsync']:7.0f} MiB/s")
        print(f"  re-log unchanged (fsync on)      {med['relog'] * 1000:7.1f} ms")
        print(f"  cp -r && sync (reference)        {med['cp+sync']:7.2f} s  {mib_s['cp+sync']:7.0f} MiB/s")
        ratio = med["log"] / med["cp"]
        print(f"  ratio log / cp -r                {ratio:7.2f}x  target ≤ {TARGET_LOG_VS_CP}  "
              f"{'PASS' if ratio <= TARGET_LOG_VS_CP else 'MISS'}")
        print(f"  ratio log (fsync off) / cp -r    {med['log-nofsync'] / med['cp']:7.2f}x  (cost of durability: "
              f"{med['log'] - med['log-nofsync']:+.2f} s)")
        print(f"  ratio log / (cp -r && sync)      {med['log'] / med['cp+sync']:7.2f}x  "
              "(both on disk when they return)")
        relog = med["relog"] / med["log"]
        print(f"  ratio re-log / first log         {relog:7.3f}x  target ≤ {TARGET_RELOG_VS_LOG}  "
              f"{'PASS' if relog <= TARGET_RELOG_VS_LOG else 'MISS'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
