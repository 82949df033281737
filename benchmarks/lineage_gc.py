"""Lineage and lifecycle costs, each side by side with a baseline in one run:

* commit: ``EmbeddedStore.log`` of small artifacts with gc's commit-time check (``blob_deletions`` read in
  the commit's transaction) against the same logs with the check replaced by nothing; once on a fresh
  store, once with 20,000 deletion records in the table;
* gc: collecting N unreferenced blobs the safe way (deletion records, re-check under the writer lock)
  against plain list-and-unlink (what gc did before: no protection against concurrent writers);
* lineage: ``graph(direction="up"/"down", depth=3)`` on a store where 2,000 runs each used one version and
  produced the next, against the catalog's own ``get`` of the same version.

    python benchmarks/lineage_gc.py [--logs 300] [--blobs 2000] [--runs 2000] [--dir /path/on/disk]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tracelet_artifacts.artifact import TraceletArtifact
from tracelet_artifacts.store import embedded
from tracelet_artifacts.store import gc as blob_gc
from tracelet_artifacts.store.embedded import EmbeddedStore


def timed(fn: Callable[[], Any], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def p50(values: list[float]) -> float:
    return statistics.median(values)


def bench_commit(root: Path, logs: int, deletion_rows: int) -> tuple[float, float]:
    store = EmbeddedStore(root / f"commit-{deletion_rows}", fsync=False)
    if deletion_rows:
        with store.db.transaction() as conn:
            conn.executemany("INSERT INTO blob_deletions VALUES (?, 'deleted', 'bench', 0)",
                             [(f"{i:064x}",) for i in range(deletion_rows)])
    files = root / "files"
    files.mkdir(exist_ok=True)
    counter = iter(range(10**9))

    def log_one() -> None:
        path = files / "f.txt"
        path.write_text(f"content {next(counter)}")
        store.log(TraceletArtifact("bench/a", "config").add_file(path))

    original = blob_gc.check_commit
    checked: list[float] = []
    unchecked: list[float] = []
    for _ in range(logs):  # interleaved, so both see the same store size and machine load
        checked += timed(log_one, 1)
        embedded.blob_gc.check_commit = lambda *a, **k: None  # type: ignore[assignment]
        try:
            unchecked += timed(log_one, 1)
        finally:
            embedded.blob_gc.check_commit = original  # type: ignore[assignment]
    store.close()
    return p50(checked), p50(unchecked)


def bench_gc(root: Path, blobs: int) -> tuple[float, float]:
    results = []
    for safe in (True, False):
        store = EmbeddedStore(root / f"gc-{safe}", fsync=False)
        for i in range(blobs):
            store.blobs.put_bytes(f"orphan {i}".encode())
        start = time.perf_counter()
        if safe:
            assert store.gc()[0] == blobs
        else:
            keep = store.catalog.referenced_digests()
            for sha, _, _ in list(store.blobs.inventory()):
                if sha not in keep:
                    store.blobs.delete(sha)
        results.append((time.perf_counter() - start) * 1000)
        store.close()
    return results[0], results[1]


def bench_lineage(root: Path, runs: int) -> tuple[float, float, float]:
    store = EmbeddedStore(root / "lineage", fsync=False)
    src = root / "chain.txt"
    src.write_text("seed")
    previous = store.log(TraceletArtifact("chain", "dataset").add_file(src), run_id="run-0")
    for n in range(1, runs + 1):
        run_id = f"run-{n}"
        store.lineage.record_use(run_id, previous, when=previous.created_at + 0.0005)
        src.write_text(f"step {n}")
        previous = store.log(TraceletArtifact("chain", "dataset").add_file(src), run_id=run_id)
    middle = runs // 2
    up = timed(lambda: store.lineage.graph("chain", middle, direction="up", depth=3), 200)
    down = timed(lambda: store.lineage.graph("chain", middle, direction="down", depth=3), 200)
    get = timed(lambda: store.get("chain", middle), 200)
    store.close()
    return p50(up), p50(down), p50(get)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=int, default=300)
    parser.add_argument("--blobs", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tracelet-bench-lineage-", dir=args.dir))
    try:
        for rows in (0, 20000):
            checked, unchecked = bench_commit(root, args.logs, rows)
            print(f"commit ({rows:>5} deletion records): log p50 {checked:.2f} ms with the gc check, "
                  f"{unchecked:.2f} ms without; ratio {checked / unchecked:.2f}x")
        safe, plain = bench_gc(root, args.blobs)
        print(f"gc of {args.blobs} unreferenced blobs: {safe:.0f} ms safe (records + re-check), {plain:.0f} ms "
              f"plain unlink; ratio {safe / plain:.2f}x")
        up, down, get = bench_lineage(root, args.runs)
        print(f"lineage at {args.runs} runs, depth 3: up p50 {up:.2f} ms, down p50 {down:.2f} ms; catalog get "
              f"{get:.2f} ms; ratio up/get {up / get:.1f}x")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
