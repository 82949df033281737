"""P9: logging 1 000 artifacts to the embedded default (SQLite + local blobs) vs a team store
(PostgreSQL + an S3-compatible bucket), both on this machine, in one run.

Each artifact is a small config (a JSON object) plus a 4 KiB file of its own content: the size of what
training scripts log most often, so the figure is the per-artifact cost of the catalog and blob round
trips, not of bandwidth. Both stores keep their durable defaults: blobs fsynced, SQLite in WAL mode,
PostgreSQL with fsync and synchronous_commit on. The servers are started by this script on 127.0.0.1:
PostgreSQL from the Debian package, and moto's S3 server (a Python process, so the S3 side is slower
than a real object store; its share is printed separately).

Also measured: the same 1 000 artifacts logged by 4 processes at once into each store (a team of
writers), to show that the shared catalog takes concurrent writers (writers of different names do not
wait for each other on PostgreSQL; on SQLite every writer waits for the one before).

    python benchmarks/p9_team_store.py [--artifacts 1000] [--writers 4]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "integrations" / "team"))

from team_support import PostgresServer, S3Server  # noqa: E402

from tracelet_artifacts.artifact import TraceletArtifact  # noqa: E402
from tracelet_artifacts.store.embedded import EmbeddedStore  # noqa: E402

WRITER = """
import os, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from p9_team_store import log_many
from tracelet_artifacts.store.embedded import EmbeddedStore
store = EmbeddedStore(sys.argv[2], catalog_url=os.environ.get("P9_CATALOG") or None,
                      blob_url=os.environ.get("P9_BLOBS") or None,
                      s3_endpoint_url=os.environ.get("P9_ENDPOINT") or None)
start_at = float(sys.argv[5])
while time.time() < start_at:
    time.sleep(0.002)
log_many(store, Path(sys.argv[3]), int(sys.argv[4]), sys.argv[6])
"""


def log_many(store: EmbeddedStore, scratch: Path, count: int, tag: str = "") -> float:
    """Log ``count`` small artifacts; return the seconds it took."""
    scratch.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(count):
        path = scratch / f"sample-{tag}-{i}.txt"
        path.write_bytes((f"{tag}:{i}:".encode() * 600)[:4096])
        files.append(path)
    started = time.perf_counter()
    for i, path in enumerate(files):
        builder = TraceletArtifact(f"run-{tag}/metrics-{i % 50}", "config")
        builder.add_object({"step": i, "writer": tag, "lr": 0.001 * (i % 7)}, "config").add_file(path, "sample.txt")
        store.log(builder)
    return time.perf_counter() - started


def _open(kind: str, root: Path, pg: PostgresServer, s3: S3Server, bucket: str) -> EmbeddedStore:
    if kind == "sqlite+local":
        return EmbeddedStore(root)
    return EmbeddedStore(root, catalog_url=pg.url, blob_url=f"s3://{bucket}/p9", s3_endpoint_url=s3.endpoint)


def _concurrent(kind: str, base: Path, count: int, writers: int, pg: PostgresServer, s3: S3Server,
                bucket: str) -> float:
    """Seconds for ``writers`` processes to log ``count`` artifacts between them into one store of ``kind``."""
    catalog = pg.fresh_database() if kind.startswith("postgresql") else ""
    blobs = f"s3://{bucket}/p9-{writers}" if kind.endswith("s3") else ""
    env = {**os.environ, **s3.env, "P9_CATALOG": catalog, "P9_BLOBS": blobs,
           "P9_ENDPOINT": s3.endpoint if blobs else ""}
    start_at = time.time() + 3.0
    each = count // writers
    # A team's machines have their own folders; without a shared catalog, the processes share one folder.
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(Path(__file__).parent),
                               str(base / (f"w{n}" if catalog else "one-store")), str(base / f"scratch{n}"),
                               str(each), str(start_at), f"c{n}"], env=env) for n in range(writers)]
    for proc in procs:
        if proc.wait(600) != 0:
            raise SystemExit(f"a {kind} writer failed")
    return time.time() - start_at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", type=int, default=1000)
    parser.add_argument("--writers", type=int, default=4)
    args = parser.parse_args()
    pg = PostgresServer(durable=True).start()
    s3 = S3Server().start()
    for key, value in s3.env.items():
        os.environ[key] = value
    try:
        with tempfile.TemporaryDirectory(prefix="p9-") as tmp:
            base = Path(tmp)
            bucket = s3.create_bucket()
            seconds: dict[str, float] = {}
            for kind in ("sqlite+local", "postgresql+s3"):
                store = _open(kind, base / kind, pg, s3, bucket)
                seconds[kind] = log_many(store, base / f"scratch-{kind}", args.artifacts, kind[:2])
                assert len(store.catalog.search()) == args.artifacts
                store.close()
            # Where the team store's time goes: the same log into PostgreSQL + local blobs.
            pg_only = EmbeddedStore(base / "pg-only", catalog_url=pg.fresh_database())
            seconds["postgresql+local"] = log_many(pg_only, base / "scratch-pg-only", args.artifacts, "pl")
            pg_only.close()
            concurrent = {kind: _concurrent(kind, base / f"c-{kind}", args.artifacts, args.writers, pg, s3, bucket)
                          for kind in ("sqlite+local", "postgresql+local", "postgresql+s3")}
    finally:
        s3.stop()
        pg.stop()
    n = args.artifacts
    print(f"P9 team store — {n} small artifacts (a JSON config + a 4 KiB file each), durable settings, loopback")
    for kind, took in seconds.items():
        print(f"  {kind:<18} 1 process   {took:7.2f} s  {n / took:8.1f} artifacts/s  {took / n * 1000:6.2f} ms each")
    for kind, took in concurrent.items():
        print(f"  {kind:<18} {args.writers} processes {took:7.2f} s  {n / took:8.1f} artifacts/s")
    base_rate = n / seconds["sqlite+local"]
    team_rate = n / seconds["postgresql+s3"]
    print(f"  throughput ratio team ÷ embedded, 1 process:   {team_rate / base_rate:6.3f}x "
          f"(embedded is {base_rate / team_rate:.1f}x faster)")
    print(f"  throughput ratio team ÷ embedded, {args.writers} processes: "
          f"{concurrent['sqlite+local'] / concurrent['postgresql+s3']:6.3f}x")
    s3_share = (seconds["postgresql+s3"] - seconds["postgresql+local"]) / seconds["postgresql+s3"]
    print(f"  share of the team store's time spent on S3 (moto): {s3_share:5.0%}")


if __name__ == "__main__":
    main()
