"""UI: list page and version page render time of the web view at 100,000 versions. Target: p50 ≤ 150 ms.

Builds a fresh embedded store through the public Catalog API (``Catalog.add_version``, one transaction per
version, what ``log_artifact`` does): 4,000 artifact names x 25 versions, each version with four entries
whose blobs really exist (a YAML config, a metrics JSON, a PNG and a binary), 2 labels out of 12, metadata,
and an alias on one version in five. Then, side by side in one run:

* list page: ``GET /`` with a mix of filters (none, name contains, name prefix, type, label, alias, a late
  page), rendered by the app in-process (Starlette TestClient: routing, catalog queries, template, guard);
  against the same page's catalog queries alone (``artifact_page`` + ``count_artifacts``), and against
  ``tracelet-artifacts ls --prefix`` narrowed to about one page of names (the CLI's listing);
* version page: ``GET /artifacts/NAME:vN`` (entries, previews read from the blobs, deliveries, metadata);
  against the catalog reads alone (``get`` + ``labels`` + ``deliveries``), and against
  ``tracelet-artifacts show NAME:vN``.

    python benchmarks/ui.py [--names 4000] [--versions 25] [--requests 200] [--dir /path/on/disk]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from click.testing import CliRunner
from starlette.testclient import TestClient

from tracelet_artifacts.artifact import ArtifactType, Manifest, ManifestEntry
from tracelet_artifacts.cli import main as cli
from tracelet_artifacts.store.embedded import EmbeddedStore
from tracelet_artifacts.ui.app import create_app
from tracelet_artifacts.ui.pages import PAGE_SIZE, list_filter

TARGET_P50_MS = 150.0
LABELS = [f"label-{i:02d}" for i in range(12)]
TYPES = [ArtifactType.MODEL, ArtifactType.CHECKPOINT, ArtifactType.DATASET, ArtifactType.CONFIG, ArtifactType.IMAGE]
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c49444154789c63f8cf"
                    "c0000003010100c9fe92ef0000000049454e44ae426082")


def name_of(index: int) -> str:
    return f"team-{index % 40:02d}/project-{index % 7}/model-{index:05d}"


def real_entries(store: EmbeddedStore) -> list[ManifestEntry]:
    """Four blobs every version shares (the catalog rows differ; the content is what previews read)."""
    contents = [("config.yaml", b"optimizer:\n  lr: 0.001\nlayers: [64, 32]\n", "application/yaml", True),
                ("metrics.json", json.dumps({"val_loss": 0.31, "accuracy": 0.91}).encode(), "application/json", True),
                ("samples/sample.png", PNG, "image/png", False),
                ("weights/model.bin", bytes(range(256)) * 64, "application/octet-stream", False)]
    entries = []
    for path, data, mime, text in contents:
        sha, size = store.blobs.put_bytes(data)
        entries.append(ManifestEntry(path, size, sha, mime, text))
    return entries


def build(store: EmbeddedStore, names: int, versions: int, seed: int) -> float:
    rng = random.Random(seed)
    entries = real_entries(store)
    start, total, step = time.perf_counter(), names * versions, max(1, names * versions // 10)
    done = 0
    for version in range(1, versions + 1):
        for index in range(names):
            name = name_of(index)
            digest = hashlib.sha256(f"{name}:{version}".encode()).hexdigest()
            manifest = Manifest(name=name, artifact_type=TYPES[index % len(TYPES)], digest=digest,
                                entries=tuple(entries), description=f"run {version} of {name}",
                                metadata={"accuracy": round(rng.random(), 4), "epoch": version},
                                labels=tuple(sorted(rng.sample(LABELS, 2))))
            aliases = ["best"] if (index + version) % 5 == 0 else []
            store.catalog.add_version(manifest, aliases=aliases)
            done += 1
            if done % step == 0:
                elapsed = time.perf_counter() - start
                print(f"  built {done:>7,} / {total:,} versions in {elapsed:6.1f} s ({done / elapsed:,.0f}/s)",
                      flush=True)
    return time.perf_counter() - start


def timed(action: Callable[[], Any], runs: int) -> list[float]:
    action()  # warm: connections, templates, page cache
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        out.append(time.perf_counter() - start)
    return out


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return 1000.0 * ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def cycle(items: Sequence[Any]) -> Callable[[], Any]:
    state = {"i": 0}

    def take() -> Any:
        state["i"] += 1
        return items[state["i"] % len(items)]

    return take


def report(title: str, rows: list[tuple[str, list[float]]]) -> float:
    print(f"\n  {title}")
    ours = percentile(rows[0][1], 0.5)
    for label, samples in rows:
        p50, p95 = percentile(samples, 0.5), percentile(samples, 0.95)
        ratio = "" if samples is rows[0][1] else f"   page / this (p50) {ours / p50:6.2f}x"
        print(f"    {label:<48} p50 {p50:8.2f} ms   p95 {p95:8.2f} ms{ratio}")
    return ours


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--names", type=int, default=4000)
    parser.add_argument("--versions", type=int, default=25)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--cli-runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dir", type=Path, default=None, help="where to put the store (default: a temp dir)")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="tracelet-ui-bench-", dir=args.dir))
    try:
        store = EmbeddedStore(folder / ".tracelet")
        total = args.names * args.versions
        print(f"UI benchmark — {args.names:,} names x {args.versions} versions = {total:,} versions in {store.root}")
        build_s = build(store, args.names, args.versions, args.seed)
        print(f"  build: {build_s:.1f} s ({total / build_s:,.0f} add_version calls/s)")
        client = TestClient(create_app(store), base_url="http://127.0.0.1")
        rng = random.Random(args.seed)
        pages = max(1, args.names // PAGE_SIZE)
        list_queries = ["", "q=model-01", "q=team-07/project-3&match=prefix", "type=checkpoint", "label=label-03",
                        "alias=best", f"page={pages // 2}", f"page={pages}", "type=dataset&label=label-05&q=team-1"]
        next_query = cycle(list_queries)

        def list_page() -> None:
            response = client.get("/?" + next_query())
            assert response.status_code == 200 and "artifacts</p>" in response.text

        def list_queries_only() -> None:
            query = dict(part.split("=") for part in next_query().split("&") if part)
            page = int(query.pop("page", 1))
            where = list_filter(query)
            store.catalog.artifact_page(where, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE + 1)
            store.catalog.count_artifacts(where)

        prefixes = [f"team-{i:02d}/project-{i % 7}/" for i in range(40)]  # ~ 14 names each
        next_prefix = cycle(prefixes)
        runner = CliRunner()

        def cli_ls() -> None:
            result = runner.invoke(cli, ["ls", "--store", str(store.root), "--prefix", next_prefix()])
            assert result.exit_code == 0, result.output

        refs = [f"{name_of(rng.randrange(args.names))}:v{rng.randint(1, args.versions)}" for _ in range(500)]
        next_ref = cycle(refs)

        def version_page() -> None:
            response = client.get("/artifacts/" + next_ref())
            assert response.status_code == 200 and "metrics.json" in response.text

        def version_reads() -> None:
            name, _, label = next_ref().partition(":")
            record = store.get(name, label)
            store.catalog.labels(name, record.version)
            store.catalog.deliveries(name, record.version)

        def cli_show() -> None:
            result = runner.invoke(cli, ["show", "--store", str(store.root), next_ref()])
            assert result.exit_code == 0, result.output

        n, c = args.requests, args.cli_runs
        list_p50 = report("list page (9 filter mixes, 50 names a page)", [
            ("GET / (web view, in-process)", timed(list_page, n)),
            ("catalog queries only (artifact_page + count)", timed(list_queries_only, n)),
            ("tracelet-artifacts ls --prefix (~14 names)", timed(cli_ls, c)),
        ])
        version_p50 = report("version page (4 entries, 3 previews, deliveries)", [
            ("GET /artifacts/NAME:vN (web view)", timed(version_page, n)),
            ("catalog reads only (get + labels + deliveries)", timed(version_reads, n)),
            ("tracelet-artifacts show NAME:vN", timed(cli_show, c)),
        ])
        for what, p50 in (("list page", list_p50), ("version page", version_p50)):
            status = "PASS" if p50 <= TARGET_P50_MS else "MISS"
            print(f"  {what:<13} p50 {p50:7.2f} ms   target ≤ {TARGET_P50_MS:.0f} ms   {status}")
        store.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
