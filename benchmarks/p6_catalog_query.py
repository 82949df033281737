"""P6: labels + metadata queries over a catalog of 100 000 artifacts. Target: p50 ≤ 50 ms.

Builds a fresh SQLite catalog through the public Catalog API (``Catalog.add_version``, one call and one
transaction per artifact, exactly what ``log_artifact`` does) and reports how long that took. Every
artifact has one version, two entries, 3 labels out of 20 and 5 metadata keys whose values come from
small vocabularies (dataset: 10, framework: 5, owner: 20, stage: 4; plus a float ``accuracy``).

Then it times ``catalog.search(labels=[...], metadata={...})`` for 200 seeded random queries (1-2 labels,
1-2 metadata pairs each) and prints p50/p95. The baseline is a full scan in Python over the same records
already held in memory (a list of (name, labels, metadata) tuples, no I/O) — what a catalog with no index
would have to do — and every query's result is checked to be the same set of names as the scan's.

    python benchmarks/p6_catalog_query.py [--artifacts 100000] [--queries 200] [--dir /path/on/disk]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tracelet_artifacts.artifact import ArtifactType, Manifest, ManifestEntry
from tracelet_artifacts.store.catalog import Catalog

TARGET_P50_MS = 50.0
LABELS = [f"label-{i:02d}" for i in range(20)]
VOCABULARY: dict[str, list[str]] = {
    "dataset": [f"dataset-{i}" for i in range(10)],
    "framework": ["pytorch", "sklearn", "tensorflow", "xgboost", "lightgbm"],
    "owner": [f"user{i:02d}" for i in range(20)],
    "stage": ["dev", "staging", "prod", "archived"],
}
TYPES = list(ArtifactType)
Record = tuple[str, frozenset[str], dict[str, Any]]


def fake_sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def make_manifest(index: int, rng: random.Random) -> Manifest:
    """One artifact's manifest: two entries (the catalog never reads blobs), labels and metadata."""
    name = f"project-{index % 97:02d}/artifact-{index:06d}"
    entries = (
        ManifestEntry("config.json", 512 + index % 100, fake_sha(f"cfg{index}"), "application/json", True),
        ManifestEntry("model/model.pt", 1_000_000 + index, fake_sha(f"model{index}"), "application/octet-stream",
                      False),
    )
    metadata: dict[str, Any] = {key: rng.choice(values) for key, values in VOCABULARY.items()}
    metadata["accuracy"] = round(rng.random(), 4)
    labels = tuple(sorted(rng.sample(LABELS, 3)))
    digest = fake_sha(f"artifact{index}")
    return Manifest(name=name, artifact_type=rng.choice(TYPES), digest=digest, entries=entries,
                    description=f"synthetic artifact {index}", metadata=metadata, labels=labels)


def build(catalog: Catalog, count: int, seed: int) -> tuple[list[Record], float]:
    """Insert ``count`` artifacts one add_version call each; return the records and the seconds it took."""
    rng = random.Random(seed)
    records: list[Record] = []
    batch = max(1, count // 10)
    start = time.perf_counter()
    for index in range(count):
        manifest = make_manifest(index, rng)
        catalog.add_version(manifest)
        records.append((manifest.name, frozenset(manifest.labels), dict(manifest.metadata)))
        if (index + 1) % batch == 0:
            elapsed = time.perf_counter() - start
            print(f"  built {index + 1:>7} artifacts in {elapsed:6.1f} s ({(index + 1) / elapsed:,.0f}/s)",
                  flush=True)
    return records, time.perf_counter() - start


def make_queries(count: int, seed: int) -> list[tuple[list[str], dict[str, str]]]:
    rng = random.Random(seed + 1)
    queries = []
    for _ in range(count):
        labels = rng.sample(LABELS, rng.randint(1, 2))
        keys = rng.sample(sorted(VOCABULARY), rng.randint(1, 2))
        queries.append((labels, {key: rng.choice(VOCABULARY[key]) for key in keys}))
    return queries


def scan(records: Sequence[Record], labels: Sequence[str], metadata: Mapping[str, str]) -> list[str]:
    """The baseline: look at every record in Python."""
    wanted = set(labels)
    items = list(metadata.items())
    return [name for name, have, meta in records
            if wanted <= have and all(meta.get(k) == v for k, v in items)]


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dir", type=Path, default=None, help="where to put the catalog (default: a temp dir)")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="tracelet-p6-", dir=args.dir))
    try:
        catalog = Catalog(folder / "catalog.db")
        print(f"P6 catalog query — building {args.artifacts:,} artifacts in {folder / 'catalog.db'}")
        records, build_s = build(catalog, args.artifacts, args.seed)
        size_mb = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
        print(f"  build: {build_s:.1f} s, {args.artifacts / build_s:,.0f} add_version calls/s "
              f"(one transaction each), catalog {size_mb:.0f} MB on disk")

        queries = make_queries(args.queries, args.seed)
        catalog.search(labels=queries[0][0], metadata=queries[0][1])  # warm the connection and page cache
        ours: list[float] = []
        base: list[float] = []
        hits: list[int] = []
        for labels, metadata in queries:
            start = time.perf_counter()
            found = catalog.search(labels=labels, metadata=metadata)
            ours.append(time.perf_counter() - start)
            start = time.perf_counter()
            expected = scan(records, labels, metadata)
            base.append(time.perf_counter() - start)
            if sorted(r.name for r in found) != sorted(expected):
                raise SystemExit(f"Mismatch for labels={labels} metadata={metadata}: "
                                 f"{len(found)} from the catalog vs {len(expected)} from the scan")
            hits.append(len(found))

        ms = 1000.0
        p50, p95 = percentile(ours, 0.5) * ms, percentile(ours, 0.95) * ms
        b50, b95 = percentile(base, 0.5) * ms, percentile(base, 0.95) * ms
        print(f"  {args.queries} queries (1-2 labels + 1-2 metadata pairs); results per query: "
              f"median {statistics.median(hits):.0f}, max {max(hits)}; all equal to the scan's")
        print(f"  catalog.search            p50 {p50:8.2f} ms   p95 {p95:8.2f} ms   "
              "(returns full ArtifactVersion rows)")
        print(f"  baseline: Python scan     p50 {b50:8.2f} ms   p95 {b95:8.2f} ms   (in-memory records, names only)")
        print(f"  ratio search / scan (p50) {p50 / b50:6.2f}x")
        status = "PASS" if p50 <= TARGET_P50_MS else "MISS"
        print(f"  p50 {p50:.2f} ms   target ≤ {TARGET_P50_MS:.0f} ms   {status}")
        catalog.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
